"""Issue 10, found by trying to break the readers and the replay report (helper "inputs-breaker").

Each test is a regression test of one defect found by feeding hostile files: a terminal
escape or rich markup in a file name or a value, a 200 kB value in a skip message, a CSV
header naming a column twice, a UTF-16 CSV, a recording with old-Mac (CR-only) line ends,
and a well-formed recording that holds no odds at all.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from dropengine import DropEngine, replay
from dropengine.cli import main
from dropengine.replay import ReplayStats
from dropengine.skips import MAX_TEXT, SkipLog, printable

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
