"""Issue 14 (session 18, batch18): the routing lets the rows' key and series ids and event codes go
once the moves' columns are written.

- With a routing (a cooldown or steam), ``signals.moves_in_order`` is the only reader of ``_Ids``'
  ``kid``, ``lid`` and ``event``: they are ``None`` by the time the moves are routed and the steams'
  table is written (10M rows: three 40 MB arrays not alive beside the steams' books), while
  ``book`` and ``side``, which the steams' table reads, are still there.
- Without a cooldown (``signals.reads_keys``) ``kid`` and ``lid`` are not kept past the passes at all:
  the routing is handed ``None`` for them (session 22).
- The alerts (values, table rows), counters and stamps are the stream engine's
  (test_h12_batch_equivalence.check).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import Quote
from dropengine.analysis import batch
from dropengine.core.options import DetectOptions
from dropengine.fast import signals

from .conftest import require_fast
from .strategies import signal_options
from .test_h12_batch_equivalence import check, signal_streams


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(signal_streams(), signal_options(), st.booleans())
def test_routing_reads_no_key_ids(quotes: list[Quote], opts: dict[str, Any], steam: bool) -> None:
    require_fast()
    if steam:
        opts = {**opts, "types": "odds_drop,line_move,steam"}
    options = DetectOptions.build(**opts)
    routed: list[tuple[Any, ...]] = []
    tables: list[tuple[Any, ...]] = []
    real_moves, real_route, real_steams = signals.moves_in_order, signals.route, batch._steam_table
    held: list[Any] = []

    def moves_in_order(*args: Any, **kw: Any) -> Any:
        held.append(args)  # (the per-row arrays as handed: kid, lid and event among them)
        return real_moves(*args, **kw)

    def route(moves: Any, cfg: Any) -> Any:
        routed.append(held[-1])
        return real_route(moves, cfg)

    def steam_table(routed_: Any, order: Any, lu: Any, rows: Any, ids: Any, *args: Any, **kw: Any) -> Any:
        tables.append((ids.kid, ids.lid, ids.event, ids.book, ids.side))
        return real_steams(routed_, order, lu, rows, ids, *args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(signals, "moves_in_order", moves_in_order)
        mp.setattr(signals, "route", route)
        mp.setattr(batch, "_steam_table", steam_table)
        check(quotes, opts)
    if not (options.signals and batch._routes(options)):
        assert routed == [] and tables == []
        return
    assert len(routed) == 2  # (check detects twice: plain, and with arrival stamps)
    # the rows' key and series ids (moves_in_order's row_key, row_series) are kept for a cooldown's
    # keys alone: without a cooldown they went after the passes (session 22: steam's peak at 10M)
    assert signals.reads_keys(options) == (options.cooldown_ms > 0)
    for args in routed:
        row_key, row_series = args[12], args[14]
        if signals.reads_keys(options):
            assert len(row_key) == len(quotes)
            assert len(row_series) == (len(quotes) if options.detects_lines else 1)  # (1: no series, -1)
        else:
            assert row_key is None and row_series is None
    for kid, lid, event, book, side in tables:
        assert kid is None and lid is None and event is None
        assert book is not None and side is not None and len(book) == len(side) == len(quotes)
