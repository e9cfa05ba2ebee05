"""Issue 10, bad input: a decoder exception is a bad line, CSV resynchronises at the next
line, format detection votes over several lines, one unreadable file never stops the
others, and zero usable input is an error (exit 1) said once.

Every test builds its broken input from the golden fixtures (or real recordings) and checks
that the good rows around the bad part give exactly the golden alerts.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from dropengine import DropEngine, replay
from dropengine.cli.group import main
from dropengine.core.errors import FeedError
from dropengine.core.skips import SkipLog
from dropengine.formats.jsonline import decode_json
from dropengine.io.recordings import detect_format, read_recording
from dropengine.io.replay import ReplayStats, load_table, replay_batch

from .conftest import FIXTURES, require_data

GOLDEN = FIXTURES / "golden"
FRAMES = GOLDEN / "frames.ndjson"
SSE = GOLDEN / "capture.sse"
QUOTES = GOLDEN / "rules.quotes.ndjson"
QUOTES_CSV = GOLDEN / "rules.quotes.csv"
SNAPSHOTS = GOLDEN / "theoddsapi_snapshots.ndjson"

DEEP_LIST = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000


def run(paths: list[Path], fmt: str = "auto") -> tuple[list[dict[str, Any]], ReplayStats]:
    stats = ReplayStats()
    return [d.to_dict() for d in replay(paths, DropEngine(), fmt, stats)], stats


def golden(path: Path) -> list[dict[str, Any]]:
    drops, _ = run([path])
    assert drops
    return drops


def base_skips(path: Path) -> int:
    """The golden fixtures hold bad lines of their own."""
    return run([path])[1].skips.total


def with_line(src: Path, dst: Path, line: bytes, at: int) -> Path:
    """``src`` with ``line`` inserted so that it becomes line ``at`` (1-based)."""
    lines = src.read_bytes().splitlines(keepends=True)
    lines.insert(at - 1, line + b"\n")
    dst.write_bytes(b"".join(lines))
    return dst


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


# ---- any decoder exception is a bad line ------------------------------------------------------


def test_one_json_function_turns_every_decoder_exception_into_bad_json() -> None:
    for text in (DEEP_LIST, DEEP_OBJECT, DEEP_LIST.decode(), b"{not json", b"\xff\xfe"):
        with pytest.raises(FeedError) as info:
            decode_json(text, "f:7")
        assert info.value.reason == "bad json" and "f:7" in str(info.value)
    assert decode_json(b'{"a":[1]}') == {"a": [1]}


@pytest.mark.parametrize("deep", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
@pytest.mark.parametrize(("src", "at"), [(FRAMES, 4), (QUOTES, 2), (SNAPSHOTS, 2)],
                         ids=["frames", "quotes", "theoddsapi"])
def test_a_deeply_nested_line_is_one_bad_line_in_every_ndjson_format(
        tmp_path: Path, src: Path, at: int, deep: bytes) -> None:
    path = with_line(src, tmp_path / f"deep{src.suffix}", deep, at)
    before = run([src])[1].skips.counts.get("bad json", 0)
    drops, stats = run([path])
    assert drops == golden(src)
    assert stats.skips.counts["bad json"] == before + 1
    assert f"deep{src.suffix}:{at}" in {s.where for s in stats.skips.first if s.reason == "bad json"}


def test_a_deeply_nested_sse_event_is_one_bad_event(tmp_path: Path) -> None:
    text = SSE.read_bytes()
    cut = text.index(b"event: message\r\nid: 3")
    path = tmp_path / "deep.sse"
    path.write_bytes(text[:cut] + b"event: message\ndata: " + DEEP_OBJECT + b"\n\n" + text[cut:])
    drops, stats = run([path])
    assert drops == golden(SSE)
    assert stats.skips.counts["bad json"] == run([SSE])[1].skips.counts["bad json"] + 1
    line = text[:cut].count(b"\n") + 1
    assert f"deep.sse:{line}" in {s.where for s in stats.skips.first}


def test_replay_cli_on_a_deep_line_prints_every_alert(tmp_path: Path) -> None:
    path = with_line(FRAMES, tmp_path / "deep.ndjson", DEEP_LIST, 4)
    code, out, err = invoke("replay", str(path))
    assert code == 0, err
    assert [json.loads(x) for x in out.splitlines()] == golden(FRAMES)
    assert "deep.ndjson:4: bad json" in err


# ---- CSV: a stray quote is one bad line --------------------------------------------------------


def csv_rows(n: int, start: int = 0) -> list[str]:
    return [f"basketball_nba,E{i % 7},pinnacle,h2h_home,{-110 - (i % 5) * 10},{1_000 + i * 1_000}"
            for i in range(start, start + n)]


def test_a_stray_quote_in_csv_swallows_nothing(tmp_path: Path) -> None:
    header = "sport_key,event_id,bookmaker,side,price,last_update"
    lines = [header, *csv_rows(10), 'basketball_nba,"E2,pinnacle,h2h_home,-120,10500', *csv_rows(500, 10)]
    path = tmp_path / "stray.csv"
    path.write_text("\n".join(lines) + "\n")
    drops, stats = run([path])
    assert stats.quotes == 510
    assert stats.skips.counts == {"bad row": 1}
    [skip] = stats.skips.first
    assert skip.where == "stray.csv:12" and "quote" in skip.message
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join([header, *csv_rows(510)]) + "\n")
    assert drops == run([clean])[0]


def test_csv_quoted_cells_with_commas_still_read(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('sport_key,event_id,bookmaker,side,price,last_update,home_team\n'
                    'nba,E1,b,h2h_home,-110,1000,"Lakers, LA"\r\n'
                    'nba,E1,b,h2h_home,-130,2000,"Lakers ""LA"""\n')
    drops, stats = run([path])
    assert stats.quotes == 2 and not stats.skips and drops[0]["home_team"] == 'Lakers "LA"'


