"""Issue 10, second pass ("server-breaker"): eviction in ``serve`` against mis-dated rows.

Data time is the newest ``last_update`` ingested. The wall-clock cap (an hour ahead) protects a
live feed, not a replay of old data (the wall clock is months ahead of it): one row dated in
the year 3000 made every key idle. A jump of data time by more than the shorter eviction limit
must be confirmed by a second batch; a real jump (the next recording, a week later) is.
"""

from __future__ import annotations

import time

from dropengine.server.app import DropServer, ServeConfig

from .test_h10_server_evict import T0, ManualSource, _run, q

H = 3_600_000
YEAR_3000 = 32_503_680_000_000


def _server() -> DropServer:
    return DropServer(ManualSource(), ServeConfig(evict_idle_s=6 * 3600, evict_started_s=12 * 3600))


def test_one_row_from_the_year_3000_in_a_replay_of_old_data_evicts_nothing() -> None:
    wall = int(time.time() * 1000)  # months after the recording
    srv = _server()
    rows = [q(f"e{i}", T0 + i * 1000) for i in range(50)]
    _run(srv, [(rows, wall), ([q("bad", YEAR_3000)], wall), ([q("later", T0 + 60_000)], wall)])
    assert srv.engine.keys_held == 52 and srv.metrics.keys_evicted == 0
    assert srv._data_ms == T0 + 60_000


def test_a_bad_row_inside_a_good_batch_does_not_move_data_time_either() -> None:
    wall = int(time.time() * 1000)
    srv = _server()
    _run(srv, [([q(f"e{i}", T0) for i in range(20)], wall),
               ([q("a", T0 + 1000), q("bad", YEAR_3000), q("b", T0 + 2000)], wall)])
    assert srv.engine.keys_held == 23 and srv._data_ms == T0 + 2000


def test_a_real_jump_is_confirmed_by_the_next_batch_and_evicts() -> None:
    wall = int(time.time() * 1000)
    srv = _server()
    week = 7 * 24 * H
    _run(srv, [([q(f"e{i}", T0) for i in range(20)], wall),
               ([q("bad", YEAR_3000)], wall),               # not confirmed by what follows...
               ([q("n1", T0 + week)], wall),                # ...a week later: a jump, pending
               ([q("n2", T0 + week + 1000)], wall)])        # confirmed
    assert srv._data_ms == T0 + week + 1000
    assert srv.metrics.keys_evicted == 20  # the old keys; n1, n2 (and the bad row's own key) kept
    assert srv.engine.keys_held == 3


def test_two_mis_dated_rows_apart_do_not_confirm_each_other() -> None:
    wall = int(time.time() * 1000)
    srv = _server()
    _run(srv, [([q(f"e{i}", T0) for i in range(20)], wall),
               ([q("bad1", YEAR_3000)], wall),
               ([q("e1", T0 + 1000, -130)], wall),       # the feed goes on at its own time: cancels the jump
               ([q("e2", T0 + 500, -130)], wall),        # (older than data time: still cancels)
               ([q("bad2", YEAR_3000 + 1)], wall),
               ([q("e3", T0 + 2000, -130)], wall)])
    assert srv.metrics.keys_evicted == 0 and srv.engine.keys_held == 22
    assert srv._data_ms == T0 + 2000
