"""Issue 14 (batch14b): the alerts table of several types gathers the text columns every alert
type takes from its move's input row as they are (sport_key, event_id, bookmaker, market, the
teams, commence_time) once from the input by the alert's row, not per part of the table.

Invariant: on streams made for steam (every types set, cooldown and steam setting), whatever the
input's text columns are typed (String, Categorical, Enum) and whichever of them it has, the
compiled path's alerts table (values, dtypes, column order), counters and number fields' types equal the
pure path's; a steam's bookmaker stays null.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.alerts import NUMBER_FIELDS

from .conftest import require_fast
from .test_h12_batch_equivalence import frame_of
from .test_h14_steam_batch import steam_options, steam_streams

_TEXTS = ("sport_key", "event_id", "bookmaker", "market", "home_team", "away_team", "commence_time")


def _typed_input(quotes: list[Quote], how: str, drop: frozenset[str]) -> pl.DataFrame:
    """``quotes`` as a table whose verbatim text columns are filled per event (where the quotes
    leave them empty) and typed ``how``, without the columns in ``drop``."""
    frame = frame_of(quotes).with_columns(
        pl.coalesce(pl.col("home_team"), pl.lit("home of ") + pl.col("event_id")).alias("home_team"),
        pl.coalesce(pl.col("market"), pl.lit("market ") + pl.col("sport_key")).alias("market"),
        pl.coalesce(pl.col("commence_time"), pl.lit("2026-01-0") + pl.col("event_id").str.slice(2)).alias(
            "commence_time"),
    ).drop(*drop)
    texts = [c for c in _TEXTS if c in frame.columns]
    if how == "categorical":
        frame = frame.with_columns(pl.col(texts).cast(pl.Categorical))
    elif how == "enum":
        frame = frame.with_columns(
            pl.col(c).cast(pl.Enum(sorted({v for v in frame.get_column(c).to_list() if v is not None})))
            for c in texts)
    return frame


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steam_streams(), steam_options(), st.sampled_from(("string", "categorical", "enum")),
       st.frozensets(st.sampled_from(("market", "away_team", "commence_time"))))
def test_texts_gathered_once_equal_the_pure_path(quotes: list[Quote], opts: dict[str, Any], how: str,
                                                  drop: frozenset[str]) -> None:
    require_fast()
    if len(opts["types"].split(",")) == 1 and opts["types"] == "odds_drop":
        opts = {**opts, "types": "odds_drop,steam"}
    frame = _typed_input(quotes, how, drop)
    fast = detect_counted(frame, accel="fast", **opts)
    pure = detect_counted(frame, accel="pure", **opts)
    assert_frame_equal(fast.alerts, pure.alerts, check_exact=True)
    assert fast.counters == pure.counters
    columns = [c for c in fast.alerts.columns if c in NUMBER_FIELDS]
    assert fast.number_types(columns) == pure.number_types(columns)
    if "type" in fast.alerts.columns:
        steams = fast.alerts.filter(pl.col("type") == "steam")
        assert steams.get_column("bookmaker").null_count() == steams.height


@pytest.mark.parametrize("how", ["string", "categorical", "enum"])
def test_a_steam_among_drops_keeps_the_input_texts(how: str) -> None:
    """Three books shortening one side within a minute: the drops carry their books, the steam
    none; every verbatim text is the input's at the move's row."""
    require_fast()
    quotes = [Quote("americanfootball_nfl", "ev1", book, "h2h_home", p, 1_700_000_000_000 + 20_000 * j + k * 1000,
                    market_key="h2h")
              for k, book in enumerate(("pinnacle", "draftkings", "fanduel"))
              for j, p in enumerate((-110, -120, -130))]
    frame = _typed_input(quotes, how, frozenset())
    opts: dict[str, Any] = {"threshold": 5, "types": "odds_drop,line_move,steam", "steam_books": 3}
    fast = detect_counted(frame, accel="fast", **opts)
    pure = detect_counted(frame, accel="pure", **opts)
    assert_frame_equal(fast.alerts, pure.alerts, check_exact=True)
    kinds = fast.alerts.get_column("type").to_list()
    assert "steam" in kinds and "odds_drop" in kinds
    drops = fast.alerts.filter(pl.col("type") == "odds_drop")
    assert drops.get_column("bookmaker").null_count() == 0
    assert set(fast.alerts.get_column("home_team").cast(pl.String).to_list()) == {"home of ev1"}
