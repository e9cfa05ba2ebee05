"""Issue 14 (session 21, kernel21): the routing's slots and the move columns it does not read.

``signals.route`` keeps each book's latest counted move in its (group, book) pair's slot. While the
pairs' range is small beside the moves, every group has a slot per book (``group * n_books + book``,
computed in the pass: no slots pass, no per-move slot array); else the slots pass gives each counted
move its slot, by the pair's product or by pair ids hashed dense. All three layouts, compiled and
interpreted, route the adversarial moves of steam14's test exactly as
:class:`~dropengine.core.steam.SignalRouter` (alerts byte for byte, in order, and the counters), and
each layout is the one taken (the slots pass called or not).

``signals.moves_in_order(..., options=...)`` leaves the columns the routing does not read with those
options empty (``is_line``/``size`` without a steam threshold, ``cool_key`` without a cooldown) and
writes every other column as the full call does; ``route`` takes those columns empty exactly where
its options do not read them and routes as with them, and refuses them empty (a ConfigError naming
the column) where it reads them.
"""

from __future__ import annotations

import contextlib
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

#: how each layout is forced: the constants patched (small inputs take the per-book slots)
_LAYOUTS = {"by_book": {}, "product": {"_DENSE_SLOTS": 0}, "hashed": {"_PAIR_TABLE": 0}}
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


def _layout_same(data: st.DataObject, layout: str, compiled: bool) -> None:
    options = data.draw(options_st())
    moves = data.draw(moves_st(options))
    want, cooled, steams = by_router(moves, options)
    key = "slots"
    real = signals._JIT[key] if compiled else signals._book_slots_py
    calls: list[int] = []

    def spy(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    with contextlib.ExitStack() as patched:
        for name, value in _LAYOUTS[layout].items():
            patched.enter_context(mock.patch.object(signals, name, value))
        if compiled:
            with mock.patch.dict(signals._JIT, {key: spy}):
                got = _routed_alerts(moves, options, compiled=True)
        else:
            with mock.patch.object(signals, "_book_slots_py", spy):
                got = _routed_alerts(moves, options, compiled=False)
    assert got == (wire(want), cooled, steams)
    # the layout asked for is the one taken: the slots pass runs for the slot-array layouts alone
    routes_steam = "steam" in options.types
    assert bool(calls) == (routes_steam and layout != "by_book")


@_SETTINGS
@given(st.data(), st.sampled_from(sorted(_LAYOUTS)))
def test_every_slot_layout_routes_as_the_router(data: st.DataObject, layout: str) -> None:
    require_fast()
    signals._compiled()
    _layout_same(data, layout, compiled=True)


@settings(_SETTINGS, max_examples=30)
@given(st.data(), st.sampled_from(sorted(_LAYOUTS)))
def test_every_slot_layout_interpreted(data: st.DataObject, layout: str) -> None:
    _layout_same(data, layout, compiled=False)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
@settings(_SETTINGS, max_examples=40)
@given(data=st.data())
def test_unread_columns_may_be_empty(data: st.DataObject, compiled: bool) -> None:
    """Empty where unread: the same routing as with them; empty where read: a ConfigError."""
    if compiled:
        require_fast()
    options = data.draw(options_st())
    moves = data.draw(moves_st(options))
    full = _routed_alerts(moves, options, compiled=compiled)
    assert _routed_alerts(moves, options, compiled=compiled, unread_empty=True) == full
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
    assert signals._unread(DetectOptions(types=frozenset(("line_move",)), steam_threshold=10,
                                         cooldown_ms=5)) == ("is_line", "size")


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
def test_moves_in_order_leaves_out_what_the_routing_does_not_read(args: tuple[Any, ...], options: DetectOptions,
                                                                  compiled: bool) -> None:
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
