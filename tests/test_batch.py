"""The columnar path equals the streaming path: same alerts, same counters, on any input.

The properties draw streams from tests/strategies.py (many keys, even-money crossings,
nulls, stale and equal timestamps, invalid prices incl. NaN/inf, fractional prices) and every
configuration of test_properties (units, references, directions, re-priming, any threshold).
tests/test_conformance.py checks engine == batch on short streams (up to 30 quotes) for every
option; here the streams are long (up to 100 quotes on 8 keys, 150 on 30) for long histories.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from dropengine import ConfigError, DropEngine, Quote, replay
from dropengine.analysis.batch import ALERT_SCHEMA, detect, detect_counted

from .conftest import FIXTURES
from .strategies import quote_streams as streams
from .test_properties import configs, focused

GOLDEN = FIXTURES / "golden"
QUOTE_COLUMNS = ("sport_key", "event_id", "bookmaker", "side", "price", "last_update", "kind", "market_key",
                 "market", "player", "line", "home_team", "away_team", "commence_time")


def frame(quotes: list[Quote]) -> pl.DataFrame:
    data = {c: [getattr(q, c) for q in quotes] for c in QUOTE_COLUMNS}
    return pl.DataFrame(data, schema_overrides={"price": pl.Float64, "line": pl.Float64,
                                                "last_update": pl.Int64}, strict=False)


def norm(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Alerts by value (a typed column makes every price of a float column a float)."""
    out = []
    for d in alerts:
        row = tuple(
            float(d[k]) if k in ("prev", "new", "delta", "line") and d.get(k) is not None else d.get(k)
            for k in ALERT_SCHEMA
        )
        out.append(row)
    return out


def stream(quotes: list[Quote], **cfg: Any) -> tuple[list[dict[str, Any]], Any]:
    eng = DropEngine(**cfg)
    return [d.to_dict() for d in eng.observe_many(quotes)], eng.counters


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(focused(max_keys=8, max_len=100))
def test_batch_equals_stream(case: tuple[list[Quote], dict[str, Any]]) -> None:
    quotes, cfg = case
    want, counters = stream(quotes, **cfg)
    result = detect_counted(frame(quotes), **cfg)
    assert norm(result.alerts.to_dicts()) == norm(want)
    assert result.counters == counters
    assert result.skipped == {}


FILTERS = {"sports": "soccer_epl", "bookmakers": "pinnacle", "markets": "h2h,totals", "kinds": "prop",
           "event_id": "ev1,ev3"}


# Every filter on each drawn stream: drawing a 150-quote stream costs far more than a batch
# detect, so 50 streams x 5 filters give each filter more streams (50) than 100 streams with one
# sampled filter each did (20 on average), for half the draws.
@settings(max_examples=50, deadline=None)
@given(streams(max_keys=30, max_len=150), configs())
def test_batch_filters_equal_stream_filters(quotes: list[Quote], cfg: dict[str, Any]) -> None:
    table = frame(quotes)
    for which, value in FILTERS.items():
        want, _ = stream(quotes, **cfg, **{which: value})
        assert norm(detect(table, **cfg, **{which: value}).to_dicts()) == norm(want), which


def test_lazyframe_and_integer_prices_keep_their_type() -> None:
    quotes = [Quote("nba", "E", "b", "h2h_home", p, t) for p, t in ((-110, 1), (-125, 2), (100, 3), (-110, 4))]
    data = {c: [getattr(q, c) for q in quotes] for c in ("sport_key", "event_id", "bookmaker", "side", "price",
                                                         "last_update")}
    out = detect(pl.DataFrame(data).lazy())
    assert out.schema["prev"] == pl.Int64 and out.schema["delta"] == pl.Int64
    assert out.select("prev", "new", "delta", "direction").rows() == [
        (-110, -125, -15, "toward_favorite"), (-125, 100, 25, "toward_dog"), (100, -110, -10, "toward_favorite"),
    ]
    assert list(out.columns) == list(ALERT_SCHEMA)
    assert out.get_column("kind").to_list() == ["game"] * 3  # derived from the side, as Quote does


