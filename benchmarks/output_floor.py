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
settings (:data:`SETTINGS`; ``now``: ``--output``'s settings, written by polars' plain
``write_parquet``, without the writer's own Enums and schema), in turns, in one process: CPU
seconds (``time.process_time``, every polars thread; ``--threads 1`` for counts free of the pool's
spinning on a loaded machine) and the file's size. What the writer spends per column:
``--per-column`` (``--writer sinks``: through ``io.sinks._write_parquet``, what ``--output`` runs,
which hands polars the frame's own schema and a constant Categorical as an Enum; default: polars'
plain ``write_parquet``).

``--categoricals`` compares, for each Categorical column alone, the write as ``--output`` writes it
(``_write_parquet``: polars re-maps each row group's global category ids to a dictionary of its
own through a hash set, row by row) with the write of the same column as an Enum of the values
it uses (codes written as they are: each row group's dictionary is then the whole column's), and
what building that Enum from the physical codes costs (the used ids in order of first
appearance, a lookup table gathered by the codes): CPU seconds (min of ``--runs``) and sizes.
Columns with one value on every row (or none on any) are left out: ``--output`` writes them as
Enums already. Session 21 (10M quotes, 1 thread, min of 3, load ~4.6): the 9 such columns of 5.0M
line moves 0.518 s as ``--output`` writes them, 0.302 s as Enums + 0.162 s to build them; the 11
of 8.0M alerts of every type 1.165 s vs 0.705 + 0.365 s; ``event_id``'s column 5.42 -> 5.94 MiB
(each row group's dictionary holds all 1,480 ids). A 2-10% gain on these columns, ~1-3% of the
write, for a file no longer polars' own bytes: ``--output`` keeps its Categoricals.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dropengine.io.sinks import PARQUET_WRITE, _constant_categoricals, _write_parquet

if TYPE_CHECKING:
    import polars as pl

# (the settings `replay --output` writes with, handed to the child as a literal)
_CHILD = (
    f"WRITE = {PARQUET_WRITE!r}\n"
    + """
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
)

#: Parquet writer settings to compare with ``--settings`` (``now``: ``replay --output``'s settings).
SETTINGS: dict[str, dict[str, object]] = {
    "now": dict(PARQUET_WRITE),
    "nostats": {"compression": "zstd", "compression_level": 1, "statistics": False},
    "minmax": {
        "compression": "zstd",
        "compression_level": 1,
        "statistics": {"min": True, "max": True, "null_count": False, "distinct_count": False},
    },
    "nullcount": {
        "compression": "zstd",
        "compression_level": 1,
        "statistics": {"min": False, "max": False, "null_count": True, "distinct_count": False},
    },
    "zstd3": {"compression": "zstd", "compression_level": 3},
    "lz4": {"compression": "lz4"},
    "snappy": {"compression": "snappy"},
    "uncompressed": {"compression": "uncompressed"},
    "rg1m": {"compression": "zstd", "compression_level": 1, "row_group_size": 1 << 20},
    "rg128k": {"compression": "zstd", "compression_level": 1, "row_group_size": 1 << 17},
}


def _as_enum(col: pl.Series) -> pl.Series | None:
    """``col`` (Categorical) as an Enum of the values it uses, in order of first appearance, built
    from its physical codes: the used ids (``unique``), their strings, a lookup table from id to
    Enum code gathered by the codes. ``None`` for a column with no value."""
    import numpy as np
    import polars as pl

    phys = col.to_physical()
    used = phys.drop_nulls().unique(maintain_order=True)
    if not used.len():
        return None
    words = used.cat.to(col.dtype).cast(pl.String)
    enum = pl.Enum(words)
    codes = np.zeros(int(used.max()) + 1, dtype=np.uint32)  # type: ignore[arg-type]
    codes[used.to_numpy()] = np.arange(used.len(), dtype=np.uint32)
    table = pl.Series(codes).cast(pl.Series([], dtype=enum).to_physical().dtype).cat.to(enum)
    return table.gather(phys).alias(col.name)


def categoricals(alerts: str, rounds: int) -> None:
    """Each Categorical column of ``alerts`` written alone as ``--output`` writes it and as an Enum
    of its used values (:func:`_as_enum`), in turns, with the Enum's build: CPU min and sizes."""
    import polars as pl

    frame = pl.read_parquet(alerts)
    print(f"{frame.height:,} alerts x {frame.width} columns; polars threads {pl.thread_pool_size()}")
    print(
        f"  {'column':14s} {'values':>7s} {'nulls':>11s}  {'as --output':>11s} {'as Enum':>8s} {'build':>7s}"
        "   sizes (MiB)"
    )
    totals = [0.0, 0.0, 0.0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "column.parquet"
        for c, dtype in frame.schema.items():
            if dtype != pl.Categorical:
                continue
            one = frame.select(c)
            if c in {s.name for s in _constant_categoricals(one)}:
                print(f"  {c:14s} one value on every row, or none on any: --output writes it as an Enum already")
                continue
            now, enum, build, sizes = [], [], [], [0, 0]
            for _ in range(rounds):
                c0 = time.process_time()
                _write_parquet(one, out)
                now.append(time.process_time() - c0)
                sizes[0] = out.stat().st_size
                c0 = time.process_time()
                column = _as_enum(one.get_column(c))
                build.append(time.process_time() - c0)
                assert column is not None
                other = column.to_frame()
                c0 = time.process_time()
                other.write_parquet(out, **PARQUET_WRITE, arrow_schema=other.schema)
                enum.append(time.process_time() - c0)
                sizes[1] = out.stat().st_size
            values = one.get_column(c).drop_nulls().n_unique()
            nulls = one.get_column(c).null_count()
            cells = (min(now), min(enum), min(build))
            totals = [t + x for t, x in zip(totals, cells, strict=True)]
            print(
                f"  {c:14s} {values:7,} {nulls:11,}  {cells[0]:9.3f} s {cells[1]:6.3f} s "
                f"{cells[2]:5.3f} s   {sizes[0] / 2**20:.2f} / {sizes[1] / 2**20:.2f}"
            )
    print(f"  {'in all':14s} {'':7s} {'':11s}  {totals[0]:9.3f} s {totals[1]:6.3f} s {totals[2]:5.3f} s")


def compare(alerts: str, names: list[str], rounds: int, per_column: bool, writer: str = "polars") -> None:
    """The write of ``alerts`` (read back first) under each of ``names``, in turns: CPU min and
    median, wall min, size; with ``per_column`` each column written alone (``now`` settings), by
    polars' plain ``write_parquet`` or (``writer`` ``"sinks"``) as ``--output`` writes it."""
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
                    if writer == "sinks":
                        _write_parquet(one, Path(out))
                    else:
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
            print(
                f"  {n:13s} cpu min {cpus[0]:.2f} s, median {cpus[len(cpus) // 2]:.2f} s; wall min "
                f"{min(w for _, w in took[n]):.2f} s; {sizes[n] / 2**20:,.1f} MiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("quotes", help="the input Parquet file (as replay reads it)")
    parser.add_argument("alerts", help="an alerts Parquet file replay --output wrote for it")
    parser.add_argument("--runs", type=int, default=3, help="processes to run (best of; default 3)")
    parser.add_argument(
        "--settings",
        default=None,
        help=f"compare the write alone under these settings ({', '.join(SETTINGS)}), in turns",
    )
    parser.add_argument("--per-column", action="store_true", help="the write's CPU per column (now's settings)")
    parser.add_argument(
        "--threads", type=int, default=None, help="POLARS_MAX_THREADS for --settings/--per-column/--categoricals"
    )
    parser.add_argument(
        "--writer",
        choices=("polars", "sinks"),
        default="polars",
        help="--per-column: polars' plain write_parquet, or io.sinks._write_parquet (--output's)",
    )
    parser.add_argument(
        "--categoricals",
        action="store_true",
        help="each Categorical column written as --output writes it vs as an Enum of its values",
    )
    args = parser.parse_args()
    if args.writer != "polars" and not args.per_column:
        parser.error("--writer: with --per-column only (the other modes write with polars' plain write_parquet)")
    if args.runs < 1:
        parser.error(f"--runs: {args.runs} must be at least 1")
    for path in (args.quotes, args.alerts):
        if not os.path.isfile(path):
            parser.error(f"{path}: no such file")
    if args.categoricals:
        if args.threads is not None:
            os.environ["POLARS_MAX_THREADS"] = str(args.threads)
        categoricals(args.alerts, args.runs)
        return
    if args.settings is not None or args.per_column:
        names = args.settings.split(",") if args.settings else []
        unknown = [n for n in names if n not in SETTINGS]
        if unknown:
            parser.error(f"--settings: unknown {', '.join(unknown)} (known: {', '.join(SETTINGS)})")
        if args.threads is not None:  # read by polars when it is imported (in compare)
            os.environ["POLARS_MAX_THREADS"] = str(args.threads)
        compare(args.alerts, names, args.runs, args.per_column, args.writer)
        return
    best: tuple[float, float, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "alerts.parquet")
        for _ in range(args.runs):
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, args.quotes, args.alerts, out],
                capture_output=True,
                text=True,
                check=True,
            )
            n, m, read_s, write_s, total_s = done.stdout.split()
            run = (float(total_s), float(read_s), float(write_s))
            best = run if best is None or run < best else best
    assert best is not None
    total, read, write = best
    quotes, alerts = int(n), int(m)
    print(f"{quotes:,} quotes, {alerts:,} alerts; best of {args.runs} (timed: imports, read, write)")
    print(
        f"read {read:.2f} s + write {write:.2f} s = {total:.2f} s: {quotes / total:,.0f} quotes/s at most for a"
        " process that reads this input and writes these alerts"
    )


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.1f} s in all)")
