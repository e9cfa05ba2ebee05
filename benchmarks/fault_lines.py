"""Where a ``dropengine`` command's first touches of memory are: minor page faults, system and user CPU
per innermost ``dropengine`` source line (per Python thread).

On this project's benchmark machine (a VM with free page reporting) a first touch of fresh memory costs
0.45-0.6 s of system time per GiB in 4 KiB pages and 1.1-3.3 s per GiB in numpy's 2 MiB pages, so the
bytes a step first-touches often decide its time (benchmarks/README.md, "Follow-up (session 20)"). Run
from the repository root, the command's arguments after ``--``::

    .venv/bin/python benchmarks/fault_lines.py out.txt -- replay --engine batch -q q.parquet --output a.parquet

How: ``sys.setprofile``/``threading.setprofile`` read ``getrusage(RUSAGE_THREAD)`` at every call and
return, and charge what changed since the last event to the innermost frame of the package (not its
``cli`` layer). polars' own threads are not Python threads: their faults are not counted. The profile
hook slows Python-heavy lines (their user time is inflated); faults and system time are the figures.
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import threading
from types import FrameType
from typing import Any

_RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     usage="fault_lines.py OUT -- COMMAND ARGS...")
    parser.add_argument("out", help="the table's file (the 60 lines with the most faults)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the dropengine command and its arguments")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a dropengine command after --")
    stats: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    local = threading.local()

    def where(frame: FrameType | None) -> str:
        while frame is not None:
            name = frame.f_code.co_filename
            if "/dropengine/" in name and "/cli/" not in name:
                return f"{name.split('/dropengine/')[1]}:{frame.f_lineno} {frame.f_code.co_name}"
            frame = frame.f_back
        return "<outside the package>"

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        now = resource.getrusage(_RUSAGE_THREAD)
        before = getattr(local, "before", None)
        if before is not None:
            row = stats[local.at]
            row[0] += now.ru_minflt - before.ru_minflt
            row[1] += now.ru_stime - before.ru_stime
            row[2] += now.ru_utime - before.ru_utime
        local.at = where(frame)
        local.before = resource.getrusage(_RUSAGE_THREAD)

    from dropengine.cli.group import main as cli

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        cli.main(command, standalone_mode=False)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
        total = [sum(row[i] for row in stats.values()) for i in range(3)]
        with open(args.out, "w") as fh:
            fh.write(f"total: {int(total[0]):,} minor faults, system {total[1]:.2f} s, user {total[2]:.2f} s\n")
            fh.write(f"{'faults':>9}  {'sys s':>6}  {'user s':>6}  line\n")
            for at, (faults, system, user) in sorted(stats.items(), key=lambda kv: -kv[1][0])[:60]:
                fh.write(f"{int(faults):9,d}  {system:6.2f}  {user:6.2f}  {at}\n")


if __name__ == "__main__":
    main()
