"""Issue 14 (io): Parquet quote and alert tables keep their text dictionary-encoded, and the
whole ``replay --engine batch --output`` process takes the fast way without changing a byte.

- ``simulate`` and ``write_quote_table`` write Parquet text columns dictionary-encoded
  (Categorical, read from the file's own schema), and they read back as such, with the same quotes;
- the batch engine reads a dictionary-encoded table as it is (Categorical, no sort of one file);
- Categorical and String inputs give the same alerts and the same ``--output`` bytes, and a
  replay of a dictionary-keyed Parquet file by the batch engine writes what the stream engine writes;
- :meth:`AlertWriter.write_batch` (the alerts frame, column by column) writes exactly the file
  :meth:`AlertWriter.write` of the alert values writes (CSV and Parquet, ints beside floats);
- a quiet ``replay`` does not import rich, the server, the live clients or the bus.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote, encode_alert
from dropengine.analysis.batch import detect_counted
from dropengine.cli.group import main
from dropengine.core.skips import SkipLog
from dropengine.formats.tables import QUOTE_COLUMNS, TEXT_COLUMNS
from dropengine.io.replay import load_table, replay_batch
from dropengine.io.sinks import AlertWriter
from dropengine.io.tables import parquet_quote_table, read_quote_table, write_quote_table

from .strategies import T0, detect_options, quote_streams, signal_options, streams_with_options

REPO = Path(__file__).resolve().parent.parent
_SETTINGS = settings(max_examples=20, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_CLI_OPTIONS = {"threshold": "--threshold", "direction": "--direction", "reference": "--reference", "unit": "--unit"}


def _text_types(path: Path) -> dict[str, pl.DataType]:
    """The file's own schema (its Arrow schema in the Parquet metadata) for the text columns."""
    schema = pl.read_parquet_schema(path)
    return {c: t for c, t in schema.items() if c in TEXT_COLUMNS or c in ("type", "direction")}


def _as_string(src: Path, dst: Path) -> None:
    """The same table with plain (String) text columns."""
    frame = pl.read_parquet(src)
    frame.with_columns(pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Categorical
                       ).write_parquet(dst)


def _replay(args: list[str]) -> bytes:
    result = CliRunner().invoke(main, ["replay", "-q", *args])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def _cli_flags(opts: dict[str, Any]) -> list[str]:
    return [x for k, flag in _CLI_OPTIONS.items() if k in opts for x in (flag, str(opts[k]))]


