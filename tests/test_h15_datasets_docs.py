"""docs/datasets.md, run: every command it shows for a data set of ``../shared/data`` runs here on
the real data, and what the page says about it is checked against the output and against the
source rows, recounted here without dropengine code.

The commands are parsed out of the page itself (its ```sh blocks, ``$DATA`` being the data folder,
``out/...`` a temporary directory, ``docs/...`` the repository's), so the page cannot drift from
what runs: edit a command there and these tests run the new one. The figures the page states
(quotes read, alerts, closes, mean CLV) are compared with the run's, so they cannot drift either.

Hand checks (each recomputed below from the source file with csv/json/gzip only):
- NFL snapshots: fanduel, Falcons at Colts, +250 -> +260 at 2025-11-08T13:54:19Z, close +235.
- NFL price-changes CSV: mybookieag, Broncos -784 -> -728 at 2025-11-02T03:16:47Z, close -526.
- Betfair BASIC: Ten In The Hat, last traded 15 -> 20, starting price 19.59.
- ANZ: Quizzle, best back 18.0 at the scheduled off -> last traded 16.5, starting price 16.86;
  and every runner's move recounted (1,574 at 10 cents, 412 at one probability point).
- Bovada: the mapping's quotes equal, one by one, a recount by the rules of the retired
  scripts/bovada_mlb_to_quotes.py (restated here), and game 5263837's +143 -> +130, close +125.
- SBR: every open -> close move recounted (3,515 alerts); game 1 has exactly two.
- EPL: 3,800 quotes, each key once; Burnley v Man City's 9.02 is +802.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from dropengine.cli import main
from dropengine.core.skips import SkipLog
from dropengine.formats.mapping import load_mapping
from dropengine.io.inputs import InputOptions
from dropengine.io.tables import read_quote_table

from .conftest import ROOT, data_root, require_data

DOC = ROOT / "docs" / "datasets.md"
#: Every folder of ../shared/data (its README lists these seven).
DATASETS = ("theoddsapi_nfl", "betfair_stream", "betfair_anz_racing", "bovada_live_mlb", "sbr_mlb_open_close",
            "sports_betting_wheel", "test_vectors")


# -- the page -------------------------------------------------------------------------------------------


def sections() -> dict[str, str]:
    """The page's ``## `folder/`: ...`` sections by data set folder."""
    text = DOC.read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        head = re.match(r"`([a-z0-9_]+)/`", part)
        if head:
            found[head.group(1)] = part
    return found


def commands(section: str) -> list[str]:
    """The ``dropengine ...`` commands of a section's ```sh blocks (continued lines joined)."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = " ".join(line.split())
            if line.startswith("dropengine "):
                found.append(line)
    return found


def the_command(dataset: str, verb: str, *needles: str, without: str | None = None) -> str:
    """The one ``dropengine VERB`` command of ``dataset``'s section that has every needle (and not
    ``without``)."""
    hits = [c for c in commands(sections()[dataset]) if c.startswith(f"dropengine {verb} ")
            and all(n in c for n in needles) and (without is None or without not in c)]
    assert len(hits) == 1, (dataset, verb, needles, hits)
    return hits[0]


def states(dataset: str, *figures: str) -> None:
    """``dataset``'s section of the page states each figure, as written there (``1,234 quotes``)."""
    text = " ".join(sections()[dataset].split())
    for f in figures:
        assert f in text, f"docs/datasets.md, {dataset}: does not say {f!r}"


def pct(x: float) -> str:
    return f"{x * 100:+.2f}%"


# -- running a command ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    stdout: str
    stderr: str
    target: Path | None  # the command's -o/--out, moved under a temporary directory

    def summary(self) -> dict[str, int]:
        """The replay summary's counter rows (``quotes``, ``alerts``, ``skipped``, ...)."""
        rows = {}
        for line in self.stderr.splitlines():
            m = re.match(r"^\s*([a-z][a-z ()_-]*?)\s+(\d+)\s*$", line)
            if m:
                rows[m.group(1).strip()] = int(m.group(2))
        return rows

    def alerts(self) -> list[dict[str, Any]]:
        """A replay's alerts (its ``-o`` NDJSON file)."""
        assert self.target is not None
        return [json.loads(line) for line in self.target.read_text(encoding="utf-8").splitlines()]

    def backtest(self) -> tuple[pl.DataFrame, dict[str, Any]]:
        """A backtest's alert table and its overall summary row (its ``--out`` files)."""
        assert self.target is not None
        table = pl.read_parquet(self.target / "alerts.parquet")
        summary = pl.read_csv(self.target / "summary.csv")
        overall = summary.filter(pl.col("dimension") == "overall").to_dicts()
        return table, overall[0] if overall else {}


