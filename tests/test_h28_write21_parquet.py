"""Issue 14 (session 21, write21): the cheaper checks around ``--output x.parquet``'s write.

Two pieces of ``io.sinks`` that run before and beside the Parquet write read fewer rows since
session 21, and must give what they gave before:

- ``_constant_categoricals`` looks at ~1,000 rows spread over a Categorical column before it reads
  every row's code for min and max: a column of several values is told by the spread rows alone,
  a column whose rows all agree there is still read whole. So a column with one other value (or
  a null) on any one row, wherever it is, stays Categorical, and the file stays polars' own bytes;
- ``_type_counts`` (``AlertWriter.counts`` from a batch table) counts the :data:`SIGNALS` words by
  comparison and orders them by the first row of each, falling back to ``unique`` for any other
  value or a null: the same pairs, in the same order, as ``unique(maintain_order=True)`` with
  ``unique_counts``.

Frames here share polars' global category map with strings other columns use (the physical ids
of a column are sparse and not in its own order, as in a replay process that read its quotes as
Categoricals first), and hold every dtype an alerts table has (Categorical, String, Int64,
Float64, all-null, constant and several chunks); the file ``_write_parquet`` writes reads back as
the frame, with the schema and ``ARROW:schema`` polars records, byte for byte polars' own.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.alerts import SIGNALS
from dropengine.io.sinks import PARQUET_WRITE, _constant_categoricals, _type_counts, _write_parquet

_WORDS = ["pin", "dk", "fd", "", "é" * 3, "x" * 30, "spread_home@-3.5", "total_over@44.5"]
_TEXT = st.one_of(st.none(), st.sampled_from(_WORDS), st.text(max_size=20))


def _global_map(draw: st.DrawFn) -> None:
    """Puts strings into polars' global category map before the frame is built (other columns'
    and unseen ones), so a column's physical ids are sparse and not in its order of appearance."""
    others = draw(st.lists(st.one_of(st.sampled_from(_WORDS), st.text(max_size=12)), max_size=30))
    pl.Series("others", others, dtype=pl.Categorical)


@st.composite
def _frames(draw: st.DrawFn) -> pl.DataFrame:
    _global_map(draw)
    n = draw(st.integers(0, 3_000))
    columns: dict[str, pl.Series] = {}
    kinds = ["cat", "few", "one", "one_but", "str", "int", "float", "null"]
    for i, kind in enumerate(draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=7))):
        name = f"c{i}"
        if kind in ("one", "one_but"):
            word = draw(st.sampled_from(_WORDS))
            values: list[str | None] = [word] * n
            if kind == "one_but" and n:  # one other value, or a null, on one row anywhere
                values[draw(st.integers(0, n - 1))] = draw(st.one_of(st.none(), st.sampled_from(_WORDS)))
            columns[name] = pl.Series(name, values, dtype=pl.Categorical)
        elif kind == "few":  # a few repeated values, some nulls (bookmakers, sides, directions)
            pool = draw(st.lists(_TEXT, min_size=1, max_size=4))
            picks = draw(st.lists(st.integers(0, len(pool) - 1), min_size=min(n, 50), max_size=min(n, 50)))
            columns[name] = pl.Series(
                name, [pool[picks[j % len(picks)]] for j in range(n)] if picks else [], dtype=pl.Categorical
            )
        elif kind in ("cat", "str"):
            small = draw(st.lists(_TEXT, min_size=min(n, 40), max_size=min(n, 40)))
            column = [small[j % len(small)] for j in range(n)] if small else []
            columns[name] = pl.Series(name, column, dtype=pl.String if kind == "str" else pl.Categorical)
        elif kind == "int":
            ints = draw(
                st.lists(
                    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), min_size=min(n, 40), max_size=min(n, 40)
                )
            )
            columns[name] = pl.Series(name, [ints[j % len(ints)] for j in range(n)] if ints else [], dtype=pl.Int64)
        elif kind == "float":
            floats = draw(st.lists(st.one_of(st.none(), st.floats()), min_size=min(n, 40), max_size=min(n, 40)))
            columns[name] = pl.Series(
                name, [floats[j % len(floats)] for j in range(n)] if floats else [], dtype=pl.Float64
            )
        else:
            dtype = draw(st.sampled_from([pl.Int64, pl.Float64, pl.String, pl.Categorical]))
            columns[name] = pl.Series(name, [None] * n, dtype=dtype)
    frame = pl.DataFrame(columns)
    cut = draw(st.integers(0, n))
    if 0 < cut < n:  # several chunks, as a batch run's table
        frame = pl.concat([frame.head(cut), frame.tail(n - cut)], rechunk=False)
    return frame


