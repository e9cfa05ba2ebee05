"""Instructions of one ``observe_many`` call (issue 14, aim 3), this tree's engine against older
checkouts', counted by callgrind in the same harness.

Run from the repository root (valgrind installed; a few minutes per engine and stream)::

    git worktree add /tmp/wt-bc091f5 bc091f5
    .venv/bin/python benchmarks/state_callgrind.py --old /tmp/wt-bc091f5            # wide and narrow
    .venv/bin/python benchmarks/state_callgrind.py --stream wide --old /tmp/wt-bc091f5

Each engine and stream runs in a process of its own under ``valgrind --tool=callgrind``,
``PYTHONHASHSEED=0``, collecting only inside ``math.fsum`` (``--toggle-collect=math_fsum``), which
the child calls once, around the one ``observe_many`` call (a generator that makes the call, then
yields ``0.0``): the count is that call, nothing of the imports or of building the quotes.
Every child imports the same modules and loads every ``--old`` checkout's engine (``state.load_old``)
whichever engine it runs, so each call meets the same heap: the cost of a full collection depends
on what the process holds (session 13 found a harness that imported less for this tree's engine
~45-60M cheaper). The quotes are built and collected (``gc.collect()``) before the call.

Streams (``state.py`` B's): ``wide``: 200,000 keys primed, then uniformly random keys (no key stays
hot), 1,000,000 quotes; ``narrow``: ``engine.py`` part A's stream, 20,000 keys, 1,000,000 quotes.
The children also print their alerts, counters and snapshot SHA-256 (outside the count), which
must be equal across engines: the table says so.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import load_average, table  # type: ignore[import-not-found]  # noqa: E402
from engine import make_quotes  # type: ignore[import-not-found]  # noqa: E402
from state import load_old, wide_quotes  # type: ignore[import-not-found]  # noqa: E402

from dropengine import DropEngine  # noqa: E402

STREAMS = ("wide", "narrow")


def _quotes(stream: str, n_quotes: int, wide_keys: int) -> list[Any]:
    if stream == "wide":
        return wide_quotes(n_quotes, wide_keys)  # type: ignore[no-any-return]
    return make_quotes(n_quotes, 20_000, 1)  # type: ignore[no-any-return]


def child(stream: str, which: int, olds: list[str], n_quotes: int, wide_keys: int) -> int:
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


def measure(
    stream: str, which: int, olds: list[str], n_quotes: int, wide_keys: int, keep: str | None = None
) -> tuple[int, str, str]:
    """(instructions of the call, the child's RESULT line, its full collections); with ``keep``, the callgrind file is
    left in that folder (``callgrind_annotate`` reads it)."""
    with tempfile.TemporaryDirectory() as tmp:
        name = f"cg.{stream}.{'now' if which < 0 else f'old{which}'}.out"
        out_file = Path(keep or tmp) / name
        cmd = [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=math_fsum",
            f"--callgrind-out-file={out_file}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            stream,
            "--which",
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
        m = re.search(r"^(?:summary|totals):\s*(\d+)", out_file.read_text(), re.M)
        if m is None:
            raise SystemExit(f"no totals in {out_file}")
        return int(m.group(1)), result[len("RESULT ") :], full[len("GC ") :]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stream", choices=(*STREAMS, "both"), default="both")
    ap.add_argument("--old", action="append", default=[], help="another checkout (e.g. a worktree of bc091f5)")
    ap.add_argument("--only-old", action="store_true", help="measure the --old checkouts alone (not this tree)")
    ap.add_argument("--only-now", action="store_true", help="measure this tree alone (the --old still loaded)")
    ap.add_argument("--quotes", type=int, default=1_000_000)
    ap.add_argument("--wide-keys", type=int, default=200_000)
    ap.add_argument("--keep", help="a folder to leave the callgrind files in")
    ap.add_argument("--child", choices=STREAMS, help=argparse.SUPPRESS)
    ap.add_argument("--which", type=int, default=-1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    olds = [str(Path(p).resolve()) for p in args.old]
    if args.child:
        return child(args.child, args.which, olds, args.quotes, args.wide_keys)
    streams = STREAMS if args.stream == "both" else (args.stream,)
    names = ([] if args.only_old else [(-1, "this tree")]) + ([] if args.only_now else list(enumerate(olds)))
    print(f"load average at start: {load_average()}; PYTHONHASHSEED=0; {args.quotes:,} quotes")
    for stream in streams:
        rows = []
        counts: dict[int, int] = {}
        results = set()
        for which, name in names:
            n, res, full = measure(stream, which, olds, args.quotes, args.wide_keys, args.keep)
            counts[which] = n
            results.add(res)
            print(f"  {stream} {name}: {n:,} instructions; {full}; {res}", flush=True)
        base = counts.get(0)
        for which, name in names:
            ratio = "" if base is None else f"{counts[which] / base - 1:+.1%}"
            rows.append((name if which < 0 else f"old {name}", f"{counts[which] / 1e6:,.0f}M", ratio))
        keys = f"{args.wide_keys:,} keys uniformly" if stream == "wide" else "20,000 keys"
        print(f"{stream} ({keys})")
        print(table(("engine", "instructions of observe_many", "vs the first --old"), rows))
        print(f"alerts, counters and snapshot equal across engines: {'yes' if len(results) == 1 else 'NO'}")
        print(f"load average: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
