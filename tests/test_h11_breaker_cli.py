"""Breaking the CLI's shared options: odd values must be refused with the flag and the value
named (exit 2, no traceback), and accepted values must mean what they say."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dropengine.cli.group import main

QUOTES = (
    "sport_key,event_id,bookmaker,side,price,last_update\n"
    "nba,e1,b,h2h_home,-110,1\n"
    "nba,e1,b,h2h_home,-125,2\n"
)


@pytest.fixture
def quotes(tmp_path: Path) -> str:
    path = tmp_path / "q.csv"
    path.write_text(QUOTES)
    return str(path)


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env={"DROPENGINE_API_KEY": "k"})
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


# Python's float() reads these as numbers; the threshold is typed by a person, and the one
# number rule (core.rules.PLAIN_NUMBER) says which texts are plain numbers: these are not.
@pytest.mark.parametrize("text", ["\u0661\u0660", "1_0", "\uff11\uff10", "1e309", "-1e309", "infinity", "nan"])
@pytest.mark.parametrize("command", ["replay", "backtest"])
def test_threshold_that_is_no_plain_finite_number_is_refused_naming_what_was_typed(
    quotes: str, command: str, text: str
) -> None:
    code, out = _run([command, "-q", "--threshold", text, quotes])
    assert code == 2, out
    assert "'--threshold'" in out
    assert text in out  # the value as typed, not what float() made of it (1e309 is not 'inf')


@pytest.mark.parametrize("text", ["10", " 10 ", "+10", "10.0", "1e1", "15.", "0.1e2"])
def test_threshold_plain_numbers_still_accepted(quotes: str, text: str) -> None:
    code, out = _run(["replay", "--threshold", text, quotes])
    assert code == 0, out
    assert '"delta":-15' in out


@pytest.mark.parametrize(
    ("args", "flag", "value"),
    [
        (["--since", "99999999999999999999"], "--since", "99999999999999999999"),
        (["--since", "9223372036854775808"], "--since", "9223372036854775808"),  # MAX_MS + 1
    ],
)
@pytest.mark.parametrize("command", ["watch", "record"])
def test_live_query_errors_name_the_flag(tmp_path: Path, command: str, args: list[str], flag: str,
                                         value: str) -> None:
    base = [command, "--base-url", "http://127.0.0.1:9", "--sport", "basketball_nba", *args]
    if command == "record":
        base += ["-o", str(tmp_path / "r.ndjson")]
    code, out = _run(base)
    assert code == 2, out
    assert f"'{flag}'" in out
    assert value in out


@pytest.mark.parametrize("command", ["watch", "record"])
def test_live_bad_base_url_names_the_flag(tmp_path: Path, command: str) -> None:
    base = [command, "--base-url", "ftp://x", "--sport", "basketball_nba"]
    if command == "record":
        base += ["-o", str(tmp_path / "r.ndjson")]
    code, out = _run(base)
    assert code == 2, out
    assert "'--base-url'" in out
    assert "ftp://x" in out


@pytest.mark.parametrize(("flag", "value"), [("--hours", "nan"), ("--books", "0"), ("--events", "0")])
def test_simulate_errors_name_the_flag_once(tmp_path: Path, flag: str, value: str) -> None:
    code, out = _run(["simulate", flag, value, "-o", str(tmp_path / "s.ndjson")])
    assert code == 2, out
    assert f"Invalid value for '{flag}': {value}" in out  # not "--hours: hours: nan"


@pytest.mark.parametrize("digits", [30, 400])
@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_huge_integer_threshold_is_judged_not_a_traceback(quotes: str, engine: str, digits: int) -> None:
    # 10**400 is no finite float: refused by the core, naming the flag; 10**30 is a threshold no move reaches
    code, out = _run(["replay", "-q", "--engine", engine, "--threshold", "1" + "0" * digits, quotes])
    if digits == 400:
        assert code == 2, out
        assert "'--threshold'" in out
    else:
        assert code == 0, out
        assert out == ""