def run(command: str, tmp_path: Path) -> Run:
    """Run a page command in-process: ``$DATA`` is the data folder, ``out/`` a temporary directory,
    ``docs/`` the repository's. It must succeed."""
    args = shlex.split(command.replace("$DATA", str(data_root())))
    assert args[0] == "dropengine"
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    fixed: list[str] = []
    target = None
    for a in args[1:]:
        if a.startswith("out/"):
            a = str(out / a[len("out/"):])
            if fixed and fixed[-1] in ("-o", "--output", "--out"):
                target = Path(a)
        elif a.startswith("docs/"):
            a = str(ROOT / a)
        fixed.append(a)
    result = CliRunner().invoke(main, fixed, prog_name="dropengine", catch_exceptions=False)
    assert result.exit_code == 0, (command, result.stderr[-3000:])
    return Run(result.stdout, result.stderr, target)


def mapped_quotes(path: Path, mapping: str) -> list[Any]:
    """The quotes the page's mapping file makes of ``path`` (the readers' library path)."""
    skips = SkipLog()
    inputs = InputOptions(mapping=load_mapping((ROOT / "docs" / "mappings" / mapping).read_text(encoding="utf-8")))
    quotes = [q for _, q in read_quote_table(path, skips, inputs=inputs)]
    assert skips.total == 0, list(skips.first)
    return quotes


def cents(american: float) -> float:
    """SPEC 1's cents scale."""
    return american - 100 if american >= 100 else american + 100


def american(decimal: float) -> float:
    """SPEC 1: decimal odds as American."""
    return (decimal - 1) * 100 if decimal >= 2 else -100 / (decimal - 1)


def iso_ms(text: str) -> int:
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def one(table: pl.DataFrame, **match: Any) -> dict[str, Any]:
    rows = table.filter(pl.all_horizontal(*(pl.col(k) == v for k, v in match.items()))).to_dicts()
    assert len(rows) == 1, (match, rows)
    return rows[0]


# -- the page covers every data set ---------------------------------------------------------------------


def test_every_data_set_has_its_commands_or_is_out_of_scope_with_a_reason() -> None:
    found = sections()
    assert set(found) == set(DATASETS)
    for name, text in found.items():
        cmds = commands(text)
        if "Out of scope" in text:
            assert not cmds and re.search(r"Out of scope[^.]*: not a price series", text), name
            continue
        verbs = {c.split()[1] for c in cmds}
        assert {"replay", "backtest"} <= verbs, (name, cmds)
        assert all(f"$DATA/{name}/" in c for c in cmds), (name, cmds)


def test_the_data_folder_has_no_other_data_set() -> None:
    root = require_data()
    assert {p.name for p in root.iterdir() if p.is_dir()} == set(DATASETS)


def test_every_mapping_file_is_used_by_a_command() -> None:
    used = " ".join(c for s in sections().values() for c in commands(s))
    names = sorted(p.name for p in (ROOT / "docs" / "mappings").glob("*.toml"))
    assert len(names) >= 5  # the five mapped tables of the page, at least
    for name in names:
        assert f"docs/mappings/{name}" in used, name


def test_the_retired_bovada_script_is_gone() -> None:
    assert not (ROOT / "scripts" / "bovada_mlb_to_quotes.py").exists()


# -- theoddsapi_nfl -------------------------------------------------------------------------------------

NFL_SNAPSHOTS = "nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz"
FALCONS = "42473c1ddf8f424069ff3f264dd8dca4"


