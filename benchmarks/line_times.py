"""Where a ``dropengine`` command's main thread spends its wall and CPU time, per source line of the
functions you name (their own lines: a line's time includes the calls it makes).

Run from the repository root, the functions (comma-separated names, any module of the package), then
the command's arguments after ``--``::

    .venv/bin/python benchmarks/line_times.py _with_signals_compiled,_steam_table \\
        -- replay --engine batch --types steam -q q.parquet --output a.parquet

How: ``sys.settrace`` on the main thread traces only the named functions' frames (every other frame
runs untraced), and charges the wall time (``perf_counter``) and the thread's CPU time
(``thread_time``: user + system, the first touches of fresh memory included) between two line
events to the line that ran. Work handed to other threads (polars' pool, numba's ``nogil`` passes
in a thread, the batch's own threads) shows as the waiting line's wall time, not its CPU: a line
whose wall is far above its CPU waited. The tracer costs about a microsecond per traced line, so
name the functions that run once per call (not a per-row loop).

Session 22 found this the reliable tool for the batch path's serial steps: a sampling profiler
(``py-spy --threads``) on the loaded 2-core machine charged a 10M steam's text gathers 0.58 s,
where they took 0.12-0.17 s wall.
"""

from __future__ import annotations

import argparse
import collections
import sys
import threading
import time
from types import FrameType
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     usage="line_times.py FUNCTIONS [--top N] -- COMMAND ARGS...")
    parser.add_argument("functions", help="comma-separated function names whose lines are timed")
    parser.add_argument("--top", type=int, default=30, help="lines shown, by wall time (default 30)")
    argv = sys.argv[1:]
    # (the command is everything after the first ``--``: its own options are never this script's)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    command = argv[cut + 1:]
    if not command:
        parser.error("a dropengine command after --")
    names = {n.strip() for n in args.functions.split(",") if n.strip()}
    wall: dict[tuple[str, str, int], float] = collections.defaultdict(float)
    cpu: dict[tuple[str, str, int], float] = collections.defaultdict(float)
    # per traced frame: the line that is running and when it started
    running: dict[int, tuple[int, float, float]] = {}
    main_thread = threading.main_thread()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        key = id(frame)
        now, now_cpu = time.perf_counter(), time.thread_time()
        if key in running:
            line, start, start_cpu = running[key]
            at = (frame.f_code.co_filename, frame.f_code.co_name, line)
            wall[at] += now - start
            cpu[at] += now_cpu - start_cpu
        if event == "return":
            running.pop(key, None)
        else:
            running[key] = (frame.f_lineno, time.perf_counter(), time.thread_time())
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if (event == "call" and frame.f_code.co_name in names and "/dropengine/" in frame.f_code.co_filename
                and threading.current_thread() is main_thread):
            running[id(frame)] = (frame.f_lineno, time.perf_counter(), time.thread_time())
            return local
        return None

    from dropengine.cli.group import main as cli

    sys.settrace(tracer)
    try:
        cli.main(command, standalone_mode=False)
    finally:
        sys.settrace(None)
        sources: dict[str, list[str]] = {}
        print(f"{'wall ms':>9}  {'cpu ms':>8}  line", file=sys.stderr)
        for at in sorted(wall, key=lambda k: -wall[k])[: args.top]:
            path, function, line = at
            if path not in sources:
                with open(path) as fh:
                    sources[path] = fh.read().splitlines()
            text = sources[path][line - 1].strip()[:90] if 0 < line <= len(sources[path]) else ""
            short = path.split("/dropengine/")[-1]
            print(f"{wall[at] * 1000:9.1f}  {cpu[at] * 1000:8.1f}  {short}:{line} {function}: {text}", file=sys.stderr)


if __name__ == "__main__":
    main()
