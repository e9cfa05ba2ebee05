"""Stream-engine state benchmark (issue 14, aim 3): bytes per tracked key, and the speed of
``observe_many``, against baselines measured in the same process.

Run from the repository root::

    .venv/bin/python benchmarks/state.py                       # full run: 1M keys (several minutes)
    .venv/bin/python benchmarks/state.py --quick               # 100k keys, short races
    .venv/bin/python benchmarks/state.py --old /tmp/wt-state   # also the engine of another checkout
    .venv/bin/python benchmarks/state.py --old A --old B       # ... of several (each measured in turn)

A. Memory per tracked key: ``tracemalloc`` bytes still allocated after one quote per key went
   through ``observe_many`` and the quotes were freed, divided by the keys (as
   ``benchmarks/batch.py`` C: the key table of that script, key strings owned by the table).
   Baseline: a plain dict of the same ``(event_id, bookmaker, side)`` tuples to the int price.
   Then the same engine's ``snapshot()`` is restored, measured the same way (a restored engine
   owns its key strings, so this figure includes them: one copy per distinct string), and the
   round trip is checked (``restore(s).snapshot() == s``).
B. ``observe_many`` throughput over ``benchmarks/engine.py`` part A's stream (20,000 keys), and
   over a stream whose keys are more than the engine keeps hot (``--wide-keys``, uniformly
   random updates), round robin with the dict loop of ``benchmarks/engine.py`` (and the old
   engine): best of N ``time.perf_counter``, ``gc.collect()`` before each run.

C. ``--callgrind wide|narrow|both``: instructions of one ``observe_many`` call, this tree's engine
   and every ``--old`` checkout's (A and B are skipped), counted by callgrind in one harness::

       git worktree add /tmp/wt-bc091f5 bc091f5
       .venv/bin/python benchmarks/state.py --callgrind both --old /tmp/wt-bc091f5   # ~6 min a run

   Each engine and stream runs in a process of its own (this script, ``--cg-child``) under
   ``valgrind --tool=callgrind``, ``PYTHONHASHSEED=0``, collecting only inside ``math.fsum``
   (``--toggle-collect=math_fsum``), which the child calls once, around the one ``observe_many``
   call (a generator that makes the call, then yields ``0.0``): nothing of the imports or of
   building the quotes is counted. Every child imports the same modules and loads every ``--old``
   checkout's engine whichever engine it runs, so each call meets the same heap (a full
   collection's cost depends on what the process holds: session 13 found a harness that imported
   less for this tree's engine ~45-60M cheaper). The quotes are built, then ``gc.collect()``.
   Streams: ``wide``, B's wide stream (200,000 keys primed, then uniformly random keys), 1,000,000
   quotes; ``narrow``, ``engine.py`` part A's stream, 20,000 keys, 1,000,000 quotes. The children
   print their full collections in the call, alerts, counters and snapshot SHA-256 (outside the
   count); the last three must be equal across engines. ``--keep DIR`` leaves the callgrind files
   there (``callgrind_annotate``).

``--old PATH`` loads ``PATH/dropengine/core/engine.py`` (an older checkout, e.g. a
``git worktree`` of bc091f5) as a module beside this tree's, on this tree's Quote and rules, and
measures it the same way in the same process; given several times, each of them (named by path).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import math
import os
import re
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _report import fmt_rate, load_average, table, verdict  # type: ignore[import-not-found]
from _report import machine as report_machine  # type: ignore[import-not-found]
from batch import CLOCK0, key_table  # type: ignore[import-not-found]  # benchmarks/batch.py C's key table
from engine import dict_loop, make_quotes, race  # type: ignore[import-not-found]

from dropengine import DropEngine, Quote

AIM_BYTES_PER_KEY = 120


def _load(where: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"dropengine.core.{name}", where)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "dropengine.core"
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_old(path: str, name: str = "_old_engine") -> type[Any]:
    """The DropEngine class of another checkout's ``dropengine/core/engine.py`` (loaded as the
    module ``dropengine.core.<name>``: one name per checkout loaded in the same process). A
    checkout that has ``dropengine/core/keystate.py`` (084bce3 on) gets its own key state too:
    its engine's ``from .keystate import ...`` runs while that module stands in for this tree's."""
    old_keys = Path(path) / "dropengine/core/keystate.py"
    if not old_keys.exists():
        return _load(Path(path) / "dropengine/core/engine.py", name).DropEngine  # type: ignore[no-any-return]
    ours = sys.modules.get("dropengine.core.keystate")
    sys.modules["dropengine.core.keystate"] = _load(old_keys, f"{name}_keystate")
    try:
        cls: type[Any] = _load(Path(path) / "dropengine/core/engine.py", name).DropEngine
    finally:
        if ours is None:
            del sys.modules["dropengine.core.keystate"]
        else:
            sys.modules["dropengine.core.keystate"] = ours
    return cls


def key_quotes(n_keys: int) -> Callable[[], list[Quote]]:
    """One quote per key of ``batch.key_table`` (fresh boxed prices and times, as a decoder's)."""
    keys = key_table(n_keys)
    rng = np.random.default_rng(7)
    prices = np.where(rng.random(n_keys) < 0.5, -1, 1) * rng.integers(101, 400, n_keys)
    clock = CLOCK0 + rng.integers(0, 3_600_000, n_keys)

    def make() -> list[Quote]:
        return [Quote(m[0], m[1], m[2], m[3], p, lu, *m[4:])
                for m, p, lu in zip(keys, prices.tolist(), clock.tolist(), strict=True)]
    return make


def traced(build: Callable[[], Any]) -> tuple[float, Any]:
    """Bytes left allocated by ``build()`` (whatever it returns is kept), and its result."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, held


def bytes_per_key(engine_cls: type[Any], make: Callable[[], list[Quote]]) -> tuple[float, float, bool]:
    """(engine B/key, restored engine B/key, snapshot round trip identical)."""
    def fed() -> Any:
        quotes = make()
        eng = engine_cls()
        eng.observe_many(quotes)
        del quotes
        return eng
    size, eng = traced(fed)
    n = len(eng)
    blob = eng.snapshot()
    del eng
    size_r, back = traced(lambda b=blob: engine_cls.restore(b))
    same = back.snapshot() == blob
    return size / n, size_r / n, same


def dict_bytes_per_key(make: Callable[[], list[Quote]]) -> float:
    def fed() -> Any:
        quotes = make()
        last: dict[tuple[str, str, str], Any] = {}
        for q in quotes:
            last[(q.event_id, q.bookmaker, q.side)] = q.price
        del quotes
        return last
    size, last = traced(fed)
    return size / len(last)


def wide_quotes(n_quotes: int, n_keys: int) -> list[Quote]:
    """Every key primed, then uniformly random keys moving by 1-20 cents (no key stays hot)."""
    keys = key_table(n_keys)
    rng = np.random.default_rng(11)
    cents = rng.integers(-150, -5, n_keys)
    order = np.concatenate([np.arange(n_keys), rng.integers(0, n_keys, max(0, n_quotes - n_keys))])
    moves = rng.integers(-20, 21, len(order))
    out: list[Quote] = []
    for t, (k, mv) in enumerate(zip(order.tolist(), moves.tolist(), strict=True)):
        c = cents[k] = min(-5, max(-300, cents[k] + (mv if t >= n_keys else 0)))
        m = keys[k]
        out.append(Quote(m[0], m[1], m[2], m[3], int(c) - 100, CLOCK0 + t, *m[4:]))
    return out


STREAMS = ("wide", "narrow")


def _quotes(stream: str, n_quotes: int, wide_keys: int) -> list[Any]:
    if stream == "wide":
        return wide_quotes(n_quotes, wide_keys)  # type: ignore[no-any-return]
    return make_quotes(n_quotes, 20_000, 1)  # type: ignore[no-any-return]


def cg_child(stream: str, which: int, olds: list[str], n_quotes: int, wide_keys: int) -> int:
    """One engine's call: ``which`` -1 is this tree's, i the i-th ``--old``'s."""
    engines = [DropEngine] + [load_old(p, f"_old_engine{i}") for i, p in enumerate(olds)]
    cls = engines[which + 1]
    quotes = _quotes(stream, n_quotes, wide_keys)
    eng = cls()
    out: list[Any] = []

    def call() -> Any:
        out.append(eng.observe_many(quotes))
        yield 0.0

    gc.collect()
    full = gc.get_stats()[2]["collections"]
    math.fsum(call())  # the only math.fsum of the process: callgrind counts inside it
    full = gc.get_stats()[2]["collections"] - full
    alerts = out[0]
    digest = hashlib.sha256(repr(alerts).encode()).hexdigest()[:16]
    snap = hashlib.sha256(eng.snapshot()).hexdigest()[:16]
    print(f"GC full collections in the call: {full}")
    print(f"RESULT alerts={len(alerts)} alerts_sha={digest} counters={eng.counters.as_dict()} snapshot_sha={snap}")
    sys.stdout.flush()
    os._exit(0)  # no teardown: nothing after the count matters


def cg_measure(
    stream: str, which: int, olds: list[str], n_quotes: int, wide_keys: int, keep: str | None = None,
    counted: bool = True,
) -> tuple[int, str, str]:
    """(instructions of the call, the child's RESULT line, its full collections); with ``keep``,
    the callgrind file is left in that folder (``callgrind_annotate`` reads it). ``counted``
    False: the same child without valgrind (its RESULT only, for the check before counting)."""
    with tempfile.TemporaryDirectory() as tmp:
        name = f"cg.{stream}.{'now' if which < 0 else f'old{which}'}.out"
        out_file = Path(keep or tmp) / name
        valgrind = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=math_fsum",
            f"--callgrind-out-file={out_file}",
        ]
        cmd = [
            *(valgrind if counted else []),
            sys.executable,
            str(Path(__file__).resolve()),
            "--cg-child",
            stream,
            "--cg-which",
            str(which),
            "--quotes",
            str(n_quotes),
            "--wide-keys",
            str(wide_keys),
        ]
        for p in olds:
            cmd += ["--old", p]
        env = dict(os.environ, PYTHONHASHSEED="0")
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        result = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
        full = next((ln for ln in run.stdout.splitlines() if ln.startswith("GC ")), "")
        if run.returncode != 0 or result is None:
            raise SystemExit(f"child failed ({run.returncode}): {run.stderr[-2000:]}")
        if not counted:
            return 0, result[len("RESULT ") :], full[len("GC ") :]
        m = re.search(r"^(?:summary|totals):\s*(\d+)", out_file.read_text(), re.M)
        if m is None:
            raise SystemExit(f"no totals in {out_file}")
        return int(m.group(1)), result[len("RESULT ") :], full[len("GC ") :]


