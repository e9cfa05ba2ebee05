"""Fault injection specs for the mock upstream: parse, print back, match a connection. Pure.

Grammar (``--fault SPEC``, repeatable)::

    KIND[=VALUE][,after=N][,conn=RANGE][,sport=KEY][,transport=sse|ws][,retry_after=S]

``KIND`` is ``cut``, ``stall``, ``flap``, ``http=STATUS`` or ``close=CODE``. ``RANGE`` is ``*``,
``3``, ``1-3``, ``4-`` or a ``+``-separated list of those (``1+3+5-6``); connections are
numbered from 1 per sport across both transports. ``after`` (frames sent before the fault,
the ``connected`` frame included; default 2) applies to ``cut``, ``stall`` and ``close``;
``retry_after`` (seconds) to ``http``. The first fault whose filters match a connection is
the one applied to it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ..core.errors import ConfigError

__all__ = ["FAULT_KINDS", "Fault", "parse_fault", "parse_faults", "pick_fault"]

FAULT_KINDS: Final = ("cut", "stall", "flap", "http", "close")
DEFAULT_AFTER: Final = 2
#: Close codes a server may send (RFC 6455 7.4: 1004-1006 and 1015 are never on the wire).
_CLOSE_OK: Final = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015)) | frozenset(range(3000, 5000))
_SPORT: Final = re.compile(r"[A-Za-z0-9_.-]+")
_NUMBER: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")

ConnRange = tuple[tuple[int, int | None], ...]


@dataclass(frozen=True, slots=True)
class Fault:
    """One parsed fault. ``conns`` is a tuple of inclusive ``(first, last)`` ranges (``last``
    ``None``: open-ended); ``(1, None)`` alone means every connection."""

    kind: str
    value: int | None = None
    after: int = DEFAULT_AFTER
    conns: ConnRange = ((1, None),)
    sport: str | None = None
    transport: str | None = None
    retry_after: float | None = None

    def matches(self, sport: str, conn: int, transport: str) -> bool:
        """Whether this fault applies to connection number ``conn`` of ``sport`` over ``transport``."""
        if self.sport is not None and self.sport != sport:
            return False
        if self.transport is not None and self.transport != transport:
            return False
        return any(lo <= conn and (hi is None or conn <= hi) for lo, hi in self.conns)

    def spec(self) -> str:
        """The canonical spec text; ``parse_fault(f.spec()) == f``."""
        parts = [self.kind if self.value is None else f"{self.kind}={self.value}"]
        if self.kind in ("cut", "stall", "close") and self.after != DEFAULT_AFTER:
            parts.append(f"after={self.after}")
        if self.conns != ((1, None),):
            parts.append("conn=" + "+".join(_range_text(lo, hi) for lo, hi in self.conns))
        if self.sport is not None:
            parts.append(f"sport={self.sport}")
        if self.transport is not None:
            parts.append(f"transport={self.transport}")
        if self.retry_after is not None:
            ra = self.retry_after
            parts.append(f"retry_after={int(ra) if ra.is_integer() else ra}")
        return ",".join(parts)

    __str__ = spec


def _range_text(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"{lo}-"
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _int(text: str, what: str, spec: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ConfigError(f"--fault {spec!r}: {what} {text!r} is not a whole number")
    return int(text)


def _conns(text: str, spec: str) -> ConnRange:
    if text == "*":
        return ((1, None),)
    out: list[tuple[int, int | None]] = []
    for piece in text.split("+"):
        lo_text, dash, hi_text = piece.partition("-")
        lo = _int(lo_text, "conn", spec)
        hi: int | None = lo
        if dash:
            hi = _int(hi_text, "conn", spec) if hi_text else None
        if lo < 1 or (hi is not None and hi < lo):
            raise ConfigError(f"--fault {spec!r}: conn {piece!r} is not a range of connection numbers from 1")
        out.append((lo, hi))
    return tuple(out)


def parse_fault(spec: str) -> Fault:
    """Parse one ``--fault`` spec; raises :class:`ConfigError` naming the spec and the bad part."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"--fault {spec!r}: empty; expected KIND[=VALUE][,after=N][,conn=RANGE]...")
    head, *options = spec.strip().split(",")
    kind, eq, value_text = head.partition("=")
    if kind not in FAULT_KINDS:
        raise ConfigError(f"--fault {spec!r}: kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
    value: int | None = None
    if kind in ("http", "close"):
        if not eq:
            raise ConfigError(f"--fault {spec!r}: {kind} needs a value ({kind}=503, close=1012)")
        value = _int(value_text, "status" if kind == "http" else "close code", spec)
        if kind == "http" and not 400 <= value <= 599:
            raise ConfigError(f"--fault {spec!r}: status {value} is not an HTTP error status (400..599)")
        if kind == "close" and value not in _CLOSE_OK:
            raise ConfigError(f"--fault {spec!r}: close code {value} cannot be sent (1000-1003, 1007-1014, 3000-4999)")
    elif eq:
        raise ConfigError(f"--fault {spec!r}: {kind} takes no value")
    fields: dict[str, object] = {}
    seen: set[str] = set()
    for opt in options:
        name, eq, text = opt.partition("=")
        if not eq or not text:
            raise ConfigError(f"--fault {spec!r}: option {opt!r} is not NAME=VALUE")
        if name in seen:
            raise ConfigError(f"--fault {spec!r}: option {name!r} given twice")
        seen.add(name)
        if name == "after":
            if kind not in ("cut", "stall", "close"):
                raise ConfigError(f"--fault {spec!r}: after= applies to cut, stall and close, not {kind}")
            fields[name] = _int(text, "after", spec)
        elif name == "conn":
            fields["conns"] = _conns(text, spec)
        elif name == "sport":
            if not _SPORT.fullmatch(text):
                raise ConfigError(f"--fault {spec!r}: sport {text!r} is not a sport key")
            fields[name] = text
        elif name == "transport":
            if text not in ("sse", "ws"):
                raise ConfigError(f"--fault {spec!r}: transport {text!r} must be sse or ws")
            fields[name] = text
        elif name == "retry_after":
            if kind != "http":
                raise ConfigError(f"--fault {spec!r}: retry_after= applies to http only")
            if not _NUMBER.fullmatch(text) or not math.isfinite(float(text)):
                raise ConfigError(f"--fault {spec!r}: retry_after {text!r} is not a number of seconds")
            fields[name] = float(text)
        else:
            raise ConfigError(
                f"--fault {spec!r}: unknown option {name!r} (after, conn, sport, transport, retry_after)"
            )
    return Fault(kind, value, **fields)  # type: ignore[arg-type]


def parse_faults(specs: Iterable[str | Fault]) -> tuple[Fault, ...]:
    """Parse several specs (already parsed faults pass through), in order."""
    return tuple(s if isinstance(s, Fault) else parse_fault(s) for s in specs)


def pick_fault(faults: Iterable[Fault], sport: str, conn: int, transport: str) -> Fault | None:
    """The first fault that applies to this connection, or ``None``."""
    return next((f for f in faults if f.matches(sport, conn, transport)), None)