# ---- format detection decides from several lines ----------------------------------------------


@pytest.mark.parametrize("first", [b"[]", b"{}", b"null", b"{not json", b"42", b'"x"', b"[1,2]",
                                   DEEP_LIST, DEEP_OBJECT],
                         ids=["list", "object", "null", "bad", "number", "string", "numbers", "deep", "deepobj"])
def test_one_odd_first_line_does_not_decide_the_format(tmp_path: Path, first: bytes) -> None:
    path = with_line(FRAMES, tmp_path / "f.ndjson", first, 1)
    assert detect_format(path) == "frames"
    drops, stats = run([path])
    assert drops == golden(FRAMES)
    assert stats.skips.total == base_skips(FRAMES) + 1 and stats.skips.first[0].where.startswith("f.ndjson:1")


@pytest.mark.parametrize("src", [QUOTES, SNAPSHOTS], ids=["quotes", "theoddsapi"])
@pytest.mark.parametrize("first", [b"{}", b"null", b"[]"])
def test_other_formats_survive_an_odd_first_line(tmp_path: Path, src: Path, first: bytes) -> None:
    path = with_line(src, tmp_path / "x.ndjson", first, 1)
    want = "quotes" if src == QUOTES else "theoddsapi"
    assert detect_format(path) == want
    assert run([path])[0] == golden(src)


def test_a_line_of_another_format_is_reported_as_a_bad_line(tmp_path: Path) -> None:
    row = json.dumps({"sport_key": "nba", "event_id": "Q", "bookmaker": "b", "side": "h2h_home",
                      "price": -110, "last_update": 5}).encode()
    path = with_line(FRAMES, tmp_path / "f.ndjson", row, 5)
    drops, stats = run([path])
    assert drops == golden(FRAMES)
    [skip] = [s for s in stats.skips.first if s.reason == "wrong format"]
    assert skip.where == "f.ndjson:5" and "quote" in skip.message
    assert stats.skips.total == base_skips(FRAMES) + 1