def test_nfl_snapshots_replay_and_backtest(tmp_path: Path) -> None:
    path = require_data("theoddsapi_nfl", NFL_SNAPSHOTS)
    # By hand, from the raw versions: fanduel's Falcons moneyline, by its market's last_update.
    series: dict[int, int] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            for event in json.loads(line)["data"]:
                if event["id"] != FALCONS:
                    continue
                for book in event["bookmakers"]:
                    for market in book["markets"]:
                        if book["key"] == "fanduel" and market["key"] == "h2h":
                            for o in market["outcomes"]:
                                if o["name"] == "Atlanta Falcons":
                                    series[iso_ms(market["last_update"])] = o["price"]
    moved = iso_ms("2025-11-08T13:54:19Z")
    before = max(t for t in series if t < moved)
    assert (series[before], series[moved]) == (250, 260)
    kickoff = iso_ms("2025-11-09T14:30:00Z")
    assert series[max(t for t in series if t <= kickoff)] == 235

    replay = run(the_command("theoddsapi_nfl", "replay", NFL_SNAPSHOTS), tmp_path)
    s = replay.summary()
    assert (s["quotes"], s["alerts"], s["skipped"]) == (122_788, 634, 0)
    drops = [a for a in replay.alerts() if a["event_id"] == FALCONS and a["bookmaker"] == "fanduel"
             and a["side"] == "h2h_away" and a["last_update"] == moved]
    assert [(a["prev"], a["new"], a["direction"]) for a in drops] == [(250, 260, "toward_dog")]

    table, overall = run(the_command("theoddsapi_nfl", "backtest", NFL_SNAPSHOTS), tmp_path).backtest()
    assert (overall["alerts"], overall["closed"], overall["close_convention"]) == (634, 213, "last-before-commence")
    status = dict(table.group_by("close_status").len().iter_rows())
    assert status == {"ok": 213, "alert after close": 239, "early close": 168, "line moved": 14}
    r = one(table, event_id=FALCONS, bookmaker="fanduel", side="h2h_away", last_update=moved)
    assert r["close_price"] == 235 and r["clv"] == pytest.approx(3.60 / 3.35 - 1, abs=1e-9)
    states("theoddsapi_nfl", "122,788 quotes", "634 alerts", "213 of 634", pct(overall["mean_clv"]), "+7.46%")


def test_nfl_raw_snapshots_replay(tmp_path: Path) -> None:
    require_data("theoddsapi_nfl")
    s = run(the_command("theoddsapi_nfl", "replay", "nfl_raw_snapshot"), tmp_path).summary()
    assert (s["quotes"], s["alerts"], s["skipped"]) == (2_572, 92, 0)
    states("theoddsapi_nfl", "2,572 quotes, 92 alerts")


def test_nfl_price_changes_csv_through_its_mapping(tmp_path: Path) -> None:
    path = require_data("theoddsapi_nfl", "nfl_2025_wk10_pregame_price_changes.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["bookmaker"] == "mybookieag" and r["market"] == "h2h"
                and r["event_id"].startswith("13bdffda") and r["outcome"] == "Denver Broncos"]
    assert [r["price_american"] for r in rows[:2]] == ["-784", "-728"]
    assert rows[1]["market_last_update"] == "2025-11-02T03:16:47Z"
    assert rows[1]["home_team"] == "Denver Broncos"
    close = max((r for r in rows if r["market_last_update"] <= r["commence_time"]),
                key=lambda r: r["market_last_update"])
    assert close["price_american"] == "-526"

    replay = run(the_command("theoddsapi_nfl", "replay", "price_changes.csv"), tmp_path)
    s = replay.summary()
    assert (s["quotes"], s["alerts"], s["skipped"]) == (11_899, 1_771, 0)
    t = iso_ms("2025-11-02T03:16:47Z")
    hit = [a for a in replay.alerts() if a["bookmaker"] == "mybookieag" and a["last_update"] == t
           and a["side"] == "h2h_home" and a["event_id"].startswith("13bdffda")]
    assert [(a["prev"], a["new"], a["delta"]) for a in hit] == [(-784, -728, 56)]

    table, overall = run(the_command("theoddsapi_nfl", "backtest", "price_changes.csv"), tmp_path).backtest()
    assert (overall["alerts"], overall["closed"], overall["early_close"]) == (1_771, 1_647, 0)
    assert overall["close_convention"] == "last-before-commence"
    r = one(table, bookmaker="mybookieag", side="h2h_home", last_update=t)
    assert r["close_price"] == -526
    assert r["clv"] == pytest.approx((1 + 100 / 728) / (1 + 100 / 526) - 1, abs=1e-9)
    states("theoddsapi_nfl", "11,899 quotes", "1,771 alerts", "1,647 of 1,771", pct(overall["mean_clv"]), "-4.43%")


