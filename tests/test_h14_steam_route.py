"""Issue 14: the compiled routing of detected moves (:mod:`dropengine.fast.signals`, SPEC 11 steam
and SPEC 12 cooldown) is :class:`~dropengine.core.steam.SignalRouter` with its
:class:`~dropengine.core.steam.Cooldown` and :class:`~dropengine.core.steam.SteamTracker`:

- on adversarial move sequences built here (many books on a few groups, equal timestamps,
  times exactly at the window's and the cooldown's edges, a book's newer move older in data time,
  a book named like a book group's unit, every steam option and filter predicate);
- on the moves the stream engine itself routes for tests/strategies.py's streams (a recording
  router in the engine's place), where the engine's own returned alerts are the expectation.

The returned alerts (byte for byte), their order, and the ``cooled`` and ``steam`` counters are
compared. The pass's source is also run interpreted (no numba) on the same sequences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core.alerts import SIGNALS, Alert, Drop, LineMove, Steam
from dropengine.core.filters import AlertFilter
from dropengine.core.options import DetectOptions
from dropengine.core.rules import line_direction, threshold_floor
from dropengine.core.steam import Cooldown, SignalRouter, SteamTracker
from dropengine.fast import signals

from .conftest import require_fast
from .strategies import signal_options, signal_streams_with_options

_ENC = msgspec.json.Encoder()
_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: "draftkings+pinnacle" is a book whose own name is the unit name of the group pinnacle+draftkings
BOOKS: Final = ("pinnacle", "draftkings", "fanduel", "draftkings+pinnacle", "betmgm", "caesars", "bet365")
EVENTS: Final = ("e1", "e2")
T0: Final = 1_747_000_000_000
#: price sides (their outcome) and line sides: spread_home is one outcome for both kinds of move
PRICE_SIDES: Final = ("h2h_home", "spread_home@-3", "spread_home@-3.5", "total_over@41.5")
LINE_SIDES: Final = ("spread_home", "total_over")
#: price deltas around the steam thresholds drawn (10, 20), exactly at their floors too
DELTAS: Final = (-40, -20.5, -20, -threshold_floor(20), -19.99999, -10, -threshold_floor(10), -5,
                 5, threshold_floor(10), 10, 19.99999, threshold_floor(20), 20, 20.5, 40)
POINTS: Final = (-1.5, -1, -threshold_floor(1), -0.5, -threshold_floor(0.5), -0.25,
                 0.25, threshold_floor(0.5), 0.5, threshold_floor(1), 1, 1.5)


def wire(alerts: list[Alert]) -> list[bytes]:
    return [_ENC.encode(a) for a in alerts]


def by_router(moves: Sequence[Drop | LineMove], options: DetectOptions) -> tuple[list[Alert], int, int]:
    """The stream engine's routing of ``moves``: returned alerts, cooled, steams."""
    router = SignalRouter(options, Cooldown(options.cooldown_ms),
                          SteamTracker(options.steam_books, options.steam_window_ms, options.steam_groups))
    out: list[Alert] = []
    for m in moves:
        router.route(m, out)
    return out, router.cooled, router.steams


def by_pass(moves: Sequence[Drop | LineMove], options: DetectOptions, *, compiled: bool = True) -> tuple[
    list[Alert], int, int
]:
    """The same through :mod:`dropengine.fast.signals`: arrays, the pass, then the values."""
    arrays, passes = signals.move_arrays(moves, options)
    routed = signals.route(arrays, options, compiled=compiled)
    steams, ok = signals.steam_alerts(routed, moves.__getitem__, options.filter)
    at, which = signals.alert_order(routed.returned(passes), routed.fire_move, ok)
    out: list[Alert] = [moves[a] if s < 0 else steams[s] for a, s in zip(at.tolist(), which.tolist(), strict=True)]
    return out, routed.cooled, routed.steams