def test_the_majority_decides_when_the_first_lines_disagree(tmp_path: Path) -> None:
    row = json.dumps({"sport_key": "nba", "event_id": "Q", "bookmaker": "b", "side": "h2h_home",
                      "price": -110, "last_update": 5}).encode()
    path = with_line(FRAMES, tmp_path / "f.ndjson", row, 1)
    path = with_line(path, tmp_path / "g.ndjson", row, 1)
    assert detect_format(path) == "frames"
    drops, stats = run([path])
    assert drops == golden(FRAMES) and stats.skips.counts["wrong format"] == 2


def test_betfair_stream_is_named_not_guessed() -> None:
    # issue 15: dropengine reads Betfair streams now (tests/test_h15_betfair_*.py); it is still
    # told by its lines, never guessed as another format
    path = require_data("betfair_stream", "BASIC-1.132153978")
    assert detect_format(path) == "betfair"


# ---- one unreadable file never stops the others ----------------------------------------------


def broken_files(tmp_path: Path) -> dict[str, Path]:
    blob = gzip.compress(FRAMES.read_bytes())
    out = {
        "cut in line 1": tmp_path / "cut.ndjson.gz",
        "not gzip": tmp_path / "notgz.ndjson.gz",
        "undecidable": tmp_path / "notes.txt",
        "broken parquet": tmp_path / "broken.parquet",
    }
    out["cut in line 1"].write_bytes(blob[:40])
    out["not gzip"].write_bytes(b"hello world\n")
    out["undecidable"].write_text("hello\nworld\n")
    out["broken parquet"].write_bytes(b"PAR1 not really")
    return out


@pytest.mark.parametrize("kind", ["cut in line 1", "not gzip", "undecidable", "broken parquet"])
def test_an_unreadable_file_is_a_skip_and_the_others_are_read(tmp_path: Path, kind: str) -> None:
    bad = broken_files(tmp_path)[kind]
    for paths in ([FRAMES, bad], [bad, FRAMES]):
        drops, stats = run(paths)
        assert drops == golden(FRAMES)
        assert [s.where for s in stats.skips.files] == [bad.name]
        assert stats.unusable_reason() is None
    code, out, err = invoke("replay", str(FRAMES), str(bad))
    assert code == 0, err
    assert [json.loads(x) for x in out.splitlines()] == golden(FRAMES)
    assert bad.name in err
    code, out, err = invoke("replay", "--engine", "batch", str(FRAMES), str(bad))
    assert code == 0, err
    assert [json.loads(x) for x in out.splitlines()] == golden(FRAMES)


def test_load_table_skips_an_unreadable_file(tmp_path: Path) -> None:
    files = broken_files(tmp_path)
    stats = ReplayStats()
    table, _ = load_table([QUOTES_CSV, *files.values()], stats=stats)
    assert table.height == run([QUOTES_CSV])[1].quotes
    assert {s.where for s in stats.skips.files} == {p.name for p in files.values()}


def test_read_recording_auto_on_an_undecidable_file_is_a_skip(tmp_path: Path) -> None:
    bad = broken_files(tmp_path)["undecidable"]
    skips = SkipLog()
    assert list(read_recording(bad, "auto", skips)) == []
    assert [s.where for s in skips.files] == ["notes.txt"] and "--format" in skips.files[0].message


# ---- zero usable input is not success ----------------------------------------------------------


def test_a_table_of_another_shape_says_once_what_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("date,team,open_ml,close_ml\n" + "".join(f"2019-04-0{i % 9 + 1},NYY,-120,-130\n"
                                                              for i in range(300)))
    drops, stats = run([path])
    reason = stats.unusable_reason()
    assert drops == [] and reason is not None
    assert "missing column" in reason and "sport_key" in reason and "other.csv" in reason
    assert stats.skips.total == 1  # one skip for the file, not one per row
    code, out, err = invoke("replay", str(path))
    assert code == 1 and out == ""
    assert err.count("missing column") <= 2 and len(err.splitlines()) < 30
    code, _, err = invoke("replay", "--engine", "batch", str(path))
    assert code == 1 and "missing column" in err


@pytest.mark.parametrize("parts", [("sbr_mlb_open_close", "mlb_odds_2019_sbr_open_close.csv"),
                                   ("sports_betting_wheel", "England_1_2024_odds.csv.gz")])
