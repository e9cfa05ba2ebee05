"""Batch-path benchmark: vectorized ``dropengine.analysis.batch.detect`` against the streaming engine.

Run from the repository root::

    .venv/bin/python benchmarks/batch.py                  # full run (5-7 minutes)
    .venv/bin/python benchmarks/batch.py --quick          # small run (under a minute)
    .venv/bin/python benchmarks/batch.py --sizes 1e6,3e6,1e7

Five measurements, each next to a baseline timed in the same process (or, for peak memory,
in a sibling process) on the same input:

A. Throughput and scaling. ``detect(frame)`` (``reference="last"``, defaults otherwise) over a
   polars DataFrame of SPEC section 2 columns at each size, against
   ``DropEngine().observe_many(quotes)`` over the same rows as prebuilt ``Quote`` objects.
   The runs go round robin. The ratio is batch speed / stream speed. At every size where
   both run, the alerts must be identical: same count, same SHA-256 over the
   ``(event_id, bookmaker, side, prev, new, last_update)`` tuples in detection order, same
   counters. Time per quote at each size shows whether the cost grows linearly.
B. ``reference="anchor"`` against ``reference="last"`` through ``detect`` at the smallest
   size of at least 1M (the anchor rule runs a Python loop over the price changes).
C. Memory per tracked key in the streaming engine: ``tracemalloc`` bytes still allocated
   after one quote per key for 1M keys has gone through ``observe_many`` and the quotes are
   freed, divided by the keys. Baseline: a plain dict of the same ``(event_id, bookmaker,
   side)`` tuples to the int price, measured the same way.
D. Peak RSS of one ``detect`` over the largest frame, in a child process
   (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` read by a wrapper process, so each figure
   belongs to one child only). Baseline: a child that only reads the same frame from Parquet and
   holds it. The wall time of that first ``detect`` in a fresh process is printed too.
E. A again at the largest size on a stream with 98% repeats (a polled snapshot feed, like the
   real NFL recording in ``../shared/data``), where few rows become alerts.

Input is synthetic and deterministic (numpy ``default_rng(seed)``, vectorized): 200,000 keys
(2,000 events x 10 books x 10 sides: 6 game lines, 4 props), every key primed once in random
order, then uniformly random keys. Prices walk per key on 5-cent ladders: 35% repeats, 40%
+-5, 12% +-10, 5% +-15..30, 8% off-ladder +-1..4. 15% of keys open within 10 cents of even
money (crossings, and ``+100``/``-100`` written either way); 0.3% of rows are null (suspended);
0.1% are stale (``last_update`` set back 1-30 s). The largest frame is generated once and the
smaller sizes are its prefixes. Timings are best-of-N ``time.perf_counter`` with a
``gc.collect()`` before each run; the collector stays on. Temporary files go to a temporary
directory that is removed at the end. Results: see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from _report import fmt_rate, load_average, table, verdict  # type: ignore[import-not-found]
from _report import machine as report_machine  # type: ignore[import-not-found]

from dropengine import DropEngine, Quote
from dropengine.analysis.batch import detect, detect_counted

# Aims from the issue.
AIM_BATCH_QPS = 10_000_000
AIM_BATCH_VS_STREAM = 10.0
AIM_BYTES_PER_KEY = 200

BOOKS = ("pinnacle", "draftkings", "fanduel", "betmgm", "caesars", "bet365", "williamhill_us", "pointsbetus",
         "betrivers", "unibet")  # fmt: skip
SPORTS = ("basketball_nba", "americanfootball_nfl", "icehockey_nhl", "baseball_mlb")
PROPS = (("player_points", "Points"), ("player_rebounds", "Rebounds"), ("player_assists", "Assists"))
META = ("kind", "market_key", "market", "player", "line", "home_team", "away_team", "commence_time")
COLUMNS = ("sport_key", "event_id", "bookmaker", "side", "price", "last_update", *META)
SIDES_PER_BOOK = 10
CLOCK0 = 1_747_000_000_000


# -- machine ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    return report_machine(f"; polars threads {pl.thread_pool_size()}", memory=True,
                          libs=f"polars {pl.__version__}, numpy {np.__version__}")


# -- timing -----------------------------------------------------------------------------------


def race(n: int | dict[str, int], fns: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, Any]]:
    """Run every function ``n`` times (or ``n[name]`` times), round robin; return each one's
    fastest time and last result.

    Interleaving keeps a ratio fair on a shared machine: a burst of load from another process
    hits the baseline and the subject alike instead of one of them.
    """
    runs = n if isinstance(n, dict) else dict.fromkeys(fns, n)
    best = dict.fromkeys(fns, float("inf"))
    results: dict[str, Any] = {}
    for i in range(max(runs.values())):
        for name, fn in fns.items():
            if i >= runs[name]:
                continue
            results[name] = None  # free the previous result before the next run
            gc.collect()
            t0 = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: (best[name], results[name]) for name in fns}


# -- synthetic input --------------------------------------------------------------------------


def key_table(n_keys: int) -> list[tuple[Any, ...]]:
    """Per key: sport_key, event_id, bookmaker, side, kind, market_key, market, player, line,
    home_team, away_team, commence_time. 10 books x (6 game sides + 4 prop sides) per event."""
    per_event = len(BOOKS) * SIDES_PER_BOOK
    out: list[tuple[Any, ...]] = []
    for e in range(-(-n_keys // per_event)):
        sport, event_id = SPORTS[e % len(SPORTS)], f"ev{e:07d}"
        home, away, start = f"Home {e}", f"Away {e}", f"2026-05-{1 + e % 28:02d}T23:30:00Z"
        spread, total = (-1.5, -3.5, -5.0, -7.5, 2.5)[e % 5], (210.5, 215.0, 220.5, 228.5)[e % 4]
        s_home, s_away, t = (f"{x:g}" for x in (spread, -spread, total))
        game = (
            ("h2h_home", "h2h", None), ("h2h_away", "h2h", None),
            (f"spread_home@{s_home}", "spreads", spread), (f"spread_away@{s_away}", "spreads", -spread),
            (f"total_over@{t}", "totals", total), (f"total_under@{t}", "totals", total),
        )  # fmt: skip
        for book in BOOKS:
            for side, market_key, line in game:
                out.append((sport, event_id, book, side, "game", market_key, None, None, line, home, away, start))
            for p in range(2):
                market_key, label = PROPS[(e + p) % len(PROPS)]
                player, line = f"Player {e}-{p}", 20.5 + p
                for outcome in ("over", "under"):
                    side = f"{market_key}:{player}:{outcome}@{line:g}"
                    out.append((sport, event_id, book, side, "prop", market_key, label, player, line, home, away,
                                start))  # fmt: skip
    return out[:n_keys]


class Stream:
    """The generated rows as numpy arrays (key index, price, null mask, last_update) plus the
    key table; ``frame()`` and ``quotes()`` build the two inputs from the same rows."""

    def __init__(self, n: int, n_keys: int, seed: int, repeat_share: float = 0.35) -> None:
        rng = np.random.default_rng(seed)
        self.keys = key_table(n_keys)
        k = len(self.keys)
        is_ml = np.array([m[5] == "h2h" for m in self.keys])
        # Opening cents on the 5-cent ladder: moneylines spread wide, lines and props near -110.
        start = np.where(is_ml, rng.integers(-50, 41, k) * 5, rng.integers(-5, 2, k) * 5)
        near = rng.random(k) < 0.15
        start[near] = rng.integers(-2, 3, int(near.sum())) * 5
        primed = min(n, k)
        kidx = np.empty(n, dtype=np.int64)
        kidx[:primed] = rng.permutation(k)[:primed]
        kidx[primed:] = rng.integers(0, k, n - primed)
        # Steps: repeats, +-5, +-10, +-15..30, off-ladder +-1..4 (the non-repeat mix keeps its
        # proportions when repeat_share changes).
        r = rng.random(n)
        rest = 1 - repeat_share
        edges = repeat_share + rest * np.cumsum([40 / 65, 12 / 65, 5 / 65])
        mag = np.select(
            [r < repeat_share, r < edges[0], r < edges[1], r < edges[2]],
            [0, 5, 10, rng.integers(3, 7, n) * 5],
            rng.integers(1, 5, n),
        )
        step = np.where(rng.random(n) < 0.5, -mag, mag)
        step[:primed] = 0
        # Per-key random walk: cumulative sum within each key (stable sort by key).
        order = np.argsort(kidx, kind="stable")
        sorted_keys = kidx[order]
        csum = np.cumsum(step[order])
        first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
        base = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        cents = np.empty(n, dtype=np.int64)
        cents[order] = csum - csum[base] + start[sorted_keys]
        cents = np.clip(cents, -900, 900)
        even = np.where(rng.random(n) < 0.5, 100, -100)  # even money written as +100 or -100
        self.price = np.where(cents > 0, cents + 100, np.where(cents < 0, cents - 100, even))
        self.lu = CLOCK0 + np.cumsum(rng.integers(0, 4, n))  # equal times happen
        stale = rng.random(n) < 0.001
        stale[:primed] = False
        self.lu[stale] -= rng.integers(1_000, 30_000, int(stale.sum()))
        self.null = rng.random(n) < 0.003
        self.kidx = kidx
        self.n = n
        # Stream statistics (in key order): repeats and even-money crossings between consecutive
        # rows of a key, ignoring nulls.
        p = self.price[order].astype(np.float64)
        p[self.null[order]] = np.nan
        same_key = ~first
        c = np.where(p > 0, p - 100, p + 100)
        prev_c, prev_p = np.r_[np.nan, c[:-1]], np.r_[np.nan, p[:-1]]
        self.repeats = int(np.sum(same_key & (c == prev_c)))
        self.crossings = int(np.sum(same_key & (c != prev_c) & (np.sign(p) * np.sign(prev_p) < 0)))
        self.n_null, self.n_stale = int(self.null.sum()), int(stale.sum())

    def frame(self) -> pl.DataFrame:
        """SPEC section 2 columns; text columns gathered from the key table by key index."""
        table = pl.DataFrame(
            dict(zip(("sport_key", "event_id", "bookmaker", "side", *META), zip(*self.keys, strict=True),
                     strict=True)),
            schema_overrides={"line": pl.Float64},
        )  # fmt: skip
        price = pl.Series("price", self.price, dtype=pl.Int64)
        return table[pl.Series(self.kidx, dtype=pl.UInt32)].with_columns(
            pl.when(pl.Series(self.null)).then(None).otherwise(price).alias("price"),
            pl.Series("last_update", self.lu, dtype=pl.Int64),
        ).select(COLUMNS)

    def quotes(self, stop: int) -> list[Quote]:
        """The first ``stop`` rows as ``Quote`` objects (text shared per key, as a decoder that
        interns would give)."""
        keys = self.keys
        prices: list[int | None] = self.price[:stop].tolist()
        for i in np.flatnonzero(self.null[:stop]).tolist():
            prices[i] = None
        return [
            Quote(m[0], m[1], m[2], m[3], p, lu, m[4], m[5], m[6], m[7], m[8], m[9], m[10], m[11])
            for m, p, lu in zip(
                (keys[k] for k in self.kidx[:stop].tolist()), prices, self.lu[:stop].tolist(), strict=True
            )
        ]


# -- A/B: throughput ---------------------------------------------------------------------------

ALERT_KEY = ("event_id", "bookmaker", "side", "prev", "new", "last_update")


def digest(rows: Iterable[tuple[Any, ...]]) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    for row in rows:
        h.update(repr(row).encode())
        n += 1
    return n, h.hexdigest()[:16]


def stream_digest(drops: list[Any]) -> tuple[int, str]:
    return digest((d.event_id, d.bookmaker, d.side, d.prev, d.new, d.last_update) for d in drops)


def batch_digest(alerts: pl.DataFrame) -> tuple[int, str]:
    return digest(alerts.select(ALERT_KEY).iter_rows())


def run_stream(quotes: list[Quote]) -> tuple[list[Any], DropEngine]:
    eng = DropEngine()
    return eng.observe_many(quotes), eng


def compare(
    gen: Stream, full: pl.DataFrame, sizes: list[int], stream_max: int, repeat_for: Callable[[int, str], int]
) -> dict[int, tuple[float, float, int]]:
    """Table A: batch and stream at each size (prefixes of ``full``), round robin, alerts
    verified identical wherever both ran on the same rows. Returns, per size, the batch time,
    the stream time and the number of quotes the stream ran on."""
    rows: list[tuple[str, ...]] = []
    checks: list[str] = []
    out: dict[int, tuple[float, float, int]] = {}
    for n in sizes:
        df = full.head(n)
        s_n = min(n, stream_max)
        t0 = time.perf_counter()
        quotes = gen.quotes(s_n)
        built = time.perf_counter() - t0
        reps = {"batch": repeat_for(n, "batch"), "stream": repeat_for(s_n, "stream")}
        res = race(reps, {"batch": lambda df=df: detect(df), "stream": lambda q=quotes: run_stream(q)})
        t_b, alerts = res["batch"]
        t_s, (drops, eng) = res["stream"]
        q_b, q_s = n / t_b, s_n / t_s
        note = "" if s_n == n else f" (stream: first {s_n:,})"
        if s_n == n:
            b_dig, s_dig = batch_digest(alerts), stream_digest(drops)
            counters = detect_counted(df).counters
            same = b_dig == s_dig and counters == eng.counters
            checks.append(
                f"  {n:>12,} quotes: batch {b_dig[0]:,} alerts sha256 {b_dig[1]}, stream {s_dig[0]:,} alerts sha256 "
                f"{s_dig[1]}; counters {'equal' if counters == eng.counters else 'DIFFER'} -> "
                f"{'IDENTICAL' if same else 'DIFFERENT'}"
            )
        out[n] = (t_b, t_s, s_n)
        rows.append((
            f"{n:,}{note}", f"{t_b:.3f}", f"{t_b / n * 1e9:.0f}", fmt_rate(q_b), f"{t_s:.3f}", f"{t_s / s_n * 1e9:.0f}",
            fmt_rate(q_s), f"{q_b / q_s:.2f}x", f"{len(alerts):,}", f"{reps['batch']}/{reps['stream']}",
        ))  # fmt: skip
        print(f"  {n:,} quotes done ({s_n:,} Quote objects built in {built:.1f} s)", flush=True)
        del quotes, res, alerts, drops, eng, df
        gc.collect()
    print(table(("quotes", "batch s", "ns/quote", "batch q/s", "stream s", "ns/quote", "stream q/s",
                 "batch/stream", "alerts", "best of"), rows))  # fmt: skip
    print("Alerts identical? (count; SHA-256 of (event_id, bookmaker, side, prev, new, last_update); counters)")
    print("\n".join(checks) if checks else "  (the stream did not run on the same rows)")
    return out


# -- C: memory per key ------------------------------------------------------------------------


def copy_text(s: str) -> str:
    return (s + ".")[:-1]  # a new object with the same text


def bytes_per_key(n_keys: int, fresh_text: bool) -> tuple[float, float, int]:
    """``tracemalloc`` bytes left allocated per key by the engine and by a dict baseline,
    after one quote per key went in and the quotes were freed: the dict slot, the key tuple,
    the state, and the boxed price and time the state keeps. With ``fresh_text`` every quote
    brings its own copies of the key strings (as a JSON decoder does), so the strings the
    key tuple keeps alive are counted; otherwise the strings belong to the key table."""
    keys = key_table(n_keys)
    rng = np.random.default_rng(7)
    prices = np.where(rng.random(n_keys) < 0.5, -1, 1) * rng.integers(101, 400, n_keys)
    clock = CLOCK0 + rng.integers(0, 3_600_000, n_keys)

    def make() -> list[Quote]:
        # Boxed ints made here, while tracing: each quote brings its own, as a decoder's do.
        prices_l, times = prices.tolist(), clock.tolist()
        if fresh_text:
            return [
                Quote(m[0], copy_text(m[1]), copy_text(m[2]), copy_text(m[3]), p, lu, *m[4:])
                for m, p, lu in zip(keys, prices_l, times, strict=True)
            ]
        return [Quote(m[0], m[1], m[2], m[3], p, lu, *m[4:]) for m, p, lu in zip(keys, prices_l, times, strict=True)]

    def engine(quotes: list[Quote]) -> tuple[Any, int]:
        eng = DropEngine()
        eng.observe_many(quotes)
        return eng, eng.keys_held

    def dict_baseline(quotes: list[Quote]) -> tuple[Any, int]:
        last: dict[tuple[str, str, str], Any] = {}
        for q in quotes:
            last[(q.event_id, q.bookmaker, q.side)] = q.price
        return last, len(last)

    out: list[float] = []
    held = 0
    for feed in (engine, dict_baseline):
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        quotes = make()
        holder, held = feed(quotes)
        del quotes
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        out.append((after - before) / held)
        del holder
    return out[0], out[1], held


# -- D: peak RSS in a child process -----------------------------------------------------------

# The wrapper runs one worker and reports its children's peak RSS, so the figure is the
# worker's alone (RUSAGE_CHILDREN is a maximum over every child a process has waited for).
WRAPPER = (
    "import resource, subprocess, sys\n"
    "out = subprocess.run(sys.argv[1:], check=True, capture_output=True, text=True).stdout\n"
    "print(out.strip() + ' ' + str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
)


def rss_worker(mode: str, path: str) -> int:
    """Child side of D: read the frame; ``hold`` it, or run ``detect`` on it once."""
    df = pl.read_parquet(path)
    t0 = time.perf_counter()
    alerts = detect(df) if mode == "detect" else None
    dt = time.perf_counter() - t0
    print(df.height, alerts.height if alerts is not None else 0, f"{dt:.3f}", df.estimated_size())
    return 0


def peak_rss(mode: str, path: Path) -> tuple[int, float, int]:
    """Peak RSS in bytes of a worker child, its ``detect`` wall time, and the frame's size."""
    cmd = [sys.executable, "-c", WRAPPER, sys.executable, __file__, "--rss-worker", mode, str(path)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
    _, _, dt, size, kib = out
    return int(kib) * 1024, float(dt), int(size)


# -- report -----------------------------------------------------------------------------------








def size_arg(text: str) -> list[int]:
    return sorted({int(float(x)) for x in text.split(",") if x.strip()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small run: sizes 200k,1M, 50k keys, best of 2")
    ap.add_argument("--sizes", type=size_arg, help="quotes per run, comma separated (default 1e6,3e6,1e7)")
    ap.add_argument("--keys", type=int, help="distinct keys in the stream (default 200,000; 50,000 with --quick)")
    ap.add_argument("--stream-max", type=float, default=1e7,
                    help="largest size the streaming engine runs at; above it, it runs on a prefix of this size")
    ap.add_argument("--mem-keys", type=int, help="keys for the bytes-per-key figure (default 1,000,000)")
    ap.add_argument("--repeat", type=int,
                    help="best of N (default 5 up to 1M; above: 3 for the batch, 3 (3M) or 2 (10M) for the stream; "
                         "2 with --quick)")
    ap.add_argument("--seed", type=int, default=20260512)
    ap.add_argument("--skip-memory", action="store_true", help="skip C and D")
    ap.add_argument("--skip-repeats", action="store_true", help="skip E (the 98%%-repeats stream)")
    ap.add_argument("--rss-worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_worker:
        return rss_worker(*args.rss_worker)
    sizes = args.sizes or ([200_000, 1_000_000] if args.quick else [1_000_000, 3_000_000, 10_000_000])
    n_keys = args.keys or (50_000 if args.quick else 200_000)
    mem_keys = args.mem_keys or (200_000 if args.quick else 1_000_000)
    stream_max = int(args.stream_max)

    def repeat_for(n: int, path: str = "batch") -> int:
        """Best of N: fewer runs for the slow large streams, at least 3 for the batch path
        (its first call in a process pays for fresh memory)."""
        if args.repeat:
            return int(args.repeat)
        if args.quick:
            return 2
        if n <= 1_000_000:
            return 5
        return 3 if path == "batch" or n <= 3_000_000 else 2

    t_start = time.perf_counter()
    print("dropengine batch-path benchmark" + (" (--quick)" if args.quick else ""))
    for k, v in machine().items():
        print(f"  {k:8} {v}")
    print(f"  load     {load_average()} at start (other processes skew the figures)")
    print("  settings detect() / DropEngine() defaults (threshold 10 cents, reference last)")
    print()

    t0 = time.perf_counter()
    gen = Stream(max(sizes), n_keys, args.seed)
    full = gen.frame()
    print(
        f"Input: {gen.n:,} quotes over {len(gen.keys):,} keys; {gen.repeats:,} repeats, {gen.crossings:,} even-money "
        f"crossings, {gen.n_null:,} nulls, {gen.n_stale:,} stale rows; frame {full.estimated_size() / 2**20:,.0f} MiB "
        f"(generated in {time.perf_counter() - t0:.1f} s). Smaller sizes are prefixes."
    )
    print()
    summary: list[tuple[str, str, str, str]] = []

    # -- A: throughput and scaling, batch vs stream, alerts verified identical --------------
    print("A. detect(frame) against DropEngine().observe_many(quotes), same rows, round robin")
    times = compare(gen, full, sizes, stream_max, repeat_for)
    big, small = max(sizes), min(sizes)
    t_big, t_stream_big, s_big = times[big]
    q_big = big / t_big
    ratio_big = q_big / (s_big / t_stream_big)
    growth = (t_big / big) / (times[small][0] / small)
    print(f"  batch time per quote at {big:,} / at {small:,}: {growth:.2f} (1.00 = linear)")
    print()
    summary.append((f"batch quotes/s at {big:,}", fmt_rate(q_big), f">= {AIM_BATCH_QPS:,} (at 10M)",
                    verdict(q_big >= AIM_BATCH_QPS)))  # fmt: skip
    summary.append((f"batch / stream speed at {big:,}", f"{ratio_big:.2f}x", f">= {AIM_BATCH_VS_STREAM:.0f}x",
                    verdict(ratio_big >= AIM_BATCH_VS_STREAM)))  # fmt: skip

    # -- B: anchor against last ----------------------------------------------------------
    n_b = next((n for n in sizes if n >= 1_000_000), big)
    frame_b = full.head(n_b)
    reps = repeat_for(n_b)
    rb = race(reps, {"last": lambda f=frame_b: detect(f), "anchor": lambda f=frame_b: detect(f, reference="anchor")})
    (t_last, a_last), (t_anchor, a_anchor) = rb["last"], rb["anchor"]
    print(f"B. reference='anchor' against 'last' through detect(), {n_b:,} quotes, best of {reps}")
    print(table(("reference", "best s", "quotes/s", "time vs last", "alerts"), [
        ("last", f"{t_last:.3f}", fmt_rate(n_b / t_last), "1.00x", f"{a_last.height:,}"),
        ("anchor", f"{t_anchor:.3f}", fmt_rate(n_b / t_anchor), f"{t_anchor / t_last:.2f}x", f"{a_anchor.height:,}"),
    ]))  # fmt: skip
    print()
    summary.append(("anchor time / last time", f"{t_anchor / t_last:.2f}x", "(info)", ""))
    del frame_b, rb, a_last, a_anchor

    if not args.skip_memory:
        # -- C: bytes per tracked key --------------------------------------------------------
        print(f"C. memory per tracked key, streaming engine, {mem_keys:,} keys (tracemalloc, quotes freed)")
        rows_c = []
        for fresh, label in ((False, "key text owned elsewhere"), (True, "key text held by the key")):
            eng_b, dict_b, held = bytes_per_key(mem_keys, fresh)
            rows_c.append((label, f"{eng_b:.0f}", f"{dict_b:.0f}", f"{eng_b / dict_b:.2f}x", f"{held:,}"))
            if not fresh:
                summary.append(("engine bytes per key", f"{eng_b:.0f}", f"<= {AIM_BYTES_PER_KEY}",
                                verdict(eng_b <= AIM_BYTES_PER_KEY)))  # fmt: skip
        print(table(("strings", "engine B/key", "dict B/key", "engine/dict", "keys"), rows_c))
        print()

        # -- D: peak RSS of a batch detect ---------------------------------------------------
        with tempfile.TemporaryDirectory(prefix="dropengine-bench-") as tmp:
            path = Path(tmp) / "quotes.parquet"
            full.write_parquet(path)
            hold, _, size = peak_rss("hold", path)
            peak, first_call, _ = peak_rss("detect", path)
        extra = peak - hold
        print(f"D. peak RSS of one detect() over {big:,} quotes, each in its own child process")
        print(table(("child", "peak RSS MiB", "vs hold", "per quote"), [
            ("read Parquet, hold the frame (baseline)", f"{hold / 2**20:,.0f}", "1.00x", f"{hold / big:.0f} B"),
            ("read Parquet, detect() once", f"{peak / 2**20:,.0f}", f"{peak / hold:.2f}x", f"{peak / big:.0f} B"),
            ("difference: detect's working memory", f"{extra / 2**20:,.0f}", "", f"{extra / big:.0f} B"),
        ]))  # fmt: skip
        print(f"  frame estimated_size {size / 2**20:,.0f} MiB; that first detect() in a fresh process took "
              f"{first_call:.2f} s ({fmt_rate(big / first_call)} quotes/s; best-of-N above: {t_big:.2f} s)")
        print()
        summary.append((f"detect peak RSS at {big:,}", f"{peak / 2**20:,.0f} MiB", f"(hold: {hold / 2**20:,.0f} MiB)",
                        ""))  # fmt: skip

    if not args.skip_repeats:
        # -- E: the same at 98% repeats ------------------------------------------------------
        del full, gen
        gc.collect()
        print(f"E. as A at {big:,} quotes, but 98% repeats (the real NFL snapshot recording has 98.2%)")
        heavy = Stream(big, n_keys, args.seed, repeat_share=0.98)
        times_e = compare(heavy, heavy.frame(), [big], stream_max, repeat_for)
        t_e, ts_e, s_e = times_e[big]
        print()
        summary.append((f"batch quotes/s at {big:,}, 98% repeats", fmt_rate(big / t_e), "(info)", ""))
        summary.append(("batch / stream speed there", f"{(big / t_e) / (s_e / ts_e):.2f}x", "(info)", ""))

    print("Aims")
    print(table(("figure", "measured", "aim", ""), summary))
    print(f"\nTotal {time.perf_counter() - t_start:.0f} s; load {load_average()} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
