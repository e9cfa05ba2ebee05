"""Issue 10, found by trying to break the readers and the replay report (helper "inputs-breaker").

Each test is a regression test of one defect found by feeding hostile files: a terminal
escape or rich markup in a file name or a value, a 200 kB value in a skip message, a CSV
header naming a column twice, a UTF-16 CSV, a recording with old-Mac (CR-only) line ends,
and a well-formed recording that holds no odds at all.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, replay
from dropengine.cli.group import main
from dropengine.core.skips import MAX_TEXT, SkipLog, printable
from dropengine.io.files import lines as _lines
from dropengine.io.replay import ReplayStats

from .conftest import FIXTURES

GOLDEN = FIXTURES / "golden"
FRAMES = GOLDEN / "frames.ndjson"
QUOTES_CSV = GOLDEN / "rules.quotes.csv"
HEADER = "sport_key,event_id,bookmaker,side,price,last_update\n"
#: C0 and C1 control characters other than the newline that ends a printed line.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def run(paths: list[Path], fmt: str = "auto") -> tuple[list[dict[str, Any]], ReplayStats]:
    stats = ReplayStats()
    return [d.to_dict() for d in replay(paths, DropEngine(), fmt, stats)], stats


# ---- what a skip report prints cannot garble the terminal -------------------------------------


def test_printable_escapes_control_characters_and_bounds_length() -> None:
    assert printable("ok.ndjson:4") == "ok.ndjson:4"
    assert printable("a\nb\x1b[2J\x00\x9b\u2028") == "a\\nb\\x1b[2J\\x00\\x9b\\u2028"
    long = printable("x" * 200_000)
    assert len(long) <= MAX_TEXT + 40 and "200,000 characters" in long


def test_skip_log_keeps_printable_bounded_text() -> None:
    skips = SkipLog()
    skips.add("e\x1b[2J.ndjson:3", "bad side", "side: " + "x" * 100_000)
    skips.add_file("a\nb.ndjson", "unusable file", "it has: s\x00p")
    for s in skips.first:
        assert not CONTROL.search(str(s)) and "\n" not in str(s) and len(str(s)) < MAX_TEXT * 3


def test_file_names_with_escapes_newlines_and_markup_print_as_text(tmp_path: Path) -> None:
    """A file named ``[red]x[bold].ndjson`` showed as ``x.ndjson`` (rich markup in the files
    row); a name with ESC[2J cleared the terminal; a newline broke the report's lines."""
    names = ["[red]x[bold].ndjson", "e\x1b[2J.ndjson", "a\nb\x1b[31m.ndjson"]
    paths = []
    for i, name in enumerate(names):
        p = tmp_path / name
        p.write_bytes(FRAMES.read_bytes() if i == 2 else b"{}\n")
        paths.append(p)
    for engine in ("stream", "batch"):
        code, out, err = invoke("replay", "--engine", engine, *map(str, paths))
        assert code == 0 and out
        assert not CONTROL.search(err), err
        assert "[red]x[bold].ndjson (skipped)" in err.replace("\n", " ") or "[red]x[bold].ndjson" in err
        assert "e\\x1b[2J.ndjson" in err and "a\\nb\\x1b[31m.ndjson" in err
        assert not any(line.startswith("b") for line in err.splitlines())  # no name split over two lines
    # zero usable input: the error line too
    code, _, err = invoke("replay", str(paths[1]))
    assert code == 1 and not CONTROL.search(err) and "e\\x1b[2J.ndjson" in err


def test_a_huge_value_gives_a_bounded_skip_report(tmp_path: Path) -> None:
    """A 200 kB side was printed in full in the skip report (and kept in memory per skip)."""
    path = tmp_path / "q.csv"
    rows = [f"nba,e{i},b,{'x' * 100_000},-110,{1000 + i}\n" for i in range(10)]
    path.write_text(HEADER + "".join(rows) + "nba,e1,b,h2h_home,-110,1000\nnba,e1,b,h2h_home,-150,2000\n")
    code, out, err = invoke("replay", str(path))
    assert code == 0 and out.count("\n") == 1
    assert len(err) < 20_000, len(err)
    path = tmp_path / "q.ndjson"
    path.write_text("".join(f'{{"sport_key":"s","event_id":"e","bookmaker":"b","side":"{"y" * 300_000}",'
                            f'"price":-110,"last_update":{i}}}\n' for i in range(10)))
    code, _, err = invoke("replay", str(path))
    assert code == 1 and len(err) < 20_000, len(err)


# ---- CSV: a header naming a column twice, UTF-16 ----------------------------------------------


def test_a_csv_header_naming_a_column_twice_is_an_unusable_file(tmp_path: Path) -> None:
    """``...,last_update,price`` read the second price silently (the dict kept the last)."""
    path = tmp_path / "dup.csv"
    path.write_text("sport_key,event_id,bookmaker,side,price,last_update,price\n"
                    "nba,e1,b,h2h_home,-110,1000,-200\nnba,e1,b,h2h_home,-150,2000,-300\n")
    for engine in ("stream", "batch"):
        code, out, err = invoke("replay", "--engine", engine, str(path))
        assert code == 1 and out == ""
        assert "price" in err and "twice" in err, err
    # a repeated column dropengine does not read is harmless
    ok = tmp_path / "extra.csv"
    ok.write_text(HEADER.strip() + ",note,note\nnba,e1,b,h2h_home,-110,1000,a,b\nnba,e1,b,h2h_home,-150,2000,c,d\n")
    code, out, _ = invoke("replay", str(ok))
    assert code == 0 and out.count("\n") == 1


def test_a_utf16_csv_reads_like_utf8(tmp_path: Path) -> None:
    """A UTF-16 CSV (spreadsheet "Unicode" export) was "missing column(s)" with NUL bytes
    printed as its column names."""
    text = QUOTES_CSV.read_text(encoding="utf-8")
    expected, _ = run([QUOTES_CSV])
    for enc in ("utf-16", "utf-16-le", "utf-16-be"):
        path = tmp_path / f"{enc}.csv"
        bom = "\ufeff" if enc != "utf-16" else ""
        path.write_bytes((bom + text).encode(enc))
        drops, stats = run([path])
        assert drops == expected, (enc, stats.skips.first[:3])


# ---- line ends --------------------------------------------------------------------------------


def test_cr_only_line_ends_read_like_lf(tmp_path: Path) -> None:
    """A recording with CR-only line ends was one line: "cannot tell the format" although
    its first line plainly is a frames envelope."""
    expected, _ = run([FRAMES])
    lf = FRAMES.read_bytes()
    for name, data in (("cr.ndjson", lf.replace(b"\n", b"\r")), ("mixed.ndjson", lf.replace(b"\n", b"\r", 7))):
        path = tmp_path / name
        path.write_bytes(data)
        drops, stats = run([path])
        assert drops == expected, (name, [str(s) for s in stats.skips.first[:3]])
    snap = GOLDEN / "theoddsapi_snapshots.ndjson"
    path = tmp_path / "snap.ndjson"
    path.write_bytes(snap.read_bytes().replace(b"\n", b"\r"))
    assert run([path])[0] == run([snap])[0]


# ---- a well-formed recording with no odds ------------------------------------------------------


def test_a_recording_without_odds_is_empty_not_an_error(tmp_path: Path) -> None:
    """Only connected + heartbeat envelopes (a quiet hour recorded by ``watch --record``), a
    CSV with its header only, an empty The Odds API response: nothing was bad, there was
    nothing to detect. Exit 0 with one clear note (it was exit 1, "no usable quotes")."""
    quiet = tmp_path / "quiet.ndjson"
    quiet.write_text('{"type":"connected","sport_key":"basketball_nba"}\n' + '{"type":"heartbeat"}\n' * 10)
    header = tmp_path / "header.csv"
    header.write_text(HEADER)
    none = tmp_path / "none.json"
    none.write_text("[]")
    for path in (quiet, header, none):
        for engine in ("stream", "batch"):
            code, out, err = invoke("replay", "--engine", engine, str(path))
            assert code == 0 and out == "", (path.name, err)
            assert "no odds rows" in err and "error" not in err, err
    code, _, err = invoke("replay", "--engine", "stream", str(quiet))
    assert "heartbeat 10" in err
    # bad input is still an error
    junk = tmp_path / "junk.ndjson"
    junk.write_bytes(b'{"type":"odds_update","data":[{"event_id":"e"}]}\n')
    assert invoke("replay", str(junk))[0] == 1


def test_a_bom_mid_file_from_concatenated_files_is_dropped(tmp_path: Path) -> None:
    """``cat a.ndjson b.ndjson`` where b starts with a UTF-8 BOM: that line was bad json."""
    lines = FRAMES.read_bytes().splitlines(keepends=True)
    path = tmp_path / "cat.ndjson"
    path.write_bytes(b"".join(lines[:3]) + b"\xef\xbb\xbf" + b"".join(lines[3:]))
    drops, stats = run([path])
    assert drops == run([FRAMES])[0] and stats.skips.total == run([FRAMES])[1].skips.total


def test_cr_line_ends_in_gzip_and_crlf_at_a_block_boundary(tmp_path: Path) -> None:
    import gzip

    expected, _ = run([FRAMES])
    path = tmp_path / "cr.ndjson.gz"
    path.write_bytes(gzip.compress(FRAMES.read_bytes().replace(b"\n", b"\r")))
    assert run([path])[0] == expected
    # CRLF whose CR is the last byte the reader has buffered: still read as CRLF
    data = b'{"type":"x"}   \r\n{"type":"y"}\r\n'
    assert data.index(b"\r") == 15
    fh = io.BufferedReader(io.BytesIO(data), buffer_size=16)  # type: ignore[arg-type]
    assert list(_lines(fh)) == [(1, b'{"type":"x"}   \r\n'), (2, b'{"type":"y"}\r\n')]
    fh = io.BufferedReader(io.BytesIO(data.replace(b"\r\n", b"\r")), buffer_size=16)  # type: ignore[arg-type]
    assert list(_lines(fh)) == [(1, b'{"type":"x"}   '), (2, b'{"type":"y"}')]


# ---- Parquet of unusual column types: both engines read it the same way -------------------------


def _parquet_variants(tmp_path: Path) -> dict[str, Path]:
    import polars as pl

    base: dict[str, Any] = {"sport_key": ["nba"] * 3, "event_id": ["e1"] * 3, "bookmaker": ["b"] * 3,
                            "side": ["h2h_home"] * 3}
    ok_lu = [1000, 2000, 3000]
    frames = {
        "price_bool": {**base, "price": [True, False, True], "last_update": ok_lu},
        "price_list": {**base, "price": [[-110], [-150], [-190]], "last_update": ok_lu},
        "price_str": {**base, "price": ["-110", "-150", "x"], "last_update": ok_lu},
        "price_decimal": {**base, "price": pl.Series([-110, -150, -190], dtype=pl.Decimal(10, 2)),
                          "last_update": ok_lu},
        "line_str": {**base, "price": [-110, -150, -190], "last_update": ok_lu, "line": ["a", "b", "c"]},
        "kind_int": {**base, "price": [-110, -150, -190], "last_update": ok_lu, "kind": [1, 2, 3]},
        "commence_int": {**base, "price": [-110, -150, -190], "last_update": ok_lu, "commence_time": [1, 2, 3]},
        "lu_datetime": {**base, "price": [-110, -150, -190],
                        "last_update": pl.Series(ok_lu).cast(pl.Datetime("ms"))},
        "lu_datetime_utc": {**base, "price": [-110, -150, -190],
                            "last_update": pl.Series(ok_lu).cast(pl.Datetime("ms", "UTC"))},
        "lu_float": {**base, "price": [-110, -150, -190], "last_update": [1000.0, 2000.5, float("nan")]},
        "lu_decimal": {**base, "price": [-110, -150, -190],
                       "last_update": pl.Series(ok_lu, dtype=pl.Decimal(20, 0))},
        "lu_str": {**base, "price": [-110, -150, -190], "last_update": ["1000", "2000", "x"]},
        "event_int": {**base, "event_id": [1, 1, 1], "price": [-110, -150, -190], "last_update": ok_lu},
        "player_bytes": {**base, "price": [-110, -150, -190], "last_update": ok_lu, "player": [b"a", b"b", b"c"]},
    }
    out = {}
    for name, cols in frames.items():
        path = tmp_path / f"{name}.parquet"
        pl.DataFrame(cols).write_parquet(path)
        out[name] = path
    return out


def test_parquet_of_any_column_types_gives_the_same_result_in_both_engines(tmp_path: Path) -> None:
    """The batch engine said "usage error" (exit 2) for a bool/list price or a text line, and
    alerted on integer kinds and commence times the stream engine skips as bad fields."""
    for name, path in _parquet_variants(tmp_path).items():
        stream = invoke("replay", "--engine", "stream", str(path))
        batch = invoke("replay", "--engine", "batch", str(path))
        assert stream[0] in (0, 1) and "Traceback" not in stream[2], (name, stream)
        assert (stream[0], stream[1]) == (batch[0], batch[1]), (name, stream, batch)


def test_parquet_datetimes_and_decimals_are_read_by_the_row_reader(tmp_path: Path) -> None:
    """A Datetime ``last_update`` and a Decimal ``price`` are ordinary Parquet types (a
    database export); the batch detector read them, the row reader skipped every row."""
    variants = _parquet_variants(tmp_path)
    for name in ("lu_datetime", "lu_datetime_utc", "price_decimal", "lu_decimal"):
        drops, stats = run([variants[name]])
        assert [(d["prev"], d["new"], d["timestamp"]) for d in drops] == [
            (-110, -150, 2000), (-150, -190, 3000)], (name, stats.skips.first[:2])


# ---- a property: hostile files never escape, and both engines agree ------------------------------

_GOOD = FRAMES.read_bytes().splitlines()[:12] + QUOTES_CSV.read_bytes().splitlines()[:6]
_HOSTILE = [
    b"[" * 3000 + b"]" * 3000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b"[]", b"{}", b"null", b"NaN", b"1e400",
    b'{"type":"odds_update","data":[{"event_id":"e","bookmaker":"b","last_update":' + str(2**70).encode()
    + b',"home_ml":-110}]}', b"\xff\xfe\x00", b"\x00", b"\xef\xbb\xbf{}", b"data: {}", b": comment", b"",
    b"   ", b'"unclosed,quote', b"a,b,c", b'{"side":"h2h_home"}', b'[{"bookmakers":[]}]', b"\r", b"\x1b[2J",
    b'{"type":"odds_drop"}', b'{"op":"mcm","pt":1}', b'{"sport_key":"s","event_id":"e","bookmaker":"b",'
    b'"side":"h2h_home","price":-110,"last_update":1e300}',
]


def _summary_rows(err: str) -> list[str]:
    """The summary and skip report minus what differs by design (keys held: stream only)."""
    return [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("keys held")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.sampled_from(_GOOD + _HOSTILE), min_size=0, max_size=25),
       suffix=st.sampled_from([".ndjson", ".csv", ".sse", ".json", ".txt", ".ndjson.gz"]),
       ending=st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_hostile_files_never_escape_and_both_engines_agree(
    tmp_path_factory: Any, lines: list[bytes], suffix: str, ending: bytes
) -> None:
    import gzip

    path = tmp_path_factory.mktemp("h") / f"f{suffix}"
    data = ending.join(lines)
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    results = []
    for engine in ("stream", "batch"):
        res = CliRunner().invoke(main, ["replay", "--engine", engine, str(path)])
        assert res.exception is None or isinstance(res.exception, SystemExit), (engine, res.exception)
        assert res.exit_code in (0, 1), (engine, res.exit_code, res.stderr)
        assert "Traceback" not in res.stderr
        results.append((res.exit_code, res.stdout, _summary_rows(res.stderr)))
    assert results[0][:2] == results[1][:2]
    assert results[0][2] == results[1][2]


def test_a_directory_of_subdirectories_says_they_are_not_read(tmp_path: Path) -> None:
    """``replay odds/`` where the responses sit in ``odds/2025-01/``: the report said only
    "no .json / .ndjson files in it", which reads as if the files were missing."""
    top = tmp_path / "odds"
    (top / "2025-01").mkdir(parents=True)
    (top / "2025-01" / "a.json").write_bytes((GOLDEN / "theoddsapi_snapshots.ndjson").read_bytes()[:10])
    code, out, err = invoke("replay", str(top))
    assert code == 1 and out == ""
    assert "2025-01" in err and "subdirector" in err, err


def test_a_short_key_is_masked_where_it_stands_alone_not_inside_words() -> None:
    """With ``--api-key k`` (any key works on mock-upstream) every "k" of every message was
    masked: "networ*** error: ConnectError"."""
    from dropengine.core.keys import redact

    assert redact("network error: ConnectError", ["k"]) == "network error: ConnectError"
    assert redact("GET /v1/sse/odds/x?apiKey=k&y=1 failed: key 'k' unknown", ["k"]) == (
        "GET /v1/sse/odds/x?apiKey=***&y=1 failed: key '***' unknown")
    assert redact("token demo rejected; demonstration", ["demo"]) == "token *** rejected; demonstration"
    long = "sk-live-0123456789abcdef"
    assert redact(f"x{long}y and {long}", [long]) == "x***y and ***"  # a real key: masked everywhere


def test_quote_tables_without_their_extension_are_told_by_content(tmp_path: Path) -> None:
    """A CSV or Parquet table from a pipe (``/dev/stdin``, ``<(zcat q.csv.gz)``) or saved
    without its extension: "cannot tell the format" in auto, and every line "bad json" even
    with ``--format quotes`` (the table kind came from the extension only)."""
    import polars as pl

    expected, _ = run([QUOTES_CSV])
    csv_copy = tmp_path / "quotes_csv"
    csv_copy.write_bytes(QUOTES_CSV.read_bytes())
    pq = tmp_path / "quotes_pq"
    pl.read_csv(QUOTES_CSV, infer_schema_length=0).write_parquet(pq)
    for path in (csv_copy, pq):
        for fmt in ("auto", "quotes"):
            drops, stats = run([path], fmt)
            assert drops == expected, (path.name, fmt, [str(s) for s in stats.skips.first[:3]])


def test_rows_the_batch_detector_rejects_are_reported_printable(tmp_path: Path) -> None:
    """The batch engine's own rejects bypassed the skip log's escaping (a Parquet file named
    with ESC[2J cleared the terminal in ``--engine batch`` only)."""
    import polars as pl

    path = tmp_path / "e\x1b[2J.parquet"
    pl.DataFrame({"sport_key": ["nba"] * 3, "event_id": ["e1"] * 3, "bookmaker": ["b"] * 3,
                  "side": ["h2h_home"] * 3, "price": [-110, 50, -150], "last_update": [1000, 2000, 3000]}
                 ).write_parquet(path)
    code, out, err = invoke("replay", "--engine", "batch", str(path))
    assert code == 0 and out.count("\n") == 1
    assert "invalid" in err and not CONTROL.search(err), err


def test_parquet_file_names_are_not_glob_patterns(tmp_path: Path) -> None:
    """polars reads a path as a glob: ``odds[1].parquet`` was "unreadable file" (invalid glob
    / no file matched), and ``q[12].parquet`` read q1.parquet and q2.parquet instead."""
    import polars as pl

    def table(prices: list[int]) -> pl.DataFrame:
        n = len(prices)
        return pl.DataFrame({"sport_key": ["nba"] * n, "event_id": ["e1"] * n, "bookmaker": ["b"] * n,
                             "side": ["h2h_home"] * n, "price": prices,
                             "last_update": [1000 * (i + 1) for i in range(n)]})

    table([-110, -150]).write_parquet(tmp_path / "q[12].parquet")
    table([-110, -200, -300]).write_parquet(tmp_path / "q1.parquet")
    table([-110, -250, -350]).write_parquet(tmp_path / "q2.parquet")
    for engine in ("stream", "batch"):
        code, out, err = invoke("replay", "--engine", engine, str(tmp_path / "q[12].parquet"))
        assert code == 0 and out.count("\n") == 1 and '"new":-150' in out, (engine, out, err)


def test_ctrl_c_during_a_replay_keeps_the_alerts_found_and_exits_130(monkeypatch: Any) -> None:
    """Ctrl-C printed click's "Aborted!" with exit status 1 (which means "nothing usable"),
    dropped up to 255 alerts found but not yet written, and no summary."""
    import dropengine.cli.replay as cli

    drops = list(replay([FRAMES], DropEngine()))
    assert 2 <= len(drops) < 256

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        yield from drops
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "replay", interrupted)
    code, out, err = invoke("replay", str(FRAMES))
    assert code == 130
    assert out.count("\n") == len(drops)
    assert "interrupted" in err and "Aborted" not in err


