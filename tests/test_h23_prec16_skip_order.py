"""prec16: one order for a skipped table row's reason (formats.tables.SKIP_ORDER).

A row with several faults is skipped for the first step of SKIP_ORDER it fails. The row reader
(quote_from_row: the stream engine's CSV/Parquet/NDJSON tables) and both batch loads (the pure
``_load``, the compiled path's reason codes) follow that one tuple, so they skip the same rows
for the same reason. Before, the batch loads never checked ``kind`` (a Parquet row of kind
"weird": 2 alerts on batch, 1 on stream) nor a kind contradicting its side, and named a row with
a bad kind or mark and a bad side or time otherwise than the reader (9 combinations differed).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.analysis.batch import detect_counted
from dropengine.cli.group import main
from dropengine.core import rules
from dropengine.core.errors import FeedError
from dropengine.formats.tables import LINE_ONLY_COLUMN, SKIP_ORDER, quote_from_row

from .conftest import require_fast

_TEXT_TYPES = (pl.String, pl.Categorical)
_SIDES = ("h2h_home", "spread_home@-3.0", "total_over@220.5", "player_points:Joe:over@25.5")
#: each fault a row may have, with the cells that give it (a line-only row's price or a kind
#: against its side named too: faults of two cells, rarely drawn apart)
_FAULTS: dict[str, tuple[dict[str, Any], ...]] = {
    "missing": (
        {"sport_key": ""},
        {"event_id": None},
        {"event_id": ""},
        {"side": None},
        {"side": ""},
        {"last_update": None},
    ),
    "side": ({"side": "sideways"}, {"side": "spread_home@x"}),
    "time": ({"last_update": -5},),
    "line": ({"line": math.inf}, {"line": math.nan}, {"line": -3.0}),
    "kind": ({"kind": "weird"}, {"kind": "prop"}, {"kind": "game"}, {"kind": ""}),
    "kind_against_side": (
        {"kind": "prop", "side": "h2h_home", "market_key": None},
        {"kind": "game", "side": "player_points:Joe:over@25.5", "market_key": None},
    ),
    "market": ({"market_key": "h2h"}, {"market_key": ""}),
    "mark": ({LINE_ONLY_COLUMN: "maybe"},),
    "line_only": (
        {LINE_ONLY_COLUMN: "true"},
        {LINE_ONLY_COLUMN: "true", "price": None},
        {LINE_ONLY_COLUMN: "true", "price": None, "side": "h2h_home"},
        {LINE_ONLY_COLUMN: "true", "price": "abc"},
        {LINE_ONLY_COLUMN: "true", "price": "0"},
    ),
    "price": ({"price": "abc"}, {"price": "0"}, {"price": None}, {"price": ""}),
}


@st.composite
def tables(draw: st.DrawFn) -> pl.DataFrame:
    """A table of 1-10 rows, each a usable row with any subset of faults (a missing or empty id
    or time, a bad side, a bad time, a non-finite line or none, a kind not game/prop or
    contradicting its side without a market key, a bad line-only mark, a line-only row with or
    without a price or a line, an unparsed, invalid or null price); text columns String or
    Categorical, the event id and the kind Int64 at times, the price text or Int64, the
    line-only mark text or Boolean or absent, market key and line columns present or not."""
    n = draw(st.integers(1, 10))
    price_text, int_event, int_kind = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    marks = draw(st.sampled_from(["absent", "text", "bool"]))
    columns = {"market_key": draw(st.booleans()), "line": draw(st.booleans()), LINE_ONLY_COLUMN: marks != "absent"}
    texts = {c: draw(st.sampled_from(_TEXT_TYPES)) for c in ("sport_key", "event_id", "bookmaker", "side", "kind")}
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {
            "sport_key": "nba",
            "event_id": draw(st.sampled_from(["e1", "e2"])),
            "bookmaker": "pin",
            "side": draw(st.sampled_from(_SIDES)),
            "price": draw(st.sampled_from(["-110", "150"])),
            "last_update": draw(st.sampled_from([1000, 2000, 3000])),
            "kind": None,
            "market_key": None,
            "line": draw(st.sampled_from([None, -3.0])),
            LINE_ONLY_COLUMN: None,
        }
        for fault in draw(st.lists(st.sampled_from(sorted(_FAULTS)), max_size=4)):
            row.update(draw(st.sampled_from(_FAULTS[fault])))
        rows.append(row)

    def column(name: str) -> list[Any]:
        return [r[name] for r in rows]

    def number(v: Any) -> Any:
        return None if v in (None, "") or v == "abc" else int(v)

    data = {
        "sport_key": pl.Series(column("sport_key"), dtype=pl.String).cast(texts["sport_key"]),
        "event_id": (
            pl.Series([None if v in (None, "") else int(v[1:]) for v in column("event_id")], dtype=pl.Int64)
            if int_event
            else pl.Series(column("event_id"), dtype=pl.String).cast(texts["event_id"])
        ),
        "bookmaker": pl.Series(column("bookmaker"), dtype=pl.String).cast(texts["bookmaker"]),
        "side": pl.Series(column("side"), dtype=pl.String).cast(texts["side"]),
        # (an Int64 price column cannot hold text: "abc" is a null there)
        "price": (
            pl.Series(column("price"), dtype=pl.String)
            if price_text
            else pl.Series([number(v) for v in column("price")], dtype=pl.Int64)
        ),
        "last_update": pl.Series(column("last_update"), dtype=pl.Int64),
        # (an Int64 kind column: 1 for a kind given, never text: a bad field wherever it is set)
        "kind": (
            pl.Series([None if v in (None, "") else 1 for v in column("kind")], dtype=pl.Int64)
            if int_kind
            else pl.Series(column("kind"), dtype=pl.String).cast(texts["kind"])
        ),
    }
    if columns["market_key"]:
        data["market_key"] = pl.Series(column("market_key"), dtype=pl.String)
    if columns["line"]:
        data["line"] = pl.Series(column("line"), dtype=pl.Float64)
    if marks == "text":
        data[LINE_ONLY_COLUMN] = pl.Series(column(LINE_ONLY_COLUMN), dtype=pl.String)
    elif marks == "bool":  # (no bad mark a Boolean column can hold: "maybe" is a null there)
        data[LINE_ONLY_COLUMN] = pl.Series([v == "true" for v in column(LINE_ONLY_COLUMN)], dtype=pl.Boolean)
    return pl.DataFrame(data)


def _reader(row: dict[str, Any]) -> str | None:
    """The row reader's reason for ``row`` (the batch's name for it: an invalid price, parsed or
    not, is a rejected row there), or None for a usable row."""
    try:
        q = quote_from_row(row)
    except FeedError as exc:
        return exc.reason
    return None if q.price is None or rules.is_valid_price(q.price) else "invalid price"


@settings(max_examples=300, deadline=None)
@given(table=tables())
def test_the_reader_and_both_batch_loads_name_one_reason_per_row(table: pl.DataFrame) -> None:
    """Property: row by row, the row reader's reason == the pure batch load's == the compiled
    load's, and the skip counts equal (an unparsed price: a reader skip, a batch invalid price)."""
    require_fast()
    want = [_reader(row) for row in table.iter_rows(named=True)]
    skips = Counter(r for r in want if r not in (None, "invalid price"))
    for accel in ("pure", "fast"):
        res = detect_counted(table, accel=accel)
        got = dict(res.rejected.iter_rows())
        assert [got.get(i) for i in range(table.height)] == want, accel
        assert res.skipped == dict(skips), accel
        assert res.counters.seen == table.height - sum(skips.values()), accel


