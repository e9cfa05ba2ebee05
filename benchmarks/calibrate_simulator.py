"""Compare ``dropengine.sim.simulate`` with real recorded odds: update rates, move sizes, even-money crossings.

Run from the repository root::

    .venv/bin/python benchmarks/calibrate_simulator.py            # real data from ../shared/data
    .venv/bin/python benchmarks/calibrate_simulator.py --data DIR --seed 7

The real recordings (read in place, never copied) are

- ``theoddsapi_nfl/nfl_2025_wk10_pregame_price_changes.csv``: every (price, line) change of the
  NFL week-10 games from 2025-11-02 to kick-off, 11 US books, polled every 5-25 minutes;
- ``theoddsapi_nfl/nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz``: the last 30 hours
  before the Sunday kick-offs, 86 polls about 16 minutes apart (a few games go in play);
- ``bovada_live_mlb/bovada_mlb_2019-05-06_to_08_live_and_pregame.csv``: Bovada MLB, polled
  about every 2 minutes before the games and every 35 seconds in play.

Every source is reduced to the same thing: per *slot* (event, book, market, outcome), a time
series of (line, price) observations. For each group of slots the script prints

- ``rate``: observed changes of (line, price) per slot per hour, over the span from a slot's
  first to its last observation (for the week-10 CSV, to kick-off);
- ``line%``: the share of those changes that moved the line (spread or total points);
- the sizes of the price moves on an unchanged line, in cents (SPEC section 1), as shares of
  1-4, 5-9, 10-14, 15-19 and 20+ cents;
- ``x-even``: the share of those moves that cross even money (``+105 -> -110``).

The real data are polls, so several moves between two polls show up as one larger move, and
rates are capped by the polling interval. The simulated recording is therefore measured twice:
as streamed (every re-quote), and polled like the real source (state sampled every 16 minutes
before the game as in the NFL series, and every 2 minutes / 35 seconds before / during the game
as in the Bovada file). The polled rows are the ones to compare. Results: docs/simulator.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from dropengine import DropEngine
from dropengine.core.odds import cents
from dropengine.core.quote import Quote, commence_ms
from dropengine.core.sides import parse_side
from dropengine.core.skips import SkipLog
from dropengine.formats.frames import FrameDecoder
from dropengine.formats.tables import quote_from_row
from dropengine.io.replay import read_quotes
from dropengine.sim.simulate import SimConfig, simulate_envelopes, simulate_quote_rows

ROOT = Path(__file__).resolve().parent.parent
NFL_CSV = "theoddsapi_nfl/nfl_2025_wk10_pregame_price_changes.csv"
NFL_SERIES = "theoddsapi_nfl/nfl_snapshots_2025-11-08T12Z_to_2025-11-09T18Z.ndjson.gz"
BOVADA = "bovada_live_mlb/bovada_mlb_2019-05-06_to_08_live_and_pregame.csv"
#: The --line-moves rate that matches the real NFL series' line moves (docs/simulator.md), and
#: the line-only books of the demonstration run.
LINE_MOVES = 0.05
LINE_ONLY = ("fanduel", "betmgm")
NFL_SERIES_START, NFL_SERIES_END = "2025-11-08T12:00:00Z", "2025-11-09T18:05:00Z"
BINS = ((1, 5, "1-4"), (5, 10, "5-9"), (10, 15, "10-14"), (15, 20, "15-19"), (20, 10**9, "20+"))

Slot = tuple[str, str, str, str]  # event, book, market, outcome
Obs = tuple[float, object, int | float | None]  # unix s, line, price (None = suspended/off)
Series = dict[Slot, list[Obs]]


@dataclass
class Metrics:
    slots: int
    hours: float
    changes: int
    line_changes: int
    moves: int
    bins: list[int]
    crossings: int

    @property
    def rate(self) -> float:
        return self.changes / self.hours if self.hours else 0.0

    def row(self, name: str) -> str:
        shares = [f"{100 * b / self.moves:4.0f}%" if self.moves else "   - " for b in self.bins]
        line = f"{100 * self.line_changes / self.changes:4.0f}%" if self.changes else "   - "
        cross = f"{100 * self.crossings / self.moves:5.1f}%" if self.moves else "    - "
        return (
            f"| {name} | {self.slots:,} | {self.hours:,.0f} | {self.rate:.3f} | {line} | {self.moves:,} | "
            + " | ".join(shares)
            + f" | {cross} |"
        )


HEADER = (
    "| source | slots | slot-hours | rate | line% | moves | 1-4 | 5-9 | 10-14 | 15-19 | 20+ | x-even |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def measure(series: Series) -> Metrics:
    m = Metrics(len(series), 0.0, 0, 0, 0, [0] * len(BINS), 0)
    for obs in series.values():
        obs.sort(key=lambda o: o[0])
        if len(obs) > 1:
            m.hours += (obs[-1][0] - obs[0][0]) / 3600
        for (_, l0, p0), (_, l1, p1) in pairwise(obs):
            if p0 is None or p1 is None or (l0 == l1 and p0 == p1):
                continue
            m.changes += 1
            if l0 != l1:
                m.line_changes += 1
                continue
            d = abs(cents(p1) - cents(p0))
            if d == 0:  # +100 -> -100
                continue
            m.moves += 1
            for i, (lo, hi, _) in enumerate(BINS):
                if lo <= d < hi:
                    m.bins[i] += 1
            m.crossings += (p0 > 0) != (p1 > 0)
    return m


def poll(series: Series, every_s: float, start: float | None = None, end: float | None = None) -> Series:
    """The state of each slot sampled every ``every_s`` seconds (what a poller would have seen)."""
    out: Series = {}
    for slot, obs in series.items():
        obs.sort(key=lambda o: o[0])
        first = obs[0][0] if start is None else max(start, obs[0][0])
        last = obs[-1][0] if end is None else min(end, obs[-1][0])
        sampled: list[Obs] = []
        i = 0
        t = first
        while t <= last:
            while i + 1 < len(obs) and obs[i + 1][0] <= t:
                i += 1
            sampled.append((t, obs[i][1], obs[i][2]))
            t += every_s
        if sampled:
            out[slot] = sampled
    return out


def select(series: Series, book: str | None = None, exclude: Iterable[str] = ()) -> Series:
    skip = set(exclude)
    return {k: v for k, v in series.items() if (book is None or k[1] == book) and k[1] not in skip}


def iso_s(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iso_ms(text: str) -> int:
    return round(iso_s(text) * 1000)


# --------------------------------------------------------------------------- real data


def nfl_week_csv(path: Path) -> Series:
    """Week-10 changes; each slot is extended to its kick-off (the book kept quoting it)."""
    series: Series = defaultdict(list)
    kickoff: dict[str, float] = {}
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            slot = (r["event_id"], r["bookmaker"], r["market"], r["outcome"])
            series[slot].append((iso_s(r["fetched_at_commit_utc"]), r["point"], int(r["price_american"])))
            kickoff[r["event_id"]] = iso_s(r["commence_time"])
    for slot, obs in series.items():
        obs.sort(key=lambda o: o[0])
        obs.append((kickoff[slot[0]], obs[-1][1], obs[-1][2]))
    return dict(series)


def nfl_series(path: Path) -> tuple[Series, Series]:
    pre: Series = defaultdict(list)
    live: Series = defaultdict(list)
    with gzip.open(path, "rt") as fh:
        for line in fh:
            snap = json.loads(line)
            t = iso_s(snap["timestamp"])
            for ev in snap["data"]:
                target = pre if t < iso_s(ev["commence_time"]) else live
                for book in ev["bookmakers"]:
                    for market in book["markets"]:
                        for o in market["outcomes"]:
                            slot = (ev["id"], book["key"], market["key"], o["name"])
                            target[slot].append((t, o.get("point"), o["price"]))
    return dict(pre), dict(live)


def _bovada_price(text: str) -> int | None:
    """Bovada's file writes 0 for 'not offered' and +-10000 as an off-the-board placeholder."""
    try:
        price = int(text)
    except ValueError:
        return None
    return price if 100 <= abs(price) < 10000 else None


