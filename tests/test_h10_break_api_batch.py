"""Issue 10 (api-breaker): ``batch.detect`` with frames of the wrong shape.

A polars exception is an implementation detail: a column of the wrong type is a ConfigError
naming the column, a LazyFrame that fails when computed is a FeedError; and an optional
column (``timestamp_column``, ``line``) never turns a valid frame into a crash.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from dropengine import ConfigError, DropEngine, FeedError, Quote
from dropengine.analysis import batch

BASE: dict[str, list[Any]] = {
    "sport_key": ["nba"] * 3,
    "event_id": ["e"] * 3,
    "bookmaker": ["b"] * 3,
    "side": ["h2h_home"] * 3,
    "price": [-110, -150, -200],
    "last_update": [1_000, 2_000, 3_000],
}


def frame(**cols: Any) -> pl.DataFrame:
    return pl.DataFrame({**BASE, **cols})


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("event_id", [[1], [1], [1]]),
        ("side", [[1], [1], [1]]),
        ("sport_key", [b"x", b"x", b"x"]),
        ("line", [[1.0], [1.0], [1.0]]),
        ("line", ["a", "b", "c"]),
        ("kind", [[1], [2], [3]]),
        ("last_update", [[1], [2], [3]]),
    ],
)
def test_a_column_of_the_wrong_type_is_a_config_error_naming_it(column: str, values: list[Any]) -> None:
    # before: polars InvalidOperationError (or a silent misuse) escaped from detect
    with pytest.raises(ConfigError, match=column):
        batch.detect(frame(**{column: values}))


@pytest.mark.parametrize("values", [["a", "b", "c"], [1.5, float("nan"), 3.0], [True, False, True]])
def test_a_timestamp_column_of_the_wrong_type_is_a_config_error(values: list[Any]) -> None:
    with pytest.raises(ConfigError, match="timestamp_column"):
        batch.detect(frame(ts=values), timestamp_column="ts")


def test_a_negative_arrival_time_is_refused_as_in_the_stream() -> None:
    with pytest.raises(ConfigError, match="now_ms"):
        DropEngine().observe(Quote("nba", "e", "b", "h2h_home", -110, 1), now_ms=-1)
    with pytest.raises(ConfigError, match="timestamp_column"):
        batch.detect(frame(ts=[-1, -2, -3]), timestamp_column="ts")


def test_a_null_arrival_time_stamps_like_the_stream_without_now_ms() -> None:
    out = batch.detect(frame(ts=[None, 5, None]), timestamp_column="ts")
    assert out.get_column("timestamp").to_list() == [5, 3_000]


@pytest.mark.parametrize("column", ["side", "event_id", "price", "last_update", "sport_key", "line"])
def test_timestamp_column_may_name_any_column(column: str) -> None:
    # before: DuplicateError for side/event_id/line (the column was selected twice)
    df = frame(line=[1.0, 2.0, 3.0]) if column == "line" else frame()
    if column != "last_update":  # text, float, negative: each refused, none a polars error
        with pytest.raises(ConfigError, match="timestamp_column"):
            batch.detect(df, timestamp_column=column)
        return
    out = batch.detect(df, timestamp_column=column)
    assert out.height == 2


def test_a_lazy_frame_that_fails_when_computed_is_a_feed_error() -> None:
    lf = pl.LazyFrame({**BASE, "price": ["a", "b", "c"]}).with_columns(pl.col("price").cast(pl.Int64))
    with pytest.raises(FeedError, match="quotes"):
        batch.detect(lf)
    with pytest.raises(FeedError, match="quotes"):
        batch.accepted_quotes(lf)


def test_a_datetime_last_update_is_read_as_unix_ms() -> None:
    # before: every row was skipped as "bad time" (0 alerts, no error)
    df = frame().with_columns(pl.from_epoch("last_update", "ms"))
    out = batch.detect(df)
    assert out.get_column("last_update").to_list() == [2_000, 3_000]
    utc = frame().with_columns(pl.from_epoch("last_update", "ms").dt.replace_time_zone("UTC"))
    assert batch.detect(utc).get_column("last_update").to_list() == [2_000, 3_000]


@pytest.mark.parametrize("line", [float("nan"), float("inf")])
def test_a_non_finite_line_is_skipped_in_batch_as_in_the_stream(line: float) -> None:
    with pytest.raises(FeedError, match="line") as info:
        Quote("nba", "e", "b", "h2h_home", -150, 2_000, line=line)
    res = batch.detect_counted(frame(line=[1.0, line, 1.0]))
    assert res.skipped == {info.value.reason: 1} == {"bad line": 1}
    assert res.alerts.get_column("delta").to_list() == [-90]


def test_a_decimal_last_update_is_read_as_unix_ms() -> None:
    # before: a DECIMAL column (database exports) made every row "bad time", silently
    df = frame().with_columns(pl.col("last_update").cast(pl.Decimal(20, 2)))
    assert batch.detect(df).get_column("last_update").to_list() == [2_000, 3_000]
    half = frame(last_update=[1_000.0, 2_000.5, 3_000.0]).with_columns(pl.col("last_update").cast(pl.Decimal(20, 2)))
    assert batch.detect_counted(half).skipped == {"bad time": 1}
