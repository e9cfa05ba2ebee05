"""The one JSON decoder for feed data: every line, SSE event and WebSocket message goes here.

msgspec raises :class:`msgspec.DecodeError` for malformed JSON, but ``RecursionError`` for
JSON nested a few thousand levels deep (and could raise ``MemoryError`` on a huge one). A
reader or a live stream that caught only ``DecodeError`` crashed or stopped on one such
line. Here *any* exception from the decoder is translated into
:class:`~dropengine.core.errors.FeedError` with reason ``bad json``, so every caller skips,
counts and locates the line and carries on.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from ..core.alerts import SIGNALS
from ..core.errors import FeedError
from ..core.skips import SkipLog

__all__ = ["BAD_JSON", "FOREIGN_SHAPES", "SHAPES", "SKIPPED", "decode_json", "decode_line", "line_format"]

#: The skip reason of a line that is not JSON.
BAD_JSON: Final = "bad json"
_decode = msgspec.json.Decoder().decode
_BOM: Final = b"\xef\xbb\xbf"


def decode_json(data: bytes | str, where: str = "") -> Any:
    """Decode one JSON text; raises :class:`FeedError` (``bad json``) naming ``where``.

    A UTF-8 byte-order mark before the text is ignored (only tried once decoding failed,
    so it costs nothing on good lines)."""
    try:
        return _decode(data)
    except msgspec.DecodeError as exc:
        detail = str(exc)
        # BOMs mid-file come from concatenated files; strip them in a loop, never by
        # recursion (a line of a thousand BOMs must not raise RecursionError here)
        bom: bytes | str = _BOM if isinstance(data, bytes) else "\ufeff"
        n = 0
        while data.startswith(bom, n):  # type: ignore[arg-type]
            n += len(bom)
        if n:
            stripped = data[n:]
            try:
                return _decode(stripped)
            except msgspec.DecodeError as exc2:
                detail = str(exc2)
            except RecursionError:
                detail = "JSON nested too deeply to decode"
            except Exception as exc2:
                detail = f"cannot decode: {type(exc2).__name__}: {str(exc2)[:120]}"
    except RecursionError:
        detail = "JSON nested too deeply to decode"
    except Exception as exc:  # any decoder failure is bad data, never a crash
        detail = f"cannot decode: {type(exc).__name__}: {str(exc)[:120]}"
    raise FeedError(f"{where}: {detail}" if where else detail, BAD_JSON)


#: What each shape of line is, for messages ("looks like ...").
SHAPES: Final = {
    "frames": "vendor frames (envelopes with a type)",
    "quotes": "quote-table rows",
    "theoddsapi": "The Odds API responses",
    "sse": "a raw SSE capture",
    "betfair": "Betfair Exchange stream (mcm) messages",
    "alerts": "dropengine alerts (odds_drop, line_move, steam: the output of replay or serve, not odds)",
}
#: Shapes recognised only to say what a file is: no reader reads them.
FOREIGN_SHAPES: Final = frozenset({"alerts"})
_BETFAIR_OPS: Final = frozenset({"mcm", "ocm", "connection", "status", "marketSubscription", "heartbeat"})


def line_format(obj: Any) -> tuple[str | None, bool]:
    """What one decoded JSON line looks like: ``(format, clear)``.

    ``format`` is one of ``frames``, ``quotes``, ``theoddsapi``, ``betfair`` or a foreign shape
    (``alerts``), or ``None`` when the line says nothing (``{}``, ``null``, a
    number). ``clear`` is False for a line that fits a format only weakly (``[]``, an
    empty The Odds API response): such lines vote only when no line votes clearly.
    """
    if isinstance(obj, dict):
        op = obj.get("op")
        if isinstance(op, str) and (op in _BETFAIR_OPS or "clk" in obj or "pt" in obj):
            return "betfair", True
        etype = obj.get("type")
        if isinstance(etype, str):
            return ("alerts" if etype in SIGNALS else "frames"), True
        if "side" in obj:
            return "quotes", True
        if "bookmakers" in obj or isinstance(obj.get("data"), list):
            return "theoddsapi", True
        return None, False
    if isinstance(obj, list):
        if not obj:
            return "theoddsapi", False
        first = obj[0]
        if isinstance(first, dict) and ("bookmakers" in first or "home_team" in first):
            return "theoddsapi", True
    return None, False


#: What :func:`decode_line` returns for a line it skipped (``None`` is a valid JSON line).
SKIPPED: Final = object()


def decode_line(text: bytes | str, where: str, expected: str | None, skips: SkipLog) -> Any:
    """One line (or SSE event) of a ``expected`` file decoded, or :data:`SKIPPED` after
    recording why in ``skips``: it is not JSON (``bad json``), or it clearly is a line of
    another format (``wrong format``; ``expected=None`` checks nothing)."""
    try:
        obj = decode_json(text)
    except FeedError as exc:
        skips.add(where, exc.reason, str(exc))
        return SKIPPED
    if expected is not None:
        fmt, clear = line_format(obj)
        if clear and fmt != expected:
            skips.add(where, "wrong format", f"the line looks like {SHAPES[fmt or '']}; the file is read as "
                                             f"{SHAPES[expected]}")
            return SKIPPED
    return obj
