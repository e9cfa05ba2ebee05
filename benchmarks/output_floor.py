"""The output floor of a whole ``replay --engine batch --output`` process (issue 14, aim 1).

A process that imports polars, reads the input Parquet file, and writes an alerts file that
already exists (read back first, not timed) the way ``--output x.parquet`` writes it (zstd,
level 1): no detector at all. Whatever detects, a process that reads this input and writes these
alerts takes at least this long, so its quotes/s is a ceiling for ``batch_e2e.py``'s.

Run from the repository root, after a ``replay`` has written its alerts::

    .venv/bin/dropengine replay --engine batch quotes.parquet --output alerts.parquet
    .venv/bin/python benchmarks/output_floor.py quotes.parquet alerts.parquet [--runs 3]

(``batch_e2e.py --cache DIR`` keeps its 10M-quote input in ``DIR``.)

``--settings now,nostats,lz4,...`` instead times the write alone under other Parquet writer
settings (:data:`SETTINGS`; ``now`` is what ``--output`` writes), in turns, in one process: CPU
seconds (``time.process_time``, every polars thread; ``--threads 1`` for counts free of the pool's
spinning on a loaded machine) and the file's size. What the writer spends per column:
``--per-column``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from dropengine.io.sinks import PARQUET_WRITE

# (the settings `replay --output` writes with, handed to the child as a literal)
_CHILD = f"WRITE = {PARQUET_WRITE!r}\n" + """
import sys, time
t0 = time.perf_counter()
import polars as pl
quotes = pl.read_parquet(sys.argv[1])
t1 = time.perf_counter()
alerts = pl.read_parquet(sys.argv[2])  # not timed: the alerts stand for a detector's output
t2 = time.perf_counter()
alerts.write_parquet(sys.argv[3], **WRITE)
t3 = time.perf_counter()
print(quotes.height, alerts.height, t1 - t0, t3 - t2, (t1 - t0) + (t3 - t2))
"""

#: Parquet writer settings to compare with ``--settings`` (``now``: what ``replay --output`` writes).
SETTINGS: dict[str, dict[str, object]] = {
    "now": dict(PARQUET_WRITE),
    "nostats": {"compression": "zstd", "compression_level": 1, "statistics": False},
    "minmax": {"compression": "zstd", "compression_level": 1,
               "statistics": {"min": True, "max": True, "null_count": False, "distinct_count": False}},
    "nullcount": {"compression": "zstd", "compression_level": 1,
                  "statistics": {"min": False, "max": False, "null_count": True, "distinct_count": False}},
    "zstd3": {"compression": "zstd", "compression_level": 3},
    "lz4": {"compression": "lz4"},
    "snappy": {"compression": "snappy"},
    "uncompressed": {"compression": "uncompressed"},
    "rg1m": {"compression": "zstd", "compression_level": 1, "row_group_size": 1 << 20},
    "rg128k": {"compression": "zstd", "compression_level": 1, "row_group_size": 1 << 17},
}


def compare(alerts: str, names: list[str], rounds: int, per_column: bool) -> None:
    """The write of ``alerts`` (read back first) under each of ``names``, in turns: CPU min and
    median, wall min, size; with ``per_column`` each column written alone (``now`` settings)."""
    import polars as pl

    frame = pl.read_parquet(alerts)
    print(f"{frame.height:,} alerts x {frame.width} columns; polars threads {pl.thread_pool_size()}")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "alerts.parquet")
        if per_column:
            rows = []
            for c in frame.columns:
                one = frame.select(c)
                cpus = []
                for _ in range(rounds):
                    c0 = time.process_time()
                    one.write_parquet(out, **SETTINGS["now"])  # type: ignore[arg-type]
                    cpus.append(time.process_time() - c0)
                rows.append((min(cpus), c, str(one.dtypes[0]), one.get_column(c).null_count(), os.path.getsize(out)))
            for cpu, c, dtype, nulls, size in sorted(rows, reverse=True):
                print(f"  {c:14s} {dtype:12s} nulls {nulls:>11,}  cpu {cpu:.3f} s  {size / 2**20:8.2f} MiB")
            print(f"  sum of the columns alone: {sum(r[0] for r in rows):.2f} s CPU")
            return
        took: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        sizes: dict[str, int] = {}
        for _ in range(rounds):
            for n in names:
                t0, c0 = time.perf_counter(), time.process_time()
                frame.write_parquet(out, **SETTINGS[n])  # type: ignore[arg-type]
                took[n].append((time.process_time() - c0, time.perf_counter() - t0))
                sizes[n] = os.path.getsize(out)
        for n in names:
            cpus = sorted(c for c, _ in took[n])
            print(f"  {n:13s} cpu min {cpus[0]:.2f} s, median {cpus[len(cpus) // 2]:.2f} s; wall min "
                  f"{min(w for _, w in took[n]):.2f} s; {sizes[n] / 2**20:,.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("quotes", help="the input Parquet file (as replay reads it)")
    parser.add_argument("alerts", help="an alerts Parquet file replay --output wrote for it")
    parser.add_argument("--runs", type=int, default=3, help="processes to run (best of; default 3)")
    parser.add_argument("--settings", default=None,
                        help=f"compare the write alone under these settings ({', '.join(SETTINGS)}), in turns")
    parser.add_argument("--per-column", action="store_true", help="the write's CPU per column (now's settings)")
    parser.add_argument("--threads", type=int, default=None, help="POLARS_MAX_THREADS for --settings/--per-column")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs: {args.runs} must be at least 1")
    for path in (args.quotes, args.alerts):
        if not os.path.isfile(path):
            parser.error(f"{path}: no such file")
    if args.settings is not None or args.per_column:
        names = args.settings.split(",") if args.settings else []
        unknown = [n for n in names if n not in SETTINGS]
        if unknown:
            parser.error(f"--settings: unknown {', '.join(unknown)} (known: {', '.join(SETTINGS)})")
        if args.threads is not None:  # read by polars when it is imported (in compare)
            os.environ["POLARS_MAX_THREADS"] = str(args.threads)
        compare(args.alerts, names, args.runs, args.per_column)
        return
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