def test_bz2_xz_and_unlabelled_gzip_read_and_zstd_zip_are_named(tmp_path: Path) -> None:
    """``.bz2``/``.xz`` recordings (Betfair's historical data is .bz2) and a gzip file without
    ``.gz`` were "cannot tell the format (the first is '\\x1f\\x8b...')"; a zstd or zip
    archive now says what it is and how to read it."""
    import bz2
    import gzip
    import lzma

    expected, _ = run([FRAMES])
    data = FRAMES.read_bytes()
    for name, blob in (("f.ndjson.bz2", bz2.compress(data)), ("f.ndjson.xz", lzma.compress(data)),
                       ("f.ndjson", gzip.compress(data)), ("f.bin", gzip.compress(data))):
        path = tmp_path / name
        path.write_bytes(blob)
        drops, stats = run([path])
        assert drops == expected, (name, [str(s) for s in stats.skips.first[:2]])
    csv = tmp_path / "q.csv.xz"
    csv.write_bytes(lzma.compress(QUOTES_CSV.read_bytes()))
    assert run([csv])[0] == run([QUOTES_CSV])[0]
    for name, magic, tool in (("f.ndjson.zst", b"\x28\xb5\x2f\xfd", "zstd"), ("f.zip", b"PK\x03\x04", "zip")):
        path = tmp_path / name
        path.write_bytes(magic + b"\x00" * 64)
        code, _, err = invoke("replay", str(path))
        assert code == 1 and tool in err and "/dev/stdin" in err, err


