"""Peak memory of ``batch.detect_counted`` against its input frame (issue 14, aim 1: at most 3x).

Run from the repository root::

    .venv/bin/python benchmarks/batch_memory.py                      # 10M quotes: last, anchor, all types
    .venv/bin/python benchmarks/batch_memory.py --quotes 1000000 --cache /tmp/q
    .venv/bin/python benchmarks/batch_memory.py --before /tmp/wt    # also a checkout of another revision

Input: benchmarks/batch_e2e.py's quotes file (a ``dropengine simulate`` recording tiled to the size
asked for, Parquet, text dictionary-encoded), made once (``--cache DIR`` keeps it).

Each measurement is a process of its own (``python benchmarks/batch_memory.py --child FILE ...``): it
reads the file with ``polars.read_parquet``, loads the compiled kernel, notes its resident size, then
runs ``detect_counted(accel=...)`` once and reports its peak RSS (``ru_maxrss``) as a multiple of the
frame's in-memory size (``DataFrame.estimated_size``). The read's own high-water mark is printed too:
the figure is the detector's only when the read's is below it.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: configuration name -> detect keywords
CONFIGS: dict[str, dict[str, str]] = {
    "last": {"reference": "last"},
    "anchor": {"reference": "anchor"},
    "last, all types": {"reference": "last", "types": "odds_drop,line_move,steam"},
}
GIB = 2**30


def child(path: str, accel: str, config: str) -> None:
    """One measurement (in this process): print one tab-separated line of figures."""
    import polars as pl

    from dropengine.analysis import batch

    if accel != "pure":
        from dropengine.fast import kernel, signals

        kernel.compile_all()
        signals.compile_all()
    frame = pl.read_parquet(path)
    gc.collect()
    size = frame.estimated_size()
    read_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open("/proc/self/statm") as fh:
        resident = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    t = time.perf_counter()
    res = batch.detect_counted(frame, accel=accel, **CONFIGS[config])  # type: ignore[arg-type]
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"{size}\t{read_peak}\t{resident}\t{peak}\t{seconds:.1f}\t{res.alerts.height}")


def measure(root: Path, path: Path, accel: str, config: str) -> list[str]:
    """Run :func:`child` with ``root`` first on ``sys.path`` (a checkout's dropengine)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, __file__, "--child", str(path), accel, config], env=env, cwd=root,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1].split("\t")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quotes", type=int, default=10_000_000)
    ap.add_argument("--cache", type=Path, help="keep the input file in DIR between runs")
    ap.add_argument("--accel", default="fast", choices=("fast", "pure"))
    ap.add_argument("--before", type=Path, help="also measure the dropengine of this checkout (a git worktree)")
    ap.add_argument("--only", help="configurations, ';' between (default: all)")
    ap.add_argument("--child", nargs=3, metavar=("FILE", "ACCEL", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from batch_e2e import make_input  # type: ignore[import-not-found]

    workdir = args.cache or Path(tempfile.mkdtemp(prefix="dropengine-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = make_input(workdir, args.quotes)
    repo = Path(__file__).resolve().parent.parent
    roots = [("now", repo)] + ([("before", args.before.resolve())] if args.before else [])
    configs = [c.strip() for c in args.only.split(";")] if args.only else list(CONFIGS)
    mib = path.stat().st_size / 2**20
    print(f"{args.quotes:,} quotes ({mib:,.0f} MiB Parquet); detect_counted(accel={args.accel})")
    print("revision\tconfiguration\tframe GiB\tafter read (peak) GiB\tdetect peak GiB\tx frame\tseconds\talerts")
    for config in configs:
        for name, root in roots:
            size, read_peak, resident, peak, seconds, alerts = measure(root, path, args.accel, config)
            print(f"{name}\t{config}\t{int(size) / GIB:.2f}\t{int(resident) / GIB:.2f} ({int(read_peak) / GIB:.2f})"
                  f"\t{int(peak) / GIB:.2f}\t{int(peak) / int(size):.2f}x\t{seconds}\t{int(alerts):,}", flush=True)


if __name__ == "__main__":
    main()
