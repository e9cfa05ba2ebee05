"""Golden recordings of SPEC sections 10-12, written by hand, with hand-checked expected alerts.

Each ``fixtures/signals/<case>.ndjson`` is a recording (vendor envelopes, or a quote table
as NDJSON); ``<case>.expected.json`` holds its runs: the options (``DropEngine`` keywords) and
the full wire objects of the alerts expected, in detection order, plus some counters. Every
run is checked five ways: ``DropEngine.observe`` one quote at a time, ``observe_many`` on the
whole stream, ``dropengine.replay`` of the file, the columnar engine (``replay_batch``), and
the ``dropengine replay`` CLI (NDJSON on stdout). The expectations come from the SPEC, not from
the engine; the comments below derive every expected value (``sN`` = ``1762700000000 + N`` seconds, the files' clock;
``el`` = ``elapsed_ms``; ``pp``/``np`` = ``prev_price``/``new_price``). An alert's
``timestamp`` is its quote's ``last_update`` (a replay's clock).

lines_half_full (frames; draftkings, NFL E1; spread -3/+3 and total 44.5 at s0, all -110)
  s60  spread -3.5/+3.5 (100/-120), total 44.5 (-115/-105):
       spread_home -3 -> -3.5: points -0.5, a spread line moving down is dearer for home:
       toward_favorite; -3 lies in [-3.5, -3]: key_numbers [3]; pp -110 (the price at -3),
       np 100, el 60000. spread_away 3 -> 3.5: +0.5, toward_dog, [3], pp -110, np -120.
       Totals: the same line again only refreshes (prices -115/-105 ride on 44.5; the price
       moves of 5 cents are under the threshold).
  s120 spread -4.5/+4.5 (-110/-110), total 45.5 (-110/-110): full points. spread_home
       -3.5 -> -4.5: -1, favorite, -4 in [-4.5, -3.5]: [4], pp 100, np -110, el 60000 (-3.5 was
       first seen at s60). spread_away +1, dog, [4], pp -120. total_over 44.5 -> 45.5: +1, an
       over line moving up is dearer: favorite; totals have no default key numbers: [];
       pp -115 (the latest price at 44.5, from s60, not -110 from s0), el 120000 (44.5 first
       seen at s0; s60 only re-observed it). total_under: +1, an under line moving up is
       cheaper: dog, pp -105.
  s180 a ``_diff`` row with only home_spread_price -115: merged into the s120 row, so every
       side is re-observed at its line (line repeats); -115 now rides on -4.5.
  s240 spread -4/+4 (-105/-115), total 45.5 (-125/+105): spread_home -4.5 -> -4: +0.5, dog,
       -4 is an end of the move: [4], pp -115 (the diff's price at -4.5), np -105, el 120000
       (-4.5 first seen at s120, re-observed at s180). spread_away -0.5, favorite, [4],
       pp -110. Price drops on the unchanged total line: total_over@45.5 -110 -> -125,
       delta -15, el 120000; total_under@45.5 -110 -> +105: c(+105)=5, c(-110)=-10, +15, dog.
       Within the quote order (spread_home, spread_away, over, under) each quote gives its
       odds_drop before its line_move.
  s200 arriving last: a full row with the s0 lines. Older than each line series' newest
       (s240): stale, 4 line_stale, no line move back to -3. The price keys @-3/@3 last saw s0:
       not stale, the same price: repeats; @44.5 moves by 5 cents: no alert.
  Counters: price primes 12 (4 + @-3.5/@3.5 + 4 at s120 + @-4/@4), repeats 5 (3 at s180,
  2 at s200), 2 drops; line series 24 quotes: 4 primes, 8 moves, 8 repeats, 4 stale.
  Default types: only the two drops, and no line series run at all. line_threshold 1: the
  full-point moves of s120 only. toward_favorite: the favorite line moves.

key_numbers (quotes; pinnacle; every move 10 s after the previous line was first seen)
  E2 spread_home -2.5 -> -3.5 (through 3: [3]), -> -3 (onto: [3]), -> -2.5 (from 3: [3]),
  -> -7.5 (points -5: -3,-4,-6,-7 inside: [3,4,6,7]), -> -7 ([7]), -> -14 ([7,10,14]).
  E2 total_over 44.5 -> 47.5: [] by default (key numbers are for spreads). E3 spread_home
  +3 -> -3 (points -6): both +3 and -3 are in [-3, 3], 3 is listed once: [3]. E4 is NBA: [].
  Configured ``americanfootball_nfl:spreads=3,7;americanfootball_nfl:totals=47;
  basketball_nba:spreads=3,5``: the NFL spread list is replaced ([3,7], [7] for -7 -> -14),
  the NFL total lists 47, the NBA spread -2.5 -> -3.5 lists 3 (5 is outside). An empty
  entry ``americanfootball_nfl:spreads=`` means none. Prices ride along (pp = the price
  last seen at the previous line).

suspend_reopen (frames; betmgm; -3/+3 at s0)
  s60 null prices at -3/+3: the price keys and the line series are suspended. s90 a row whose
  spread lines are null: no spread quote, the series stay untouched (still suspended). s120
  -4/+4 at -110: the first line after a suspension re-primes (default): no alert. s180
  -4.5/+4.5 (-105/-115): -4 -> -4.5 favorite [4], pp -110, el 60000 (-4 seen first at s120);
  +4 -> +4.5 dog [4]. Price keys: @-3/@3, @-4/@4, @-4.5/@4.5 primed (6), 2 suspended.
  Without re-priming, s120 compares with the line before the suspension: -3 -> -4, points
  -1, [3, 4], el 120000 (-3 first seen at s0), and pp null: the most recent observation at
  -3 before s120 is the s60 suspension, which carried no price (SPEC 10's prev_price rule,
  read literally; engine fixed in a4d6a85, finding G1).

anchor_creep (quotes; williamhill_us totals; reference anchor, line_threshold 1)
  s0 44.5 (-110/-110); s30 44.5 again (-115/-105: repeats, the prices ride on 44.5); s60 45
  (0.5 from the anchor 44.5: no alert); s90 44.5 (-120/+100: back on the anchor line, 0 from
  it); s120 45.5: +1 from the anchor: over favorite / under dog, pp -120 / +100 (the LATEST
  prices seen at the anchor line, s90, not those of s0 nor the s60 line's), el 120000 (the
  anchor was set at s0). The anchor moves to 45.5; s150 46 (0.5: none); s180 46.5: +1, pp
  -110 (the price at 45.5), el 60000. Repeats: s30 only (2); s90 is a move of the current
  line (45 -> 44.5) under the threshold, not a repeat.
  reference last: only 44.5 -> 45.5 at s120 is a whole point from the previous line; its
  44.5 became current at s90: el 30000.
  All types: the price keys under anchor: total_over@44.5 -110 (s0) -> -115 (5: none) -> -120
  (10 from the anchor: alert at s90, el 90000); total_under@44.5 -110 -> -105 -> +100: +10,
  dog. They come before the line moves (earlier quotes).

prop_line (frames; NBA props at draftkings)
  LeBron points 24.5 -> 25.5 at s60: over +1 (over up: favorite, pp -115, np -110), under +1
  (dog, pp -105, np -110); the player "O:Neal @ LA" (``:`` and ``@`` in the name) rebounds
  10.5 -> 9.5: over -1 dog (pp -110, np -125), under -1 favorite (np +105); s120 LeBron
  25.5 -> 25: over -0.5 dog, under -0.5 favorite. Each carries kind prop, its market key,
  player and market label; props have no default key numbers. kinds=game: nothing.

line_only (frames; fanduel publishes home_ml/away_ml and the lines, no spread/total prices)
  s60 moneylines -150 -> -160 (-10, favorite) and +130 -> +140 (+10, dog), then the
  line-only spread -3 -> -3.5 ([3], pp null, np null) and +3 -> +3.5. s90 spread lines null:
  nothing (not a suspension). s120 -3.5 -> -4 ([4], el 60000: -3.5 first seen at s60, the
  s90 row had no spread). s180 the book starts pricing: -4 -> -4.5 at -110: pp null (the last
  observation at -4 had no price), np -110; price keys @-4.5/@4.5 prime. s240 -4.5 -> -4 at
  -115: pp -110. Line series: 4 primes, 8 moves, 10 repeats (the totals, twice per row from
  s60), 22 observations, none suspended. Default types: the decoder yields no line-only
  quotes; the two moneyline drops only.

steam_third_book (quotes; E1 spread_home; all at -3/-110 at s0)
  s100 pinnacle line -3 -> -3.5 (favorite), s130 draftkings price -110 -> -125 on @-3
  (favorite), s145 fanduel line -3 -> -3.5: the third book of the group (E1, spread_home,
  favorite) within 300 s: steam with books in last_update order (pinnacle's line move,
  draftkings' drop with its full side, fanduel's line move), leader pinnacle, lag 45000,
  last_update s145, after fanduel's line_move. s200 betmgm: a fourth book, but T=s200 <
  F+window = s445: no second steam.
  steam_books 4: fires at betmgm with the four books, lag 100000. Window 40 s: at s145 only
  draftkings and fanduel are within [s105, s145]; at s200 only betmgm: never. steam
  threshold 20 cents: draftkings' 15-cent drop does not count; pinnacle, fanduel, betmgm
  fire at s200. types=steam: the steam alone (the line series still run for it). bookmakers
  filter: a steam passes when one of its books is listed (draftkings: the drop and the steam;
  betmgm: only betmgm's line move). toward_dog: nothing returned, the steam still counted.

steam_ages_out (quotes; h2h prices 150 -> 135 / -150 -> -135)
  E1 h2h_away favorite: pinnacle s10, draftkings s200, fanduel s311: T = s311, the window
  starts at s11: pinnacle is out, 2 books: no steam. betmgm s320: draftkings, fanduel,
  betmgm: steam, leader draftkings, lag 120000. E2 h2h_home dog moves arrive out of
  last_update order: draftkings at s400, then pinnacle at s100 and fanduel at s105: T is the
  newest counted move (s400, not the arriving one), the window is [s100, s400] (closed:
  pinnacle at exactly T - window counts): steam with pinnacle, fanduel, draftkings (by
  last_update), lag 300000, last_update s400, timestamp s105 (fanduel's quote). A window of
  299999 ms leaves pinnacle out: only the E1 steam.

steam_cooldown_refire (quotes; total_over 44.5 -> 45 line moves, favorite)
  pinnacle s10, draftkings s20, fanduel s30: steam at F = s30. betmgm s100 and pinnacle's
  second move (45 -> 45.5) at s320: T < F + 300 s = s330: suppressed, although four books are
  in the window at s320. draftkings 45 -> 45.5 at s340: T = s340 >= s330, window [s40, s340]:
  betmgm (s100), pinnacle (s320), draftkings (s340): steam, leader betmgm, lag 240000 (each
  book with its latest move). el: pinnacle s320 - s10, draftkings s340 - s20.

steam_group (quotes; h2h_home -110 -> -125 at betonlineag s10, lowvig s12, pinnacle s20,
  draftkings s30). Groups ``betonlineag+lowvig``: the pair counts once, by its earliest move
  (betonlineag): 2 at s20, 3 at s30: steam [betonlineag, pinnacle, draftkings], lag 20000.
  Without groups: 3 books at s20 (lag 10000) and the cooldown holds draftkings' move.

cooldown_steam (quotes; cooldown 600 s; h2h_home -110 at s0)
  pinnacle -125 at s10 (returned; the key's cooldown runs from s10), draftkings -125 at
  s30, pinnacle -140 at s60 (cooled: 50 s after s10; counted; still pinnacle's latest move
  for steam), fanduel -125 at s90: steam [draftkings s30, pinnacle s60 (-125 -> -140),
  fanduel s90], leader draftkings, lag 60000 -- had the cooled move not counted, pinnacle's
  s10 move would lead. pinnacle -155 at s500 (cooled, 490 s after s10), -170 at s615
  (605 s after s10: returned -- the cooldown runs from the last alert it did not suppress,
  not from s60 or s500), -185 at s700 (cooled, 85 s after s615). E2 h2h_away +120 -> +105
  at s100 (favorite, returned) and +105 -> +125 at s200 (dog, cooled). 9 detections, 4
  cooled. With toward_dog the s100 alert is filtered but still starts the cooldown (taken
  before the filters): nothing returned; without the cooldown toward_dog returns the s200 one.

cooldown_anchor (quotes; reference anchor, cooldown 600 s)
  h2h_home -110 -> -125 at s10 (returned), -140 at s20 (cooled, but the anchor moves to
  -140), -145 at s700 (5 cents from -140: nothing; 20 from -125), -150 at s710: 10 from the
  anchor -140, 700 s after s10: returned, el 690000 (the anchor was set at s20). The spread
  line -3 -> -3.5 at s10 (returned), -> -4 at s20 (cooled, anchor -4), -4 again at s700
  (price -115 rides on it), -> -3.5 at s710: +0.5 from the anchor -4: dog, [4], pp -115.
  Without the cooldown the s20 moves are returned too.

order_one_quote (quotes; E1 spread_home; steam_books 3)
  fanduel -3 (-130) at s0 moves to -2.5 at s1 (dog). At s1000-s1003: pinnacle line -2.5 -> -2
  (dog), draftkings price -110 -> -100 on @-2.5 (+10, dog), betmgm line -2.5 -> -3 (fav),
  williamhill_us price -110 -> -120 (fav): two books in each direction's group (fanduel's
  s1 move is out of the window). fanduel's quote @-3 at -110 at s1010 is a price move on its
  @-3 key (-130 at s0 -> -110: +20, dog) AND a line move (-2.5 -> -3: favorite, pp -110 from
  s1, el 1009000): its odds_drop, the dog steam it completes (pinnacle, draftkings,
  fanduel's drop), its line_move, the favorite steam it completes (betmgm, williamhill_us,
  fanduel's line move): SPEC 11's order (section 3 before section 10, each fed to steam
  before the next).

lines_edges (quotes)
  E1 spread_home -3 (s0); at s10 a quote at -4 with the invalid price +50: skipped whole, it
  observes neither its price key nor its line series (SPEC 10, last paragraph); s20 -4 at -110:
  -3 -> -4 ([3, 4], pp -110, el 20000); s20 again at -4.5: an equal last_update is not stale:
  -0.5, [4], pp -110, el 0 (-4 first seen at s20); s15 at -3 arriving last: stale for the line
  series (newest s20), a repeat for the price key @-3 (last seen s0). A prop line 2.1 -> 2.3
  computes as 0.19999999999999973 in binary floating point: at line_threshold 0.2 it fires
  (SPEC 3 rule 4's tolerance) and is written 0.2; an Asian handicap -0.25 -> -0.5 (soccer: no
  key numbers) fires at 0.2 and at 0.25 (exactly the threshold), not at the default 0.5.

steam_ties_both_ways (quotes; h2h_home -110 at s0)
  At s50: pinnacle -125 (favorite), draftkings -125, pinnacle back to -110 (dog), pinnacle
  -125 again (favorite: its newer move takes a new place among the ties), fanduel -125:
  three books in the favorite group, all at s50: ties in the order in which each book's
  counted move arrived: [draftkings, pinnacle, fanduel], lag 0. Dog group: pinnacle's dog
  move at s50 keeps counting although pinnacle moved the other way after it; betmgm -110 ->
  +105 (s60) and draftkings -125 -> -110 (s70) complete it: [pinnacle, betmgm, draftkings].
  toward_dog: only that steam is returned, both are counted.

steam_group_window (quotes; h2h_away 150 -> 135; groups betonlineag+lowvig)
  E1: betonlineag s10, lowvig s100, pinnacle s200, draftkings s305: window [s5, s305], the
  group counts once by its earliest move in the window (betonlineag s10): steam at s305, lag
  295000. E2 the same with draftkings at s320: the window [s20, s320] no longer holds
  betonlineag's s10 move, so the group is represented by lowvig (s100): lag 220000. Without
  groups both fire at pinnacle (s200) and draftkings falls in the steam cooldown.

cooldown_boundary (quotes; cooldown 600 s, steam_books 2)
  "Less than cooldown_ms earlier" suppresses: pinnacle h2h alert at s10; its next at s610 is
  600 s later: returned (el 600000). The line series: -3.5 at s10 (returned), -4 at s609
  (cooled), -4.5 at s610 (600 s after s10: returned, pp -110, el 1000). Steam: pinnacle s10 +
  draftkings s20 fire at F = s20; fanduel at s320 = F + window exactly: no longer in the
  steam's cooldown (T < F + window is false): [draftkings, fanduel], lag 300000 (pinnacle's
  s10 move is out of [s20, s320]); pinnacle's s610 move: T = s610 < s320 + 300 s: none.

steam_replaced_newest (quotes; steam_books 2; pinnacle quotes spread_home at -3 and -3.5)
  pinnacle's @-3 drops at s1000, then (arriving later, an older time on its other price key)
  its @-3.5 drops at s100: by arrival this is pinnacle's most recent move, so it replaces the
  s1000 one in the group (SPEC 11: only each book's most recent move by arrival counts).
  draftkings' drop at s150: the counted moves are pinnacle s100 and draftkings s150, so T =
  s150 ("the newest last_update among the group's counted moves"), both within [T - 300 s,
  T]: steam [pinnacle @-3.5, draftkings @-3], lag 50000, last_update s150. (A T kept at the
  replaced s1000 move would put both out of the window: the engine's T until a4d6a85, finding G2.)
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from dropengine import DropEngine, Quote, replay
from dropengine.cli.group import main
from dropengine.core.options import DetectOptions
from dropengine.core.skips import SkipLog
from dropengine.formats.frames import FrameDecoder
from dropengine.io.replay import replay_batch

from .conftest import FIXTURES

SIGNALS = FIXTURES / "signals"
#: case -> the format of its recording
CASES: dict[str, str] = {
    "lines_half_full": "frames",
    "key_numbers": "quotes",
    "suspend_reopen": "frames",
    "anchor_creep": "quotes",
    "prop_line": "frames",
    "line_only": "frames",
    "steam_third_book": "quotes",
    "steam_ages_out": "quotes",
    "steam_cooldown_refire": "quotes",
    "steam_group": "quotes",
    "cooldown_steam": "quotes",
    "cooldown_anchor": "quotes",
    "order_one_quote": "quotes",
    "lines_edges": "quotes",
    "steam_ties_both_ways": "quotes",
    "steam_group_window": "quotes",
    "cooldown_boundary": "quotes",
    "steam_replaced_newest": "quotes",
}


@cache
def runs_of(case: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads((SIGNALS / f"{case}.expected.json").read_text())["runs"]
    return runs


#: Runs where the engine disagrees with the SPEC (reported in /tmp/notes/requests-golden.md), as
#: strict xfails until the fix lands. G1 (suspend_reopen-1) and G2 (steam_replaced_newest-0) were
#: fixed in a4d6a85.
KNOWN_BUGS: dict[tuple[str, int], str] = {}


def _param(case: str, i: int) -> Any:
    bug = KNOWN_BUGS.get((case, i))
    marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
    return pytest.param(case, i, id=f"{case}-{i}", marks=marks)


RUNS = [_param(case, i) for case in CASES for i in range(len(runs_of(case)))]


def quotes_of(case: str, options: dict[str, Any]) -> list[Quote]:
    """The recording's quotes, decoded here (independently of the replay readers): vendor
    envelopes through the frame decoder (line-only observations when lines are detected, as
    SPEC 10 asks of a consumer), quote rows straight into ``Quote``."""
    path = SIGNALS / f"{case}.ndjson"
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if CASES[case] == "quotes":
        return [Quote(**row) for row in lines]
    detects_lines = DetectOptions.build(**options).detects_lines
    decoder = FrameDecoder(line_only=detects_lines)
    skips = SkipLog()
    out = [q for env in lines for q in decoder.feed(env, skips)]
    assert skips.total == 0
    return out


def wire(alert: Any) -> dict[str, Any]:
    """An alert as its JSON wire object (what every consumer sees; tuples become lists)."""
    out: dict[str, Any] = msgspec.json.decode(alert.to_json())
    return out


def check_counters(engine: DropEngine, want: dict[str, int]) -> None:
    got = engine.counters.as_dict()
    assert {k: got[k] for k in want} == want


@pytest.mark.parametrize(("case", "i"), RUNS)
def test_engine_one_quote_at_a_time(case: str, i: int) -> None:
    run = runs_of(case)[i]
    engine = DropEngine(**run["options"])
    got = [wire(a) for q in quotes_of(case, run["options"]) for a in engine.observe(q)]
    assert got == run["alerts"]
    check_counters(engine, run.get("counters", {}))
    assert engine.counters.alerts == len(run["alerts"])


@pytest.mark.parametrize(("case", "i"), RUNS)
def test_engine_all_at_once_and_replay(case: str, i: int) -> None:
    run = runs_of(case)[i]
    engine = DropEngine(**run["options"])
    assert [wire(a) for a in engine.observe_many(quotes_of(case, run["options"]))] == run["alerts"]
    check_counters(engine, run.get("counters", {}))
    replayed = DropEngine(**run["options"])
    got = [wire(a) for a in replay([SIGNALS / f"{case}.ndjson"], replayed, CASES[case])]
    assert got == run["alerts"]
    check_counters(replayed, run.get("counters", {}))


@pytest.mark.parametrize(("case", "i"), RUNS)
def test_batch_replay(case: str, i: int) -> None:
    """The columnar engine (``replay_batch``) on the same recording: the same alerts and counters."""
    run = runs_of(case)[i]
    result = replay_batch([SIGNALS / f"{case}.ndjson"], CASES[case], **run["options"])
    assert [wire(a) for a in result.alert_values()] == run["alerts"]
    got = result.counters.as_dict()
    assert {k: got[k] for k in run.get("counters", {})} == run.get("counters", {})


def cli_args(options: dict[str, Any]) -> list[str] | None:
    """The ``dropengine replay`` flags of a run's options; None when the CLI cannot express
    them (it always re-primes after a suspension)."""
    args: list[str] = []
    for key, value in options.items():
        if key == "reprime_after_suspension":
            return None
        if key in ("steam_window_ms", "cooldown_ms"):
            flag = "--steam-window" if key == "steam_window_ms" else "--cooldown"
            args += [flag, str(value / 1000) if value % 1000 else str(value // 1000)]
        else:
            args += ["--" + key.replace("_", "-"), str(value)]
    return args


@pytest.mark.parametrize(("case", "i"), RUNS)
def test_cli_replay(case: str, i: int) -> None:
    run = runs_of(case)[i]
    args = cli_args(run["options"])
    if args is None:
        pytest.skip("the CLI always re-primes after a suspension")
    result = CliRunner().invoke(
        main, ["replay", str(SIGNALS / f"{case}.ndjson"), "--format", CASES[case], "-q", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    got = [msgspec.json.decode(line) for line in result.stdout_bytes.splitlines() if line.strip()]
    assert got == run["alerts"]


def test_every_rule_has_a_fixture() -> None:
    """Each case's recording and expectations exist, and nothing in fixtures/signals is unused."""
    files = {p.name for p in SIGNALS.iterdir()}
    want = {f"{c}.ndjson" for c in CASES} | {f"{c}.expected.json" for c in CASES}
    assert files == want
    # every alert type and direction appears in some expectation
    seen = {(a["type"], a["direction"]) for c in CASES for r in runs_of(c) for a in r["alerts"]}
    assert seen == {(t, d) for t in ("odds_drop", "line_move", "steam") for d in ("toward_favorite", "toward_dog")}