# -- betfair_stream -------------------------------------------------------------------------------------

BASIC = "1.132153978"
PRO = "1.197931750"


def test_betfair_stream_replay_and_backtest_against_the_starting_price(tmp_path: Path) -> None:
    path = require_data("betfair_stream", "BASIC-1.132153978")
    ltp: list[tuple[int, float]] = []
    bsp = None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            msg = json.loads(line)
            for mc in msg.get("mc", []):
                ltp += [(msg["pt"], rc["ltp"]) for rc in mc.get("rc", []) if rc["id"] == 11695059 and "ltp" in rc]
                for runner in (mc.get("marketDefinition") or {}).get("runners", []):
                    if runner["id"] == 11695059 and "bsp" in runner:
                        bsp = runner["bsp"]
    assert ltp[:2] == [(1497371499779, 15.0), (1497371549411, 20.0)] and bsp == 19.59

    replay = run(the_command("betfair_stream", "replay"), tmp_path)
    s = replay.summary()
    assert (s["quotes"], s["alerts"], s["skipped"]) == (1_522, 1_256, 0)
    alerts = replay.alerts()
    assert sum(a["event_id"] == BASIC for a in alerts) == 1_030 and sum(a["event_id"] == PRO for a in alerts) == 226
    first = next(a for a in alerts if a["side"] == "win:11695059")
    assert (first["prev"], first["new"], first["delta"], first["last_update"]) == (1400, 1900, 500, 1497371549411)

    table, overall = run(the_command("betfair_stream", "backtest", without="--unit"), tmp_path).backtest()
    assert (overall["alerts"], overall["closed"], overall["close_convention"]) == (1_256, 1_236, "starting-price")
    status = dict(table.group_by("close_status").len().iter_rows())
    assert status == {"ok": 1_236, "alert after close": 10, "no starting price": 10}
    # the greyhound market went off 79 s late: every alert of it is before the off, so it has a close
    assert table.filter(pl.col("event_id") == PRO).get_column("close_status").unique().to_list() == ["ok"]
    r = one(table, side="win:11695059", last_update=1497371549411)
    assert r["close_price"] == pytest.approx(american(bsp)) and r["clv"] == pytest.approx(20 / 19.59 - 1)
    states("betfair_stream", "1,522 quotes", "1,256 alerts", "1,236 of 1,256", pct(overall["mean_clv"]), "+2.09%")

    _, at_1pp = run(the_command("betfair_stream", "backtest", "--unit prob"), tmp_path).backtest()
    assert (at_1pp["alerts"], at_1pp["closed"]) == (107, 97)
    states("betfair_stream", "107 alerts, 97 with a close", pct(at_1pp["mean_clv"]))


# -- betfair_anz_racing ---------------------------------------------------------------------------------


def test_anz_runners_replay_and_backtest_against_the_starting_price(tmp_path: Path) -> None:
    path = require_data("betfair_anz_racing", "ANZ_Thoroughbreds_2025-03-01_to_02.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    at_off = [(american(float(r["BEST_AVAIL_BACK_AT_SCHEDULED_OFF"])),
               american(float(r["WIN_PREPLAY_LAST_PRICE_TAKEN"]))) for r in rows]
    by_cents = sum(abs(cents(b) - cents(a)) >= 10 - 1e-9 for a, b in at_off)
    prob = [(100 / float(r["BEST_AVAIL_BACK_AT_SCHEDULED_OFF"]), 100 / float(r["WIN_PREPLAY_LAST_PRICE_TAKEN"]))
            for r in rows]
    by_points = sum(abs(b - a) >= 1 - 1e-9 for a, b in prob)
    assert (len(rows), by_cents, by_points) == (1_919, 1_574, 412)
    quizzle = next(r for r in rows if r["SELECTION_ID"] == "695472")
    assert (quizzle["BEST_AVAIL_BACK_AT_SCHEDULED_OFF"], quizzle["WIN_PREPLAY_LAST_PRICE_TAKEN"],
            quizzle["WIN_BSP"]) == ("18.0", "16.5", "16.86")

    replay = run(the_command("betfair_anz_racing", "replay"), tmp_path)
    s = replay.summary()
    assert (s["quotes"], s["alerts"], s["skipped"]) == (3_838, 1_574, 0)
    hit = [a for a in replay.alerts() if a["side"] == "win:695472"]
    assert [(a["event_id"], a["prev"], a["new"], a["delta"], a["direction"]) for a in hit] == [
        ("240173946", 1700, 1550, -150, "toward_favorite")]

    table, overall = run(the_command("betfair_anz_racing", "backtest", without="--unit"), tmp_path).backtest()
    assert (overall["alerts"], overall["closed"], overall["close_convention"]) == (1_574, 1_574, "starting-price")
    r = one(table, side="win:695472")
    assert r["close_price"] == pytest.approx(1586) and r["clv"] == pytest.approx(16.5 / 16.86 - 1)
    states("betfair_anz_racing", "3,838 quotes", "1,574 alerts", "all 1,574 have a close", pct(overall["mean_clv"]),
           "-2.14%")

    _, at_1pp = run(the_command("betfair_anz_racing", "backtest", "--unit prob"), tmp_path).backtest()
    assert (at_1pp["alerts"], at_1pp["closed"]) == (412, 412)
    states("betfair_anz_racing", "412 alerts", pct(at_1pp["mean_clv"]))


