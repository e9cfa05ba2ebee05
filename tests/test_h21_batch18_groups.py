"""Issue 14 (session 14, batch18): what the line moves' table and the Parquet reader now rely on.

- ``kernel.group_rows`` numbers the rows' (a, b, x, y) int64 quadruples densely in first
  appearance order, with each group's first row (the line table's key-number groups: the rule
  runs once per group and each move takes its group's text);
- ``_group_key`` makes a column's values int64 keys equal exactly where a ``group_by`` groups the
  values (a float by its bits: -0.0 with 0.0, every NaN together, a null apart; text by codes);
- the line table's direction (one gather per move from the sides' two words) and key numbers
  (grouped by the kernel) give the pure path's alerts, with lines that are -0.0/0.0, sports and
  market keys that repeat or are absent, and key numbers configured per sport;
- ``parquet_quote_table`` gives one-chunk columns (the detector no longer copies the text columns
  while the caller holds the chunked ones) with the values ``pl.read_parquet`` gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import Quote
from dropengine.analysis.batch import _group_key, detect_counted
from dropengine.core.skips import SkipLog
from dropengine.io.tables import parquet_quote_table

from .conftest import require_fast
from .test_h20_batch17_inputs import same

_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def reference_groups(rows: list[tuple[int, ...]]) -> tuple[list[int], list[int]]:
    """Per row its group's id (first appearance order) and per group its first row: a dict."""
    seen: dict[tuple[int, ...], int] = {}
    first: list[int] = []
    ids = []
    for i, r in enumerate(rows):
        if r not in seen:
            seen[r] = len(first)
            first.append(i)
        ids.append(seen[r])
    return ids, first


@_SETTINGS
@given(st.lists(st.tuples(*[st.one_of(st.integers(-3, 3), st.integers(-(2**63), 2**63 - 1))] * 4), max_size=3000))
def test_group_rows_numbers_the_quadruples_as_a_dict_does(rows: list[tuple[int, int, int, int]]) -> None:
    """Few and many groups (the table grows past 512 groups), any int64 (negative: a float's sign bit)."""
    require_fast()
    from dropengine.fast import kernel

    cols = [np.array([r[j] for r in rows], dtype=np.int64) for j in range(4)]
    ids, k, first = kernel.group_rows(*cols)
    want_ids, want_first = reference_groups(rows)
    assert ids.tolist() == want_ids
    assert k == len(want_first)
    assert first.tolist() == want_first


def test_group_rows_past_the_tables_growth() -> None:
    """5,000 distinct groups among 20,000 rows in a scrambled order: every row finds its group."""
    require_fast()
    from dropengine.fast import kernel

    rng = np.random.default_rng(18)
    g = rng.integers(0, 5000, 20_000)
    cols = [g % 7, g // 7, (g * 0.5).view(np.int64), -g]
    ids, k, first = kernel.group_rows(*cols)
    want_ids, want_first = reference_groups(list(zip(*(c.tolist() for c in cols), strict=True)))
    assert (ids.tolist(), k, first.tolist()) == (want_ids, len(want_first), want_first)


@pytest.mark.parametrize("varied", range(4))
def test_group_rows_tells_groups_apart_by_each_value(varied: int) -> None:
    """Rows equal but in one of the four values, 3,000 groups (long probe chains at half load):
    every value is compared, not only hashed."""
    require_fast()
    from dropengine.fast import kernel

    rng = np.random.default_rng(varied)
    v = rng.integers(-(2**62), 2**62, 3000)[rng.integers(0, 3000, 12_000)]
    cols = [v if j == varied else np.full(v.shape[0], 5, np.int64) for j in range(4)]
    ids, k, first = kernel.group_rows(*cols)
    want_ids, want_first = reference_groups([(x,) for x in v.tolist()])
    assert (ids.tolist(), k, first.tolist()) == (want_ids, len(want_first), want_first)


FLOATS = st.one_of(st.none(), st.sampled_from([0.0, -0.0, float("nan"), float("inf"), -1.5, 2.5, 3.0]),
                   st.floats(allow_nan=True, allow_infinity=True))
TEXTS = st.one_of(st.none(), st.sampled_from(["", "nfl", "NFL", "spreads", "totals"]), st.text(max_size=4))


@_SETTINGS
@given(st.data())
def test_group_key_groups_as_group_by_does(data: st.DataObject) -> None:
    """Two rows have the same key exactly when polars' group_by puts them in one group."""
    kind = data.draw(st.sampled_from(["float", "float32", "string", "categorical", "int", "null"]))
    if kind in ("float", "float32"):
        values: list[Any] = data.draw(st.lists(FLOATS, min_size=1, max_size=40))
        col = pl.Series("c", values, dtype=pl.Float64 if kind == "float" else pl.Float32)
    elif kind in ("string", "categorical"):
        col = pl.Series("c", data.draw(st.lists(TEXTS, min_size=1, max_size=40)), dtype=pl.String)
        col = col.cast(pl.Categorical) if kind == "categorical" else col
    elif kind == "int":
        col = pl.Series("c", data.draw(st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=1, max_size=40)),
                        dtype=pl.Int64)
    else:
        col = pl.Series("c", [None] * data.draw(st.integers(1, 5)), dtype=pl.Null)
    require_fast()
    from dropengine.fast import kernel

    key = _group_key(col, kernel)
    assert key.dtype == np.int64
    assert len(key) == col.len()
    group = (col.to_frame().with_row_index("r").group_by("c").agg("r")
             .select(pl.int_range(pl.len()).alias("g"), "r").explode("r").sort("r").get_column("g").to_list())
    for i in range(col.len()):
        for j in range(col.len()):
            assert (key[i] == key[j]) == (group[i] == group[j]), (col[i], col[j])