def callgrind(
    streams: tuple[str, ...], olds: list[str], n_quotes: int, wide_keys: int, keep: str | None, only: list[int]
) -> int:
    """C: each stream's call, this tree's engine then each ``--old``'s (or the ``only`` ones), and
    the ratios to the first ``--old``."""
    names = [(w, n) for w, n in [(-1, "this tree"), *enumerate(olds)] if not only or w in only]
    print(f"C. callgrind of one observe_many call; PYTHONHASHSEED=0; {n_quotes:,} quotes; load {load_average()}")
    for stream in streams:
        # the same alerts, counters and snapshot from every engine before anything is counted (each
        # child once without valgrind: seconds, against minutes under it)
        if olds:
            expected = {cg_measure(stream, w, olds, n_quotes, wide_keys, counted=False)[1]
                        for w in (-1, *range(len(olds)))}
            if len(expected) > 1:
                raise SystemExit(f"{stream}: the engines' results differ, nothing counted: {sorted(expected)}")
        counts: dict[int, int] = {}
        results = set()
        for which, name in names:
            n, res, full = cg_measure(stream, which, olds, n_quotes, wide_keys, keep)
            counts[which] = n
            results.add(res)
            print(f"  {stream} {name}: {n:,} instructions; {full}; {res}", flush=True)
        base = counts.get(0)
        rows = [
            (name if which < 0 else f"old {name}", f"{counts[which] / 1e6:,.0f}M",
             "" if base is None else f"{counts[which] / base - 1:+.1%}")
            for which, name in names
        ]  # fmt: skip
        keys = f"{wide_keys:,} keys uniformly" if stream == "wide" else "20,000 keys"
        print(f"{stream} ({keys})")
        print(table(("engine", "instructions of observe_many", "vs the first --old"), rows))
        # (one engine measured, by --cg-only, compares with nothing: say so rather than "yes")
        same = "n/a (one engine)" if len(names) == 1 else "yes" if len(results) == 1 else "NO"
        print(f"alerts, counters and snapshot equal across engines: {same}")
        print(f"load average: {load_average()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100k keys, fewer runs")
    ap.add_argument("--keys", type=int, help="keys for A (default 1,000,000; --quick 100,000)")
    ap.add_argument("--quotes", type=int, help="quotes for B (default 1,500,000; --quick 300,000)")
    ap.add_argument("--wide-keys", type=int, default=200_000, help="keys of B's wide stream (default 200,000)")
    ap.add_argument("--repeat", type=int, help="best of N for B (default 5; --quick 3)")
    ap.add_argument("--old", action="append", default=[],
                    help="another checkout whose engine runs beside this one (e.g. /tmp/wt-state); repeatable")
    ap.add_argument("--skip-a", action="store_true")
    ap.add_argument("--skip-b", action="store_true")
    ap.add_argument("--callgrind", choices=(*STREAMS, "both"), help="C alone: callgrind of one observe_many call")
    ap.add_argument("--keep", help="C: a folder to leave the callgrind files in")
    ap.add_argument("--cg-only", type=int, action="append", default=[],
                    help="C: measure only this engine (-1 this tree, i the i-th --old; repeatable)")
    ap.add_argument("--cg-child", choices=STREAMS, help=argparse.SUPPRESS)
    ap.add_argument("--cg-which", type=int, default=-1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cg_child or args.callgrind:
        olds = [str(Path(p).resolve()) for p in args.old]
        n_cg = args.quotes or 1_000_000
        if args.cg_child:
            return cg_child(args.cg_child, args.cg_which, olds, n_cg, args.wide_keys)
        streams = STREAMS if args.callgrind == "both" else (args.callgrind,)
        return callgrind(streams, olds, n_cg, args.wide_keys, args.keep, args.cg_only)
    n_keys = args.keys or (100_000 if args.quick else 1_000_000)
    n_quotes = args.quotes or (300_000 if args.quick else 1_500_000)
    repeat = args.repeat or (3 if args.quick else 5)
    engines: dict[str, type[Any]] = {"engine": DropEngine}
    for i, path in enumerate(args.old):
        engines["old engine" if len(args.old) == 1 else f"old engine {path}"] = load_old(path, f"_old_engine{i}")
    for k, v in report_machine().items():
        print(f"{k}: {v}")
    print(f"load average at start: {load_average()}")
    print()
    if not args.skip_a:
        print(f"A. bytes per tracked key at {n_keys:,} keys"
              " (tracemalloc; quotes freed; key strings owned by the table)")
        make = key_quotes(n_keys)
        base = dict_bytes_per_key(make)
        rows = [("dict[(event, book, side)] -> price (baseline)", f"{base:.0f}", "1.00x", "", "", "")]
        for name, cls in engines.items():
            b, r, same = bytes_per_key(cls, make)
            rows.append((name, f"{b:.0f}", f"{b / base:.2f}x", f"{r:.0f}", "yes" if same else "NO",
                         verdict(b <= AIM_BYTES_PER_KEY and r <= AIM_BYTES_PER_KEY)))
        print(table(("state", "B/key", "vs dict", "restored B/key", "round trip", f"<= {AIM_BYTES_PER_KEY}"), rows))
        print()
    if not args.skip_b:
        for label, quotes in (
            (f"engine.py A stream, {n_quotes:,} quotes, 20,000 keys", make_quotes(n_quotes, 20_000, 1)),
            (f"wide stream, {n_quotes:,} quotes, {args.wide_keys:,} keys uniformly",
             wide_quotes(n_quotes, args.wide_keys)),
        ):
            print(f"B. observe_many, {label} (best of {repeat}, round robin)")
            fns: dict[str, Callable[[], Any]] = {"dict loop (baseline)": lambda q=quotes: len(dict_loop(q))}
            for name, cls in engines.items():
                fns[name] = lambda q=quotes, c=cls: len(c().observe_many(q))
            res = race(repeat, fns)
            t0 = res["dict loop (baseline)"][0]
            rows_b = [(name, fmt_rate(len(quotes) / t), f"{t / t0:.2f}x", f"{r:,}") for name, (t, r) in res.items()]
            print(table(("path", "quotes/s", "time vs dict", "alerts"), rows_b))
            counts = {r for name, (_, r) in res.items() if name != "dict loop (baseline)"}
            print(f"alerts equal across engines: {'yes' if len(counts) == 1 else 'NO'}")
            print()
            del quotes, fns, res
            gc.collect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