def test_simulate_writes_dictionary_encoded_text_and_replays_as_its_csv(tmp_path: Path) -> None:
    pq, csv = tmp_path / "sim.parquet", tmp_path / "sim.csv"
    for out in (pq, csv):
        args = ["simulate", "--events", "2", "--books", "3", "--hours", "1", "--line-moves", "0.5", "--out", str(out)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    types = _text_types(pq)
    assert set(types) == set(TEXT_COLUMNS)
    assert all(t == pl.Categorical for t in types.values()), types
    signals = ["--types", "odds_drop,line_move,steam", "--steam-books", "2"]
    for engine in ("batch", "stream"):
        assert _replay(["--engine", engine, *signals, str(pq)]) == _replay(["--engine", engine, *signals, str(csv)])


@_SETTINGS
@given(stream=quote_streams(lines=True, fractional=False, invalid=False))
def test_parquet_quote_tables_round_trip_dictionary_encoded(tmp_path: Path, stream: list[Quote]) -> None:
    path = tmp_path / "q.parquet"
    write_quote_table(path, stream)
    assert all(t == pl.Categorical for t in _text_types(path).values())
    skips = SkipLog()
    assert [q for _, q in read_quote_table(path, skips)] == stream and not skips
    # the batch engine's reader: the file as it is, its text still dictionary-encoded
    loaded, _ = load_table([path])  # the columnar reader took it (the row reader's table has String text)
    assert all(loaded.schema[c] == pl.Categorical for c in ("event_id", "bookmaker", "side"))
    table, where = parquet_quote_table([path], SkipLog())
    assert table.height == len(stream)
    assert all(table.schema[c] == pl.Categorical for c in ("event_id", "bookmaker", "side"))
    assert table.equals(pl.read_parquet(path))
    if stream:
        assert where(len(stream) - 1) == f"q.parquet:row {len(stream)}"


@_SETTINGS
@given(case=st.one_of(streams_with_options(detect_options()),
                      signal_options().flatmap(lambda o: st.tuples(quote_streams(lines=True), st.just(o)))))
def test_the_file_written_from_the_alerts_frame_is_the_file_of_the_alert_values(
    tmp_path: Path, case: tuple[list[Quote], dict[str, Any]]
) -> None:
    """write_batch (a drops table column by column) == write of alert_values (one row per alert),
    byte for byte, for String and Categorical text: ints and floats mixed (the decoded table's
    per-row int flags), every option; signal runs go through the values."""
    stream, opts = case
    src = tmp_path / "q.ndjson"
    write_quote_table(src, stream)
    table, _ = load_table([src], line_only=True)
    cats = table.with_columns(pl.col(c).cast(pl.Categorical) for c in TEXT_COLUMNS if c in table.columns)
    for suffix in (".csv", ".parquet"):
        files = []
        for frame in (table, cats):
            result = detect_counted(frame, **opts)
            types = opts.get("types", ("odds_drop",))
            fast, slow = tmp_path / f"fast{suffix}", tmp_path / f"slow{suffix}"
            with AlertWriter(fast, types=types) as w:
                w.write_batch(result)
            with AlertWriter(slow, types=types) as v:
                v.write(result.alert_values())
            assert (w.count, w.counts) == (v.count, v.counts)
            assert fast.read_bytes() == slow.read_bytes()
            files.append(fast.read_bytes())
        assert files[0] == files[1]


def test_signed_zero_and_mixed_number_cells_are_written_as_their_values(tmp_path: Path) -> None:
    """A CSV number column that is not all ints holds each value's JSON text: 0.0 and -0.0 (one
    value to polars' unique) stay two texts, an int beside floats stays an int."""
    rows = []
    for event, line in (("e1", 0.0), ("e2", -0.0)):
        for i, price in enumerate((-110, -125.5)):
            rows.append({"sport_key": "nba", "event_id": event, "bookmaker": "b", "side": "spread_home@0",
                         "price": price, "last_update": T0 + i, "kind": "game", "market_key": "spreads",
                         "line": line})
    src = tmp_path / "q.ndjson"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = replay_batch([src])
    out = tmp_path / "fast.csv"
    with AlertWriter(out) as w:
        w.write_batch(result)
    text = out.read_text()
    assert text.splitlines()[1].endswith(",0.0") and text.splitlines()[2].endswith(",-0.0"), text
    assert ",-110,-125.5,-15.5," in text
    with AlertWriter(tmp_path / "slow.csv") as v:
        v.write(result.alert_values())
    assert text == (tmp_path / "slow.csv").read_text()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=streams_with_options(detect_options(filters=False, reprime=(True,)), fractional=False))
def test_dictionary_keyed_parquet_replays_as_string_keys_and_as_the_stream_engine(
    tmp_path: Path, case: tuple[list[Quote], dict[str, Any]]
) -> None:
    stream, opts = case
    cat, text = tmp_path / "cat.parquet", tmp_path / "str.parquet"
    write_quote_table(cat, stream)
    _as_string(cat, text)
    flags = _cli_flags(opts)
    for out in ("a.parquet", "a.csv", None):
        got = []
        for engine, src in (("batch", cat), ("batch", text), ("stream", cat)):
            dst = tmp_path / f"{engine}-{src.stem}-{out}"
            args = ["replay", "-q", "--engine", engine, *flags, str(src), *(["--output", str(dst)] if out else [])]
            result = CliRunner().invoke(main, args)
            if result.exit_code == 1 and "no usable quotes" in result.output:
                got.append(b"unusable")  # every price invalid: exit 1 on every path alike
                continue
            assert result.exit_code == 0, result.output
            got.append(dst.read_bytes() if out else result.stdout_bytes)
        assert got[0] == got[1] == got[2], out


