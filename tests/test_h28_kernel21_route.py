"""Issue 14 (session 21, kernel21): the move columns the routing does not read, and narrow members.

``signals.moves_in_order(..., options=...)`` leaves the columns the routing does not read with those
options empty (``is_line``/``size`` without a steam threshold, ``cool_key`` without a cooldown) and
writes every other column as the full call does; ``route`` takes those columns empty exactly where
its options do not read them and routes as with them (alerts byte for byte and the counters, as
:class:`~dropengine.core.steam.SignalRouter`), and refuses them empty (a ConfigError naming the
column) where it reads them. The steams' members (move indices) are int32 while every move's index
fits, the same indices as int64 ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.core.alerts import Signal
from dropengine.core.errors import ConfigError
from dropengine.core.options import DetectOptions
from dropengine.fast import signals

from .conftest import require_fast
from .test_h14_steam_route import _SETTINGS, by_router, moves_st, options_st, wire
from .test_h27_kernel20_narrow import _moves

# the interpreted passes hash with uint64 products that wrap on purpose (splitmix64: signals._dense_ids_py)
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in scalar multiply:RuntimeWarning")

_STEAM: frozenset[Signal] = frozenset(("steam",))


def _routed_alerts(moves: Any, options: Any, *, compiled: bool, unread_empty: bool = False) -> tuple[Any, ...]:
    """The alerts, cooled and steams of ``moves`` by the pass (as test_h14's by_pass); with
    ``unread_empty`` the columns the options leave unread handed over empty."""
    arrays, passes = signals.move_arrays(moves, options)
    if unread_empty:
        arrays = replace(arrays, **{name: getattr(arrays, name)[:0] for name in signals._unread(options)})
    routed = signals.route(arrays, options, compiled=compiled)
    steams, ok = signals.steam_alerts(routed, moves.__getitem__, options.filter)
    at, which = signals.alert_order(routed.returned(passes), routed.fire_move, ok)
    out = [moves[a] if s < 0 else steams[s] for a, s in zip(at.tolist(), which.tolist(), strict=True)]
    return wire(out), routed.cooled, routed.steams


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
@settings(_SETTINGS, max_examples=40)
@given(data=st.data())
def test_unread_columns_may_be_empty(data: st.DataObject, compiled: bool) -> None:
    """Empty where unread: the same routing as with them; empty where read: a ConfigError."""
    if compiled:
        require_fast()
    options = data.draw(options_st())
    moves = data.draw(moves_st(options))
    want, cooled, steams = by_router(moves, options)
    assert _routed_alerts(moves, options, compiled=compiled) == (wire(want), cooled, steams)
    assert _routed_alerts(moves, options, compiled=compiled, unread_empty=True) == (wire(want), cooled, steams)
    arrays, _ = signals.move_arrays(moves, options)
    unread = signals._unread(options)
    if not moves:
        return
    for name in ("is_line", "size", "cool_key", "group", "book"):
        if name in unread:
            continue
        with pytest.raises(ConfigError, match=f"{name}: 0 entries"):
            signals.route(replace(arrays, **{name: getattr(arrays, name)[:0]}), options, compiled=compiled)


def test_unread_columns_by_options() -> None:
    """What route reads: the sizes with a steam threshold (when it routes steam), the cooldown keys
    with a cooldown."""
    steam = _STEAM
    assert signals._unread(DetectOptions(types=steam)) == ("is_line", "size", "cool_key")
    assert signals._unread(DetectOptions(types=steam, steam_threshold=10)) == ("cool_key",)
    assert signals._unread(DetectOptions(types=steam, steam_line_threshold=1, cooldown_ms=5)) == ()
    # without steam no size is read, whatever the thresholds
    assert signals._unread(DetectOptions(types=frozenset(("line_move",)), steam_threshold=10, cooldown_ms=5)) == (
        "is_line",
        "size",
    )


#: routing options that read every column, the sizes alone, the cooldown keys alone, or neither
_READING = (
    DetectOptions(types=_STEAM, steam_threshold=10, cooldown_ms=5),
    DetectOptions(types=_STEAM, steam_line_threshold=1),
    DetectOptions(types=frozenset(("line_move", "steam")), cooldown_ms=60_000),
    DetectOptions(types=_STEAM),
)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
@settings(max_examples=60, deadline=None)
@given(args=_moves(), options=st.sampled_from(_READING))
def test_moves_in_order_leaves_out_what_the_routing_does_not_read(
    args: tuple[Any, ...], options: DetectOptions, compiled: bool
) -> None:
    """Given the routing's options, every column it reads is the full call's (values and type), one
    it does not read is empty; without cooldown keys the rows' key and series ids are not read."""
    require_fast()
    drop_rows, line_rows = args[0], args[1]
    order = signals.arrival_order(drop_rows, line_rows, compiled=compiled)
    full = signals.moves_in_order(order, *args, compiled=compiled)
    unread = signals._unread(options)
    given_args = list(args)
    if "cool_key" in unread:
        given_args[11] = given_args[13] = np.zeros(0, np.int32)  # (kid and lid: not read)
    got = signals.moves_in_order(order, *given_args, compiled=compiled, options=options)
    names = ("rows", "is_line", "size", "group", "cool_key", "last_update", "book")
    for name, a, b in zip(names, got, full, strict=True):
        if name in unread:
            assert a.shape == (0,), name
            continue
        assert a.tolist() == b.tolist(), name
        # (a group's type is decided by the groups alone when no cooldown key is written)
        if name != "group" or "cool_key" not in unread:
            assert a.dtype == b.dtype, name


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
@settings(_SETTINGS, max_examples=30)
@given(data=st.data())
def test_members_are_int32_where_every_move_index_fits(data: st.DataObject, compiled: bool) -> None:
    """The steams' members (move indices) come out int32 (the routing's moves are fewer than int32's
    largest here), the same indices as the pass writes with int64 ones (its ``kind`` argument: moves
    past int32, which no test can hold in memory)."""
    if compiled:
        require_fast()
    options = data.draw(options_st())
    moves = data.draw(moves_st(options))
    arrays, _ = signals.move_arrays(moves, options)
    routed = signals.route(arrays, options, compiled=compiled)
    assert routed.members.dtype == np.int32
    # the same call with int64 members (the pass's arguments as route passes them, spied)
    seen: list[tuple[Any, ...]] = []
    real: Callable[..., Any] = signals._JIT["route"] if compiled else signals._route_py

    def spy(*args: Any) -> Any:
        seen.append(args)
        return real(*args)

    if compiled:
        with mock.patch.dict(signals._JIT, {"route": spy}):
            signals.route(arrays, options, compiled=True)
    else:
        with mock.patch.object(signals, "_route_py", spy):
            signals.route(arrays, options, compiled=False)
    (args,) = seen
    wide = real(*args[:-1], np.zeros(0, np.int64))
    assert wide[5].dtype == np.int64
    assert wide[5].tolist() == routed.members.tolist()
    assert [w.tolist() for w in wide[2:5]] == [
        routed.fire_move.tolist(),
        routed.fire_t.tolist(),
        routed.member_start.tolist(),
    ]