def line_quotes(data: st.DataObject) -> list[Quote]:
    """Spreads and totals of two sports (or none) in a few events and books, lines on and off the
    key numbers, -0.0 and 0.0 among them, market keys present or left to the side to say."""
    out = []
    t = 0
    for _ in range(data.draw(st.integers(1, 60))):
        t += data.draw(st.integers(0, 2))
        market = data.draw(st.sampled_from(["spreads", "totals"]))
        line = data.draw(st.sampled_from([-7.5, -7.0, -3.5, -3.0, -0.0, 0.0, 2.5, 3.0, 3.5, 7.0, 10.0, 44.5, 47.0]))
        outcome = data.draw(st.sampled_from(["spread_home", "spread_away"] if market == "spreads"
                                            else ["total_over", "total_under"]))
        out.append(Quote(
            sport_key=data.draw(st.sampled_from(["americanfootball_nfl", "basketball_nba", "icehockey_nhl"])),
            event_id=data.draw(st.sampled_from(["e1", "e2"])), bookmaker=data.draw(st.sampled_from(["b1", "b2", "b3"])),
            side=f"{outcome}@{line if market == 'spreads' else abs(line):g}",
            price=data.draw(st.sampled_from([-120, -110, 100, 105, -105])), last_update=t,
            market_key=data.draw(st.sampled_from([market, None])),
        ))
    return out


@settings(_SETTINGS, max_examples=40)
@given(st.data())
def test_line_table_direction_and_key_numbers_equal_the_pure_path(data: st.DataObject) -> None:
    """The compiled line table (direction by one gather, key numbers per kernel group) == the pure
    path's values (rules per value), every signal type, key numbers configured or default."""
    require_fast()
    from .test_h12_batch_equivalence import frame_of

    quotes = line_quotes(data)
    opts: dict[str, Any] = {
        "types": data.draw(st.sampled_from(["line_move", "odds_drop,line_move,steam", "line_move,steam"])),
        "reference": data.draw(st.sampled_from(["last", "anchor"])),
        "line_threshold": data.draw(st.sampled_from([0.5, 1.0, 3.0])),
    }
    kn = data.draw(st.sampled_from([None, "americanfootball_nfl:spreads=3,7,10;americanfootball_nfl:totals=41,44,47;"
                                          "basketball_*:spreads=0.5,2.5", "icehockey_*:totals=44.5"]))
    if kn is not None:
        opts["key_numbers"] = kn
    frame = frame_of(quotes)
    fast = detect_counted(frame, accel="fast", **opts)
    same(fast, detect_counted(frame, accel="pure", **opts))
    for coded in (frame.with_columns(pl.col(c).cast(pl.Categorical) for c in ("sport_key", "market_key")),):
        same(detect_counted(coded, accel="fast", **opts), detect_counted(coded, accel="pure", **opts))


@pytest.mark.parametrize("files", [1, 2])
def test_batch_from_rechunked_tables_equals_the_stream_engine(tmp_path: Path, files: int) -> None:
    """The batch engine on the reader's table (one file of many row groups, two merged), and on it
    made one chunk per column, == the stream engine."""
    from dropengine.core.engine import DropEngine
    from dropengine.io.replay import replay

    paths = []
    for f in range(files):
        rows = [{"sport_key": "americanfootball_nfl", "event_id": f"e{i % 3}", "bookmaker": f"b{(i + f) % 2}",
                 "side": "h2h_home", "price": 150 - (i * 7) % 60, "last_update": 10 * i + f} for i in range(900)]
        path = tmp_path / f"q{f}.parquet"
        pl.DataFrame(rows).with_columns(pl.col("event_id").cast(pl.Categorical)).write_parquet(path, row_group_size=128)
        paths.append(path)
    stream = list(replay(paths, DropEngine()))
    as_read, _ = parquet_quote_table(paths, SkipLog())
    table = as_read.rechunk()
    batch = detect_counted(table)
    assert batch.alert_values() == stream
    assert len(stream) > 10
    assert detect_counted(as_read).alert_values() == stream
    signals = "odds_drop,line_move,steam"
    same(detect_counted(as_read, types=signals), detect_counted(table, types=signals))