def test_stream_alerts_of_a_parquet_file_equal_the_engine_fed_its_quotes(tmp_path: Path) -> None:
    """The dictionary-encoded file is the same quotes: the engine fed them gives what replay does."""
    quotes = [Quote("basketball_nba", "e1", b, "h2h_home", p, T0 + i, "game", "h2h")
              for i, (b, p) in enumerate([("b1", -110), ("b2", -110), ("b1", -130), ("b2", -105), ("b1", -110)])]
    path = tmp_path / "q.parquet"
    write_quote_table(path, quotes)
    want = b"".join(encode_alert(a) + b"\n" for a in DropEngine().observe_many(quotes))
    assert want
    assert _replay(["--engine", "batch", str(path)]) == _replay([str(path)]) == want


_PROBE = """
import sys
from dropengine.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    heavy = ("rich", "httpx", "starlette", "sse_starlette", "uvicorn", "matplotlib", "nats", "distributed", "anyio")
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {*heavy, "polars", "numba"})
    print("LOADED", ",".join(loaded), file=sys.stderr)
"""


def _loaded(args: list[str]) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    line = [x for x in done.stderr.splitlines() if x.startswith("LOADED")][-1]
    return set(filter(None, line.split(" ", 1)[1].split(",")))


def test_a_quiet_replay_imports_only_what_it_uses(tmp_path: Path) -> None:
    quotes = [Quote("basketball_nba", "e1", "b1", "h2h_home", p, T0 + i) for i, p in enumerate((-110, -130, -110))]
    pq, nd = tmp_path / "q.parquet", tmp_path / "q.ndjson"
    write_quote_table(pq, quotes)
    write_quote_table(nd, quotes)
    batch = _loaded(["replay", "-q", "--engine", "batch", str(pq), "--output", str(tmp_path / "a.parquet")])
    assert batch <= {"polars", "numba"}, batch  # the batch engine's own, nothing for show or the network
    stream = _loaded(["replay", "-q", str(nd), "--output", str(tmp_path / "a.ndjson")])
    assert stream == set(), stream  # a stream replay of NDJSON needs neither polars nor numba


@pytest.mark.parametrize("columns", [QUOTE_COLUMNS])
def test_a_table_of_string_and_one_of_categorical_files_merge(tmp_path: Path, columns: tuple[str, ...]) -> None:
    """Several files (one Categorical, one String) still merge by clock as the row readers do."""
    a = [Quote("basketball_nba", "e1", "b1", "h2h_home", p, T0 + 10 * i) for i, p in enumerate((-110, -130, -110))]
    b = [Quote("basketball_nba", "e1", "b2", "h2h_home", p, T0 + 10 * i + 5) for i, p in enumerate((-110, -140))]
    fa, fb, fs = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "b_str.parquet"
    write_quote_table(fa, a)
    write_quote_table(fb, b)
    _as_string(fb, fs)
    table, where = parquet_quote_table([fa, fs], SkipLog())
    assert table.get_column("bookmaker").cast(pl.String).to_list() == ["b1", "b2", "b1", "b2", "b1"]
    assert [where(i) for i in range(5)] == ["a.parquet:row 1", "b_str.parquet:row 1", "a.parquet:row 2",
                                            "b_str.parquet:row 2", "a.parquet:row 3"]
    assert set(columns) <= set(table.columns)
    assert _replay(["--engine", "batch", str(fa), str(fs)]) == _replay([str(fa), str(fb)])


def test_a_rejected_row_is_described_as_the_row_reader_describes_it(tmp_path: Path) -> None:
    """io.tables.rejected_detail: the row reader's message for a row the batch detector rejected
    (a null key, a bad time), for io.replay.replay_batch's skip report."""
    from dropengine.io.tables import rejected_detail

    path = tmp_path / "bad.parquet"
    pl.DataFrame({
        "sport_key": ["nba"] * 3, "event_id": ["e", None, "e"], "bookmaker": ["b"] * 3, "side": ["h2h_home"] * 3,
        "price": [-110, -120, -130], "last_update": [T0, T0 + 1, -1],
    }).with_columns(pl.col("sport_key", "event_id", "bookmaker", "side").cast(pl.Categorical)).write_parquet(path)
    stream = SkipLog()
    list(read_quote_table(path, stream))
    table, where = parquet_quote_table([path], SkipLog())
    rejected = ((1, "missing field"), (2, "bad time"))
    got = [(where(i), reason, rejected_detail(table, i, reason)) for i, reason in rejected]
    assert got == [(s.where, s.reason, s.message) for s in stream.first]
    assert rejected_detail(table, 0, "missing field") == "rejected by the batch detector"
