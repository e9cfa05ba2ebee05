"""``dropengine replay --types ...`` (issue 12): line moves and steam in every output, the
default output unchanged, the signal flags' errors.

The recording (:func:`nfl_frames`) is written by hand: one NFL game at four books, the spread
moving from -3 to -3.5 at three of them ten seconds apart (the third a line-only book,
SPEC 10), then two price drops on the moneyline. Expected alerts, checked by hand:

- T+10 s pinnacle ``-3 -> -3.5``: line_move spread_home (toward_favorite, key number 3,
  price -110 -> -110) and spread_away ``3 -> 3.5`` (toward_dog, key number 3);
- T+20 s draftkings the same (spread_home price -110 -> -105);
- T+30 s fanduel (line-only: no prices) the same; with it three books made each move within
  the window: steam spread_home toward_favorite (books pinnacle, draftkings, fanduel; leader
  pinnacle, lag 20 s) after its line move, then the same for spread_away toward_dog;
- T+40 s betmgm h2h_home -150 -> -170 (odds_drop, -20) and pinnacle -150 -> -165 (-15): two
  books only, no steam.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from dropengine.cli.group import main

T0 = 1_788_000_000_000
EVENT = "nfl-2026-09-10-BUF-KC"
ALL = "odds_drop,line_move,steam"
_META = {"kind": "game", "event_id": EVENT, "home_team": "Kansas City Chiefs", "away_team": "Buffalo Bills",
         "commence_time": "2026-09-11T00:20:00Z"}


def _row(book: str, t: int, **fields: Any) -> dict[str, Any]:
    return {**_META, "bookmaker": book, "last_update": T0 + t, **fields}


def _diff(book: str, t: int, **fields: Any) -> dict[str, Any]:
    return {"_diff": True, "event_id": EVENT, "bookmaker": book, "kind": "game", "last_update": T0 + t, **fields}


def nfl_frames() -> list[dict[str, Any]]:
    """The hand-made recording described in the module docstring, as vendor envelopes."""
    full = {"home_ml": -150, "away_ml": 130, "home_spread": -3, "away_spread": 3, "home_spread_price": -110,
            "away_spread_price": -110, "total": 47.5, "over_price": -110, "under_price": -110}
    sport = "americanfootball_nfl"

    def update(t: int, *rows: dict[str, Any]) -> dict[str, Any]:
        return {"type": "odds_update", "sport_key": sport, "timestamp": T0 + t + 1, "data": list(rows)}

    return [
        {"type": "connected", "sport_key": sport, "tier": "business", "push_mode": "raw", "diff_mode": True,
         "filters": {}, "timestamp": T0},
        {"type": "initial_state", "sport_key": sport, "timestamp": T0 + 1, "count": 4, "data": [
            _row("pinnacle", 0, **full),
            _row("draftkings", 0, **full),
            _row("fanduel", 0, home_spread=-3, away_spread=3, total=47.5),  # a line-only book
            _row("betmgm", 0, home_ml=-150, away_ml=130),
        ]},
        update(10_000, _diff("pinnacle", 10_000, home_spread=-3.5, away_spread=3.5)),
        update(20_000, _diff("draftkings", 20_000, home_spread=-3.5, away_spread=3.5, home_spread_price=-105)),
        update(30_000, _diff("fanduel", 30_000, home_spread=-3.5, away_spread=3.5)),
        update(40_000, _diff("betmgm", 40_000, home_ml=-170), _diff("pinnacle", 40_000, home_ml=-165)),
    ]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("h12cli") / "nfl.ndjson"
    path.write_text("".join(json.dumps(f, separators=(",", ":")) + "\n" for f in nfl_frames()))
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), prog_name="dropengine")
    return result.exit_code, result.stdout, result.stderr


def _alerts(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def _summary(err: str) -> dict[str, str]:
    return {k.strip(): v for k, _, v in (line.rpartition(" ") for line in err.splitlines()) if k.strip()}


@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_all_types_give_the_hand_checked_line_moves_and_steam(recording: Path, engine: str) -> None:
    code, out, err = invoke("replay", "--engine", engine, "--types", ALL, str(recording))
    assert code == 0, err
    alerts = _alerts(out)
    assert [(a["type"], a.get("bookmaker"), a["side"]) for a in alerts] == [
        ("line_move", "pinnacle", "spread_home"),
        ("line_move", "pinnacle", "spread_away"),
        ("line_move", "draftkings", "spread_home"),
        ("line_move", "draftkings", "spread_away"),
        ("line_move", "fanduel", "spread_home"),
        ("steam", None, "spread_home"),
        ("line_move", "fanduel", "spread_away"),
        ("steam", None, "spread_away"),
        ("odds_drop", "betmgm", "h2h_home"),
        ("odds_drop", "pinnacle", "h2h_home"),
    ]
    pin, _, dk, _, fd, steam_home, _, steam_away, mgm, _ = alerts
    assert pin | {"prev_line": -3, "new_line": -3.5, "points": -0.5, "key_numbers": [3], "prev_price": -110,
                  "new_price": -110, "direction": "toward_favorite", "elapsed_ms": 10_000} == pin
    assert (dk["prev_price"], dk["new_price"]) == (-110, -105)
    assert fd["prev_price"] is None and fd["new_price"] is None  # the line-only book fires a line move
    assert [b["bookmaker"] for b in steam_home["books"]] == ["pinnacle", "draftkings", "fanduel"]
    assert steam_home["leader"] == "pinnacle" and steam_home["lag_ms"] == 20_000
    assert steam_home["direction"] == "toward_favorite" and steam_away["direction"] == "toward_dog"
    assert steam_home["last_update"] == T0 + 30_000
    assert (mgm["prev"], mgm["new"], mgm["delta"]) == (-150, -170, -20)
    summary = _summary(err)
    assert summary["alerts"] == "10"
    assert (summary["odds_drop"], summary["line_move"], summary["steam"]) == ("2", "6", "2")
    assert summary["line_detected"] == "6" and summary["steam"] == "2"


@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_default_output_and_summary_are_those_of_price_drops_alone(recording: Path, engine: str) -> None:
    default = invoke("replay", "--engine", engine, str(recording))
    explicit = invoke("replay", "--engine", engine, "--types", "odds_drop", str(recording))
    assert default == explicit  # stdout and the stderr summary, byte for byte
    code, out, err = default
    assert code == 0
    assert [a["type"] for a in _alerts(out)] == ["odds_drop", "odds_drop"]
    # no signal counter, no by-type rows: the summary of a run without signals
    assert "line_" not in err and "steam" not in err and "cooled" not in err and "odds_drop" not in err
    # the same price drops as with every type, in the same bytes
    _, everything, _ = invoke("replay", "--engine", engine, "--types", ALL, str(recording))
    assert [ln for ln in everything.splitlines() if '"type":"odds_drop"' in ln] == out.splitlines()


def test_only_the_types_asked_for_and_the_flags_take_effect(recording: Path) -> None:
    _, out, _ = invoke("replay", "--types", "line_move", str(recording))
    assert {a["type"] for a in _alerts(out)} == {"line_move"} and len(_alerts(out)) == 6
    _, out, _ = invoke("replay", "--types", "steam", "--steam-books", "4", str(recording))
    assert out == ""  # three books only
    _, out, _ = invoke("replay", "--types", "steam", "--steam-window", "15", str(recording))
    assert out == ""  # pinnacle (T+10) is out of a 15 s window at T+30
    _, out, _ = invoke("replay", "--types", "line_move", "--line-threshold", "1", str(recording))
    assert out == ""  # half-point moves
    no_keys = "americanfootball_nfl:spreads="
    _, out, _ = invoke("replay", "--types", "line_move", "--key-numbers", no_keys, str(recording))
    assert {tuple(a["key_numbers"]) for a in _alerts(out)} == {()}
    _, out, _ = invoke("replay", "--types", "steam", "--steam-groups", "pinnacle+draftkings", str(recording))
    assert out == ""  # a group counts once: two books
    code, out, err = invoke("replay", "--types", ALL, "--cooldown", "3600", str(recording))
    assert code == 0 and _summary(err)["cooled"] == "0"  # one alert per key: nothing to cool


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".ndjson"])
def test_output_files_hold_each_types_columns(recording: Path, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"alerts{suffix}"
    code, _, err = invoke("replay", "--types", ALL, "-o", str(path), str(recording))
    assert code == 0, err
    _, stdout, _ = invoke("replay", "--types", ALL, str(recording))
    if suffix == ".ndjson":
        assert path.read_text() == stdout
        return
    frame = pl.read_csv(path, infer_schema=False) if suffix == ".csv" else pl.read_parquet(path)
    rows = frame.to_dicts()
    assert [r["type"] for r in rows] == [a["type"] for a in _alerts(stdout)]
    assert {"type", "prev", "delta", "prev_line", "new_line", "points", "key_numbers", "books", "leader",
            "lag_ms"} <= set(frame.columns)
    pin, steam, mgm = rows[0], rows[5], rows[8]
    assert json.loads(steam["books"])[0]["bookmaker"] == "pinnacle" and steam["leader"] == "pinnacle"
    assert steam["bookmaker"] is None and steam["prev_line"] is None
    assert json.loads(pin["key_numbers"]) == [3] and pin["delta"] is None and pin["leader"] is None
    if suffix == ".csv":  # text: each number as it arrived
        assert (pin["prev_line"], pin["new_line"], pin["points"]) == ("-3", "-3.5", "-0.5")
        assert (mgm["prev"], mgm["delta"], mgm["prev_line"]) == ("-150", "-20", None)
        assert rows[4]["new_price"] is None  # the line-only book: no price
    else:
        # a typed column holds one type: every prev_line is an integral line (-3, 3), every new_line not
        assert frame.schema["prev_line"] == pl.Int64 and frame.schema["new_line"] == pl.Float64
        assert frame.schema["prev"] == pl.Int64
        assert frame.schema["lag_ms"] == pl.Int64 and steam["lag_ms"] == 20_000
        assert (pin["prev_line"], pin["new_line"], mgm["delta"]) == (-3, -3.5, -20)


def test_default_csv_and_parquet_keep_todays_columns(recording: Path, tmp_path: Path) -> None:
    from dropengine.core.alerts import ALERT_FIELDS

    for suffix in (".csv", ".parquet"):
        a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
        assert invoke("replay", "-o", str(a), str(recording))[0] == 0
        assert invoke("replay", "--types", "odds_drop", "-o", str(b), str(recording))[0] == 0
        assert a.read_bytes() == b.read_bytes()
        frame = pl.read_csv(a) if suffix == ".csv" else pl.read_parquet(a)
        assert tuple(frame.columns) == ALERT_FIELDS


@pytest.mark.parametrize(
    ("args", "flag", "shown"),
    [
        (["--types", "odds_drop,steem"], "--types", "'steem'"),
        (["--types", "odds_drop,,steam"], "--types", "'odds_drop,,steam'"),
        (["--line-threshold", "0"], "--line-threshold", "0"),
        (["--line-threshold", "half"], "--line-threshold", "'half'"),
        (["--steam-books", "0"], "--steam-books", "0"),
        (["--steam-window", "-5"], "--steam-window", "-5 seconds"),
        (["--steam-window", "0.0001"], "--steam-window", "0.0001 seconds"),
        (["--steam-threshold", "5"], "--steam-threshold", "5"),
        (["--steam-groups", "a+b,b+c"], "--steam-groups", "'b'"),
        (["--cooldown", "soon"], "--cooldown", "'soon'"),
        (["--cooldown", "-1"], "--cooldown", "-1 seconds"),
        (["--key-numbers", "nfl=3"], "--key-numbers", "'nfl=3'"),
        (["--key-numbers", "americanfootball_nfl:spreads=3,x"], "--key-numbers", "'x'"),
    ],
)
def test_bad_signal_flag_values_exit_2_naming_flag_and_value(
    recording: Path, args: list[str], flag: str, shown: str
) -> None:
    code, out, err = invoke("replay", *args, str(recording))
    assert code == 2 and out == ""
    assert f"Invalid value for '{flag}'" in err and shown in err, err


def test_help_lists_every_signal_flag_with_the_cores_defaults() -> None:
    from dropengine.core.options import DetectOptions

    code, out, _ = invoke("replay", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for flag in ("--types", "--line-threshold", "--steam-books", "--steam-window", "--steam-threshold",
                 "--steam-groups", "--cooldown", "--key-numbers"):
        assert flag in flat
    d = DetectOptions()
    assert f"[default: {d.line_threshold}]" in flat and f"[default: {d.steam_window_ms // 1000}]" in flat
    assert "[default: americanfootball_* spreads 3,4,6,7,10,14]" in flat


def test_signal_options_alone_hand_over_the_build_keywords_of_the_flags_given() -> None:
    import click

    from dropengine.cli.options import signal_error, signal_options
    from dropengine.core.errors import ConfigError
    from dropengine.core.options import DetectOptions, KeyNumbers

    seen: list[dict[str, Any]] = []

    @click.command()
    @signal_options("steam_books", "steam_window", "cooldown", "key_numbers")
    def cmd(signals: dict[str, Any]) -> None:
        seen.append(signals)
        try:
            DetectOptions.build(1, **signals)
        except ConfigError as exc:
            raise signal_error(exc) from None

    runner = CliRunner()
    assert runner.invoke(cmd, []).exit_code == 0 and seen[-1] == {}  # nothing given: the core's defaults
    r = runner.invoke(cmd, ["--steam-window", "0.25", "--cooldown", "90", "--key-numbers", "nba:spreads=5"])
    assert r.exit_code == 0, r.output
    assert seen[-1] == {"steam_window_ms": 250, "cooldown_ms": 90_000,
                        "key_numbers": KeyNumbers.parse("nba:spreads=5")}
    r = runner.invoke(cmd, ["--steam-books", "0"])
    assert r.exit_code == 2 and "Invalid value for '--steam-books': 0" in r.output
    r = runner.invoke(cmd, ["--steam-window", "-2.5"])
    assert r.exit_code == 2 and "Invalid value for '--steam-window': -2.5 seconds (-2500 ms)" in r.output
    assert "--types" not in runner.invoke(cmd, ["--help"]).output  # only the options asked for
