"""The output floor of a whole ``replay --engine batch --output`` process (issue 14, aim 1).

A process that imports polars, reads the input Parquet file, and writes an alerts file that
already exists (read back first, not timed) the way ``--output x.parquet`` writes it (zstd,
level 1): no detector at all. Whatever detects, a process that reads this input and writes these
alerts takes at least this long, so its quotes/s is a ceiling for ``batch_e2e.py``'s.

Run from the repository root, after a ``replay`` has written its alerts::

    .venv/bin/dropengine replay --engine batch quotes.parquet --output alerts.parquet
    .venv/bin/python benchmarks/output_floor.py quotes.parquet alerts.parquet [--runs 3]

(``batch_e2e.py --cache DIR`` keeps its 10M-quote input in ``DIR``.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

_CHILD = """
import sys, time
t0 = time.perf_counter()
import polars as pl
quotes = pl.read_parquet(sys.argv[1])
t1 = time.perf_counter()
alerts = pl.read_parquet(sys.argv[2])  # not timed: the alerts stand for a detector's output
t2 = time.perf_counter()
alerts.write_parquet(sys.argv[3], compression="zstd", compression_level=1)
t3 = time.perf_counter()
print(quotes.height, alerts.height, t1 - t0, t3 - t2, (t1 - t0) + (t3 - t2))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("quotes", help="the input Parquet file (as replay reads it)")
    parser.add_argument("alerts", help="an alerts Parquet file replay --output wrote for it")
    parser.add_argument("--runs", type=int, default=3, help="processes to run (best of; default 3)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs: {args.runs} must be at least 1")
    for path in (args.quotes, args.alerts):
        if not os.path.isfile(path):
            parser.error(f"{path}: no such file")
    best: tuple[float, float, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "alerts.parquet")
        for _ in range(args.runs):
            done = subprocess.run([sys.executable, "-c", _CHILD, args.quotes, args.alerts, out],
                                  capture_output=True, text=True, check=True)
            n, m, read, write, total = done.stdout.split()
            run = (float(total), float(read), float(write))
            best = run if best is None or run < best else best
    assert best is not None
    total, read, write = best
    quotes, alerts = int(n), int(m)
    print(f"{quotes:,} quotes, {alerts:,} alerts; best of {args.runs} (timed: imports, read, write)")
    print(f"read {read:.2f} s + write {write:.2f} s = {total:.2f} s: {quotes / total:,.0f} quotes/s at most for a"
          " process that reads this input and writes these alerts")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.1f} s in all)")
