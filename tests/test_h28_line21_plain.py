"""Issue 14 (session 21, line21): the line moves' table of the plain routing (no cooldown, no steam)
gathers ``event_id`` and ``bookmaker`` only where the filter tests them (the alerts table takes both
from the input by row), and the side's text only where some input row leaves its kind or market key
to it, and the key numbers' line keys are the lines' own bits where they can be
(``batch._group_key``: a view of polars' buffer, no array written).

- On adversarial signal streams (hypothesis) with every text filter drawn (sports, event ids,
  bookmakers, markets, kinds, alone or together), the plain routing gives the pure path's alerts,
  values, counters and rows, its table's work in a thread or inline;
- the table's thread is handed exactly the text it needs: ``event_id``/``bookmaker`` left out
  where the filter tests neither, kept where it tests them; ``side`` only where a kind or market key
  is derived from it;
- a float column's key is a view of its buffer where no value is null, NaN or -0.0, and a new
  array (0.0 for -0.0) where one is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import Quote
from dropengine.analysis import batch

from .conftest import require_fast
from .test_h12_batch_equivalence import BOOKS, EVENTS, frame_of, signal_options, signal_streams

#: The text filters and values drawn for them (some matching the streams, some not).
_TEXT_FILTERS = {
    "sports": ("americanfootball_nfl", "basketball_nba", "soccer_epl"),
    "event_id": (*EVENTS, "other"),
    "bookmakers": BOOKS,
    "markets": ("spreads", "totals", "h2h", "player_points"),
    "kinds": ("game", "prop"),
}


@st.composite
def _text_filter(draw: st.DrawFn) -> dict[str, str]:
    """Each text filter present or not; a present one lists 1-3 of its values."""
    out = {}
    for name, values in _TEXT_FILTERS.items():
        if draw(st.booleans()):
            out[name] = ",".join(draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)))
    return out


def _inline(work: Any) -> Any:
    """``batch._in_thread`` as it runs where no thread helps (the work at once, in the caller)."""
    result = work()
    return lambda: result


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    signal_streams(),
    signal_options(),
    _text_filter(),
    st.sampled_from(["line_move", "line_move", "odds_drop,line_move"]),
    st.booleans(),
    st.sampled_from([None, None, ("kind", None), ("kind", ""), ("market_key", None), ("market_key", "")]),
)
def test_plain_line_moves_with_any_text_filter_are_the_pure_paths(
    quotes: list[Quote],
    opts: dict[str, Any],
    text_filter: dict[str, str],
    types: str,
    inline: bool,
    blank: tuple[str, str | None] | None,
) -> None:
    require_fast()
    # (no cooldown, no steam: the plain routing; the drawn text filter in place of signal_options')
    opts = {k: v for k, v in opts.items() if k not in _TEXT_FILTERS}
    opts = {**opts, **text_filter, "types": types, "cooldown_ms": 0}
    frame = frame_of(quotes)
    if blank is not None:  # (every other row's kind or market key left to the side to say)
        column, value = blank
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) % 2 == 0)
            .then(pl.lit(value, pl.String))
            .otherwise(pl.col(column))
            .alias(column)
        )
    pure = batch.detect_counted(frame, accel="pure", **opts)
    handed: list[set[str]] = []
    line_table = batch._line_table

    def spy(fired: pl.DataFrame, *args: Any, **kwargs: Any) -> pl.DataFrame:
        handed.append(set(fired.columns))
        return line_table(fired, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "_line_table", spy)
        if inline:
            mp.setattr(batch, "_in_thread", _inline)
        fast = batch.detect_counted(frame, accel="fast", **opts)
    assert fast.counters == pure.counters
    assert_frame_equal(fast.alerts, pure.alerts, check_exact=True)
    assert fast.alert_values() == pure.alert_values()
    assert fast.rows is not None and pure.rows is not None
    assert fast.rows.to_list() == pure.rows.to_list()
    # the table's moves carry event_id/bookmaker exactly where the filter tests them
    # (and the side's text exactly where some row leaves its kind or market key to the side)
    derives = frame.select(
        (
            pl.col("kind").is_null()
            | (pl.col("kind") == "")
            | pl.col("market_key").is_null()
            | (pl.col("market_key") == "")
        ).any()
    ).item()
    assert len(handed) == 1
    for columns in handed:
        assert ("event_id" in columns) == ("event_id" in text_filter)
        assert ("bookmaker" in columns) == ("bookmakers" in text_filter)
        assert ("side" in columns) == derives


def test_a_float_key_is_its_buffer_where_it_can_be() -> None:
    """No null, NaN or -0.0: the key is the column's bits, a view of its buffer; with a -0.0 it is
    a new array where -0.0 and 0.0 have one key (as a group_by groups them)."""
    require_fast()
    from dropengine.fast import kernel

    plain = pl.Series("l", [3.5, -7.0, 0.0, 3.5, 220.1])
    key = batch._group_key(plain, kernel)
    assert np.shares_memory(key, plain.to_numpy())
    assert key.tolist() == plain.to_numpy().view(np.int64).tolist()
    signed = pl.Series("l", [3.5, -0.0, 0.0, 3.5])
    key = batch._group_key(signed, kernel)
    assert not np.shares_memory(key, signed.to_numpy())
    assert key[1] == key[2] and key[0] == key[3] and key[0] != key[1]


_LINES = st.one_of(
    st.sampled_from([-7.5, -7.0, -3.25, -3.0, -0.0, 0.0, 0.5, 2.5, 3.0, 44.5, 220.1, 220.6, 219.6, 1e-10, 0.3]),
    st.floats(-500, 500, allow_nan=False),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_LINES, _LINES), min_size=1, max_size=30))
def test_line_numbers_write_the_points_as_the_rule_does(pairs: list[tuple[float, float]]) -> None:
    """``_line_numbers``' points are ``rules.line_points(prev, new)`` (the values ``_with_points``
    writes) and ``_dint`` whether the rule writes them as an int; the lines as ``written_line``."""
    from dropengine.core import rules

    prev, new = zip(*pairs, strict=True)
    fired = pl.DataFrame(
        {
            "_i": pl.Series(range(len(pairs)), dtype=pl.UInt32),
            "_rl": list(prev),
            "_l": list(new),
            "_lu": pl.Series(range(len(pairs)), dtype=pl.Int64),
        }
    )
    got = batch._line_numbers(fired)
    points = [rules.line_points(a, b) for a, b in pairs]
    assert got.get_column("points").to_list() == [float(p) for p in points]
    assert got.get_column("_dint").to_list() == [isinstance(p, int) for p in points]
    assert got.get_column("points").to_list() == batch._with_points(fired).get_column("_d").to_list()
    for c, flag, values in (("prev_line", "_rlint", prev), ("new_line", "_lint", new)):
        written = [rules.written_line(v) for v in values]
        assert got.get_column(c).to_list() == [float(w) for w in written]
        assert got.get_column(flag).to_list() == [isinstance(w, int) for w in written]
    assert got.get_column("last_update").to_list() == list(range(len(pairs)))