def test_lines_are_written_as_in_the_side_string() -> None:
    """SPEC 2 / API: integral lines, points and key numbers are written as integers (``-3``,
    ``[3]``), others as floats (``-3.5``), byte for byte."""
    run = runs_of("lines_half_full")[0]
    engine = DropEngine(**run["options"])
    first = engine.observe_many(quotes_of("lines_half_full", run["options"]))[0]
    assert b'"prev_line":-3,"new_line":-3.5,"points":-0.5,"prev_price":-110,"new_price":100' in first.to_json()
    assert b'"key_numbers":[3]' in first.to_json()


def test_snapshot_restore_mid_recording_changes_nothing() -> None:
    """The state of SPEC 10-12 (line series, anchors, cooldowns, steam groups) survives a
    snapshot/restore at every cut of each golden recording."""
    for case in ("cooldown_steam", "order_one_quote", "anchor_creep", "steam_cooldown_refire"):
        run = runs_of(case)[0]
        quotes = quotes_of(case, run["options"])
        for cut in range(len(quotes) + 1):
            first = DropEngine(**run["options"])
            head = first.observe_many(quotes[:cut])
            second = DropEngine.restore(first.snapshot())
            tail = second.observe_many(quotes[cut:])
            assert [wire(a) for a in head + tail] == run["alerts"], (case, cut)
