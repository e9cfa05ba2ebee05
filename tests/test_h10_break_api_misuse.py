"""Issue 10 (api-breaker): hostile-but-typed values to the core API.

Each test here failed before its fix (see the commit messages).
"""

from __future__ import annotations

import polars as pl
import pytest

from dropengine import DropEngine, FeedError, Quote
from dropengine.analysis import batch

COLS = ["sport_key", "event_id", "bookmaker", "side", "price", "last_update"]


@pytest.mark.parametrize("lu", [2**63, 2**63 + 1, 2**64, 2**80])
def test_last_update_beyond_int64_is_a_bad_time_in_stream_and_batch(lu: int) -> None:
    # before: the stream accepted it (and a snapshot of it could not be written past 2**64),
    # while batch.detect skipped the same row as "bad time": batch != stream
    with pytest.raises(FeedError, match="last_update") as info:
        Quote("nba", "e", "b", "h2h_home", -110, lu)
    assert info.value.reason == "bad time"
    eng = DropEngine()
    eng.observe(Quote("nba", "e", "b", "h2h_home", -110, 2**63 - 2))
    assert [d.delta for d in eng.observe(Quote("nba", "e", "b", "h2h_home", -150, 2**63 - 1))] == [-40]
    DropEngine.restore(eng.snapshot())
    rows = [("nba", "e", "b", "h2h_home", -110, 2**63 - 2), ("nba", "e", "b", "h2h_home", -150, 2**63 - 1)]
    assert batch.detect(pl.DataFrame(rows, schema=COLS, orient="row")).get_column("delta").to_list() == [-40]


class Text(str):
    """A str subclass, as numpy.str_ or an enum of names is."""


def test_a_threshold_too_large_for_a_float_is_a_config_error() -> None:
    # before: OverflowError (int too large to convert to float) from the first quote
    from dropengine import ConfigError

    with pytest.raises(ConfigError, match="threshold"):
        DropEngine(threshold=10**400)


def test_numeric_and_text_subclasses_in_settings_snapshot_and_restore() -> None:
    # before: threshold=numpy.float64(5) was accepted, then snapshot() raised TypeError
    np = pytest.importorskip("numpy")
    eng = DropEngine(
        threshold=np.float64(5),
        direction=Text("toward_dog"),  # type: ignore[arg-type]
        reference=Text("anchor"),  # type: ignore[arg-type]
        unit=Text("cents"),  # type: ignore[arg-type]
    )
    assert type(eng.config.threshold) is float
    assert type(eng.config.reference) is str and type(eng.filter.direction) is str
    back = DropEngine.restore(eng.snapshot())
    assert back.config == eng.config and back.filter == eng.filter


def test_quote_fields_of_str_and_float_subclasses_are_read_as_their_values() -> None:
    # before: Quote(Text("nba"), ...) raised FeedError "'nba' must be a non-empty string", and
    # a numpy.float64 price "is not a number"
    np = pytest.importorskip("numpy")
    q1 = Quote(Text("nba"), Text("e"), Text("b"), Text("h2h_home"), np.float64(-110.0), 1, home_team=Text("A"))
    q2 = Quote("nba", "e", "b", "h2h_home", np.float64(-150.0), 2, line=np.float64(1.5))
    for q in (q1, q2):
        for name in ("sport_key", "event_id", "bookmaker", "side", "home_team"):
            value = getattr(q, name)
            assert value is None or type(value) is str
        assert type(q.price) is float
    assert type(q2.line) is float
    eng = DropEngine()
    eng.observe(q1)
    (drop,) = eng.observe(q2)
    assert drop.prev == -110.0 and drop.new == -150.0
    assert drop.to_json().startswith(b'{"type":"odds_drop"')
    DropEngine.restore(eng.snapshot())


@pytest.mark.parametrize(
    ("spellings", "canonical"),
    [
        (["spread_home@3", "spread_home@+3", "spread_home@3.0", "spread_home@3."], "spread_home@3"),
        (["spread_home@0", "spread_home@-0", "spread_home@+0.0"], "spread_home@0"),
        (["player_points:Jo Doe:over@2.50", "player_points:Jo Doe:over@+2.5"], "player_points:Jo Doe:over@2.5"),
    ],
)
def test_spellings_of_one_side_are_one_key_in_stream_and_batch(spellings: list[str], canonical: str) -> None:
    # before: the stream held one key per spelling (no alert), batch.detect one key (alerts)
    prices = [-110, -150, -200, -300][: len(spellings)]
    rows = [("nba", "e", "b", s, p, i) for i, (s, p) in enumerate(zip(spellings, prices, strict=True))]
    quotes = [Quote(*r) for r in rows]
    assert {q.side for q in quotes} == {canonical}
    eng = DropEngine()
    got = [(d.side, d.delta) for d in eng.observe_many(quotes)]
    assert eng.keys_held == 1
    want = batch.detect(pl.DataFrame(rows, schema=COLS, orient="row")).select("side", "delta").rows()
    assert got == want and len(got) == len(spellings) - 1