def bovada(path: Path) -> tuple[Series, Series]:
    pre: Series = defaultdict(list)
    live: Series = defaultdict(list)
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            if r["quarter"] == "-1":  # finished
                continue
            t, g = float(r["cur_time"]), r["game_id"]
            target = pre if t < float(r["game_start_time"]) else live
            target[(g, "bovada", "h2h", "away")].append((t, None, _bovada_price(r["a_ml"])))
            target[(g, "bovada", "h2h", "home")].append((t, None, _bovada_price(r["h_ml"])))
            if r["a_odds_ps"] not in ("0", ""):
                target[(g, "bovada", "spreads", "away")].append((t, r["a_hcap_ps"], _bovada_price(r["a_odds_ps"])))
                target[(g, "bovada", "spreads", "home")].append((t, r["h_hcap_ps"], _bovada_price(r["h_odds_ps"])))
            target[(g, "bovada", "totals", "over")].append((t, r["a_hcap_tot"], _bovada_price(r["a_odds_tot"])))
            target[(g, "bovada", "totals", "under")].append((t, r["h_hcap_tot"], _bovada_price(r["h_odds_tot"])))
    return dict(pre), dict(live)


# --------------------------------------------------------------------------- simulated data


@dataclass
class SimRun:
    pre: Series
    live: Series
    rows_pre_h: float  # vendor rows per event-hour, last pre-game hour
    rows_live_h: float  # vendor rows per event-hour in play


