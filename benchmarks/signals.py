"""The cost of each signal type (issue 12): the stream and batch engines with ``types`` of price
drops alone against line moves, steam and all three, on the same input, in the same run.

Run from the repository root::

    .venv/bin/python benchmarks/signals.py            # 300,000 quotes
    .venv/bin/python benchmarks/signals.py --quick    # 60,000 quotes

Input (seeded, deterministic): NFL-like games with moneylines, spreads and totals at eight
books; each quote moves its price by a few cents (some repeats), and a share of spread/total
quotes moves the line by a half point, several books of a game following within minutes, so
line moves and steam do fire. Each configuration is timed best-of-N, round robin with the
default configuration (``types=odds_drop``), which is the baseline of every ratio. The default
must not get slower than before issue 12: that comparison is ``benchmarks/engine.py``'s (its
engine figure against the same bare loop as before) and the instruction counts in
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

import msgspec
import polars as pl
from _report import fmt_rate, load_average, table  # type: ignore[import-not-found]
from _report import machine as report_machine  # type: ignore[import-not-found]
from engine import race  # type: ignore[import-not-found]  # benchmarks/engine.py: round robin, best of n

from dropengine import DetectOptions, DropEngine, Quote
from dropengine.analysis import batch
from dropengine.formats.tables import QUOTE_COLUMNS, table_row

SPORT = "americanfootball_nfl"
BOOKS = ("pinnacle", "draftkings", "fanduel", "betmgm", "caesars", "pointsbetus", "bovada", "betrivers")
CONFIGS: dict[str, dict[str, Any]] = {
    "odds_drop (default)": {},
    "line_move": {"types": "line_move"},
    "odds_drop,line_move": {"types": "odds_drop,line_move"},
    "steam": {"types": "steam"},
    "all three": {"types": "odds_drop,line_move,steam"},
    "all three + cooldown 60 s": {"types": "odds_drop,line_move,steam", "cooldown_ms": 60_000},
}


def american(c: float) -> int:
    return int(c + 100 if c >= 0 else c - 100)


def make_quotes(n: int, games: int, seed: int) -> list[Quote]:
    """``n`` quotes of ``games`` games at every book, in ``last_update`` order."""
    rng = random.Random(seed)
    # per (game, book): cents of h2h home/away, the spread line and its two prices, the total
    state: dict[tuple[int, str], dict[str, Any]] = {}
    pending: list[tuple[int, int, str, float]] = []  # line moves other books will follow: (due, game, field, line)
    out: list[Quote] = []
    t = 1_700_000_000_000
    for _ in range(n):
        t += rng.randrange(50, 400)
        if pending and pending[0][0] <= t:
            _, g, field, line = pending.pop(0)
            book = rng.choice(BOOKS)
        else:
            g, book, field, line = rng.randrange(games), rng.choice(BOOKS), rng.choice(("h2h", "spread", "total")), 0.0
        st = state.setdefault((g, book), {"h2h": rng.choice([-150, -120, 110, 130]) - 0.0,
                                          "spread": -3.0 if g % 2 else 6.5, "total": 44.5 + g % 5,
                                          "sp": -10.0, "tp": -10.0})
        eid = f"g{g}"
        if field == "h2h":
            st["h2h"] += rng.choice((0, 0, 5, -5, 10, -10, 15, -20))
            c = st["h2h"]
            out.append(Quote(SPORT, eid, book, "h2h_home", american(c), t, "game", "h2h"))
            out.append(Quote(SPORT, eid, book, "h2h_away", american(-c - 20), t, "game", "h2h"))
            continue
        lk, pk = ("spread", "sp") if field == "spread" else ("total", "tp")
        if line:
            st[lk] = line
        elif rng.random() < 0.12:
            st[lk] += rng.choice((0.5, -0.5, 1.0, -0.5))
            for _ in range(rng.randrange(1, 5)):  # other books follow within minutes
                pending.append((t + rng.randrange(10_000, 200_000), g, field, st[lk]))
            pending.sort()
        st[pk] = max(-40.0, min(20.0, st[pk] + rng.choice((0, 0, 5, -5, 10, -10))))
        p = american(st[pk])
        if field == "spread":
            line_h = st[lk]
            out.append(Quote(SPORT, eid, book, f"spread_home@{_l(line_h)}", p, t, "game", "spreads", line=line_h))
            out.append(Quote(SPORT, eid, book, f"spread_away@{_l(-line_h)}", american(-st[pk] - 20), t, "game",
                             "spreads", line=-line_h))
        else:
            line_t = st[lk]
            out.append(Quote(SPORT, eid, book, f"total_over@{_l(line_t)}", p, t, "game", "totals", line=line_t))
            out.append(Quote(SPORT, eid, book, f"total_under@{_l(line_t)}", american(-st[pk] - 20), t, "game",
                             "totals", line=line_t))
    return out


def _l(x: float) -> str:
    return str(int(x)) if x == int(x) else str(x)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="60,000 quotes instead of 300,000")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    n = 60_000 if args.quick else 300_000
    quotes = make_quotes(n // 2, games=60, seed=12)  # two quotes per row
    frame = pl.DataFrame([table_row(q) for q in quotes], schema_overrides={"price": pl.Int64}).select(QUOTE_COLUMNS)
    print(f"# signals: {len(quotes):,} quotes, {len(BOOKS)} books; load {load_average()}")
    for k, v in report_machine(msgspec=msgspec.__version__, polars=pl.__version__).items():
        print(f"# {k}: {v}")
    opts = {name: DetectOptions.build(**kw) for name, kw in CONFIGS.items()}
    stream = race(args.repeat, {name: (lambda o=o: _stream(o, quotes)) for name, o in opts.items()})
    batch_t = race(max(1, args.repeat - 2), {name: (lambda o=o: _batch(o, frame)) for name, o in opts.items()})
    base_s = stream["odds_drop (default)"][0]
    base_b = batch_t["odds_drop (default)"][0]
    rows = []
    for name in opts:
        ts, (alerts_s, counts) = stream[name]
        tb, alerts_b = batch_t[name]
        same = "yes" if alerts_s == alerts_b else "NO"
        rows.append((name, fmt_rate(len(quotes) / ts), f"{base_s / ts:.2f}x", fmt_rate(len(quotes) / tb),
                     f"{base_b / tb:.2f}x", _kinds(counts), same))
    print(table(("types", "stream q/s", "vs default", "batch q/s", "vs default", "alerts", "batch == stream"), rows))
    return 0


def _stream(options: DetectOptions, quotes: list[Quote]) -> tuple[list[bytes], dict[str, int]]:
    alerts = DropEngine(options=options).observe_many(quotes)
    counts: dict[str, int] = {}
    for a in alerts:
        counts[a.type] = counts.get(a.type, 0) + 1
    return [a.to_json() for a in alerts], counts


def _batch(options: DetectOptions, frame: pl.DataFrame) -> list[bytes]:
    return [a.to_json() for a in batch.detect_counted(frame, options).alert_values()]


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))


if __name__ == "__main__":
    sys.exit(main())
