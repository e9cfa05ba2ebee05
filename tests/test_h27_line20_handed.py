"""Issue 14 (session 20, line20): without routing (no cooldown, no steam) the compiled signals path
writes the line moves' numbers (``batch._line_numbers``) in the caller while the line moves' table is
begun in a thread (its text gathered), which takes the numbers when it needs them (``batch._Once``:
made once, by whichever asks first; run inline, the table's work makes them itself).

The alerts table, the values, the counters and the alerts' rows are the pure path's: on adversarial
signal streams (hypothesis), with the table's work in a thread and run inline; and a stream of two
sports' line moves with key numbers checks that the numbers are made once.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import Quote
from dropengine.analysis import batch

from .conftest import require_fast
from .test_h12_batch_equivalence import EVENTS, LADDERS, frame_of, side_of, signal_options, signal_streams


def _inline(work: Any) -> Any:
    """``batch._in_thread`` as it runs where no thread helps (the work at once, in the caller)."""
    result = work()
    return lambda: result


def _same_as_pure(frame: Any, opts: dict[str, Any], inline: bool) -> int:
    """The fast path (its threads' work inline or not) against the pure path; how often the line
    moves' numbers were made."""
    pure = batch.detect_counted(frame, accel="pure", **opts)
    made: list[int] = []
    numbers = batch._line_numbers

    def spy(fired: Any) -> Any:
        made.append(fired.height)
        return numbers(fired)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "_line_numbers", spy)
        if inline:
            mp.setattr(batch, "_in_thread", _inline)
        fast = batch.detect_counted(frame, accel="fast", **opts)
    assert fast.counters == pure.counters
    assert_frame_equal(fast.alerts, pure.alerts, check_exact=True)
    assert fast.alert_values() == pure.alert_values()
    assert fast.rows is not None and pure.rows is not None
    assert fast.rows.to_list() == pure.rows.to_list()
    return len(made)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    signal_streams(),
    signal_options(),
    st.sampled_from(["line_move", "line_move", "odds_drop,line_move"]),
    st.booleans(),
)
def test_handed_numbers_give_the_pure_paths_alerts_values_and_counters(
    quotes: list[Quote], opts: dict[str, Any], types: str, inline: bool
) -> None:
    require_fast()
    # (no cooldown, no steam: the plain routing, where the numbers are handed to the table's thread)
    opts = {**opts, "types": types, "cooldown_ms": 0}
    assert _same_as_pure(frame_of(quotes), opts, inline) <= 1


@pytest.mark.parametrize("inline", [False, True])
def test_the_numbers_are_made_once(inline: bool) -> None:
    """Line moves of two sports, markets and sides through key numbers: the table is the pure path's
    and the numbers are made once, in a thread or inline (where the table's work asks first)."""
    require_fast()
    quotes = []
    t = 1_000
    for event, outcomes in (("nfl1", ("spread_home", "spread_away")), ("nba1", ("total_over", "total_under"))):
        sport, home, away, commence = EVENTS[event]
        for book in ("pinnacle", "fanduel", "betmgm"):
            for outcome in outcomes:
                ladder = LADDERS[outcome]
                for step in range(5):  # up and down the ladder: moves both ways, through key numbers
                    line = ladder[(0, 3, 1, 5, 2)[step] % len(ladder)]
                    quotes.append(
                        Quote(
                            sport,
                            event,
                            book,
                            side_of(outcome, line),
                            -110 - step,
                            t,
                            home_team=home,
                            away_team=away,
                            commence_time=commence,
                        )
                    )
                    t += 1_000
    frame = frame_of(quotes)
    key_numbers = "americanfootball_nfl:spreads=3,7,10;basketball_*:totals=220.5,221"
    opts = {"types": "line_move", "line_threshold": 0.5, "key_numbers": key_numbers}
    assert _same_as_pure(frame, opts, inline) == 1
