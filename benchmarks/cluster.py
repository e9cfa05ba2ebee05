"""Sharded batch work benchmark: ``replay --engine batch`` and ``backtest`` with ``--workers 1``
and ``--workers 2`` against one process, on the same directory of Parquet shards.

Run from the repository root::

    .venv/bin/python benchmarks/cluster.py                 # 10M quotes (a few minutes)
    .venv/bin/python benchmarks/cluster.py --quotes 2e6    # a quick run
    .venv/bin/python benchmarks/cluster.py --quotes 2e7 --commands replay

The input is benchmarks/batch.py's synthetic stream (numpy ``default_rng(seed)``: 200,000 keys
of 2,000 events, 35% repeats, nulls, stale rows), written as ``--files`` Parquet files cut by
time (a recording split by hour), so every mode reads the same directory. Each run is the real
command line in a child process (``dropengine replay --engine batch DIR -o out.ndjson -q``;
``dropengine backtest DIR -q --close last``), timed by wall clock from start to exit (a
``--workers`` run includes starting and stopping its local cluster, reported apart as the
time of ``--workers N`` on an empty input). Peak memory is the peak of the *sum* of the RSS
of the command's process and all its descendants (dask nanny and worker processes), sampled
every 50 ms with psutil; the largest single process is given too (a worker's peak: what one
shard costs). Each sharded run's output must be byte for byte the one-process output
(SHA-256 of the alerts file; of stdout for the backtest tables), or the script fails.
Results: /tmp/notes/cluster.md and benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import psutil
from _report import load_average, table  # type: ignore[import-not-found]
from _report import machine as report_machine  # type: ignore[import-not-found]
from batch import COLUMNS, META, Stream  # type: ignore[import-not-found]

DROPENGINE = str(Path(sys.executable).with_name("dropengine"))
N_KEYS = 200_000


def write_shards(stream: Stream, out: Path, files: int) -> list[Path]:
    """The stream's rows as ``files`` Parquet files cut by row ranges (its rows are in time
    order, so each file is an hour of a recording), built one file at a time."""
    keys = pl.DataFrame(
        dict(zip(("sport_key", "event_id", "bookmaker", "side", *META), zip(*stream.keys, strict=True), strict=True)),
        schema_overrides={"line": pl.Float64},
    )
    bounds = np.linspace(0, stream.n, files + 1).astype(np.int64)
    paths = []
    for f in range(files):
        lo, hi = int(bounds[f]), int(bounds[f + 1])
        price = pl.Series("price", stream.price[lo:hi], dtype=pl.Int64)
        part = keys[pl.Series(stream.kidx[lo:hi], dtype=pl.UInt32)].with_columns(
            pl.when(pl.Series(stream.null[lo:hi])).then(None).otherwise(price).alias("price"),
            pl.Series("last_update", stream.lu[lo:hi], dtype=pl.Int64),
        ).select(COLUMNS)
        path = out / f"part-{f:03d}.parquet"
        part.write_parquet(path)
        paths.append(path)
    return paths


def run(args: list[str], stdout: Path) -> tuple[float, int, int, int]:
    """Run ``dropengine ARGS``; wall seconds, peak summed RSS of the process tree, peak RSS of
    its largest process, and the most processes seen at once."""
    with open(stdout, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([DROPENGINE, *args], stdout=out, stderr=subprocess.PIPE)
        root = psutil.Process(proc.pid)
        peak_sum = peak_one = most = 0
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            total = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                total += rss
                peak_one = max(peak_one, rss)
            peak_sum, most = max(peak_sum, total), max(most, len(procs))
            time.sleep(0.05)
        _, err = proc.communicate()
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"dropengine {' '.join(args)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, peak_sum, peak_one, most


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quotes", type=float, default=1e7, help="quotes in the input (default 1e7)")
    ap.add_argument("--files", type=int, default=16, help="Parquet files in the input directory (default 16)")
    ap.add_argument("--commands", default="replay,backtest", help="replay, backtest or both (default)")
    ap.add_argument("--workers", default="1,2", help="worker counts to run (default 1,2)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--input", type=Path, default=None,
                    help="keep the generated input in this directory and reuse it when it is there")
    a = ap.parse_args(argv)
    n = int(a.quotes)
    workers = [int(w) for w in a.workers.split(",")]
    commands = a.commands.split(",")
    print("machine:", report_machine(memory=True, polars=pl.__version__))
    print("load average at start:", load_average())
    with tempfile.TemporaryDirectory(prefix="dropengine-bench-cluster-") as tmp_text:
        tmp = Path(tmp_text)
        src = a.input if a.input is not None else tmp / "quotes"
        src.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        files = sorted(src.glob("part-*.parquet"))
        if len(files) != a.files or sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files) != n:
            for f in files:
                f.unlink()
            stream = Stream(n, N_KEYS, a.seed)
            files = write_shards(stream, src, a.files)
            del stream
        size = sum(p.stat().st_size for p in files)
        print(f"input: {n:,} quotes, {N_KEYS:,} keys, 2,000 events, {a.files} Parquet files, {size / 1e6:,.0f} MB "
              f"(generated in {time.perf_counter() - t0:.1f} s)")
        # the cost of starting and stopping a local cluster of N workers: an empty input
        empty = tmp / "empty.parquet"
        pl.read_parquet(files[0]).head(0).write_parquet(empty)
        startup = {w: run(["replay", "--engine", "batch", "-q", "--workers", str(w), str(empty)], tmp / "x")[0]
                   for w in workers}
        rows: list[tuple[str, ...]] = []
        for command in commands:
            base: tuple[float, int] | None = None
            digest_one = ""
            for mode in [0, *workers]:
                out = tmp / f"{command}-{mode}.ndjson"
                if command == "replay":
                    args = ["replay", "--engine", "batch", "-q", "-o", str(out), str(src)]
                    stdout = tmp / "stdout"
                else:
                    args = ["backtest", "-q", "--close", "last", str(src)]
                    stdout = out
                if mode:
                    args += ["--workers", str(mode)]
                wall, peak_sum, peak_one, procs = run(args, stdout)
                digest = sha(out)
                if mode == 0:
                    base, digest_one = (wall, peak_sum), digest
                elif digest != digest_one:
                    raise SystemExit(f"{command} --workers {mode}: output {digest} differs from one process's "
                                     f"{digest_one}")
                assert base is not None
                label = "one process" if mode == 0 else f"--workers {mode}"
                rows.append((command, label, f"{wall:.1f}", f"{wall / base[0]:.2f}",
                             f"{peak_sum / 2**30:.2f}", f"{peak_sum / base[1]:.2f}", f"{peak_one / 2**30:.2f}",
                             str(procs), f"{out.stat().st_size / 1e6:,.1f} MB {digest}"))
                print(" | ".join(rows[-1]), flush=True)
        print()
        print(table(("command", "mode", "wall s", "x one", "peak RSS GiB (all)", "x one", "largest process GiB",
                     "processes", "output (same bytes)"), rows))
        print()
        print("local cluster start + stop (an empty input): "
              + ", ".join(f"--workers {w}: {s:.1f} s" for w, s in startup.items()))
        print("load average at end:", load_average(), f"(cores: {os.cpu_count()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
