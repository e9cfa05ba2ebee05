"""Issue 14: ``batch.detect_counted(accel="fast")`` (the compiled detection, then the compiled routing
of :mod:`dropengine.fast.signals`) gives exactly the stream engine's alerts and counters for every
``types``, cooldown and steam option, on streams made for steam: several books moving the same
outcomes the same way within seconds to minutes (price drops and line moves of one outcome,
lines that move to new price keys, suspensions). (tests/strategies.py's signal streams are
test_h14_kernel_equivalence's.) A spy checks that the compiled routing ran wherever a cooldown or
steam can change the result (tests/test_h23_sig16_plain.py: none where neither can)."""

from __future__ import annotations

from typing import Any, Final

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.options import DetectOptions
from dropengine.fast import signals

from .conftest import require_fast
from .test_h12_batch_equivalence import frame_of

_ENC = msgspec.json.Encoder()
_SETTINGS = settings(max_examples=30, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
T0: Final = 1_747_000_000_000
BOOKS: Final = ("pinnacle", "draftkings", "fanduel", "betmgm", "caesars")
#: outcome -> (market_key, a line of the outcome's sides, or None)
OUTCOMES: Final = {"h2h_home": ("h2h", None), "spread_home": ("spreads", -3.0), "total_over": ("totals", 41.5)}


@st.composite
def steam_streams(draw: st.DrawFn) -> list[Quote]:
    """Books moving together: each quote moves its book's price (and sometimes line) of an
    outcome, mostly the way the outcome trends, a few seconds to minutes after the last."""
    books = BOOKS[:draw(st.integers(2, len(BOOKS)))]
    events = ("ev1", "ev2")[:draw(st.integers(1, 2))]
    trend = {o: draw(st.sampled_from((-1, 1))) for o in OUTCOMES}
    price: dict[tuple[str, str, str], int] = {}
    line: dict[tuple[str, str, str], float] = {}
    step = st.tuples(
        st.sampled_from((0, 1, 1000, 15_000, 60_000, 299_999, 300_000)), st.sampled_from(events),
        st.sampled_from(books), st.sampled_from(tuple(OUTCOMES)), st.sampled_from((5, 10, 15, 20, 30)),
        st.integers(0, 9),
    )
    t = T0
    out: list[Quote] = []
    for _ in range(draw(st.integers(1, 60))):
        dt, event, book, outcome, cents, roll = draw(step)
        t += dt
        key = (event, book, outcome)
        market, base = OUTCOMES[outcome]
        sign = trend[outcome] if roll < 8 else -trend[outcome]
        last = price.get(key, -110)
        new = last + sign * cents
        if -100 < new < 100:  # through even money: -105 - 10 cents is +105
            new = new - 200 if sign < 0 else new + 200
        side = outcome
        if base is not None:
            at = line.get(key, base)
            if roll == 9:  # the book moves its line half a point (a new price key)
                at += 0.5 * sign
                line[key] = at
            side = f"{outcome}@{at:g}"
        if roll == 0 and out:
            out.append(Quote("americanfootball_nfl", event, book, side, None, t, market_key=market))
            continue
        price[key] = new
        out.append(Quote("americanfootball_nfl", event, book, side, new, t, market_key=market))
    return out


@st.composite
def steam_options(draw: st.DrawFn) -> dict[str, Any]:
    """Every types set, cooldown and steam setting, sometimes a filter."""
    opts: dict[str, Any] = {
        "threshold": draw(st.sampled_from((5, 10, 15))),
        "reference": draw(st.sampled_from(("last", "anchor"))),
        "types": ",".join(draw(st.sets(st.sampled_from(("odds_drop", "line_move", "steam")), min_size=1))),
        "steam_books": draw(st.integers(1, 4)),
        "steam_window_ms": draw(st.sampled_from((0, 1000, 60_000, 300_000))),
        "cooldown_ms": draw(st.sampled_from((0, 0, 1000, 60_000, 300_000))),
    }
    if draw(st.booleans()):
        opts["steam_threshold"] = opts["threshold"] * 2
    if draw(st.booleans()):
        opts["steam_line_threshold"] = 1
    if draw(st.booleans()):
        opts["steam_groups"] = "draftkings+fanduel"
    extra = draw(st.sampled_from(({}, {}, {"bookmakers": "pinnacle,betmgm"}, {"direction": "toward_favorite"},
                                  {"event_id": "ev1"}, {"markets": "spreads"})))
    return {**opts, **extra}


def same(quotes: list[Quote], opts: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """DropEngine == detect_counted(accel="fast"): alerts byte for byte, rows, every counter."""
    calls: list[int] = []
    real = signals.route

    def spy(moves: signals.MoveArrays, options: DetectOptions, **kw: Any) -> signals.Routed:
        calls.append(moves.last_update.shape[0])
        return real(moves, options, **kw)

    monkeypatch.setattr(signals, "route", spy)
    eng = DropEngine(**opts)
    want = eng.observe_many(quotes)
    res = detect_counted(frame_of(quotes), accel="fast", **opts)
    assert [_ENC.encode(a) for a in res.alert_values()] == [_ENC.encode(a) for a in want]
    assert res.counters == eng.counters
    routes = eng.options.signals and (eng.options.cooldown_ms > 0 or "steam" in eng.options.types)
    assert len(calls) == (1 if routes else 0)  # the compiled routing ran (once) where it can change anything


@_SETTINGS
@given(steam_streams(), steam_options())
def test_fast_batch_is_the_engine_on_steam_streams(quotes: list[Quote], opts: dict[str, Any]) -> None:
    require_fast()
    with pytest.MonkeyPatch.context() as mp:
        same(quotes, opts, mp)


def test_the_steam_streams_do_make_steam(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator is good for its purpose: a stream of it fires steams and cooldowns."""
    require_fast()
    quotes = _by_hand()
    opts: dict[str, Any] = {"types": "odds_drop,line_move,steam", "cooldown_ms": 60_000, "steam_books": 2}
    eng = DropEngine(**opts)
    eng.observe_many(quotes)
    assert eng.counters.steam > 0 and eng.counters.cooled > 0
    same(quotes, opts, monkeypatch)


def _by_hand() -> list[Quote]:
    """Three books shortening the home side within a minute, twice (a cooldown in between)."""
    out = []
    for k, book in enumerate(("pinnacle", "draftkings", "fanduel")):
        for j, p in enumerate((-110, -120, -130)):
            out.append(Quote("americanfootball_nfl", "ev1", book, "h2h_home", p, T0 + 20_000 * j + k * 1000,
                             market_key="h2h"))
    return sorted(out, key=lambda q: q.last_update)
