"""The compiled batch kernel (issue 14, aim 1, detection part), in process.

Run from the repository root::

    .venv/bin/python benchmarks/batch_kernel.py            # 10M quotes (a few minutes)
    .venv/bin/python benchmarks/batch_kernel.py --quick    # 1M quotes
    .venv/bin/python benchmarks/batch_kernel.py --pure     # also detect(accel="pure") (slow: the before figure)

Input: a synthetic quote table built once (numpy ``default_rng(seed)``), keys dictionary-encoded
(polars Categorical, what a Parquet reader gives for a dictionary-encoded column), with the
columns a quote table holds (kind, market key, line, teams, commence time): 2,000 events x 10
books x 6 outcomes (h2h home/away, spread home/away, total over/under). Per key the price walks
on 5-cent steps (40% repeats, 30% +-5, 25% +-10, 5% +-20; about 20% of quotes alert at the
default threshold of 10 cents), 0.3% of rows are suspensions (null), 0.1% stale; the spread and
total lines move by half points on 3% of their quotes (a new side string, a line move).

Measured, in turns (round robin), best of N, each next to the baseline in the same run:

- ``polars``: the minimal ``shift().over(key)`` detector a user writes (about ten lines below:
  cents, the previous row's cents per key, ``|delta| >= 10``), the baseline of every ratio;
- ``fast``: ``batch.detect(accel="fast")`` for reference ``last`` and ``anchor`` and the types
  ``odds_drop``, ``line_move``, ``steam``, and all three;
- ``pass``: the kernel's pass alone (``kernel.detect_pass`` over the prepared id and value
  arrays), and ``ids``: the key encoding alone (dense codes and key ids from the columns);
- with ``--pure``: ``batch.detect(accel="pure")`` (reference ``last``, default types) once, the
  before figure.

Each line prints seconds, quotes per second and the ratio to ``polars`` in the same run.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import polars_baseline  # type: ignore[import-not-found]
from _report import fmt_rate, load_average, table  # type: ignore[import-not-found]
from _report import machine as report_machine  # type: ignore[import-not-found]

from dropengine.analysis import batch

T0 = 1_747_000_000_000
OUTCOMES = ("h2h_home", "h2h_away", "spread_home", "spread_away", "total_over", "total_under")
#: the line ladder of the line outcomes: base +- 4 half points
LADDER = 9


def build(n: int, seed: int = 7, events: int = 2000, books: int = 10) -> pl.DataFrame:
    """The quote table (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_keys = events * books * len(OUTCOMES)
    key = rng.integers(0, n_keys, n)
    e, rest = np.divmod(key, books * len(OUTCOMES))
    b, o = np.divmod(rest, len(OUTCOMES))
    r = rng.random(n)
    mag = np.select([r < 0.40, r < 0.70, r < 0.95], [0, 5, 10], 20)
    step = np.where(rng.random(n) < 0.5, -mag, mag)
    # per key random walks (cumulative sums within each key, in arrival order)
    order = np.argsort(key, kind="stable")
    sk = key[order]
    first = np.r_[True, sk[1:] != sk[:-1]]
    base = np.maximum.accumulate(np.where(first, np.arange(n), 0))

    def walk(steps: np.ndarray) -> np.ndarray:
        c = np.cumsum(steps[order])
        out = np.empty(n, np.int64)
        out[order] = c - c[base] + steps[order][base]
        return out

    cents = np.clip(walk(step) - 10, -600, 600)
    price = np.where(cents >= 0, cents + 100, cents - 100).astype(np.int64)
    lstep = np.where(rng.random(n) < 0.03, np.where(rng.random(n) < 0.5, -1, 1), 0)
    rung = np.clip(walk(lstep), -(LADDER // 2), LADDER // 2) + LADDER // 2  # 0..LADDER-1
    sides: list[str] = []
    for out in OUTCOMES:
        for j in range(LADDER):
            half = (j - LADDER // 2) * 0.5
            line = {"spread_home": -3 + half, "spread_away": 3 - half, "total_over": 44.5 + half,
                    "total_under": 44.5 + half}.get(out)
            sides.append(out if line is None else f"{out}@{line:g}")
    side = np.where(o < 2, o * LADDER, o * LADDER + rung)
    lu = T0 + np.cumsum(rng.integers(0, 4, n))
    stale = rng.random(n) < 0.001
    lu[stale] -= rng.integers(1_000, 30_000, int(stale.sum()))
    null = rng.random(n) < 0.003

    def cat(values: list[str], codes: np.ndarray, name: str) -> pl.Series:
        return pl.Series(name, values, dtype=pl.Categorical).gather(pl.Series(codes, dtype=pl.UInt32))

    markets = ("h2h", "h2h", "spreads", "spreads", "totals", "totals")
    lines = np.array([float(x.rpartition("@")[2]) if "@" in x else np.nan for x in sides])[side]
    frame = pl.DataFrame([
        cat(["americanfootball_nfl"], np.zeros(n, np.int64), "sport_key"),
        cat([f"ev{i:05d}" for i in range(events)], e, "event_id"),
        cat([f"book{i:02d}" for i in range(books)], b, "bookmaker"),
        cat(sides, side, "side"),
        pl.Series("price", price),
        pl.Series("last_update", lu),
        cat(["game"], np.zeros(n, np.int64), "kind"),
        cat(list(dict.fromkeys(markets)), np.array([0, 0, 1, 1, 2, 2])[o], "market_key"),
        pl.Series("line", lines).fill_nan(None),
        cat([f"Home {i}" for i in range(events)], e, "home_team"),
        cat([f"Away {i}" for i in range(events)], e, "away_team"),
        cat([f"2026-11-{1 + i % 28:02d}T18:00:00Z" for i in range(events)], e, "commence_time"),
    ])
    return frame.with_columns(pl.when(pl.Series(null)).then(None).otherwise(pl.col("price")).alias("price"))


polars_detector = polars_baseline.detect  # the minimal shift().over(key) detector (one definition)


def race(n: int, fns: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, Any]]:
    """Every function ``n`` times round robin; each one's best time and last result."""
    best = dict.fromkeys(fns, float("inf"))
    results: dict[str, Any] = {}
    for _ in range(n):
        for name, fn in fns.items():
            results[name] = None
            gc.collect()
            t0 = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {k: (best[k], results[k]) for k in fns}


def prepared(quotes: pl.DataFrame, reference: str) -> Callable[[], Any]:
    """The kernel pass alone over arrays prepared once (ids, times, prices, flags)."""
    from dropengine.fast import kernel

    codes = []
    for c in ("event_id", "bookmaker", "side"):
        phys = quotes.get_column(c).to_physical().cast(pl.Int64).to_numpy()
        codes.append(kernel.codes(phys, int(phys.max()) + 1)[:2])
    (e, ne), (b, nb), (s, ns) = codes
    kid, nkeys = kernel.ids(e, b, s, ne, nb, ns)
    n = quotes.height
    lid = np.full(n, -1, np.int32)  # (row ids are int32: kernel.detect_pass)
    lu = quotes.get_column("last_update").to_numpy()
    p = quotes.get_column("price")
    price = p.cast(pl.Float64).fill_null(np.nan).to_numpy()
    null = p.is_null().to_numpy()
    zero = np.zeros(n, np.bool_)
    line = np.zeros(n)
    anchor = reference == "anchor"
    return lambda: kernel.run(kid, nkeys, lid, 0, lu, price, null, zero, zero, line, True, anchor, False,
                                      10 - 1e-9, 0.5)


def encode_ids(quotes: pl.DataFrame) -> Callable[[], Any]:
    """The key encoding alone: dense codes of the three key columns and the key ids."""
    from dropengine.fast import kernel

    def run() -> Any:
        codes = []
        for c in ("event_id", "bookmaker", "side"):
            phys = quotes.get_column(c).to_physical().cast(pl.Int64).to_numpy()
            codes.append(kernel.codes(phys, int(phys.max()) + 1)[:2])
        (e, ne), (b, nb), (s, ns) = codes
        return kernel.ids(e, b, s, ne, nb, ns)

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="1M quotes instead of 10M")
    ap.add_argument("--n", type=float, default=None, help="quotes (overrides --quick)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best of)")
    ap.add_argument("--pure", action="store_true", help="also time detect(accel='pure') once (slow)")
    ap.add_argument("--only", default=None,
                    help="configurations to run, ';' between (e.g. 'last, odds_drop;anchor, odds_drop')")
    args = ap.parse_args(argv)
    n = int(args.n) if args.n else (1_000_000 if args.quick else 10_000_000)
    info = report_machine(f"; polars threads {pl.thread_pool_size()}", memory=True,
                          libs=f"polars {pl.__version__}, numpy {np.__version__}")
    for k, v in info.items():
        print(f"{k}: {v}")
    print(f"load average at start: {load_average()}")

    t0 = time.perf_counter()
    import numba

    t1 = time.perf_counter()
    from dropengine.fast import kernel

    kernel.compile_all()
    t2 = time.perf_counter()
    print(f"numba {numba.__version__}: import {t1 - t0:.2f} s; kernel load (compiled or from cache) {t2 - t1:.2f} s")

    t0 = time.perf_counter()
    quotes = build(n)
    print(f"input: {n:,} quotes, {quotes.estimated_size() / 1e6:.0f} MB, built in {time.perf_counter() - t0:.1f} s")
    base = polars_detector(quotes)
    print(f"polars detector: {base.height:,} alerts ({base.height / n:.0%} of quotes)")
    batch.detect(quotes.head(1000), accel="fast")  # the first call's imports

    rows: list[tuple[str, ...]] = []
    configs: list[tuple[str, dict[str, Any]]] = [
        ("last, odds_drop", {"reference": "last"}),
        ("anchor, odds_drop", {"reference": "anchor"}),
        ("last, line_move", {"reference": "last", "types": "line_move"}),
        ("last, steam", {"reference": "last", "types": "steam"}),
        ("last, all types", {"reference": "last", "types": "odds_drop,line_move,steam"}),
        ("anchor, all types", {"reference": "anchor", "types": "odds_drop,line_move,steam"}),
    ]
    if args.only:
        wanted = {c.strip() for c in args.only.split(";")}
        configs = [c for c in configs if c[0] in wanted]
    for label, opts in configs:
        fns: dict[str, Callable[[], Any]] = {
            "polars": lambda: polars_detector(quotes),
            "fast": lambda opts=opts: batch.detect_counted(quotes, accel="fast", **opts),
        }
        if "types" not in opts:
            fns["pass"] = prepared(quotes, opts["reference"])
            fns["ids"] = encode_ids(quotes)
        got = race(args.repeat, fns)
        ref = got["polars"][0]
        for name, (secs, res) in got.items():
            note = ""
            if name == "fast":
                note = f"{res.counters.alerts:,} alerts"
            elif name == "pass":
                note = f"{len(res[0]):,} price moves"
            rows.append((label, name, f"{secs:.3f}", fmt_rate(n / secs), f"{ref / secs:.2f}x", note))
        print(table(("configuration", "run", "seconds", "quotes/s", "vs polars", ""), rows[-len(got):]), flush=True)
    if args.pure:
        got = race(1, {"polars": lambda: polars_detector(quotes),
                       "pure": lambda: batch.detect_counted(quotes, accel="pure")})
        ref = got["polars"][0]
        for name, (secs, _) in got.items():
            rows.append(("last, odds_drop", name, f"{secs:.3f}", fmt_rate(n / secs), f"{ref / secs:.2f}x", ""))
        print(table(("configuration", "run", "seconds", "quotes/s", "vs polars", ""), rows[-2:]))
    print()
    print(table(("configuration", "run", "seconds", "quotes/s", "vs polars", ""), rows))
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
