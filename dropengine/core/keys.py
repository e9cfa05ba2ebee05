"""API keys: a secret that never prints, a keys file with tiers and connection caps, redaction.

Shared by the live clients (which send a key), ``mock-upstream`` and ``serve`` (which check
one). Pure: parsing takes text, lookups compare in constant time. The logging filter built on
:func:`redact` (global logging setup, an application concern) is in :mod:`dropengine.live.redaction`.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .errors import ConfigError

__all__ = [
    "TIERS",
    "STREAM_TIERS",
    "KeyRecord",
    "KeyTable",
    "Secret",
    "redact",
    "redact_query",
]

#: Concurrent SSE+WS connections per key, by tier (the vendor's table).
TIERS: Final[dict[str, int]] = {
    "free": 1,
    "starter": 3,
    "pro": 25,
    "business": 100,
    "enterprise": 1000,
    "scale": 1000,
}
#: Tiers allowed on the odds streams (the vendor gates them to Business and above).
STREAM_TIERS: Final = frozenset({"business", "enterprise", "scale"})

_MASK: Final = "***"


class Secret:
    """A string that hides itself from ``repr``, ``str`` and f-strings; :meth:`reveal` gives it.

    Equality is constant-time, so a key can be compared without a timing side channel.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ConfigError("api key: must be a non-empty string")
        if any(c.isspace() for c in value):
            raise ConfigError("api key: may not contain whitespace")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: str) -> bool:
        return hmac.compare_digest(self._value.encode(), candidate.encode())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.matches(other._value)

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:  # pickling would be a way out of the box
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key's tier and concurrent-connection cap; ``name`` is what logs may show."""

    name: str
    tier: str
    cap: int

    @property
    def may_stream(self) -> bool:
        return self.tier in STREAM_TIERS


class KeyTable:
    """Keys with their tier and cap, looked up in constant time per stored key.

    File format, one key per line (``#`` starts a comment)::

        KEY  TIER  [CAP]

    ``TIER`` is one of :data:`TIERS`; ``CAP`` defaults to the tier's cap. A key's log name
    is ``key#N`` (its line number), so operators can tell keys apart without seeing them.
    """

    def __init__(self, entries: Iterable[tuple[str, KeyRecord]]) -> None:
        self._entries = [(k.encode(), rec) for k, rec in entries]
        if not self._entries:
            raise ConfigError("keys: the table has no keys")

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"KeyTable({len(self._entries)} keys)"

    @classmethod
    def parse(cls, text: str, source: str = "keys file") -> KeyTable:
        entries: list[tuple[str, KeyRecord]] = []
        seen: set[str] = set()
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) not in (2, 3):
                raise ConfigError(f"{source} line {lineno}: expected 'KEY TIER [CAP]', got {len(parts)} fields")
            key, tier = parts[0], parts[1].lower()
            if tier not in TIERS:
                raise ConfigError(f"{source} line {lineno}: tier {parts[1]!r} is not one of {', '.join(TIERS)}")
            cap = TIERS[tier]
            if len(parts) == 3:
                if not parts[2].isdigit() or int(parts[2]) < 1:
                    raise ConfigError(f"{source} line {lineno}: cap {parts[2]!r} is not a positive integer")
                cap = int(parts[2])
            if key in seen:
                raise ConfigError(f"{source} line {lineno}: the key appears twice")
            seen.add(key)
            entries.append((key, KeyRecord(f"key#{lineno}", tier, cap)))
        if not entries:
            raise ConfigError(f"{source}: no keys in it")
        return cls(entries)

    @classmethod
    def single(cls, key: str, tier: str = "business", cap: int | None = None) -> KeyTable:
        return cls([(key, KeyRecord("key#1", tier, cap if cap is not None else TIERS[tier]))])

    def lookup(self, candidate: str) -> KeyRecord | None:
        """The record of ``candidate``, comparing against every stored key (no early exit)."""
        probe = candidate.encode()
        found: KeyRecord | None = None
        for key, rec in self._entries:
            if hmac.compare_digest(key, probe) and found is None:
                found = rec
        return found

    def keys(self) -> list[str]:
        """Every key in the table (for redaction filters; never log the result)."""
        return [k.decode() for k, _ in self._entries]


_QUERY_KEY: Final = re.compile(r"(?i)((?:api_?key|key)=)[^&\s\"']*")
_SUBPROTOCOL: Final = re.compile(r"(?i)(apikey\.)[^,\s\"']+")
_HEADER: Final = re.compile(r"(?i)(x-api-key[\"']?\s*[:=,]\s*[\"']?)[^\s\"',)]+")


def redact_query(text: str) -> str:
    """``text`` with the values of ``apiKey=``/``api_key=``/``key=`` parameters, ``apikey.<k>``
    subprotocols and ``X-API-Key`` header values masked."""
    text = _QUERY_KEY.sub(rf"\g<1>{_MASK}", text)
    text = _SUBPROTOCOL.sub(rf"\g<1>{_MASK}", text)
    return _HEADER.sub(rf"\g<1>{_MASK}", text)


#: A secret shorter than this is masked only where it stands alone (not inside a word):
#: a test key like ``k`` or ``demo`` otherwise masked every "k" of every message.
SHORT_SECRET: Final = 8


@functools.lru_cache(maxsize=64)
def _standalone(secret: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and every key-shaped parameter masked
    (a short secret, below :data:`SHORT_SECRET` characters, where it stands alone)."""
    for s in secrets:
        if len(s) >= SHORT_SECRET:
            text = text.replace(s, _MASK)
        elif s:
            text = _standalone(s).sub(_MASK, text)
    return redact_query(text)