@st.composite
def options_st(draw: st.DrawFn) -> DetectOptions:
    """Every steam and cooldown option, and every filter predicate a move or a steam can meet."""
    window = draw(st.sampled_from((0, 1, 1000, 60_000, 300_000)))
    flt: dict[str, Any] = {}
    for name, values in (
        ("direction", ("toward_favorite", "toward_dog")),
        ("bookmakers", (frozenset({"fanduel"}), frozenset({"pinnacle", "caesars"}),
                        frozenset({"draftkings+pinnacle"}))),
        ("event_ids", (frozenset({"e1"}),)),
        ("markets", (frozenset({"spreads"}),)),
        ("kinds", (frozenset({"game"}),)),
        ("types", (frozenset({"steam"}), frozenset({"odds_drop", "line_move"}))),
        ("threshold", (20,)),
        ("line_threshold", (1,)),
        ("since", (T0 + 1000,)),
    ):
        if draw(st.integers(0, 5)) == 0:
            flt[name] = draw(st.sampled_from(values))
    return DetectOptions(
        threshold=5,
        line_threshold=0.25,
        filter=AlertFilter(**flt),
        types=frozenset(draw(st.sets(st.sampled_from(SIGNALS), min_size=1))
                        | (set(SIGNALS[2:]) if draw(st.booleans()) else set())),
        steam_books=draw(st.sampled_from((1, 2, 2, 3, 3, 3, 4, 5))),
        steam_window_ms=window,
        steam_threshold=draw(st.sampled_from((None, None, 10, 20))),
        steam_line_threshold=draw(st.sampled_from((None, None, 0.5, 1))),
        steam_groups=draw(st.sampled_from(((), (frozenset({"pinnacle", "draftkings"}),),
                                           (frozenset({"pinnacle", "draftkings", "fanduel"}),
                                            frozenset({"betmgm", "caesars"}))))),
        cooldown_ms=draw(st.sampled_from((0, 0, 1, 1000, window, 60_000))),
    )


