"""Issue 15: the input flags of ``replay`` (cli/options.py input_options): each bad value is a
usage error naming the flag and the part, --help explains each with an example, and the
flags, the mapping file and --odds-format reach the reader."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropengine.cli.group import main

_ROWS = [
    {"game": "g1", "ts": "1557000000", "h_ml": "-110", "a_ml": "EVEN", "start": "1557009000"},
    {"game": "g1", "ts": "1557000060", "h_ml": "-125", "a_ml": "+105", "start": "1557009000"},
    {"game": "g1", "ts": "1557009999", "h_ml": "-300", "a_ml": "0", "start": "1557009000"},
]
_COLUMNS = "sport_key==baseball_mlb,bookmaker==bovada,event_id=game,last_update=ts,commence_time=start"


@pytest.fixture
def wide_csv(tmp_path: Path) -> Path:
    path = tmp_path / "wide.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(_ROWS[0]))
        w.writeheader()
        w.writerows(_ROWS)
    return path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["replay", *args])
    return result.exit_code, result.stdout, result.stderr


def test_flags_map_recode_and_filter_a_wide_table(wide_csv: Path) -> None:
    code, out, err = _run("-q", str(wide_csv), "--columns", _COLUMNS, "--wide", "h2h_home=h_ml,h2h_away=a_ml",
                          "--recode", "EVEN=100,0=absent", "--where", "ts<start")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1 and '"prev":-110' in lines[0] and '"new":-125' in lines[0]  # +100 -> +105 is 5 cents


def test_a_mapping_file_and_a_flag_on_top(wide_csv: Path, tmp_path: Path) -> None:
    toml = tmp_path / "m.toml"
    toml.write_text('wide = ["h2h_home=h_ml", "h2h_away=a_ml"]\nwhere = ["ts<start"]\n'
                    '[columns]\nsport_key = "=baseball_mlb"\nbookmaker = "=bovada"\nevent_id = "game"\n'
                    'last_update = "ts"\ncommence_time = "start"\n[recode]\nEVEN = 100\n"0" = "absent"\n')
    code, out, err = _run("-q", str(wide_csv), "--mapping", str(toml), "--columns", "bookmaker==other")
    assert code == 0, err
    assert '"bookmaker":"other"' in out and len(out.splitlines()) == 1


def test_odds_format_decimal_on_a_spec_table(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("sport_key,event_id,bookmaker,side,price,last_update\n"
                    "s,e,b,h2h_home,1.91,1000\ns,e,b,h2h_home,1.5,2000\ns,e,b,h2h_home,0.9,3000\n")
    code, out, err = _run(str(path), "--odds-format", "decimal")
    assert code == 0, err
    assert '"new":-200.0' in out  # 1.5 -> -200 (1.91 -> -109.89...)
    assert "d.csv:4" in err and "0.9" in err  # the bad cell: its row and value


@pytest.mark.parametrize(("args", "flag", "said"), [
    (["--columns", "nope=x"], "--columns", "'nope' is not a field"),
    (["--columns", "event_id"], "--columns", "is not FIELD=COLUMN"),
    (["--wide", "h2h_home"], "--wide", "is not SIDE=PRICE_COLUMN[@LINE][/TIME]"),
    (["--wide", "h2h_home=h_ml", "--columns", "price=x"], "--columns", "side/price/line/outcome come from --wide"),
    (["--recode", "EVEN=evens"], "--recode", "must be a number, null or absent"),
    (["--where", "ts~start"], "--where", "is not COLUMN OP COLUMN|NUMBER"),
    (["--odds-format", "fractional"], "--odds-format", "fractional"),
    (["--betfair-price", "lay"], "--betfair-price", "lay"),
])
def test_each_bad_flag_is_a_usage_error_naming_it(wide_csv: Path, args: list[str], flag: str, said: str) -> None:
    code, _, err = _run(str(wide_csv), *args)
    assert code == 2
    assert f"'{flag}'" in err and said in err


def test_a_bad_mapping_file_is_a_usage_error(wide_csv: Path, tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("[columns]\nfoo = \"x\"\n")
    code, _, err = _run(str(wide_csv), "--mapping", str(toml))
    assert code == 2 and "'--mapping'" in err and "columns.foo: not a field" in err


def test_a_column_the_file_lacks_is_reported_with_the_file_columns(wide_csv: Path) -> None:
    code, _, err = _run(str(wide_csv), "--columns", "sport_key==s,bookmaker==b,event_id=game_id,last_update=ts",
                        "--wide", "h2h_home=h_ml")
    assert code == 1  # nothing usable: the one file was skipped whole
    text = " ".join(err.split())
    assert "game_id" in text and "it has: game, ts, h_ml, a_ml, start" in text


def test_help_explains_each_input_flag_with_an_example() -> None:
    result = CliRunner().invoke(main, ["replay", "--help"], terminal_width=400)
    text = " ".join(result.stdout.split())
    for flag, example in (("--odds-format", "decimal (1.91"), ("--columns", "Example: --columns"),
                          ("--wide", "Example: --wide"), ("--recode", "Example: --recode"),
                          ("--where", "Example: --where"), ("--mapping", "TOML"), ("--betfair-price", "ltp")):
        assert flag in text and example in text, flag