def simulated(cfg: SimConfig) -> SimRun:
    """Quotes of one simulated recording as slots (split at each event's kick-off)."""
    pre: Series = defaultdict(list)
    live: Series = defaultdict(list)
    kickoff: dict[str, float] = {}
    last_hour: set[tuple[str, str, int]] = set()
    in_play: set[tuple[str, str, int]] = set()
    for q in simulate_quote_rows(cfg):
        if q["kind"] != "game":
            continue
        event = q["event_id"]
        ko = kickoff.setdefault(event, iso_s(q["commence_time"]))
        t = q["last_update"] / 1000
        info = parse_side(q["side"])
        slot = (event, q["bookmaker"], info.market_key, info.outcome)
        (pre if t < ko else live)[slot].append((t, info.line, q["price"]))
        row_id = (event, q["bookmaker"], q["last_update"])
        if ko - 3600 <= t < ko:
            last_hour.add(row_id)
        elif t >= ko:
            in_play.add(row_id)
    # in-play event-hours: from kick-off to the game's last row (or the end of the recording)
    live_end: dict[str, float] = defaultdict(float)
    for (event, _, ms) in in_play:
        live_end[event] = max(live_end[event], ms / 1000)
    live_hours = sum(live_end[e] - kickoff[e] for e in live_end)
    pre_events = {e for e, _, _ in last_hour}
    return SimRun(
        dict(pre), dict(live),
        len(last_hour) / max(1, len(pre_events)),
        len(in_play) / live_hours * 3600 if live_hours else 0.0,
    )


# --------------------------------------------------------------------------- line moves and steam

#: The pre-game stretch compared: the last hours before each kick-off inside the recording.
SIGNAL_HOURS = 12
POLL_MS = 16 * 60_000  # the NFL series' poll interval


@dataclass
class Signals:
    """Line moves and steam (SPEC 10-11, detected by the engine) in the last SIGNAL_HOURS before
    each kick-off that the recording covers, per event-hour."""

    events: int
    event_hours: float
    line_moves: int
    clustered: int  # line moves with another book's move of the outcome, same direction, within 5 min
    steam: dict[int, int]  # books -> steams that reached that many books
    line_only: int  # line moves of books that publish no price for the line

    def row(self, name: str) -> str:
        per = (lambda n: f"{n / self.event_hours:.3f}") if self.event_hours else (lambda n: "-")
        share = f"{100 * self.clustered / self.line_moves:.0f}%" if self.line_moves else "-"
        return (f"| {name} | {self.events} | {self.event_hours:,.0f} | {self.line_moves:,} | {per(self.line_moves)} | "
                f"{share} | " + " | ".join(f"{self.steam[n]} ({per(self.steam[n])})" for n in sorted(self.steam))
                + f" | {self.line_only} |")