def _constant_reference(frame: pl.DataFrame) -> set[str]:
    """The Categorical columns with one value on every row or none on any, read row by row."""
    out = set()
    for name, dtype in frame.schema.items():
        if dtype == pl.Categorical:
            values = set(frame.get_column(name).cast(pl.String).to_list())
            if len(values) <= 1:
                out.add(name)
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=_frames())
def test_the_file_reads_back_as_the_frame(tmp_path: Path, frame: pl.DataFrame) -> None:
    enums = {s.name: s for s in _constant_categoricals(frame)}
    assert set(enums) == _constant_reference(frame)
    for name, s in enums.items():
        assert isinstance(s.dtype, pl.Enum)
        assert s.cast(pl.String).equals(frame.get_column(name).cast(pl.String))
    ours, plain = tmp_path / "ours.parquet", tmp_path / "plain.parquet"
    _write_parquet(frame, ours)
    back = pl.read_parquet(ours)
    assert back.schema == frame.schema
    assert back.equals(frame)
    frame.write_parquet(plain, **PARQUET_WRITE)
    assert pl.read_parquet_metadata(ours) == pl.read_parquet_metadata(plain)  # the recorded ARROW:schema
    assert ours.read_bytes() == plain.read_bytes()


def test_one_other_row_between_the_spread_rows(tmp_path: Path) -> None:
    # 100,000 rows: the spread rows are every 97th; the other value sits between two of them
    n = 100_000
    for other in ("dk", None):
        values: list[str | None] = ["pin"] * n
        values[97 * 500 + 13] = other
        frame = pl.DataFrame(
            {"book": pl.Series(values, dtype=pl.Categorical), "kind": pl.Series(["game"] * n, dtype=pl.Categorical)}
        )
        assert [s.name for s in _constant_categoricals(frame)] == ["kind"]
        ours, plain = tmp_path / "ours.parquet", tmp_path / "plain.parquet"
        _write_parquet(frame, ours)
        frame.write_parquet(plain, **PARQUET_WRITE)
        assert ours.read_bytes() == plain.read_bytes()
        assert pl.read_parquet(ours).equals(frame)


def _reference_counts(types: pl.Series) -> list[tuple[str, int]]:
    return [
        (str(k), n)
        for k, n in zip(types.unique(maintain_order=True).to_list(), types.unique_counts().to_list(), strict=True)
    ]


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(
        st.one_of(st.sampled_from(SIGNALS), st.sampled_from(["steam2", "", "line_move "]), st.none()), max_size=60
    ),
    only_signals=st.booleans(),
    dtype=st.sampled_from(["cat", "str", "enum"]),
    cut=st.integers(0, 60),
    data=st.data(),
)
def test_type_counts_are_uniques_counts(
    words: list[str | None], only_signals: bool, dtype: str, cut: int, data: st.DataObject
) -> None:
    _global_map(data.draw)
    if only_signals or dtype == "enum":
        words = [w for w in words if w in SIGNALS]
    if dtype == "enum":
        types = pl.Series("type", words, dtype=pl.Enum(list(SIGNALS)))
    else:
        types = pl.Series("type", words, dtype=pl.Categorical if dtype == "cat" else pl.String)
    frame = pl.DataFrame([types])
    if 0 < cut < frame.height:
        frame = pl.concat([frame.head(cut), frame.tail(frame.height - cut)], rechunk=False)
    assert _type_counts(frame) == _reference_counts(frame.get_column("type"))


def test_type_counts_in_order_of_first_appearance() -> None:
    n = 50_000
    kinds = ["steam"] * 3 + ["line_move"] * (n - 10) + ["odds_drop"] * 7
    frame = pl.DataFrame({"type": pl.Series(kinds, dtype=pl.Categorical)})
    assert _type_counts(frame) == [("steam", 3), ("line_move", n - 10), ("odds_drop", 7)]
    assert _type_counts(frame.head(0)) == []


def test_a_constant_column_keeps_its_chunks(tmp_path: Path) -> None:
    # polars cuts pages by the chunks it is handed: a constant column made one chunk beside a
    # frame of chunks of 1 and 351 rows was written as one data page where polars writes two
    for values in ([None] * 352, ["pin"] * 352):
        whole = pl.DataFrame({"c": pl.Series(values, dtype=pl.Categorical), "n": pl.int_range(352, eager=True)})
        frame = pl.concat([whole.head(1), whole.tail(351)], rechunk=False)
        (enum,) = _constant_categoricals(frame)
        assert [len(c) for c in enum.get_chunks()] == [1, 351]
        ours, plain = tmp_path / "ours.parquet", tmp_path / "plain.parquet"
        _write_parquet(frame, ours)
        frame.write_parquet(plain, **PARQUET_WRITE)
        assert ours.read_bytes() == plain.read_bytes()
        assert pl.read_parquet(ours).equals(frame)