def test_semicolon_and_tab_separated_tables_are_read(tmp_path: Path) -> None:
    """A spreadsheet in a European locale saves CSV with ';' (and "text" exports use tabs):
    "not a quote table: missing column(s) sport_key, ... (it has: sport_key;event_id;...)"."""
    import csv as csvmod

    expected, _ = run([QUOTES_CSV])
    rows = list(csvmod.reader(QUOTES_CSV.read_text(encoding="utf-8").splitlines()))
    for sep, name in ((";", "semi.csv"), ("\t", "tabs.csv")):
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as fh:
            csvmod.writer(fh, delimiter=sep).writerows(rows)
        drops, stats = run([path])
        assert drops == expected, (name, [str(s) for s in stats.skips.first[:2]])


def test_a_header_repeated_mid_file_is_no_bad_row(tmp_path: Path) -> None:
    """``cat a.csv b.csv``: b's header line was an "invalid price: 'price' is not a number"
    skip (and the input looked damaged) although nothing was wrong."""
    text = QUOTES_CSV.read_text(encoding="utf-8")
    path = tmp_path / "cat.csv"
    path.write_text(text + text)
    drops, stats = run([path])
    _, base = run([QUOTES_CSV])
    assert stats.skips.total == 2 * base.skips.total, [str(s) for s in stats.skips.first]
    assert len(drops) >= len(run([QUOTES_CSV])[0])