@pytest.mark.parametrize("price_text", [True, False])
@pytest.mark.parametrize("text", _TEXT_TYPES)
def test_every_combination_of_up_to_three_faults(price_text: bool, text: pl.DataType) -> None:
    """Every combination of 1-3 faults, each with every value that gives it (~10k rows), in one
    table: reader == pure batch == compiled batch, row by row (the property's rare corners, e.g.
    a line-only row with an unparsed price and a bad mark, each met for sure)."""
    require_fast()
    base: dict[str, Any] = {
        "sport_key": "nba",
        "event_id": "e1",
        "bookmaker": "pin",
        "side": "spread_home@-3.0",
        "price": "-110",
        "last_update": 1000,
        "kind": None,
        "market_key": None,
        "line": None,
        LINE_ONLY_COLUMN: None,
    }
    rows = []
    for r in (1, 2, 3):
        for combo in itertools.combinations(sorted(_FAULTS), r):
            for cells in itertools.product(*(_FAULTS[f] for f in combo)):
                row = dict(base)
                for c in cells:
                    row.update(c)
                rows.append(row)
    table = pl.DataFrame(
        {
            **{
                c: pl.Series([r[c] for r in rows], dtype=pl.String).cast(text)
                for c in ("sport_key", "event_id", "bookmaker", "side", "kind")
            },
            "price": pl.Series([r["price"] for r in rows], dtype=pl.String),
            "last_update": pl.Series([r["last_update"] for r in rows], dtype=pl.Int64),
            "market_key": pl.Series([r["market_key"] for r in rows], dtype=pl.String),
            "line": pl.Series([r["line"] for r in rows], dtype=pl.Float64),
            LINE_ONLY_COLUMN: pl.Series([r[LINE_ONLY_COLUMN] for r in rows], dtype=pl.String),
        }
    )
    if not price_text:  # (an Int64 column: "abc" is a null there)
        table = table.with_columns(pl.col("price").cast(pl.Int64, strict=False))
    want = [_reader(row) for row in table.iter_rows(named=True)]
    assert {"bad field", "bad line", "bad side", "bad time", "missing field"} <= set(want)
    skips = Counter(r for r in want if r not in (None, "invalid price"))
    for accel in ("pure", "fast"):
        res = detect_counted(table, accel=accel)
        got = dict(res.rejected.iter_rows())
        diff = [(i, want[i], got.get(i)) for i in range(table.height) if got.get(i) != want[i]]
        assert not diff, (accel, len(diff), [(rows[i], w, g) for i, w, g in diff[:3]])
        assert res.skipped == dict(skips), accel


