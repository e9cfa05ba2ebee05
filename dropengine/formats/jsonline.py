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

from ..core.errors import FeedError

__all__ = ["BAD_JSON", "decode_json"]

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
