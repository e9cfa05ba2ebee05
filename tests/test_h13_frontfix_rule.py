"""What a ``serve --bus`` frontend may accept (``params.check_served``, review13 #1): a request
it accepts is served exactly; it never silently serves less than it accepted.

The property (hypothesis, pure, no server): detectors with drawn options (types, thresholds,
unit, reference, line threshold, direction and attribute filters; one or two partitions)
write the log; the single process (``serve --source``: every type at 1 cent and 0.25 points,
reference last) is the truth. For every drawn request that ``check_served`` accepts, the
request's filter over the log equals the request's filter over the single process's alerts,
partition by partition (price drops and line moves; steam is detected with the detectors'
own settings, echoed). Then one example per refusal: the 400 names the parameter and the
detectors' value.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core.alerts import SIGNALS
from dropengine.core.filters import AlertFilter
from dropengine.core.options import DetectOptions
from dropengine.core.partition import partition_of
from dropengine.server.params import ParamError, agreed_steam, check_served, parse_request, steam_echo

from .strategies import detect_options, quote_streams, signal_options

NOW = 1_747_000_000_500


@st.composite
def detectors(draw: st.DrawFn) -> list[DetectOptions]:
    """One or two partitions' detectors; usually alike (a deployment), sometimes not."""
    # mostly cents and the last price (prob and anchor refuse every threshold: covered, but rarer)
    kw: dict[str, Any] = {"cooldown": False, "reprime": (True,), "units": ("cents",) * 5 + ("prob",),
                          "references": ("last",) * 5 + ("anchor",),
                          "types": (frozenset(SIGNALS), frozenset({"odds_drop", "line_move"}),
                                    frozenset({"odds_drop"}), frozenset({"line_move", "steam"}))}
    first = draw(signal_options(**kw))
    out = [first]
    if draw(st.booleans()):
        out.append(first if draw(st.booleans()) else draw(signal_options(**kw)))
    return [DetectOptions.build(**o) for o in out]


THRESHOLDS = (1, 2, 5, 9, 10, 10, 11, 25)
LINE_THRESHOLDS = (0.25, 0.5, 0.5, 1, 1.5, 3.5)
_ATTRS = (("sports", "sports"), ("event_id", "event_ids"), ("bookmakers", "bookmakers"), ("markets", "markets"),
          ("kinds", "kinds"))


@st.composite
def requests(draw: st.DrawFn, dets: list[DetectOptions]) -> AlertFilter:
    """A connection's filter as ``parse_request`` builds it (SPEC 7's ranges): one in four
    drawn freely; the others fit the detectors (types they all hold, thresholds at or above
    theirs, their direction and attribute filter), three in four of those moved just outside
    them in one respect (a threshold just below, another direction, a type or a sport
    more), where a rule that let it through would show."""
    attrs = draw(detect_options(units=("cents",)))  # a direction and, sometimes, an attribute filter
    types = set(draw(st.sets(st.sampled_from(SIGNALS), min_size=1)))
    threshold, line = draw(st.sampled_from(THRESHOLDS)), draw(st.sampled_from(LINE_THRESHOLDS))
    if draw(st.integers(0, 3)):
        d = dets[0]
        held = sorted(set.intersection(*(set(o.types) for o in dets)))
        types = set(draw(st.lists(st.sampled_from(held), min_size=1, unique=True))) if held else types
        floor = max(o.threshold for o in dets)
        threshold = draw(st.sampled_from([t for t in THRESHOLDS if t >= floor] or [200]))
        line_floor = max(o.line_threshold for o in dets)
        line = draw(st.sampled_from([t for t in LINE_THRESHOLDS if t >= line_floor] or [20]))
        attrs = {k: v for k, v in attrs.items() if k not in dict(_ATTRS)}
        if d.filter.direction != "both":
            attrs["direction"] = d.filter.direction
        for name, field in _ATTRS:
            if getattr(d.filter, field) is not None:
                attrs[name] = getattr(d.filter, field)
        if draw(st.integers(0, 3)):  # just outside, in one respect
            way = draw(st.sampled_from(("threshold", "line", "direction", "types", "attrs")))
            if way == "threshold":
                threshold = max(1, math.ceil(floor) - 1)
                types.add("odds_drop")
            elif way == "line":
                line = max(0.25, line_floor - 0.25)
                types.add("line_move")
            elif way == "direction":
                attrs["direction"] = "both"
            elif way == "types":
                types = set(SIGNALS)
            else:
                for name, _ in _ATTRS:
                    attrs.pop(name, None)
    return AlertFilter.build(
        attrs["direction"], attrs.get("sports"), attrs.get("event_id"), attrs.get("bookmakers"),
        attrs.get("markets"), attrs.get("kinds"), threshold=threshold, types=types, line_threshold=line,
    )


def draw_focus(flt: AlertFilter) -> float | None:
    """Moves of exactly the request's threshold are common (where a wrong floor would show)."""
    return flt.threshold


def wire(alerts: list[Any]) -> list[Any]:
    return [a for a in alerts if a.type != "steam"]