@pytest.mark.parametrize("accel", ["pure", "fast"])
def test_a_null_kind_column_is_no_fault(accel: str) -> None:
    """A kind column of type Null (no row names a kind: each derived from its side) judges no
    row: the compiled load's cheap test of the kinds compares none (a Null column cannot)."""
    require_fast()
    table = pl.DataFrame(
        {
            "sport_key": ["nba"] * 2,
            "event_id": ["e1"] * 2,
            "bookmaker": ["pin"] * 2,
            "side": ["h2h_home", "sideways"],
            "price": [-110, -120],
            "last_update": [1000, 2000],
            "kind": [None, None],
            "market_key": [None, None],
        }
    )
    res = detect_counted(table, accel=accel)
    assert res.rejected.rows() == [(1, "bad side")]
    assert res.skipped == {"bad side": 1}


def test_the_order_is_the_one_tuple() -> None:
    """SKIP_ORDER's steps are each named once; the reasons are the readers'."""
    steps = [s for s, _ in SKIP_ORDER]
    assert len(steps) == len(set(steps))
    assert {r for _, r in SKIP_ORDER} == {
        "missing field",
        "bad field",
        "bad line",
        "bad side",
        "bad time",
        "invalid price",
    }


@pytest.mark.parametrize("kind", ["weird", "prop"])
def test_a_parquet_row_of_a_bad_kind_is_skipped_on_both_engines(tmp_path: Path, kind: str) -> None:
    """The lead's repro: a row of kind "weird" (or "prop" on an h2h side without a market key)
    between two usable rows: the stream engine skipped it, the batch one kept it (2 alerts vs 1)."""
    path = tmp_path / "kind.parquet"
    pl.DataFrame(
        {
            "sport_key": ["nba"] * 3,
            "event_id": ["e1"] * 3,
            "bookmaker": ["pin"] * 3,
            "side": ["h2h_home"] * 3,
            "price": [-110, -130, -150],
            "last_update": [1000, 1001, 1002],
            "kind": ["game", kind, "game"],
        }
    ).write_parquet(path)
    out = {}
    for engine in ("stream", "batch"):
        res = CliRunner().invoke(main, ["replay", str(path), "--engine", engine], catch_exceptions=False)
        assert res.exit_code in (0, 1), res.output
        out[engine] = (
            [ln for ln in res.stdout.splitlines() if ln.startswith("{")],
            [ln for ln in res.stderr.splitlines() if "bad field" in ln],
        )
    assert out["batch"] == out["stream"]
    assert len(out["stream"][0]) == 1 and out["stream"][1]