@pytest.mark.parametrize("reference", ["last", "anchor"])
def test_golden_rules_csv_read_as_text(reference: str) -> None:
    """A CSV read with every column as text (strings, empty cells, 'abc') gives the alerts of the replay."""
    table = pl.read_csv(GOLDEN / "rules.quotes.csv", infer_schema=False, truncate_ragged_lines=True)
    result = detect_counted(table, reference=reference)
    want = [d.to_dict() for d in replay([GOLDEN / "rules.quotes.csv"], DropEngine(reference=reference))]
    assert norm(result.alerts.to_dicts()) == norm(want)
    # the rows the replay reader skipped are skipped or counted here too
    assert result.skipped == {"missing field": 2, "bad time": 1}  # incl. the truncated ragged line
    assert result.counters.invalid == 3  # 50, 'abc', -99


def test_timestamp_column_stamps_alerts() -> None:
    df = pl.DataFrame({"sport_key": ["s"] * 2, "event_id": ["e"] * 2, "bookmaker": ["b"] * 2,
                       "side": ["h2h_home"] * 2, "price": [-110, -130], "last_update": [1, 2], "arrived": [5, 9]})
    assert detect(df, timestamp_column="arrived").get_column("timestamp").to_list() == [9]
    assert detect(df).get_column("timestamp").to_list() == [2]


def test_bad_columns_and_sides() -> None:
    with pytest.raises(ConfigError, match="last_update"):
        detect(pl.DataFrame({"sport_key": ["s"], "event_id": ["e"], "bookmaker": ["b"], "side": ["h2h_home"],
                             "price": [-110]}))
    with pytest.raises(ConfigError, match="threshold"):
        detect(pl.DataFrame(), threshold=0)
    with pytest.raises(ConfigError, match="timestamp_column"):
        detect(frame([]), timestamp_column="nope")
    df = pl.DataFrame({"sport_key": ["s"] * 4, "event_id": ["e"] * 4, "bookmaker": ["b"] * 4,
                       "side": ["spread_home@-3.0", "spread_home@-3", "garbage", "spread_home@-3.00"],
                       "price": [-110, -110, -150, -125], "last_update": [1, 2, 3, 4]})
    result = detect_counted(df)
    assert result.skipped == {"bad side": 1}
    assert result.alerts.select("side", "prev", "new", "line").rows() == [("spread_home@-3", -110, -125, -3.0)]


def test_empty_input() -> None:
    result = detect_counted(frame([]))
    assert result.alerts.height == 0 and result.counters.seen == 0


def test_nan_and_infinite_prices_are_invalid() -> None:
    df = pl.DataFrame({"sport_key": ["s"] * 4, "event_id": ["e"] * 4, "bookmaker": ["b"] * 4,
                       "side": ["h2h_home"] * 4, "price": [-110.0, math.nan, math.inf, -120.0],
                       "last_update": [1, 2, 3, 4]})
    result = detect_counted(df)
    assert result.counters.invalid == 2 and result.alerts.height == 1


@pytest.fixture(scope="module")
def nfl_series() -> tuple[list[Quote], pl.DataFrame]:
    """The real NFL series' quotes and their frame, read once for the four options below (a
    read of the 123k quotes and the frame built from them are seconds each)."""
    from dropengine.core.skips import SkipLog
    from dropengine.io.recordings import Snapshot, read_recording

    from .conftest import require_data

    quotes: list[Quote] = []
    path = require_data("theoddsapi_nfl", "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz")
    for _, item in read_recording(path, "auto", SkipLog()):
        assert isinstance(item, Snapshot)
        quotes.extend(item.quotes)
    return quotes, frame(quotes)


@pytest.mark.parametrize("reference", ["last", "anchor"])
@pytest.mark.parametrize("unit", ["cents", "prob"])
def test_real_nfl_series_batch_equals_stream(
    nfl_series: tuple[list[Quote], pl.DataFrame], reference: str, unit: str
) -> None:
    quotes, table = nfl_series
    threshold = 10 if unit == "cents" else 2
    want, counters = stream(quotes, threshold=threshold, reference=reference, unit=unit)
    result = detect_counted(table, threshold=threshold, reference=reference, unit=unit)
    assert len(want) > 100
    assert norm(result.alerts.to_dicts()) == norm(want)
    assert result.counters == counters