@settings(max_examples=60, deadline=None)
@given(case=detectors().flatmap(lambda d: requests(d).flatmap(lambda f: st.tuples(
    st.just(d), st.just(f), quote_streams(lines=True, min_len=8, focus=draw_focus(f))))))
def test_an_accepted_request_is_served_exactly(case: tuple[list[DetectOptions], AlertFilter, list[Quote]]) -> None:
    dets, flt, quotes = case
    try:
        check_served(flt, dets)
    except ParamError as exc:
        event(f"refused: {exc.parameter}")
        assert exc.parameter in {"types", "threshold", "line_threshold", "direction", "sports", "event_id",
                                 "bookmakers", "markets", "kinds"}
        return
    event("accepted")
    parts = len(dets)
    for i, det in enumerate(dets):
        mine = [q for q in quotes if partition_of(q.event_id, parts) == i]
        single = DropEngine(options=DetectOptions.build(
            threshold=1, types=SIGNALS, line_threshold=0.25, key_numbers=det.key_numbers,
        )).observe_many(mine, now_ms=NOW)
        logged = DropEngine(options=det).observe_many(mine, now_ms=NOW)
        want = wire([a for a in single if flt.accepts(a)])
        event(f"want {min(len(want), 3)} single {min(len(single), 3)}")
        assert wire([a for a in logged if flt.accepts(a)]) == want, (det, flt)


def test_no_detector_recorded_accepts_everything() -> None:
    check_served(parse_request({"threshold": "1", "types": ",".join(SIGNALS), "line_threshold": "0.25"}).filter, [])


def refusal(query: dict[str, str], *dets: DetectOptions) -> ParamError:
    with pytest.raises(ParamError) as info:
        check_served(parse_request(query).filter, list(dets))
    return info.value


def test_a_threshold_below_the_detectors_is_refused_naming_their_value() -> None:
    """review13 #1's case: detectors at their defaults (10 cents); a client asking for 5 would
    get no 5-9 cent drops: refused, naming 10; 10 and above are served."""
    det = DetectOptions()
    quotes = [Quote("basketball_nba", "g", "pinnacle", "h2h_home", p, 1000 + i) for i, p in enumerate((-110, -117))]
    assert DropEngine(threshold=1).observe_many(quotes) and not DropEngine(options=det).observe_many(quotes)
    err = refusal({"threshold": "5"}, det, DetectOptions.build(threshold=7))
    assert err.parameter == "threshold" and "10" in err.message and err.accepted == "integer 10..200"
    check_served(parse_request({"threshold": "10"}).filter, [det])
    check_served(parse_request({"threshold": "5", "types": "line_move"}).filter,
                 [DetectOptions.build(types="odds_drop,line_move")])  # no price drops asked


def test_each_refusal_names_the_parameter_and_the_detectors_value() -> None:
    both = DetectOptions.build(types="odds_drop,line_move", line_threshold=1)
    err = refusal({"types": "odds_drop,steam"}, both)
    assert err.parameter == "types" and "steam" in err.message and "odds_drop, line_move" in err.message
    err = refusal({"types": "line_move"}, both, DetectOptions())  # one partition lacks it
    assert err.parameter == "types" and "line_move" in err.message
    err = refusal({"types": "line_move", "line_threshold": "0.5"}, both)
    assert err.parameter == "line_threshold" and "1 points" in err.message
    err = refusal({}, DetectOptions.build(unit="prob", threshold=2))
    assert err.parameter == "threshold" and "prob" in err.message
    err = refusal({"threshold": "10"}, DetectOptions.build(reference="anchor"))
    assert err.parameter == "threshold" and "anchor" in err.message
    err = refusal({"types": "line_move", "line_threshold": "5"},
                  DetectOptions.build(reference="anchor", types="line_move"))
    assert err.parameter == "line_threshold" and "anchor" in err.message
    err = refusal({}, DetectOptions.build(direction="toward_dog"))
    assert err.parameter == "direction" and "toward_dog" in err.message and err.accepted == "toward_dog"
    check_served(parse_request({"direction": "toward_dog"}).filter, [DetectOptions.build(direction="toward_dog")])
    err = refusal({}, DetectOptions.build(sports="basketball_nba"))
    assert err.parameter == "sports" and "basketball_nba" in err.message
    check_served(parse_request({}, sport="basketball_nba").filter, [DetectOptions.build(sports="basketball_nba")])


def test_steam_settings_are_echoed_only_when_every_detector_agrees() -> None:
    steam = DetectOptions.build(types="odds_drop,steam", steam_books=2)
    assert agreed_steam([steam, steam]) == steam_echo(steam) and steam_echo(steam)["books"] == 2
    assert steam_echo(steam)["threshold"] == 10 and steam_echo(steam)["line_threshold"] == 0.5
    assert agreed_steam([steam, DetectOptions.build(types="odds_drop,steam", steam_books=3)]) is None
    assert agreed_steam([DetectOptions()]) is None and agreed_steam([]) is None
    assert agreed_steam([steam, DetectOptions()]) == steam_echo(steam)  # (that one has no steam: refused by types)