# -- bovada_live_mlb ------------------------------------------------------------------------------------

BOVADA = "bovada_mlb_2019-05-06_to_08_live_and_pregame.csv"


def bovada_by_the_script_rules(path: Path) -> list[tuple[Any, ...]]:
    """The quotes scripts/bovada_mlb_to_quotes.py --pregame made (its rules restated, as the oracle the
    mapping was compared with before the script was removed): per pre-game poll, each non-zero price of
    six sides; a spread needs a non-zero line; EVEN is +100; last_update = last_mod_lines (s), or the
    poll time where that is 0; commence_time = game_start_time."""
    pairs = (("a_ml", None, "h2h_away"), ("h_ml", None, "h2h_home"),
             ("a_odds_ps", "a_hcap_ps", "spread_away"), ("h_odds_ps", "h_hcap_ps", "spread_home"),
             ("a_odds_tot", "a_hcap_tot", "total_over"), ("h_odds_tot", "h_hcap_tot", "total_under"))
    quotes = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            now, start = float(r["cur_time"]), float(r["game_start_time"])
            if now >= start:
                continue
            mod = float(r["last_mod_lines"] or 0)
            stamp = round((mod if mod > 0 else now) * 1000)
            kickoff = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            for price_col, line_col, prefix in pairs:
                text = r[price_col].strip().upper()
                if text in ("", "0"):
                    continue
                price = 100 if text == "EVEN" else int(float(text))
                side = prefix
                if line_col is not None:
                    line = float(r[line_col])
                    if line == 0 and prefix.startswith("spread"):
                        continue
                    side = f"{prefix}@{line:g}"
                quotes.append((r["game_id"], side, price, type(price), stamp, kickoff, r["h_team"], r["a_team"]))
    return quotes


def test_bovada_mapping_gives_the_quotes_of_the_retired_script() -> None:
    path = require_data("bovada_live_mlb", BOVADA)
    mapped = [(q.event_id, q.side, q.price, type(q.price), q.last_update, q.commence_time, q.home_team, q.away_team)
              for q in mapped_quotes(path, "bovada_live_mlb.toml")]
    expected = bovada_by_the_script_rules(path)
    assert len(expected) == 26_120
    # the first difference, if any (a plain == of two 26,120-item lists makes pytest diff them for minutes)
    first = next((i for i, (a, b) in enumerate(zip(mapped, expected, strict=False)) if a != b), None)
    assert first is None, (first, mapped[first], expected[first])
    assert len(mapped) == len(expected)


