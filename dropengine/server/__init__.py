"""``dropengine serve``: the reference ``/v1/odds-drop`` server (SPEC section 7).

:mod:`.hub` (pure) numbers, buffers and fans out alerts; :mod:`.params` (pure) validates
the query; :mod:`.sources` feeds quotes in; :mod:`.ingest` detects once and evicts;
:mod:`.persistence` saves and restores (file formats and the fork in :mod:`.state`);
:mod:`.app` is the starlette app. starlette and sse-starlette load only when the app is built.
"""

from __future__ import annotations

from .hub import Cursor, Entry, Hub, Subscriber, parse_cursor, sse_frame
from .params import ParamError, StreamRequest, parse_request

__all__ = [
    "Cursor",
    "Entry",
    "Hub",
    "ParamError",
    "StreamRequest",
    "Subscriber",
    "parse_cursor",
    "parse_request",
    "sse_frame",
]
