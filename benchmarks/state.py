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

``--old PATH`` loads ``PATH/dropengine/core/engine.py`` (an older checkout, e.g. a
``git worktree`` of bc091f5) as a module beside this tree's, on this tree's Quote and rules, and
measures it the same way in the same process; given several times, each of them (named by path).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import sys
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
    args = ap.parse_args(argv)
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
