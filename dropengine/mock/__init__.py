"""``dropengine mock-upstream``: a vendor-compatible fake upstream, for users and for tests.

Build one in-process::

    from dropengine.mock import MockUpstream, load_timeline
    from dropengine.server.asgi import BackgroundServer

    mock = MockUpstream(load_timeline(["fixtures/demo_nba_frames.ndjson"]), speed=None)
    with BackgroundServer(mock.app, secrets=mock.secrets()) as url:
        ...  # GET {url}/v1/sse/odds/basketball_nba?apiKey=anything

See ``docs/mock-upstream.md`` for the endpoints, the fault grammar and the deviations from
the vendor.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .connection import ConnectionRecord
from .faults import FAULT_KINDS, Fault, parse_fault, parse_faults, pick_fault
from .frames import filter_rows, sport_info
from .timeline import Release, SportState, Timeline, load_timeline

if TYPE_CHECKING:
    from .app import MockUpstream

#: Names from :mod:`dropengine.mock.app`, imported on first use: starlette is an optional
#: dependency (the ``server`` extra), and ``dropengine``'s CLI imports this package.
_APP_NAMES = frozenset({"MockUpstream"})


def __getattr__(name: str) -> Any:
    if name in _APP_NAMES:
        return getattr(importlib.import_module(".app", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FAULT_KINDS",
    "ConnectionRecord",
    "Fault",
    "MockUpstream",
    "Release",
    "SportState",
    "Timeline",
    "filter_rows",
    "load_timeline",
    "parse_fault",
    "parse_faults",
    "pick_fault",
    "sport_info",
]
