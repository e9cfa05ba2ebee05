"""Issue 12: ``serve --steam-books/--steam-window/--steam-threshold/--steam-groups/--key-numbers``
reach the server's one engine (the real CLI as a subprocess replaying a golden recording at full
speed), and bad values are usage errors naming the flag (in process, before any socket)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dropengine.cli.group import main as cli

from .conftest import FIXTURES
from .test_h12_server_signals import read
from .test_serve import _wait, status_of

LINES = FIXTURES / "signals" / "lines_half_full.ndjson"


def test_the_steam_flags_and_key_numbers_reach_the_server() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropengine", "serve", "--source", f"replay:{LINES}", "--speed", "max", "--port", "0",
         "--log-level", "warning", "--steam-books", "2", "--steam-window", "60", "--steam-threshold", "15",
         "--steam-groups", "betmgm+borgata", "--key-numbers", "americanfootball_nfl:spreads=3,7"],
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        m = re.search(r" at (http://\S+) ", line)
        assert m, line
        url = m.group(1)
        _wait(lambda: status_of(url, "/healthz").json()["source"]["finished"], timeout=20)
        steam_client = json.loads(read(url, 1, types="steam")[0][1])
        frames = read(url, 7, types="line_move", markets="spreads", since="0")
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0
    assert steam_client["steam"] == {"books": 2, "window_ms": 60_000, "threshold": 15, "line_threshold": 0.5,
                                     "groups": [["betmgm", "borgata"]]}
    # the spread of the golden file moves -3 -> -3.5 -> -4.5 -> -4: with the NFL's key numbers 3
    # and 7 only the first move lists one (SPEC's default would list 4 for the other two)
    moves = [json.loads(d) for _, d in frames[1:]]
    assert [(a["side"], a["prev_line"], a["new_line"], a["key_numbers"]) for a in moves] == [
        ("spread_home", -3, -3.5, [3]), ("spread_away", 3, 3.5, [3]),
        ("spread_home", -3.5, -4.5, []), ("spread_away", 3.5, 4.5, []),
        ("spread_home", -4.5, -4, []), ("spread_away", 4.5, 4, [])]


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--steam-books", "0", ["--steam-books", "0"]),
    ("--steam-books", "2.5", ["--steam-books", "2.5"]),
    ("--steam-window", "-5", ["--steam-window", "-5"]),
    ("--steam-window", "0.0001", ["--steam-window", "millisecond"]),
    ("--steam-threshold", "0.5", ["--steam-threshold", "0.5"]),
    ("--steam-threshold", "nan", ["--steam-threshold"]),
    ("--steam-groups", "betmgm+", ["--steam-groups"]),
    ("--steam-groups", "a+b,b+c", ["--steam-groups", "two groups"]),
    ("--key-numbers", "nfl", ["--key-numbers", "nfl"]),
])
def test_a_bad_steam_flag_is_a_usage_error_naming_it(flag: str, value: str, words: list[str]) -> None:
    r = CliRunner().invoke(cli, ["serve", "--source", f"replay:{LINES}", "--port", "0", flag, value])
    assert r.exit_code == 2, r.output
    for word in words:
        assert word in r.output, r.output
    assert "Traceback" not in r.output


def test_serve_help_lists_the_steam_flags_with_the_servers_defaults() -> None:
    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for flag in ("--steam-books", "--steam-window", "--steam-threshold", "--steam-groups", "--key-numbers"):
        assert flag in text
    assert "[default: 10;" in text[text.index("--steam-threshold"):]
    assert "types" in text and "line_threshold" in text
