"""Throughput benchmark: the streaming engine and the end-to-end NDJSON replay path.

Run from the repository root::

    .venv/bin/python benchmarks/engine.py            # full size (about a minute)
    .venv/bin/python benchmarks/engine.py --quick    # small run (a few seconds)

Two measurements, each next to a baseline timed in the same process on the same input:

A. ``DropEngine().observe_many(quotes)`` (default settings) over prebuilt ``Quote`` objects,
   against a bare dict loop over the same quotes that does the minimum a drop detector must
   do (key tuple, dict get/set of the last price, cents delta, threshold compare, append a
   tuple on an alert).
B. ``dropengine.io.replay.replay([path], DropEngine(), "frames")`` fully consumed over a
   generated NDJSON recording of vendor envelopes (SPEC section 5): the fused path (the
   default) and the general decoder (``fused=False``, a Quote per price), against a bare loop
   that reads the same file and ``msgspec.json.decode``-s every line: the floor for any
   decoder that builds Python objects from JSON. Two stages of the general path are also
   timed alone, to show where its time goes: decode + ``FrameDecoder.feed`` (no merge, no
   engine), and the engine on the decoded quotes. With ``--before CHECKOUT`` the ``replay`` of
   another checkout (issue 14's "today's replay" is bc091f5's: ``git worktree add /tmp/wt
   bc091f5``) runs on the same recording in the same turns, in a worker process of its own
   whose ``PYTHONPATH`` is that checkout; its alerts (a digest of their JSON), counters and
   skips are compared with this checkout's general decoder before the timing. With ``--callgrind``
   part B counts instructions instead (valgrind, ``PYTHONHASHSEED=0``): the fused and the general
   replay each in a process of its own, minus a process that only imports, after checking the two
   give the same alerts, counters and skips; a figure the machine's load does not move. With
   ``--inproc CHECKOUT`` part B times the fused and general replays and that checkout's replay in
   this one process instead (the checkout's package copied and imported as ``dropengine_before``),
   alternated, after checking all three equal, and prints each turn's paired ratio too: the
   measure issue 14's aim 2 asks for on a shared machine (CPU time with ``--cpu``).

Input is synthetic and deterministic (seeded ``random.Random``): many keys, mostly small
moves, some repeats, some even-money crossings. Timings are best-of-N ``time.perf_counter``
(``--cpu``: ``time.process_time``, for a shared machine) with a ``gc.collect()`` before each
run, run round robin with their baseline; the garbage collector stays enabled, as in a real
process. Generated files go to a temporary directory
that is removed at the end. Results: see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from _report import fmt_rate, load_average, table, verdict  # type: ignore[import-not-found]
from _report import machine as report_machine  # type: ignore[import-not-found]

from dropengine import DropEngine, Quote
from dropengine.core.skips import SkipLog
from dropengine.formats.frames import FrameDecoder
from dropengine.io.replay import ReplayStats, replay

# Aims from the issue.
AIM_ENGINE_QPS = 1_000_000
AIM_ENGINE_RATIO = 1.5
AIM_E2E_ROWS = 400_000
AIM_FUSED_RATIO = 3.0  # issue 14 aim 2: the fused frames path vs the general decoder

THRESHOLD = 10
SPORT = "basketball_nba"
BOOKS = ("pinnacle", "draftkings", "fanduel", "betmgm", "caesars")
PROP_MARKETS = (("player_points", "Points"), ("player_rebounds", "Rebounds"), ("player_assists", "Assists"))


# -- machine ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    return report_machine(msgspec=msgspec.__version__)


# -- timing -----------------------------------------------------------------------------------


@dataclass
class Timed:
    """A result that carries its own timing (a run in another process: the worker's clocks)."""

    wall: float
    cpu: float
    result: Any


CLOCK: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def race(n: int, fns: dict[str, Callable[[], Any]], clock: str = "wall") -> dict[str, tuple[float, Any]]:
    """Run every function ``n`` times, round robin; return each one's fastest time and result.

    Interleaving keeps a ratio fair on a shared machine: a burst of load from another process
    hits the baseline and the subject alike instead of one of them. ``clock`` is ``wall``
    (``time.perf_counter``) or ``cpu`` (``time.process_time``); a function returning a
    :class:`Timed` (run in another process) is timed by that process's own clock.
    """
    now = CLOCK[clock]
    best = dict.fromkeys(fns, float("inf"))
    results: dict[str, Any] = {}
    for _ in range(n):
        for name, fn in fns.items():
            gc.collect()
            t0 = now()
            res = fn()
            dt = now() - t0
            if type(res) is Timed:
                dt = res.wall if clock == "wall" else res.cpu
                res = res.result
            results[name] = res
            best[name] = min(best[name], dt)
    return {name: (best[name], results[name]) for name in fns}


# -- synthetic prices -------------------------------------------------------------------------


def american(c: int, rng: random.Random) -> int:
    """Price from cents; at even money pick +100 or -100 (the same price in two forms)."""
    if c > 0:
        return c + 100
    if c < 0:
        return c - 100
    return 100 if rng.random() < 0.5 else -100


def step(rng: random.Random) -> int:
    """A move in cents: 15% repeat, 72% small (1-7), 10% around the threshold (8-15), 3% large."""
    r = rng.random()
    if r < 0.15:
        return 0
    sign = 1 if rng.random() < 0.5 else -1
    if r < 0.87:
        return sign * rng.randint(1, 7)
    if r < 0.97:
        return sign * rng.randint(8, 15)
    return sign * rng.randint(16, 45)


def start_cents(rng: random.Random, kind: str) -> int:
    """Opening cents: 12% of keys within 6 cents of even money (they cross it often)."""
    if rng.random() < 0.12:
        return rng.randint(-6, 6)
    if kind == "ml":
        return rng.randint(-250, 200)
    return rng.randint(-25, 5)  # spreads, totals and props sit around -110


def cents(price: float) -> float:
    return price - 100 if price > 0 else price + 100


def clamp(c: int) -> int:
    return max(-900, min(900, c))


# -- A: prebuilt quotes -----------------------------------------------------------------------

_GAME_SIDES = (
    ("h2h_home", "h2h", "ml"),
    ("h2h_away", "h2h", "ml"),
    ("spread_home@-3.5", "spreads", "line"),
    ("spread_away@3.5", "spreads", "line"),
    ("total_over@220.5", "totals", "line"),
    ("total_under@220.5", "totals", "line"),
)


def make_quotes(n_quotes: int, n_keys: int, seed: int) -> list[Quote]:
    """``n_quotes`` quotes over about ``n_keys`` keys (10 sides per event and book)."""
    rng = random.Random(seed)
    per_event = len(BOOKS) * 10
    n_events = max(1, n_keys // per_event)
    # Per key: the Quote fields that do not change, and the current cents.
    metas: list[tuple[Any, ...]] = []
    cents: list[int] = []
    for e in range(n_events):
        event_id = f"ev{e:05d}"
        home, away = f"Home {e}", f"Away {e}"
        commence = f"2026-05-{1 + e % 28:02d}T23:30:00Z"
        for book in BOOKS:
            for side, market_key, kind in _GAME_SIDES:
                metas.append(
                    (SPORT, event_id, book, side, "game", market_key, None, None, None, home, away, commence)
                )
                cents.append(start_cents(rng, kind))
            for p in range(2):
                mk, label = PROP_MARKETS[p % len(PROP_MARKETS)]
                player = f"Player {e}-{p}"
                line = 20.5 + p
                for outcome in ("over", "under"):
                    side = f"{mk}:{player}:{outcome}@{line}"
                    metas.append(
                        (SPORT, event_id, book, side, "prop", mk, label, player, line, home, away, commence)
                    )
                    cents.append(start_cents(rng, "prop"))
    n = len(metas)
    out: list[Quote] = []
    append = out.append
    randrange = rng.randrange
    clock = 1_747_000_000_000
    # Every key is primed once, then updates pick keys uniformly at random.
    order: Iterator[int] = iter(range(n))
    for i in range(n_quotes):
        k = next(order, None) if i < n else None
        if k is None:
            k = randrange(n)
            cents[k] = clamp(cents[k] + step(rng))
        clock += randrange(4)  # equal times happen; never going back, so nothing is stale
        m = metas[k]
        append(
            Quote(
                m[0], m[1], m[2], m[3], american(cents[k], rng), clock, m[4], m[5], m[6], m[7], m[8],
                m[9], m[10], m[11],
            )
        )
    return out


def dict_loop(quotes: list[Quote]) -> list[tuple[Any, ...]]:
    """The baseline: the least a last-price drop detector can do per quote."""
    last: dict[tuple[str, str, str], int | float] = {}
    get = last.get
    alerts: list[tuple[Any, ...]] = []
    append = alerts.append
    for q in quotes:
        key = (q.event_id, q.bookmaker, q.side)
        p = q.price
        old = get(key)
        last[key] = p  # type: ignore[assignment]
        if old is None:
            continue
        d = (p - 100 if p > 0 else p + 100) - (old - 100 if old > 0 else old + 100)  # type: ignore[operator]
        if d >= THRESHOLD or -d >= THRESHOLD:
            append((key, old, p, d))
    return alerts


def engine_all(quotes: list[Quote]) -> tuple[int, DropEngine]:
    eng = DropEngine()
    return len(eng.observe_many(quotes)), eng


def engine_batched(quotes: list[Quote], size: int) -> int:
    eng = DropEngine()
    observe = eng.observe_many
    return sum(len(observe(quotes[i : i + size])) for i in range(0, len(quotes), size))


# -- B: NDJSON vendor frames ------------------------------------------------------------------


@dataclass
class FileInfo:
    path: Path
    lines: int
    rows: int
    bytes: int


def write_frames(path: Path, n_rows: int, n_keys: int, seed: int, churn: float = 0.0) -> FileInfo:
    """A recording as received: connected, initial_state, odds_update + heartbeat envelopes.

    Game identities (event, book) yield 6 quotes per full row; prop identities (event, book,
    market, player) yield 2. About 70% of the update rows are game rows. An update row is a
    full row in which one or two prices moved (the rest repeat); 0.3% of prices are null
    (suspended) and a spread or total line moves now and then (a new key).

    With ``churn`` (a probability), an update row's identity is first moved to a new event (its
    old keys are never quoted again, its row primes new ones): new keys arriving steadily, as in
    a long recording's new events, which past the engine's hot-set limit (163,840 keys) keep it
    cooling old keys. ``churn=0`` draws nothing more: the recording is the same as without it.
    """
    rng = random.Random(seed)
    # ~6 keys per game identity, ~2 per prop identity; keep the mix near 3 game : 1 prop keys.
    n_game = max(1, (n_keys * 3 // 4) // 6)
    n_prop = max(1, (n_keys // 4) // 2)
    n_events = max(1, n_game // len(BOOKS))
    games: list[dict[str, Any]] = []
    for g in range(n_game):
        e = g % n_events
        games.append(
            {
                "kind": "game",
                "event_id": f"ev{e:05d}",
                "bookmaker": BOOKS[g // n_events % len(BOOKS)],
                "home_team": f"Home Team {e}",
                "away_team": f"Away Team {e}",
                "commence_time": f"2026-05-{1 + e % 28:02d}T23:30:00Z",
                "_c": [start_cents(rng, "ml"), start_cents(rng, "ml")]
                + [start_cents(rng, "line") for _ in range(4)],
                "_spread": rng.choice((-1.5, -3.5, -5, -7.5, 2.5)),
                "_total": rng.choice((210.5, 215, 220.5, 228.5)),
            }
        )
    props: list[dict[str, Any]] = []
    for p in range(n_prop):
        e = p % n_events
        mk, label = PROP_MARKETS[p % len(PROP_MARKETS)]
        props.append(
            {
                "kind": "prop",
                "event_id": f"ev{e:05d}",
                "bookmaker": BOOKS[p % len(BOOKS)],
                "player": f"Player {p // n_events} of {e}",
                "market_key": mk,
                "market": label,
                "line": rng.choice((4.5, 8.5, 19.5, 24.5, 31.5)),
                "_c": [start_cents(rng, "prop"), start_cents(rng, "prop")],
            }
        )

    def price(c: int) -> int | None:
        return None if rng.random() < 0.003 else american(c, rng)

    def game_row(g: dict[str, Any], lu: int) -> dict[str, Any]:
        c = g["_c"]
        s, t = g["_spread"], g["_total"]
        return {
            "kind": "game", "event_id": g["event_id"], "bookmaker": g["bookmaker"],
            "home_team": g["home_team"], "away_team": g["away_team"], "commence_time": g["commence_time"],
            "last_update": lu, "home_ml": price(c[0]), "away_ml": price(c[1]),
            "home_spread": s, "away_spread": -s, "home_spread_price": price(c[2]),
            "away_spread_price": price(c[3]), "total": t, "over_price": price(c[4]),
            "under_price": price(c[5]),
        }  # fmt: skip

    def prop_row(p: dict[str, Any], lu: int) -> dict[str, Any]:
        c = p["_c"]
        return {
            "kind": "prop", "event_id": p["event_id"], "bookmaker": p["bookmaker"], "player": p["player"],
            "market_key": p["market_key"], "market": p["market"], "line": p["line"], "last_update": lu,
            "over_price": price(c[0]), "under_price": price(c[1]),
        }  # fmt: skip

    enc = msgspec.json.Encoder()
    clock = 1_747_000_000_000
    lines = rows = fresh = 0
    with open(path, "wb") as fh:

        def put(obj: dict[str, Any]) -> None:
            nonlocal lines
            fh.write(enc.encode(obj) + b"\n")
            lines += 1

        put({"type": "connected", "sport_key": SPORT, "timestamp": clock // 1000, "push_mode": "raw"})
        snapshot = [game_row(g, clock - rng.randrange(60_000)) for g in games]
        snapshot += [prop_row(p, clock - rng.randrange(60_000)) for p in props]
        put({"type": "initial_state", "sport_key": SPORT, "timestamp": clock, "count": len(snapshot),
             "data": snapshot})  # fmt: skip
        rows += len(snapshot)
        while rows < n_rows:
            clock += 100 + rng.randrange(400)
            if rng.random() < 0.02:
                put({"type": "heartbeat", "sport_key": SPORT, "timestamp": clock, "connections": 7})
            data = []
            for _ in range(min(rng.randint(1, 20), n_rows - rows)):
                lu = clock - rng.randrange(80)  # rows of one envelope carry their own write times
                if rng.random() < 0.7:
                    g = rng.choice(games)
                    if churn and rng.random() < churn:
                        fresh += 1
                        g["event_id"] = f"new{fresh:07d}"
                    c = g["_c"]
                    for _ in range(rng.randint(1, 2)):
                        j = rng.randrange(6)
                        c[j] = clamp(c[j] + step(rng))
                    if rng.random() < 0.01:
                        g["_spread"] += rng.choice((-1, 1))
                    if rng.random() < 0.01:
                        g["_total"] += rng.choice((-1, 1))
                    data.append(game_row(g, lu))
                else:
                    p = rng.choice(props)
                    if churn and rng.random() < churn:
                        fresh += 1
                        p["event_id"] = f"new{fresh:07d}"
                    j = rng.randrange(2)
                    p["_c"][j] = clamp(p["_c"][j] + step(rng))
                    data.append(prop_row(p, lu))
            put({"type": "odds_update", "sport_key": SPORT, "timestamp": clock, "count": len(data),
                 "data": data})  # fmt: skip
            rows += len(data)
    return FileInfo(path, lines, rows, path.stat().st_size)


def json_floor(path: Path) -> int:
    """The baseline: read every line and decode it to Python objects; count the data rows."""
    decode = msgspec.json.decode
    rows = 0
    with open(path, "rb") as fh:
        for line in fh:
            env = decode(line)
            data = env.get("data")
            if data is not None:
                rows += len(data)
    return rows


def decode_only(path: Path) -> int:
    """Read + JSON decode + ``FrameDecoder.feed`` (quotes built); no merge and no engine."""
    decode = msgspec.json.decode
    decoder = FrameDecoder()
    skips = SkipLog()
    feed = decoder.feed
    name = path.name
    n = 0
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            n += len(feed(decode(line), skips, f"{name}:{lineno}"))
    return n


def decoded_quotes(path: Path) -> list[Quote]:
    """Every quote of the recording, decoded once (to time the engine alone on them)."""
    decoder = FrameDecoder()
    skips = SkipLog()
    out: list[Quote] = []
    with open(path, "rb") as fh:
        for line in fh:
            out += decoder.feed(msgspec.json.decode(line), skips)
    return out


def end_to_end(path: Path, fused: bool = True) -> tuple[int, ReplayStats, Any]:
    """``replay`` fully consumed: the fused frames path, or (``fused=False``) the general decoder."""
    stats = ReplayStats()
    alerts = 0
    engine = DropEngine()
    for _ in replay([path], engine, "frames", stats, fused=fused):
        alerts += 1
    return alerts, stats, engine.counters


# -- B, another checkout's replay -------------------------------------------------------------

# The worker: imports ``dropengine`` from its PYTHONPATH (the other checkout), then replays the
# recording once per line read from stdin and answers one JSON line per run. Only the replay is
# timed (after a gc.collect(), as race does); with "digest" it also keeps the alerts and answers
# the SHA-256 of their JSON (untimed use: the check that both checkouts give the same alerts).
_WORKER = r"""
import gc, hashlib, json, sys, time
import dropengine
from dropengine import DropEngine
from dropengine.io.replay import ReplayStats, replay

path = sys.argv[1]
print(json.dumps({"module": dropengine.__file__}), flush=True)
for cmd in sys.stdin:
    digest = cmd.strip() == "digest"
    gc.collect()
    stats = ReplayStats()
    engine = DropEngine()
    kept = []
    alerts = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for alert in replay([path], engine, "frames", stats):
        alerts += 1
        if digest:
            kept.append(alert)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sha = hashlib.sha256(b"\n".join(a.to_json() for a in kept)).hexdigest() if digest else None
    c = engine.counters
    print(json.dumps({
        "wall": wall, "cpu": cpu, "alerts": alerts, "digest": sha, "quotes": stats.quotes,
        "counters": {k: getattr(c, k) for k in ("seen", "primed", "stale", "invalid", "suspended", "repeated",
                                                 "detected", "alerts")},
        "skips": sorted(stats.skips.counts.items()),
        "first": [[s.where, s.reason, s.message] for s in stats.skips.first],
    }), flush=True)
"""


class BeforeReplay:
    """``replay`` of another checkout on one recording, in a worker process whose
    ``PYTHONPATH`` is that checkout (its working directory too: ``python -c`` puts the working
    directory first on ``sys.path``). One replay per :meth:`run`, timed inside the worker."""

    def __init__(self, checkout: Path, path: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path.resolve())], cwd=checkout, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.module = self._read()["module"]
        if not Path(self.module).resolve().is_relative_to(checkout.resolve()):
            self.close()
            raise SystemExit(f"--before {checkout}: the worker imported dropengine from {self.module}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"--before worker exited ({self.proc.wait()})")
        out: dict[str, Any] = json.loads(line)
        return out

    def run(self, digest: bool = False) -> Timed:
        assert self.proc.stdin is not None
        self.proc.stdin.write("digest\n" if digest else "run\n")
        self.proc.stdin.flush()
        r = self._read()
        return Timed(r["wall"], r["cpu"], r)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def replay_result(replay_fn: Any, engine: Any, stats: Any, path: Path, **kw: Any) -> dict[str, Any]:
    """The alerts (their count and a digest of their JSON), counters and skips of one replay, from
    any checkout's ``replay`` (``kw`` to this one's: ``fused``): what the checks compare."""
    kept = list(replay_fn([path], engine, "frames", stats, **kw))
    c = engine.counters.as_dict()
    return {
        "alerts": len(kept), "digest": hashlib.sha256(b"\n".join(a.to_json() for a in kept)).hexdigest(),
        "quotes": stats.quotes, "counters": {k: c[k] for k in ("seen", "primed", "stale", "invalid", "suspended",
                                                             "repeated", "detected", "alerts")},
        "skips": [list(kv) for kv in sorted(stats.skips.counts.items())],
        "first": [[s.where, s.reason, s.message] for s in stats.skips.first],
    }


def general_check(path: Path, fused: bool = False) -> dict[str, Any]:
    """What :class:`BeforeReplay` answers for a digest run, from this checkout's general decoder
    (or its fused path)."""
    return replay_result(replay, DropEngine(), ReplayStats(), path, fused=fused)


# -- B, another checkout's replay in this process ---------------------------------------------

#: the name another checkout's package is imported under (``--inproc``)
INPROC_NAME = "dropengine_before"


def load_checkout(checkout: Path, into: Path) -> Any:
    """Another checkout's ``dropengine`` package, copied to ``into`` and imported as
    :data:`INPROC_NAME` (its modules import each other relatively, so the copy is self-contained;
    one that imports ``dropengine`` by name is refused: it would run this tree's code)."""
    import importlib
    import re
    import shutil

    src = checkout / "dropengine"
    if not (src / "__init__.py").is_file():
        raise SystemExit(f"--inproc {checkout}: no dropengine package there")
    dst = into / INPROC_NAME
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    absolute = re.compile(r"^(from|import) dropengine\b", re.M)  # (indented ones are docstring examples)
    named = [str(f.relative_to(dst)) for f in dst.rglob("*.py") if absolute.search(f.read_text())]
    if named:
        raise SystemExit(f"--inproc {checkout}: {', '.join(named)} import dropengine by name")
    sys.path.insert(0, str(into))
    try:
        return importlib.import_module(f"{INPROC_NAME}.io.replay")
    finally:
        sys.path.remove(str(into))


def inproc_b(path: Path, checkout: Path, repeat: int, clock: str) -> None:
    """Part B's fused and general replays and ``checkout``'s replay (its default path), all three
    in this process (the checkout's package imported under another name), alternated ``repeat``
    times after checking their alerts, counters and skips equal: best, median, and the median of
    each turn's ratio (a turn's three runs share its load, so the paired ratio is the steadier
    figure on a shared machine; the worker of ``--before`` is a process with another heap)."""
    import statistics

    with tempfile.TemporaryDirectory(prefix="dropengine-inproc-") as tmp:
        old = load_checkout(checkout, Path(tmp))
        print(f"  --inproc: {checkout} imported as {INPROC_NAME} ({old.__file__})")
        runs: dict[str, Callable[[], Any]] = {
            "before": lambda: old.replay([path], old.DropEngine(), "frames", old.ReplayStats()),
            "general": lambda: replay([path], DropEngine(), "frames", ReplayStats(), fused=False),
            "fused": lambda: replay([path], DropEngine(), "frames", ReplayStats()),
        }
        checks = {
            "before": replay_result(old.replay, old.DropEngine(), old.ReplayStats(), path),
            "general": replay_result(replay, DropEngine(), ReplayStats(), path, fused=False),
            "fused": replay_result(replay, DropEngine(), ReplayStats(), path),
        }
        if not checks["before"] == checks["general"] == checks["fused"]:
            for k in checks["fused"]:
                if len({repr(c[k]) for c in checks.values()}) > 1:
                    print(f"  !! {k}: " + ", ".join(f"{n} {c[k]!r}"[:300] for n, c in checks.items()))
            raise SystemExit("--inproc: the replays differ; nothing timed")
        print(f"  before == general == fused: {checks['fused']['alerts']:,} alerts "
              f"(sha256 {checks['fused']['digest'][:12]}), counters, skips")
        now = CLOCK[clock]
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(repeat):
            for name, run in runs.items():
                gc.collect()
                t0 = now()
                for _alert in run():
                    pass
                times[name].append(now() - t0)
        rows = [(name, f"{min(v):.4f}", f"{statistics.median(v):.4f}") for name, v in times.items()]
        print(table(("replay", "best s", "median s"), rows))
        for base in ("before", "general"):
            paired = sorted(b / f for b, f in zip(times[base], times["fused"], strict=True))
            print(f"  fused path vs {base}: best {min(times[base]) / min(times['fused']):.2f}x, "
                  f"median {statistics.median(times[base]) / statistics.median(times['fused']):.2f}x, "
                  f"paired median {statistics.median(paired):.2f}x (range {paired[0]:.2f}-{paired[-1]:.2f})"
                  + (f"; aim {AIM_FUSED_RATIO}x" if base == "before" else ""))
        print(f"  load {load_average()} at the end")


# -- callgrind (instruction counts: load-free) -------------------------------------------------

# One replay of the recording in a process of its own: "imports" stops after the imports (its count
# is subtracted from the others), "general" and "fused" replay it; with a digest argument the child
# prints what general_check answers instead of being counted.
CALLGRIND_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[4])
from engine import general_check
from dropengine import DropEngine
from dropengine.io.replay import ReplayStats, replay
path, mode, digest = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if mode != "imports":
    if digest:
        print(json.dumps(general_check(path, fused=mode == "fused")))
    else:
        for _ in replay([path], DropEngine(), "frames", ReplayStats(), fused=mode == "fused"):
            pass
"""


def callgrind_b(path: Path) -> None:
    """Part B's replays counted by callgrind (whole process minus an imports-only process,
    ``PYTHONHASHSEED=0``): the fused path against the general decoder, after checking that
    their alerts, counters and skips are identical (nothing is counted otherwise)."""
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONHASHSEED": "0"}

    def child(mode: str, digest: bool, valgrind: list[str]) -> str:
        cmd = [*valgrind, sys.executable, "-c", CALLGRIND_CHILD, str(path), mode, "1" if digest else "0", here]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit(f"callgrind child {mode} exited {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout if digest else done.stderr

    general, fused = (json.loads(child(m, True, [])) for m in ("general", "fused"))
    if general != fused:
        raise SystemExit(f"fused and general replays differ: {fused} vs {general}; nothing counted")
    print(f"  fused == general: {general['alerts']:,} alerts (sha256 {general['digest'][:12]}), counters, skips")
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="dropengine-cg-") as tmp:
        for mode in ("imports", "general", "fused"):
            out = child(mode, False, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/{mode}.out"])
            got = [ln for ln in out.splitlines() if "Collected :" in ln]
            if not got:
                raise SystemExit(f"no callgrind total for {mode}: {out[-500:]}")
            counts[mode] = int(got[-1].split()[-1])
    net = {m: counts[m] - counts["imports"] for m in ("general", "fused")}
    print(table(("process", "instructions", "minus imports"),
                [(m, f"{counts[m]:,}", f"{net[m]:,}" if m in net else "") for m in ("imports", "general", "fused")]))
    print(f"  fused path: {net['general'] / net['fused']:.2f}x fewer instructions than the general decoder "
          f"(aim {AIM_FUSED_RATIO}x in rows/s)")


# -- report -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small run (200k quotes, 30k rows, best of 2)")
    ap.add_argument("--quotes", type=int, help="quotes for part A (default 1,500,000)")
    ap.add_argument("--keys", type=int, default=20_000, help="distinct keys (default 20,000)")
    ap.add_argument("--rows", type=int, help="data rows in the NDJSON file for part B (default 300,000)")
    ap.add_argument("--repeat", type=int, help="best of N runs (default 5; 2 with --quick)")
    ap.add_argument("--seed", type=int, default=20260512)
    ap.add_argument("--churn", type=float, default=0.0, metavar="P",
                    help="B: an update row's identity moves to a new event with probability P (new keys "
                         "arriving steadily: past 163,840 keys the engine cools old ones); default 0")
    ap.add_argument("--skip-a", action="store_true", help="skip part A")
    ap.add_argument("--skip-b", action="store_true", help="skip part B")
    ap.add_argument("--before", type=Path, metavar="CHECKOUT",
                    help="B: also time this checkout's replay on the same recording (a worker process)")
    ap.add_argument("--cpu", action="store_true", help="time CPU (process_time) instead of wall clock")
    ap.add_argument("--inproc", type=Path, metavar="CHECKOUT",
                    help="B: time the fused and general replays and this checkout's replay in this process "
                         "(its package imported under another name), alternated, instead of part B's table")
    ap.add_argument("--callgrind", action="store_true",
                    help="B: count instructions (valgrind) of the fused and general replays instead of timing")
    args = ap.parse_args(argv)
    clock = "cpu" if args.cpu else "wall"
    n_quotes = args.quotes or (200_000 if args.quick else 1_500_000)
    n_rows = args.rows or (30_000 if args.quick else 300_000)
    repeat = args.repeat or (2 if args.quick else 5)

    print("dropengine throughput benchmark" + (" (--quick)" if args.quick else ""))
    for k, v in machine().items():
        print(f"  {k:8} {v}")
    print(f"  load     {load_average()} at start (other processes skew the figures)")
    print(f"  settings DropEngine() defaults (threshold {THRESHOLD} cents, reference last); best of {repeat}, "
          f"{'CPU time' if args.cpu else 'wall clock'}")
    print()
    summary: list[tuple[str, str, str, str]] = []

    if not args.skip_a:
        t0 = time.perf_counter()
        quotes = make_quotes(n_quotes, args.keys, args.seed)
        gen = time.perf_counter() - t0
        last: dict[tuple[str, str, str], float] = {}
        crossings = repeats = 0
        for q in quotes:
            k = (q.event_id, q.bookmaker, q.side)
            old = last.get(k)
            p = q.price
            assert p is not None
            if old is not None:
                c_old, c_new = cents(old), cents(p)
                if c_old == c_new:
                    repeats += 1
                elif (old > 0) != (p > 0):
                    crossings += 1
            last[k] = p
        print(
            f"A. engine on prebuilt quotes: {len(quotes):,} quotes, {len(last):,} keys, "
            f"{repeats:,} repeats, {crossings:,} even-money crossings (built in {gen:.1f} s)"
        )
        ra = race(
            repeat,
            {
                "base": lambda: dict_loop(quotes),
                "eng": lambda: engine_all(quotes),
                "b4k": lambda: engine_batched(quotes, 4096),
                "b6": lambda: engine_batched(quotes, 6),
            },
            clock,
        )
        t_base, base_alerts = ra["base"]
        t_eng, (eng_alerts, eng) = ra["eng"]
        t_b4k, t_b6 = ra["b4k"][0], ra["b6"][0]
        if eng_alerts != len(base_alerts):
            print(f"  !! alert counts differ: engine {eng_alerts}, dict loop {len(base_alerts)}")
        n = len(quotes)
        q_base, q_eng = n / t_base, n / t_eng
        ratio = t_eng / t_base
        rows_a = [
            ("dict-loop baseline", f"{t_base:.3f}", fmt_rate(q_base), "1.00x", f"{len(base_alerts):,}"),
            ("engine observe_many(all)", f"{t_eng:.3f}", fmt_rate(q_eng), f"{ratio:.2f}x", f"{eng_alerts:,}"),
            ("engine, batches of 4096", f"{t_b4k:.3f}", fmt_rate(n / t_b4k), f"{t_b4k / t_base:.2f}x", ""),
            ("engine, batches of 6 (1 row)", f"{t_b6:.3f}", fmt_rate(n / t_b6), f"{t_b6 / t_base:.2f}x", ""),
        ]
        print(table(("path", "best s", "quotes/s", "time vs base", "alerts"), rows_a))
        c = eng.counters
        print(f"  engine counters: primed {c.primed:,}, repeated {c.repeated:,}, detected {c.detected:,}")
        print()
        summary.append(
            ("engine quotes/s", fmt_rate(q_eng), f">= {AIM_ENGINE_QPS:,}", verdict(q_eng >= AIM_ENGINE_QPS))
        )
        summary.append(
            ("engine time / dict-loop time", f"{ratio:.2f}x", f"<= {AIM_ENGINE_RATIO}x",
             verdict(ratio <= AIM_ENGINE_RATIO))
        )  # fmt: skip
        # (all of part A's objects go before part B: the engine's key state and the alerts held
        # alive would make every full collection of B's in-process replays dearer than the
        # --before worker's, a fresh process: review20 R20-4)
        del quotes, base_alerts, eng, eng_alerts, ra
        gc.collect()

    if not args.skip_b:
        with tempfile.TemporaryDirectory(prefix="dropengine-bench-") as tmp:
            t0 = time.perf_counter()
            info = write_frames(Path(tmp) / "frames.ndjson", n_rows, args.keys, args.seed, args.churn)
            gen = time.perf_counter() - t0
            print(
                f"B. end to end from NDJSON frames: {info.rows:,} data rows in {info.lines:,} envelopes, "
                f"{info.bytes / 1e6:.1f} MB (written in {gen:.1f} s)"
                + (f"; churn {args.churn}" if args.churn else "")
            )
            if args.callgrind:
                callgrind_b(info.path)
                return 0
            if args.inproc is not None:
                inproc_b(info.path, args.inproc, repeat, clock)
                return 0
            fns: dict[str, Callable[[], Any]] = {
                "floor": lambda: json_floor(info.path),
                "dec": lambda: decode_only(info.path),
                "gen": lambda: end_to_end(info.path, fused=False),
                "e2e": lambda: end_to_end(info.path),
            }
            before: BeforeReplay | None = None
            if args.before is not None:
                before = BeforeReplay(args.before, info.path)
                # untimed, once: the same alerts, counters and skips (also the worker's warm-up)
                theirs = {k: v for k, v in before.run(digest=True).result.items() if k not in ("wall", "cpu")}
                ours = general_check(info.path)
                same = theirs == ours
                print(f"  before: {args.before} ({before.module}); alerts, counters, skips "
                      + ("identical to the general decoder's" if same else "DIFFER"))
                if not same:
                    for k in ours:
                        if ours[k] != theirs.get(k):
                            print(f"  !! {k}: before {theirs.get(k)!r}, now {ours[k]!r}")
                fns["old"] = before.run
            try:
                rb = race(repeat, fns, clock)
            finally:
                if before is not None:
                    before.close()
            # The engine alone, timed after the replays: its 1.4M prebuilt quotes alive during them
            # made every full collection of the replays traverse them (the fused path, allocating
            # more small tuples, collects more often: it measured 0.99x the general path that way,
            # 1.7x in a process of its own)
            quotes_b = decoded_quotes(info.path)
            rb.update(race(repeat, {"eng": lambda: engine_all(quotes_b)[0]}, clock))
            del quotes_b
            t_floor, floor_rows = rb["floor"]
            t_dec, n_dec = rb["dec"]
            t_eng_b = rb["eng"][0]
            t_e2e, (alerts, stats, counters) = rb["e2e"]
            t_gen, (alerts_gen, stats_gen, counters_gen) = rb["gen"]
            assert floor_rows == info.rows, (floor_rows, info.rows)
            if (alerts, counters, stats.quotes) != (alerts_gen, counters_gen, stats_gen.quotes):
                print(f"  !! fused and general replays differ: {alerts} vs {alerts_gen} alerts")
            if stats.skips:
                print(f"  !! skips: {dict(stats.skips.counts)}")
            nq = stats.quotes
            rows_b = [
                ("read + msgspec decode (floor)", f"{t_floor:.3f}", fmt_rate(info.rows / t_floor), "",
                 "1.00x"),
                ("read + decode + FrameDecoder.feed", f"{t_dec:.3f}", fmt_rate(info.rows / t_dec),
                 fmt_rate(n_dec / t_dec), f"{t_dec / t_floor:.2f}x"),
                ("engine alone on those quotes", f"{t_eng_b:.3f}", fmt_rate(info.rows / t_eng_b),
                 fmt_rate(n_dec / t_eng_b), f"{t_eng_b / t_floor:.2f}x"),
                ("replay, general decoder (fused=False)", f"{t_gen:.3f}", fmt_rate(info.rows / t_gen),
                 fmt_rate(nq / t_gen), f"{t_gen / t_floor:.2f}x"),
                ("replay, fused path (default)", f"{t_e2e:.3f}", fmt_rate(info.rows / t_e2e),
                 fmt_rate(nq / t_e2e), f"{t_e2e / t_floor:.2f}x"),
            ]  # fmt: skip
            if "old" in rb:
                t_old, old = rb["old"]
                if (old["alerts"], old["quotes"]) != (alerts, nq):
                    print(f"  !! before: {old['alerts']} alerts, {old['quotes']} quotes")
                rows_b.append(("replay, --before checkout", f"{t_old:.3f}", fmt_rate(info.rows / t_old),
                               fmt_rate(nq / t_old), f"{t_old / t_floor:.2f}x"))
            print(table(("path", "best s", "rows/s", "quotes/s", "time vs floor"), rows_b))
            print(f"  {nq:,} quotes ({nq / info.rows:.2f} per row), {alerts:,} alerts; fused path "
                  f"{t_gen / t_e2e:.2f}x the general decoder's rows/s")
            print()
            rate = info.rows / t_e2e
            summary.append(
                ("fused / general replay rows/s", f"{t_gen / t_e2e:.2f}x", f">= {AIM_FUSED_RATIO}x",
                 verdict(t_gen / t_e2e >= AIM_FUSED_RATIO))
            )
            if "old" in rb:
                t_old = rb["old"][0]
                print(f"  --before's replay: fused path {t_old / t_e2e:.2f}x its rows/s, general decoder "
                      f"{t_old / t_gen:.2f}x")
                print()
                summary.append(
                    ("fused / --before replay rows/s", f"{t_old / t_e2e:.2f}x", f">= {AIM_FUSED_RATIO}x",
                     verdict(t_old / t_e2e >= AIM_FUSED_RATIO))
                )
            summary.append(
                ("end-to-end rows/s", fmt_rate(rate), f">= {AIM_E2E_ROWS:,}", verdict(rate >= AIM_E2E_ROWS))
            )
            summary.append(("end-to-end time / JSON floor", f"{t_e2e / t_floor:.2f}x", "(info)", ""))

    if summary:
        print("Aims")
        print(table(("figure", "measured", "aim", ""), summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