SIGNAL_HEADER = (
    "| source | events | event-hours | line moves | per event-hour | with another book within 5 min "
    "| steam, 3 books (per event-hour) | 4 books | 5 books | from line-only books |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def signals(quotes: list[Quote], start_ms: int, end_ms: int) -> Signals:
    """Detect line moves and steam (3, 4 and 5 books, the default 300 s window) with the engine,
    and count those inside each event's last SIGNAL_HOURS before a kick-off within the recording."""
    span = SIGNAL_HOURS * 3_600_000
    windows: dict[str, tuple[int, int]] = {}
    for q in quotes:
        if q.event_id not in windows and q.commence_time:
            ko = commence_ms(q.commence_time)
            if ko is not None and ko - span >= start_ms and ko <= end_ms:
                windows[q.event_id] = (ko - span, ko)

    def inside(a: Any) -> bool:
        w = windows.get(a.event_id)
        return w is not None and w[0] <= a.last_update < w[1]

    steam: dict[int, int] = {}
    moves: list[Any] = []
    for books in (3, 4, 5):
        engine = DropEngine(types="line_move,steam", steam_books=books)
        alerts = [a for a in engine.observe_many(quotes) if inside(a)]
        steam[books] = sum(1 for a in alerts if a.type == "steam")
        if books == 3:
            moves = [a for a in alerts if a.type == "line_move"]
    by_group: dict[tuple[str, str, str], list[tuple[int, str]]] = defaultdict(list)
    for m in moves:
        by_group[(m.event_id, m.side, m.direction)].append((m.last_update, m.bookmaker))
    clustered = 0
    for group in by_group.values():
        for t, book in group:
            clustered += any(b != book and abs(u - t) <= 300_000 for u, b in group)
    return Signals(len(windows), len(windows) * SIGNAL_HOURS, len(moves), clustered, steam,
                   sum(1 for m in moves if m.new_price is None))


def real_nfl_quotes(path: Path) -> list[Quote]:
    """The NFL series as the engine reads it (each quote at its market's last_update), pre-game."""
    out: list[Quote] = []
    for batch, _ in read_quotes([path]):
        out.extend(q for q in batch if q.commence_time and q.last_update < (commence_ms(q.commence_time) or 0))
    return out


def polled_quotes(cfg: SimConfig, every_ms: int) -> list[Quote]:
    """A simulated recording as a poller sees it: every ``every_ms`` the newest row of each
    (event, book, row identity) that changed since the last poll, with its own last_update
    (as The Odds API reports a market's last change); pre-game rows only."""
    decoder = FrameDecoder(cfg.sport_key, line_only=True)
    skips = SkipLog()
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    shown: dict[tuple[Any, ...], int] = {}
    out: list[Quote] = []
    next_poll = cfg.start_ms

    def poll() -> None:
        rows = [r for k, r in latest.items() if shown.get(k) != r["last_update"]]
        for k in [k for k, r in latest.items() if shown.get(k) != r["last_update"]]:
            shown[k] = latest[k]["last_update"]
        if rows:
            out.extend(decoder.feed({"type": "odds_update", "data": rows}, skips))

    for env in simulate_envelopes(cfg):
        for row in env.get("data", ()):
            if row["last_update"] >= commence_ms(row["commence_time"]):
                continue
            while row["last_update"] >= next_poll + every_ms:
                next_poll += every_ms
                poll()
            latest[(row["event_id"], row["bookmaker"], row.get("player"), row.get("market_key"))] = row
    poll()
    return out


# --------------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    data: Path = args.data
    for rel in (NFL_CSV, NFL_SERIES, BOVADA):
        if not (data / rel).exists():
            print(f"missing {data / rel}; pass --data", file=sys.stderr)
            return 2

    nfl_cfg = SimConfig(events=14, books=12, hours=36, seed=args.seed, sport_key="americanfootball_nfl")
    lines_cfg = replace(nfl_cfg, line_moves=LINE_MOVES)
    mlb_cfg = SimConfig(events=15, books=6, hours=24, seed=args.seed, sport_key="baseball_mlb")
    week = nfl_week_csv(data / NFL_CSV)
    s_pre, s_live = nfl_series(data / NFL_SERIES)
    b_pre, b_live = bovada(data / BOVADA)
    nfl = simulated(nfl_cfg)
    mlb = simulated(mlb_cfg)

    print(f"NFL simulation: {nfl_cfg}\nMLB simulation: {mlb_cfg}\n")
    print("Pre-game, all books (simulated: soft books; pinnacle is listed apart, the real files have no sharp book)\n")
    print(HEADER)
    print(measure(week).row("real NFL wk10 CSV, 8 days, polled 5-25 min"))
    print(measure(s_pre).row("real NFL series, last 30 h, polled ~16 min"))
    print(measure(select(nfl.pre, exclude=["pinnacle"])).row("sim NFL soft books, streamed"))
    print(measure(poll(select(nfl.pre, exclude=["pinnacle"]), 16 * 60)).row("sim NFL soft books, polled 16 min"))
    lines = simulated(lines_cfg)
    print(measure(poll(select(lines.pre, exclude=["pinnacle"]), 16 * 60))
          .row(f"sim NFL soft books, --line-moves {LINE_MOVES:g}, polled 16 min"))
    print(measure(select(nfl.pre, "pinnacle")).row("sim NFL pinnacle, streamed"))
    print(measure(poll(select(nfl.pre, "pinnacle"), 16 * 60)).row("sim NFL pinnacle, polled 16 min"))
    print(measure(b_pre).row("real Bovada MLB, polled ~2 min"))
    print(measure(poll(select(mlb.pre, "bovada"), 120)).row("sim MLB bovada, polled 2 min"))
    print("\nIn play\n")
    print(HEADER)
    print(measure(s_live).row("real NFL series, polled ~16 min"))
    print(measure(poll(select(nfl.live, exclude=["pinnacle"]), 16 * 60)).row("sim NFL soft books, polled 16 min"))
    print(measure(b_live).row("real Bovada MLB, polled ~35 s"))
    print(measure(select(mlb.live, "bovada")).row("sim MLB bovada, streamed"))
    print(measure(poll(select(mlb.live, "bovada"), 35)).row("sim MLB bovada, polled 35 s"))

    print("\nPre-game update rate per book (changes per slot per hour)\n")
    print("| book | real NFL wk10 CSV | real NFL series | sim NFL streamed | sim NFL polled 16 min |")
    print("|---|---:|---:|---:|---:|")
    books = sorted({k[1] for k in week} | {k[1] for k in nfl.pre})
    for b in books:
        cells = []
        for series, polled in ((week, False), (s_pre, False), (nfl.pre, False), (nfl.pre, True)):
            sel = select(series, b)
            if polled:
                sel = poll(sel, 16 * 60)
            cells.append(f"{measure(sel).rate:.3f}" if sel else "-")
        print(f"| {b} | " + " | ".join(cells) + " |")
    print(f"\nLine moves and steam, the last {SIGNAL_HOURS} h before each kick-off inside the recording "
          "(pre-game; SPEC 10-11 with the engine's defaults: half a point, steam within 300 s)\n")
    print(SIGNAL_HEADER)
    print(signals(real_nfl_quotes(data / NFL_SERIES), iso_ms(NFL_SERIES_START), iso_ms(NFL_SERIES_END))
          .row("real NFL series, polled ~16 min"))
    streamed = [quote_from_row(r) for r in simulate_quote_rows(nfl_cfg)]
    print(signals(streamed, nfl_cfg.start_ms, nfl_cfg.end_ms).row("sim NFL, streamed"))
    print(signals(polled_quotes(nfl_cfg, POLL_MS), nfl_cfg.start_ms, nfl_cfg.end_ms).row("sim NFL, polled 16 min"))
    for cfg in (lines_cfg, replace(lines_cfg, line_only=LINE_ONLY)):
        name = f"sim NFL, --line-moves {cfg.line_moves:g}" + (f" --line-only {','.join(cfg.line_only)}"
                                                             if cfg.line_only else "")
        print(signals(polled_quotes(cfg, POLL_MS), cfg.start_ms, cfg.end_ms).row(f"{name}, polled 16 min"))
    print(
        f"\nSimulated NFL feed volume: {nfl.rows_pre_h:.0f} vendor rows per event in the last pre-game hour, "
        f"{nfl.rows_live_h:.0f} per event-hour in play."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