def test_bovada_replay_and_backtest(tmp_path: Path) -> None:
    path = require_data("bovada_live_mlb", BOVADA)
    with open(path, newline="", encoding="utf-8") as fh:
        polls = sorted((float(r["cur_time"]), r) for r in csv.DictReader(fh)
                       if r["game_id"] == "5263837" and float(r["cur_time"]) < float(r["game_start_time"]))
    changes = [(r["last_mod_lines"], r["a_ml"]) for (_, r), (_, p) in zip(polls[1:], polls[:-1], strict=True)
               if r["a_ml"] != p["a_ml"]]
    assert ("1557104922.612", "+130") in changes
    assert (polls[-1][1]["a_ml"], polls[-1][1]["h_ml"]) == ("+125", "-145")

    replay = run(the_command("bovada_live_mlb", "replay"), tmp_path)
    s = replay.summary()
    assert (s["quotes"], s["alerts"], s["skipped"]) == (26_120, 175, 0)
    hit = [a for a in replay.alerts() if a["event_id"] == "5263837" and a["last_update"] == 1557104922612
           and a["side"] == "h2h_away"]
    assert [(a["prev"], a["new"]) for a in hit] == [(143, 130)]

    table, overall = run(the_command("bovada_live_mlb", "backtest"), tmp_path).backtest()
    assert (overall["alerts"], overall["closed"], overall["early_close"]) == (175, 79, 60)
    assert overall["close_convention"] == "last-before-commence"
    r = one(table, event_id="5263837", side="h2h_away", last_update=1557104922612)
    assert r["close_price"] == 125 and r["clv"] == pytest.approx(2.30 / 2.25 - 1)
    states("bovada_live_mlb", "26,120 quotes", "175 alerts", "79 of 175", pct(overall["mean_clv"]), "+2.22%")


# -- sbr_mlb_open_close ---------------------------------------------------------------------------------


def test_sbr_open_close_replay_and_backtest(tmp_path: Path) -> None:
    path = require_data("sbr_mlb_open_close", "mlb_odds_2019_sbr_open_close.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        games = list(csv.DictReader(fh))
    moves: dict[str, list[str]] = {}
    for g in games:
        pairs = [("h2h_away", g["away_open_ml"], g["away_close_ml"]),
                 ("h2h_home", g["home_open_ml"], g["home_close_ml"])]
        if g["open_ou_line"] == g["close_ou_line"]:
            pairs.append((f"total_over@{float(g['close_ou_line']):g}", g["open_ou_odds"], g["close_ou_odds"]))
        moves[g["game"]] = [side for side, o, c in pairs if o and abs(cents(float(c)) - cents(float(o))) >= 10]
    assert (len(games), sum(map(len, moves.values()))) == (2_464, 3_515)
    assert moves["1"] == ["h2h_away", "total_over@8.5"]  # +107 -> +120; -127 -> -130 is 3 cents; -110 -> +100

    replay = run(the_command("sbr_mlb_open_close", "replay"), tmp_path)
    s = replay.summary()
    assert (s["quotes"], s["alerts"], s["skipped"]) == (19_702, 3_515, 0)
    game1 = [(a["side"], a["prev"], a["new"], a["delta"]) for a in replay.alerts() if a["event_id"] == "1"]
    assert game1 == [("h2h_away", 107, 120, 13), ("total_over@8.5", -110, 100, 10)]

    table, overall = run(the_command("sbr_mlb_open_close", "backtest"), tmp_path).backtest()
    assert (overall["alerts"], overall["closed"], overall["close_convention"]) == (3_515, 3_515, "last-before-commence")
    assert (table.get_column("clv") == 0).all()  # the alert fires on the closing quote: it takes the close
    states("sbr_mlb_open_close", "19,702 quotes", "3,515 alerts", "3,515 of 3,515", "0 by construction")


# -- sports_betting_wheel -------------------------------------------------------------------------------


def test_epl_snapshots_replay_and_backtest(tmp_path: Path) -> None:
    path = require_data("sports_betting_wheel", "England_1_2024_odds.csv.gz")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 760 and len({(r["date"], r["home_team"], r["provider"]) for r in rows}) == 760
    quotes = mapped_quotes(path, "sports_betting_wheel_epl.toml")
    assert len(quotes) == 3_800 and len({(q.event_id, q.bookmaker, q.side) for q in quotes}) == 3_800
    burnley = next(q for q in quotes if q.home_team == "Burnley" and q.away_team == "Man City"
                   and q.bookmaker == "market_average" and q.side == "h2h_home")
    assert burnley.price == pytest.approx(802)

    replay = run(the_command("sports_betting_wheel", "replay"), tmp_path)
    s = replay.summary()
    assert (s["quotes"], s["alerts"], s["primed"], s["skipped"]) == (3_800, 0, 3_800, 0)
    backtest = run(the_command("sports_betting_wheel", "backtest"), tmp_path)
    table, _ = backtest.backtest()
    assert table.height == 0
    states("sports_betting_wheel", "3,800 quotes", "0 alerts", "+802")
