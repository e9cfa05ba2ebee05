"""Issue 12, lead: small pieces outside the helpers' files."""

from __future__ import annotations

from typing import Any

import pytest

from dropengine.core.alerts import SIGNALS
from dropengine.formats.jsonline import line_format


@pytest.mark.parametrize("kind", SIGNALS)
def test_every_alert_type_reads_as_alerts_not_frames(kind: str) -> None:
    # a saved stream of line moves or steam is dropengine's own output, not vendor frames
    assert line_format({"type": kind, "sport_key": "americanfootball_nfl"}) == ("alerts", True)


def test_vendor_envelopes_stay_frames() -> None:
    assert line_format({"type": "odds_update", "data": []}) == ("frames", True)


def test_backtest_terminal_writes_line_clv_in_points_not_percent() -> None:
    # review finding 3: 0.152 points of line CLV printed as "+15.20%"
    from dropengine.cli.backtest import _cell

    assert _cell(0.152, "mean_line_clv") == "+0.15"
    assert _cell(0.152, "mean_clv") == "+15.20%"


# -- DropEngine.with_options: a restart with other settings keeps what did not change ----------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dropengine import DetectOptions, DropEngine, Quote  # noqa: E402

NFL = "americanfootball_nfl"
_BOOKS = ("a", "b", "c", "d")


@st.composite
def _stream(draw: st.DrawFn) -> list[Quote]:
    out: list[Quote] = []
    t = 0
    for _ in range(draw(st.integers(4, 40))):
        t += draw(st.integers(0, 90_000))
        book = draw(st.sampled_from(_BOOKS))
        line = draw(st.sampled_from((-3.0, -3.5, -4.0, -2.5)))
        price = draw(st.sampled_from((-110, -115, -120, -105, 100, None)))
        side = f"spread_home@{int(line) if line.is_integer() else line}"
        out.append(Quote(NFL, "e1", book, side, price, t))
        if draw(st.booleans()):
            out.append(Quote(NFL, "e1", book, "h2h_home", draw(st.sampled_from((-130, -150, 120))), t))
    return out


_OPTIONS = st.builds(
    DetectOptions.build,
    threshold=st.sampled_from((5, 10)),
    reference=st.sampled_from(("last", "anchor")),
    types=st.sampled_from(("odds_drop", "line_move", "odds_drop,line_move,steam", "steam")),
    line_threshold=st.sampled_from((0.5, 1.0)),
    steam_books=st.sampled_from((2, 3)),
    cooldown_ms=st.sampled_from((0, 60_000)),
)


@settings(max_examples=150, deadline=None)
@given(_stream(), st.integers(0, 80), _OPTIONS, _OPTIONS)
def test_with_options_continues_exactly_when_the_kept_state_is_what_the_new_engine_would_hold(
    quotes: list[Quote], cut: int, before: DetectOptions, after: DetectOptions
) -> None:
    # An engine run with `after` from the start holds some state at the cut; one switched from
    # `before` at the cut keeps only state whose rules are the same. Whatever it keeps must be
    # what `after` would hold, so from then on both give the same alerts for the kept parts:
    # when everything is kept (the settings that decide state equal), the alerts are equal.
    cut = min(cut, len(quotes))
    old = DropEngine(options=before)
    old.observe_many(quotes[:cut])
    switched, kept = old.with_options(after)
    assert switched.options == after
    ref = DropEngine(options=after)
    ref.observe_many(quotes[:cut])
    if "prices" in kept:
        assert switched._state == ref._state
    if "lines" in kept:
        assert switched._lines == ref._lines
    whole = {"prices"} | ({"lines"} if after.detects_lines else set())
    expected_kept = {k for k, v in (("prices", ref._state), ("lines", ref._lines)) if v} & whole
    if set(kept) >= expected_kept and (
        ("steam" not in after.types or before == after or "steam" in kept or not len(ref._steam))
        and (after.cooldown_ms == 0 or "cooldowns" in kept or not len(ref._cool))
    ):
        rest = quotes[cut:]
        assert [a.to_json() for a in switched.observe_many(rest)] == [a.to_json() for a in ref.observe_many(rest)]


def test_with_options_keeps_prices_across_new_signal_settings() -> None:
    # the server's case: a state saved by a drops-only build, restarted with every type on
    eng = DropEngine(threshold=1)
    eng.observe_many([Quote(NFL, "e1", "a", "h2h_home", -110, 1), Quote(NFL, "e1", "a", "spread_home@-3", -110, 1)])
    new, kept = eng.with_options(DetectOptions.build(1, types="odds_drop,line_move,steam", line_threshold=0.25))
    assert kept == ("prices",)
    # no re-priming: the next move of a known key alerts at once
    assert [a.type for a in new.observe(Quote(NFL, "e1", "a", "h2h_home", -120, 2))] == ["odds_drop"]
    # an anchor engine with another threshold keeps nothing (its anchors meant another threshold)
    anchored = DropEngine(threshold=10, reference="anchor")
    anchored.observe(Quote(NFL, "e1", "a", "h2h_home", -110, 1))
    assert anchored.with_options(DetectOptions.build(20, reference="anchor"))[1] == ()


def test_a_csv_quote_table_streams_from_an_iterator_when_told_its_columns(tmp_path: Any) -> None:
    # review finding 10: write_quote_table read every quote into memory for a CSV to know whether
    # it needs the line_only column; told (line_only=), it writes from a generator as it goes
    from dropengine.core.errors import ConfigError
    from dropengine.core.errors import FeedError as _FeedError
    from dropengine.core.skips import SkipLog
    from dropengine.io.tables import read_quote_table, write_quote_table

    taken: list[int] = []

    def gen() -> Any:
        for i in range(3):
            taken.append(i)
            yield Quote(NFL, "e1", "a", "h2h_home", -110 - i, i)

    path = tmp_path / "q.csv"
    assert write_quote_table(path, gen(), line_only=False) == 3
    assert path.read_text().splitlines()[0].endswith("commence_time")  # today's columns
    lo = Quote(NFL, "e1", "a", "spread_home@-3", None, 5, line_only=True)
    with pytest.raises((ConfigError, _FeedError)):
        write_quote_table(tmp_path / "r.csv", iter([lo]), line_only=False)  # never written as a suspension
    assert write_quote_table(tmp_path / "s.csv", iter([lo]), line_only=True) == 1
    skips = SkipLog()
    got = [q for _, q in read_quote_table(tmp_path / "s.csv", skips)]
    assert [q.line_only for q in got] == [True] and skips.total == 0
    assert taken == [0, 1, 2]