def test_real_tables_of_another_shape_exit_1(parts: tuple[str, ...]) -> None:
    path = require_data(*parts)
    code, out, err = invoke("replay", str(path))
    assert code == 1 and out == ""
    assert "missing column" in err and len(err.splitlines()) < 30


def test_a_betfair_stream_replays_naming_the_format() -> None:
    # issue 15: no longer refused (it was exit 1 "looks like Betfair ... does not read")
    path = require_data("betfair_stream", "BASIC-1.132153978")
    code, out, err = invoke("replay", str(path))
    assert code == 0 and out
    assert "(betfair)" in err and len(err.splitlines()) < 30


def test_a_usable_input_beside_an_unusable_one_is_success(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    code, out, _ = invoke("replay", str(FRAMES), str(other))
    assert code == 0 and out


def test_nothing_usable_at_all_exits_1_even_quiet(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.ndjson"
    junk.write_bytes(b"{not json\n" * 50)
    for path in (empty, junk):
        code, out, err = invoke("replay", "-q", str(path))
        assert code == 1 and out == "" and "no " in err and len(err.splitlines()) <= 2


def test_unusable_reason_is_none_when_a_quote_was_read() -> None:
    assert run([FRAMES])[1].unusable_reason() is None
    stats = ReplayStats()
    replay_batch([QUOTES_CSV], stats=stats)
    assert stats.unusable_reason() is None


def test_identical_skips_are_counted_but_few_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "f.ndjson"
    path.write_bytes(b"{not json\n" * 100 + FRAMES.read_bytes() + b'{"type": "odds_update", "data": 1}\n' * 3)
    drops, stats = run([path])
    assert drops == golden(FRAMES)
    base = run([FRAMES])[1].skips.counts
    assert stats.skips.counts == {**base, "bad json": base["bad json"] + 100, "bad envelope": 3}
    assert [s.reason for s in stats.skips.first].count("bad json") <= 5
    assert any(s.reason == "bad envelope" for s in stats.skips.first)


@given(st.lists(st.sampled_from([b"[]", b"{}", b"null", b"{bad", b"1", DEEP_LIST[:2000] + DEEP_LIST[-2000:]]),
                max_size=4))
def test_junk_lines_anywhere_never_change_the_alerts(junk: list[bytes]) -> None:
    """Invariant: junk lines spread through a recording are skipped one each; the alerts stay."""
    import tempfile

    lines = FRAMES.read_bytes().splitlines(keepends=True)
    for i, j in enumerate(junk):
        lines.insert(min(len(lines), 1 + 3 * i), j + b"\n")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.ndjson"
        path.write_bytes(b"".join(lines))
        drops, stats = run([path])
    assert drops == golden(FRAMES)
    assert stats.skips.total == base_skips(FRAMES) + len(junk)


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_decode_json_raises_nothing_but_bad_json(data: bytes | str) -> None:
    """Invariant: whatever the bytes, the one decoder returns a value or a ``bad json`` FeedError."""
    try:
        decode_json(data)
    except FeedError as exc:
        assert exc.reason == "bad json"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "data", "side", "price", "event_id", "bookmaker", "last_update", "sport_key",
                         "bookmakers", "op", "timestamp", "home_ml", "kind"]), inner, max_size=5),
    max_leaves=12,
)


@given(st.lists(JSON, min_size=1, max_size=6), st.sampled_from(["frames", "quotes", "theoddsapi", "auto"]))
def test_any_json_lines_in_any_format_never_stop_a_replay(values: list[Any], fmt: str) -> None:
    """Invariant: arbitrary JSON lines before a good recording are skipped or read, never raised."""
    import tempfile

    good = {"frames": FRAMES, "quotes": QUOTES, "theoddsapi": SNAPSHOTS, "auto": FRAMES}[fmt]
    junk = b"".join(json.dumps(v).encode() + b"\n" for v in values)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.ndjson"
        path.write_bytes(junk + good.read_bytes())
        stats = ReplayStats()
        list(replay([path], DropEngine(), fmt, stats))
    assert stats.quotes + stats.skips.total > 0