@st.composite
def moves_st(draw: st.DrawFn, options: DetectOptions) -> list[Drop | LineMove]:
    """Moves in arrival order over a small universe (1-2 events, a few sides, 1-7 books): a clock
    that steps by 0, 1, the window or the cooldown exactly (and one off), backwards sometimes
    (a book's newer move may be older in data time: different keys of one outcome are
    stale-checked apart); a third of the moves follow up the previous move's key (cooldown edges)."""
    w, cd = options.steam_window_ms, options.cooldown_ms
    steps = (0, 0, 1, -1, w, w, w // 2, w - 1, w + 1, -w, cd, cd - 1, cd + 1, 250, 30_000, -5000)
    n = draw(st.integers(0, 40))
    # pinnacle, draftkings (a steam group) first; mostly enough books for a steam
    books = BOOKS[:draw(st.integers(1 if draw(st.integers(0, 4)) == 0 else min(options.steam_books, 6), len(BOOKS)))]
    events = draw(st.lists(st.sampled_from(EVENTS), min_size=1, max_size=2, unique=True))
    price_sides = draw(st.lists(st.sampled_from(PRICE_SIDES), min_size=1, max_size=4, unique=True))
    line_sides = draw(st.lists(st.sampled_from(LINE_SIDES), min_size=1, max_size=2, unique=True))
    # books moving one way (steam), or both ways
    signs = draw(st.sampled_from(((-1,), (1,), (-1, -1, -1, 1), (-1, -1, -1, 1), (-1, 1))))
    # one strategy per example for every move (built once: hypothesis validates each strategy)
    move = st.tuples(
        st.sampled_from(steps), st.integers(0, 2), st.sampled_from(events), st.sampled_from(books), st.booleans(),
        st.sampled_from(price_sides), st.sampled_from(line_sides), st.sampled_from((0, 0, 1000, 2000)),
        st.sampled_from((0, 1000)), st.sampled_from(DELTAS), st.sampled_from(POINTS), st.sampled_from(signs),
    )
    t = T0
    out: list[Drop | LineMove] = []
    for _ in range(n):
        step, follow, event, book, is_price, price_side, line_side, later, elapsed, delta, points, sign = draw(move)
        t = max(T0 - 400_000, t + step)
        if out and follow == 0:
            last = out[-1]
            event, book, is_price, side = last.event_id, last.bookmaker, isinstance(last, Drop), last.side
        else:
            side = price_side if is_price else line_side
        stamp = t + later
        market = "h2h" if side.startswith("h2h") else "spreads" if side.startswith("spread") else "totals"
        if is_price:
            delta = abs(delta) * sign
            out.append(Drop("americanfootball_nfl", event, book, side, "game", market, -110, -110 + delta, delta,
                            "toward_favorite" if delta < 0 else "toward_dog", t, stamp, elapsed,
                            home_team="Home", away_team="Away"))
        else:
            points = abs(points) * sign
            if side.startswith("total_over"):  # the over moves up toward the favorite: keep one trend
                points = -points
            direction = line_direction(side, points)
            assert direction is not None
            out.append(LineMove("americanfootball_nfl", event, book, side, "game", market, -3, -3 + points, points,
                                -110, None, direction, (), t, stamp, elapsed))
    return out


def _same(moves: Sequence[Drop | LineMove], options: DetectOptions, *, compiled: bool) -> None:
    want, cooled, steams = by_router(moves, options)
    got, got_cooled, got_steams = by_pass(moves, options, compiled=compiled)
    assert wire(got) == wire(want)
    assert (got_cooled, got_steams) == (cooled, steams)


@_SETTINGS
@given(st.data())
def test_pass_is_the_router_on_adversarial_moves(data: st.DataObject) -> None:
    require_fast()
    options = data.draw(options_st())
    _same(data.draw(moves_st(options)), options, compiled=True)


@settings(_SETTINGS, max_examples=40)
@given(st.data())
def test_interpreted_source_is_the_router(data: st.DataObject) -> None:
    """The pass's plain Python source (what numba compiles) gives the same, without numba."""
    options = data.draw(options_st())
    _same(data.draw(moves_st(options)), options, compiled=False)


class _Recording:
    """Stands in for the engine's SignalRouter: records every move routed, routes it on."""

    def __init__(self, inner: SignalRouter) -> None:
        self.inner = inner
        self.moves: list[Drop | LineMove] = []

    @property
    def cooled(self) -> int:
        return self.inner.cooled

    @property
    def steams(self) -> int:
        return self.inner.steams

    def route(self, move: Drop | LineMove, out: list[Alert]) -> tuple[int, int]:
        self.moves.append(move)
        return self.inner.route(move, out)


def engine_moves(quotes: list[Quote], opts: dict[str, Any]) -> tuple[list[Drop | LineMove], list[Alert], DetectOptions]:
    """The moves DropEngine routes for ``quotes`` (in its order), and what it returned."""
    eng = DropEngine(**opts)
    rec = _Recording(eng._router)
    eng._router = rec  # type: ignore[assignment]  # duck-typed: route, cooled, steams
    returned = eng.observe_many(quotes)
    assert (eng.counters.cooled, eng.counters.steam) == (rec.cooled, rec.steams)
    return rec.moves, returned, eng.options


@settings(_SETTINGS, max_examples=30)
@given(signal_streams_with_options(signal_options()))
def test_pass_is_the_engine_on_its_own_moves(case: tuple[list[Quote], dict[str, Any]]) -> None:
    """Every signal option of tests/strategies.py: the pass over the moves the engine routed
    returns what the engine returned, with its counters."""
    require_fast()
    quotes, opts = case
    moves, returned, options = engine_moves(quotes, opts)
    if not options.signals:
        assert moves == []  # the engine's plain price loop: no routing at all
        return
    got, cooled, steams = by_pass(moves, options)
    assert wire(got) == wire(returned)
    eng_counters = DropEngine(**opts)
    eng_counters.observe_many(quotes)
    assert (cooled, steams) == (eng_counters.counters.cooled, eng_counters.counters.steam)


def _move(book: str, t: int, delta: float = -10, side: str = "h2h_home", event: str = "e1") -> Drop:
    return Drop("basketball_nba", event, book, side, "game", "h2h", -110, -110 + delta, delta,
                "toward_favorite" if delta < 0 else "toward_dog", t, t, 0)


@pytest.mark.parametrize("compiled", [True, False])
def test_window_edges_and_group_cooldown_by_hand(compiled: bool) -> None:
    """Three books, window 1000: a book at exactly T - window is inside, one ms more is out; the
    group then stays quiet until T reaches F + window; a book's newer but older move lowers T."""
    if compiled:
        require_fast()
    options = DetectOptions(threshold=5, types=frozenset({"steam"}), steam_books=3, steam_window_ms=1000)
    moves = [
        _move("a", T0), _move("b", T0 + 500), _move("c", T0 + 1000),  # a at T - 1000: fires at T0+1000
        _move("a", T0 + 1500),   # T = T0 + 1500 < F + 1000: the group's cooldown
        _move("c", T0 + 2001),   # T = T0 + 2001 >= F + 1000, but b (T0+500) is out: a, c only
        _move("b", T0 + 1001),   # b back in at exactly T - window: fires, b first
        _move("d", T0 + 900),    # a 4th book: the group's cooldown (T = T0 + 2001 < F + 1000)
        _move("c", T0 + 100),    # c's newer move is older in data time: T is taken again (a's)
    ]
    want, cooled, steams = by_router(moves, options)
    got, got_cooled, got_steams = by_pass(moves, options, compiled=compiled)
    assert wire(got) == wire(want)
    assert steams == got_steams == 2 and cooled == got_cooled == 0
    assert [[b.bookmaker for b in s.books] for s in got] == [["a", "b", "c"], ["b", "a", "c"]]  # type: ignore[union-attr]


@pytest.mark.parametrize("compiled", [True, False])
def test_the_group_cooldown_runs_from_t_not_from_the_completing_move(compiled: bool) -> None:
    """b completes a steam with T = a's time (newer than b's own): the next window opens at
    T + window, so c one window after b but before T + window does not fire; d at T + window does."""
    if compiled:
        require_fast()
    options = DetectOptions(threshold=5, types=frozenset({"steam"}), steam_books=2, steam_window_ms=1000)
    moves = [_move("a", T0 + 1000), _move("b", T0), _move("c", T0 + 1100), _move("d", T0 + 2000)]
    want = by_router(moves, options)
    assert [s.last_update - T0 for s in want[0]] == [1000, 2000]
    got = by_pass(moves, options, compiled=compiled)
    assert wire(got[0]) == wire(want[0]) and got[1:] == want[1:]


@pytest.mark.parametrize("compiled", [True, False])
def test_cooldown_runs_from_the_last_alert_it_let_out(compiled: bool) -> None:
    """Cooldown 1000 ms: 0 out, 600 suppressed (not restarting it), 1000 out (exactly the
    cooldown later), 1999 suppressed, 2000 out; a line series with the same names is its own key;
    suppressed moves still count for steam."""
    if compiled:
        require_fast()
    options = DetectOptions(threshold=5, types=frozenset({"odds_drop", "line_move", "steam"}), steam_books=2,
                            cooldown_ms=1000)
    line = LineMove("basketball_nba", "e1", "a", "h2h_home", "game", "h2h", -3, -3.5, -0.5, None, None,
                    "toward_favorite", (), T0 + 600, T0 + 600, 0)
    moves: list[Drop | LineMove] = [_move("a", T0 + t) for t in (0, 600, 1000, 1999, 2000)]
    moves.insert(2, line)
    moves.insert(3, _move("b", T0 + 700))
    want = by_router(moves, options)
    returned = [(a.type, a.last_update - T0) for a in want[0] if not isinstance(a, Steam)]
    assert returned == [("odds_drop", 0), ("line_move", 600), ("odds_drop", 700), ("odds_drop", 1000),
                        ("odds_drop", 2000)]
    assert want[1:] == (2, 1)
    got = by_pass(moves, options, compiled=compiled)
    assert wire(got[0]) == wire(want[0]) and got[1:] == want[1:]


@pytest.mark.parametrize("compiled", [True, False])
def test_a_book_named_like_a_group_is_that_group(compiled: bool) -> None:
    """SteamTracker's unit of a grouped book is the group's name, "draftkings+pinnacle": a book
    of that very name counts as the group (two units here, not three: no steam)."""
    if compiled:
        require_fast()
    groups = (frozenset({"pinnacle", "draftkings"}),)
    options = DetectOptions(threshold=5, types=frozenset({"steam"}), steam_books=3, steam_groups=groups)
    moves = [_move("pinnacle", T0), _move("draftkings+pinnacle", T0 + 1), _move("fanduel", T0 + 2)]
    assert by_pass(moves, options, compiled=compiled) == by_router(moves, options) == ([], 0, 0)
    moves.append(_move("betmgm", T0 + 3))
    got = by_pass(moves, options, compiled=compiled)
    assert wire(got[0]) == wire(by_router(moves, options)[0]) and got[2] == 1


@pytest.mark.parametrize("compiled", [True, False])
def test_arrival_order_puts_a_rows_price_move_first(compiled: bool) -> None:
    if compiled:
        require_fast()
    order = signals.arrival_order(np.array([0, 3, 5], np.int64), np.array([3, 4, 5, 9], np.int64), compiled=compiled)
    assert order.tolist() == [0, 1, 3, 4, 2, 5, 6]


@given(st.lists(st.integers(0, 20), max_size=30), st.lists(st.integers(0, 20), max_size=30))
def test_arrival_order_is_a_stable_sort_of_the_rows(a: list[int], b: list[int]) -> None:
    """A linear merge of two ascending lists: the stable sort of their concatenation."""
    rows = np.array(sorted(a) + sorted(b), dtype=np.int64)
    want = np.argsort(rows, kind="stable").tolist()
    assert signals.arrival_order(rows[:len(a)], rows[len(a):], compiled=False).tolist() == want
