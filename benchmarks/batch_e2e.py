"""Whole-process benchmark: ``dropengine replay --engine batch quotes.parquet --output alerts.parquet``
against the minimal polars ``shift().over(key)`` detector a user would write (issue 14, aim 1).

Run from the repository root::

    .venv/bin/python benchmarks/batch_e2e.py                 # 10M quotes, every configuration
    .venv/bin/python benchmarks/batch_e2e.py --quick         # 1M quotes, fewer runs
    .venv/bin/python benchmarks/batch_e2e.py --before /tmp/wt-io   # also an older checkout
    .venv/bin/python benchmarks/batch_e2e.py --profile       # where one replay process spends its time

What is measured: each contestant is a whole process (``subprocess``), started in turns with the
others (round robin, best of N), reading the same Parquet file and writing its alerts to a
Parquet file; wall time from start to exit, so interpreter start, imports, reading, detection,
building the alerts and writing them are all in it. The figures are quotes/s and the ratio
``polars time / dropengine time`` (above 1: dropengine is faster), the same ratio of CPU time (user +
system: on a loaded machine the wall time is mostly waiting for a core), and each process's peak RSS
(``os.wait4``: the child's own ``ru_maxrss``) against the input frame's in-memory size
(``DataFrame.estimated_size()`` of the file as polars reads it). Configurations: ``reference``
``last`` and ``anchor``, each with ``--types`` ``odds_drop``, ``line_move``, ``steam`` and all
three; the polars script is the same in every one (it is the floor a user starts from).

``--before DIR`` adds a third contestant: the ``dropengine`` package of an older checkout (e.g.
``git worktree add /tmp/wt-io bc091f5``), run with the same interpreter and ``PYTHONPATH=DIR``,
so the before/after figures come from one run on one machine state.

Input: a recording of ``dropengine simulate`` (NFL, spreads, totals and moneylines, several
books, sharp news followed by the soft books (steam), the books' own line moves) as the base,
tiled to the size asked for: copy ``c`` of the base renames its events (``<event_id>-c``) and
starts ``c`` x 20.6 minutes later, the copies are merged on their replay clocks (the running-max
``last_update``, stable, so every copy keeps the base's arrival order), and the text columns
are written dictionary-encoded (polars Categorical). About a quarter of the quotes alert at the
default threshold (10 cents). Files go to a temporary directory (``--cache DIR`` keeps them between runs).

``--profile`` times the phases of one ``replay --engine batch --output`` process inside it (the
calls the command makes, in its order): imports, reading, detection, the alerts table, writing;
wall and CPU seconds, the system part of the CPU and the minor page faults (first-touched pages: most of
a 10M signals process's system time), and the RSS after each. With ``--where-peak`` also where its peak RSS is (RSS
sampled every 10 ms with each thread's innermost dropengine frames: the samples leading to the
highest); the sampler takes the GIL 100 times a second, so its timings are then not the plain ones.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from _report import fmt_rate, load_average, table, verdict  # type: ignore[import-not-found]
from _report import machine as report_machine  # type: ignore[import-not-found]

REPO = Path(__file__).resolve().parent.parent
AIM_QPS = 10_000_000
AIM_VS_POLARS = 2.0
AIM_PEAK_X = 3.0
TYPES = {"odds_drop": "odds_drop", "line_move": "line_move", "steam": "steam", "all": "odds_drop,line_move,steam"}
REFERENCES = ("last", "anchor")
OFFSET_MS = 1_234_567  # between the copies of the base recording
TEXT = ("sport_key", "event_id", "bookmaker", "side", "kind", "market_key", "market", "player",
        "home_team", "away_team", "commence_time")  # fmt: skip

#: The minimal detector a user would write with polars, as a whole process (one definition).
POLARS_BASELINE = Path(__file__).with_name("polars_baseline.py")


# -- input ------------------------------------------------------------------------------------


def simulate_base(out: Path, events: int, books: int, hours: float) -> None:
    """The base recording, by this checkout's ``dropengine simulate``."""
    cmd = [sys.executable, "-m", "dropengine", "simulate", "--events", str(events), "--books", str(books),
           "--hours", str(hours), "--line-moves", "0.05", "--seed", "14", "--out", str(out)]
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tiled(base: pl.DataFrame, n: int) -> pl.DataFrame:
    """``base`` repeated to ``n`` rows: copy ``c`` with events renamed ``<event_id>-c``, the copies
    merged on the base's replay clock (each keeps the base's arrival order), text Categorical."""
    clock = pl.col("last_update").cast(pl.Int64, strict=False).cum_max().forward_fill().fill_null(0)
    base = base.with_columns(pl.col(c).cast(pl.String) for c in TEXT if c in base.columns)
    base = base.with_columns(clock.alias("_clock"), pl.int_range(pl.len()).alias("_r"))
    copies = -(-n // base.height)
    # each copy starts OFFSET_MS after the one before: copies interleave at different places of
    # the base (no run of identical rows for the Parquet encoder to fold away)
    parts = [base.with_columns((pl.col("event_id") + f"-{c}").alias("event_id"), pl.lit(c).alias("_copy"),
                               pl.col("last_update") + c * OFFSET_MS, pl.col("_clock") + c * OFFSET_MS)
             for c in range(copies)]
    frame = pl.concat(parts).sort("_clock", "_copy", "_r").head(n).drop("_clock", "_r", "_copy")
    return frame.with_columns(pl.col(c).cast(pl.Categorical) for c in TEXT if c in frame.columns)


def make_input(workdir: Path, n: int) -> Path:
    """The benchmark's quotes file of ``n`` rows (made once per work directory)."""
    path = workdir / f"quotes_{n}.parquet"
    if path.exists():
        return path
    base = workdir / "base.parquet"
    if not base.exists():
        simulate_base(base, events=40, books=8, hours=24)
    frame = tiled(pl.read_parquet(base), n)
    frame.write_parquet(path, compression="zstd", row_group_size=250_000)
    return path


# -- whole processes ---------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    cpu: float  # user + system seconds of the process (on a loaded machine, wall time is mostly waiting)
    peak_rss: int  # bytes
    alerts: int


def run_process(cmd: list[str], env: dict[str, str], out: Path | None, cwd: Path = REPO) -> Run:
    """One process to exit: wall seconds, its own peak RSS (``os.wait4``), rows of its output
    (``out``; the read floor writes none: 0)."""
    if out is not None:
        out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{err.decode(errors='replace')[-2000:]}")
    rows = 0 if out is None else pl.scan_parquet(out).select(pl.len()).collect().item()
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, rows)


Contestant = tuple[list[str], dict[str, str], Path | None, Path]

#: The read floor: a process that imports polars, reads the whole file (``pl.read_parquet``, as
#: both contestants do) and exits. No process that reads the file with polars can be faster, so
#: this bounds the whole-process quotes/s aim on the machine it runs on.
READ_FLOOR = "import sys, polars as pl; pl.read_parquet(sys.argv[1])"


def contestants(src: Path, workdir: Path, before: Path | None, reference: str, types: str) -> dict[str, Contestant]:
    """name -> (command, environment, output file, working directory). ``python -m dropengine``
    imports the package of its working directory first (an editable install's finder comes
    after it), so each checkout runs from its own. ``workdir`` holds the outputs (a directory of
    this run's own: two runs sharing ``--cache`` do not write each other's files)."""
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    replay = ["replay", "--engine", "batch", "--reference", reference, "--types", types, "-q", str(src.resolve())]
    out: dict[str, Contestant] = {}
    out["dropengine"] = ([sys.executable, "-m", "dropengine", *replay, "--output", str(workdir / "de.parquet")],
                         {**base_env, "PYTHONPATH": str(REPO)}, workdir / "de.parquet", REPO)
    if before is not None:
        out["before"] = ([sys.executable, "-m", "dropengine", *replay, "--output", str(workdir / "old.parquet")],
                         {**base_env, "PYTHONPATH": str(before)}, workdir / "old.parquet", before)
    out["polars"] = ([sys.executable, str(POLARS_BASELINE), str(src), str(workdir / "pl.parquet")], base_env,
                     workdir / "pl.parquet", workdir)
    out["read floor"] = ([sys.executable, "-c", READ_FLOOR, str(src)], base_env, None, workdir)
    return out


def race(n: int, runners: dict[str, Callable[[], Run]]) -> dict[str, Run]:
    """Every runner ``n`` times, round robin; each one's fastest run (its peak RSS: the largest)."""
    best: dict[str, Run] = {}
    for _ in range(n):
        for name, fn in runners.items():
            r = fn()
            old = best.get(name)
            if old is None:
                best[name] = r
            else:
                best[name] = Run(min(old.seconds, r.seconds), min(old.cpu, r.cpu), max(old.peak_rss, r.peak_rss),
                                 r.alerts)
    return best


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


# -- profile -----------------------------------------------------------------------------------

#: One replay process's phases, timed inside it: the calls ``replay --engine batch --output`` makes,
#: in its order (wall and CPU seconds, the system part of the CPU and the minor page faults: first-touched
#: pages, most of a 10M signals process's system time; peak and current RSS after each).
PROFILE_SCRIPT = """
import time

START_WALL, START_CPU = time.time(), time.process_time()  # CPU: the interpreter's start until here
import resource, sys
from pathlib import Path

_START = resource.getrusage(resource.RUSAGE_SELF)
START_SYS, START_FLT = _START.ru_stime, _START.ru_minflt
marks = []
t0, c0, s0, f0 = time.perf_counter(), START_CPU, START_SYS, START_FLT
phase = ["start"]


# With --where-peak: RSS every 10 ms with each thread's innermost dropengine frames (where the peak is,
# and what runs then). Off by default: the sampler takes the GIL 100 times a second, which the timed
# phases would pay.
import threading

samples = []
sampling = sys.argv[5] == "1"


def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def sample():
    me = threading.get_ident()
    while sampling:
        stacks = []
        for tid, frame in sys._current_frames().items():
            if tid != me:
                ours = []  # the two innermost dropengine frames, without reading source lines
                f = frame
                while f is not None and len(ours) < 2:
                    if "dropengine" in f.f_code.co_filename:
                        ours.append(f"{f.f_code.co_name}:{f.f_lineno}")
                    f = f.f_back
                if ours:
                    stacks.append(" < ".join(ours))
        samples.append((rss(), phase[0], " | ".join(stacks)))
        time.sleep(0.01)


if sampling:
    threading.Thread(target=sample, daemon=True).start()


def mark(name):
    global t0, c0, s0, f0
    t, c = time.perf_counter(), time.process_time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/statm") as fh:
        now = int(fh.read().split()[1]) * resource.getpagesize()
    marks.append((name, t - t0, c - c0, usage.ru_stime - s0, usage.ru_minflt - f0, usage.ru_maxrss * 1024, now))
    t0, c0, s0, f0 = t, c, usage.ru_stime, usage.ru_minflt
    phase[0] = "since: " + name.split(" (")[0]


from dropengine.cli import main

main.commands["replay"]
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"rich", "httpx", "starlette", "numba", "matplotlib",
                                                         "uvicorn", "polars", "nats", "distributed"})
mark("import the cli and replay (loaded: " + (", ".join(heavy) or "nothing heavy") + ")")
from dropengine.analysis.batch import detect_counted
from dropengine.core.options import DetectOptions
from dropengine.fast import warm_up
from dropengine.io.replay import ReplayStats, load_table
from dropengine.io.sinks import AlertWriter

mark("import polars and the batch engine")
options = DetectOptions(reference=sys.argv[2], types=frozenset(sys.argv[3].split(",")))
warm_up()
stats = ReplayStats()
table, _ = load_table([Path(sys.argv[1])], "auto", stats, None, line_only=options.detects_lines)
mark(f"read the Parquet file ({table.height:,} rows, {table.estimated_size() / 2**20:,.0f} MiB in memory)")
result = detect_counted(table, options)
mark(f"detect ({result.alerts.height:,} alerts; numba loaded in a thread meanwhile)")
del table
writer = AlertWriter(Path(sys.argv[4]), types=options.types)
writer.write_batch(result)
del result  # as the CLI: the writer holds its own typed table
mark("alerts table for the file (AlertWriter.write_batch)")
writer.close()
mark("write the Parquet file (AlertWriter.close)")
sampling = False
for name, wall, cpu, sys_cpu, faults, peak, now in marks:
    print(f"{name}\t{wall:.2f}\t{cpu:.2f}\t{sys_cpu:.2f}\t{faults:,}\t{peak / 2**20:,.0f}\t{now / 2**20:,.0f}")
top = sorted(range(len(samples)), key=lambda i: samples[i][0])[-1:]
for i in top:  # the highest sample, with the ones just before it (what grew into the peak)
    for r, where, stacks in samples[max(0, i - 4):i + 1]:
        print(f"peak\t{r / 2**20:,.0f}\t{where}\t{stacks[:300]}")
end = resource.getrusage(resource.RUSAGE_SELF)
print(f"clock\t{START_WALL!r}\t{START_CPU!r}\t{time.time()!r}\t{time.process_time()!r}\t{START_SYS!r}\t{START_FLT}"
      f"\t{end.ru_stime!r}\t{end.ru_minflt}", flush=True)
"""


def profile(src: Path, workdir: Path, reference: str, types: str, where_peak: bool = False) -> None:
    """Where one replay process spends its time and memory (its phases timed inside it; with
    ``where_peak``, its RSS sampled with each thread's frames, which the timings then pay)."""
    with tempfile.TemporaryFile() as errors:
        spawned = time.time()
        proc = subprocess.Popen([sys.executable, "-c", PROFILE_SCRIPT, str(src), reference, types,
                                 str(workdir / "profile.parquet"), "1" if where_peak else "0"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here: its rusage is the whole process's
        exited = time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"the profile process exited {proc.returncode}:\n"
                             f"{errors.read().decode(errors='replace')[-2000:]}")
    lines = [tuple(line.split("\t")) for line in out.splitlines() if "\t" in line]
    clock = [r for r in lines if r[0] == "clock"]
    peaks = [r for r in lines if r[0] == "peak"]
    rows: list[tuple[str, ...]] = [r for r in lines if r[0] not in ("clock", "peak")]
    if clock:
        # the interpreter's start (spawn to the script's first line: CPU as process_time there) and its exit
        # (the last mark to the reap: CPU as the child's rusage less its process_time at the last mark)
        start_wall, start_cpu, end_wall, end_cpu, start_sys, start_flt, end_sys, end_flt = map(float, clock[0][1:])
        rows.insert(0, ("interpreter start (python -c; before any import)", f"{start_wall - spawned:.2f}",
                        f"{start_cpu:.2f}", f"{start_sys:.2f}", f"{start_flt:,.0f}", "", ""))
        rows.append(("exit (interpreter shutdown, memory freed)", f"{exited - end_wall:.2f}",
                     f"{usage.ru_utime + usage.ru_stime - end_cpu:.2f}", f"{usage.ru_stime - end_sys:.2f}",
                     f"{usage.ru_minflt - end_flt:,.0f}", f"{usage.ru_maxrss / 2**10:,.0f}", ""))
    print(f"\nProfile: replay --engine batch --reference {reference} --types {types} --output .parquet, "
          "its phases in one process")
    print(table(("phase", "wall s", "cpu s", "of it sys s", "minor faults", "peak RSS MiB", "RSS after MiB"), rows))
    total = sum(float(r[1]) for r in rows)
    print(f"total {total:.2f} s wall, {sum(float(r[2]) for r in rows):.2f} s CPU, {sum(float(r[3]) for r in rows):.2f}"
          f" s of it system, {sum(float(r[4].replace(',', '')) for r in rows):,.0f} minor faults (spawn to reap)")
    if peaks:
        print("\nThe RSS peak (sampled every 10 ms; the samples leading to it), each thread's innermost dropengine "
              "frames:")
        print(table(("RSS MiB", "running since the mark", "threads"), [r[1:] for r in peaks]))


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1M quotes, 2 runs each, odds_drop and all only")
    ap.add_argument("--quotes", type=float, default=None, help="quotes in the file (default 10M; --quick 1M)")
    ap.add_argument("--runs", type=int, default=None, help="runs per contestant (best of; default 3, --quick 2)")
    ap.add_argument("--references", default=",".join(REFERENCES))
    ap.add_argument("--types", default=None, help=f"comma-separated of {', '.join(TYPES)} (default: all of them)")
    ap.add_argument("--before", type=Path, default=None, help="an older checkout to run as a third contestant")
    ap.add_argument("--skip-current", action="store_true",
                    help="with --before: run only the older checkout and polars (this checkout's is not timed)")
    ap.add_argument("--cache", type=Path, default=None, help="keep the input files in DIR between runs")
    ap.add_argument("--profile", action="store_true", help="profile one replay process instead")
    ap.add_argument("--where-peak", action="store_true",
                    help="with --profile: sample RSS every 10 ms with each thread's frames (slows the timed phases)")
    ap.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = int(args.quotes or (1e6 if args.quick else 1e7))
    runs = args.runs or (2 if args.quick else 3)
    kinds = args.types.split(",") if args.types else (["odds_drop", "all"] if args.quick else list(TYPES))
    references = args.references.split(",")
    workdir = (args.cache or Path(tempfile.mkdtemp(prefix="batch_e2e_"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    outdir: Path | None = None
    try:
        if args.prepare:  # the child that makes the input and measures its frame (see below)
            src = make_input(workdir, n)
            frame = pl.read_parquet(src)
            schema = ", ".join(f"{c} {frame.schema[c]}" for c in ("event_id", "bookmaker", "side", "price"))
            print(json.dumps({"src": str(src), "in_mem": frame.estimated_size(), "schema": schema}))
            return
        # made and measured in a child: a forked child starts with its parent's peak RSS (Linux copies
        # the high-water mark), so this process stays small for the peaks measured below
        t0 = time.perf_counter()
        prepared = subprocess.run([sys.executable, __file__, "--prepare", "--quotes", str(n), "--cache", str(workdir)],
                                  check=True, capture_output=True, text=True).stdout.splitlines()[-1]
        made = time.perf_counter() - t0
        facts = json.loads(prepared)
        src, in_mem, schema = Path(facts["src"]), int(facts["in_mem"]), str(facts["schema"])
        print("Machine:", "; ".join(f"{k} {v}" for k, v in report_machine(
            f"; polars threads {pl.thread_pool_size()}", memory=True, libs=f"polars {pl.__version__}").items()))
        print(f"Load average at start: {load_average()}")
        print(f"Input: {n:,} quotes, {src.stat().st_size / 2**20:,.0f} MiB Parquet ({schema}); in memory "
              f"{mib(in_mem)}; made in {made:.1f} s")
        if args.before is not None:
            where = subprocess.run([sys.executable, "-c", "import dropengine; print(dropengine.__file__)"],
                                   cwd=args.before, capture_output=True, text=True, check=True).stdout.strip()
            print(f"Before: {where}")
        # this run's outputs: a directory of its own (two runs sharing --cache write their own files)
        outdir = Path(tempfile.mkdtemp(prefix="out_", dir=workdir))
        if args.profile:
            for reference in references:
                for kind in kinds:
                    profile(src, outdir, reference, TYPES[kind], args.where_peak)
            return
        print(f"Whole processes, round robin, best of {runs}; ratio = polars s / dropengine s\n")
        rows = []
        summary: list[tuple[str, float, float, float]] = []
        floors: list[float] = []  # the read floor's quotes/s in each configuration
        for reference in references:
            for kind in kinds:
                procs = contestants(src, outdir, args.before, reference, TYPES[kind])
                if args.skip_current and args.before is not None:
                    procs["dropengine"] = procs.pop("before")
                best = race(runs, {name: functools.partial(run_process, *spec) for name, spec in procs.items()})
                de, po, fl = best["dropengine"], best["polars"], best["read floor"]
                ratio = po.seconds / de.seconds
                cells = [f"{reference} / {kind}", f"{de.alerts:,}", f"{de.seconds:.2f}", fmt_rate(n / de.seconds),
                         f"{po.seconds:.2f}", f"{ratio:.2f}x", f"{de.cpu:.2f} / {po.cpu:.2f}",
                         f"{po.cpu / de.cpu:.2f}x", f"{fl.seconds:.2f}", fmt_rate(n / fl.seconds),
                         f"{de.seconds / fl.seconds:.1f}x",
                         mib(de.peak_rss), f"{de.peak_rss / in_mem:.2f}x", mib(po.peak_rss)]
                if "before" in best:
                    old = best["before"]
                    cells += [f"{old.seconds:.2f}", f"{po.seconds / old.seconds:.2f}x", f"{old.cpu:.2f}",
                              mib(old.peak_rss), f"{old.seconds / de.seconds:.1f}x"]
                rows.append(tuple(cells))
                summary.append((f"{reference}/{kind}", n / de.seconds, ratio, de.peak_rss / in_mem))
                floors.append(n / fl.seconds)
                print(f"  {reference}/{kind}: dropengine {de.seconds:.2f} s, polars {po.seconds:.2f} s, "
                      f"read floor {fl.seconds:.2f} s"
                      + (f", before {best['before'].seconds:.2f} s" if "before" in best else ""), flush=True)
        header = ["config", "alerts", "dropengine s", "quotes/s", "polars s", "vs polars", "cpu s (de / pl)",
                  "vs polars (cpu)", "read floor s", "floor quotes/s",
                  "vs floor", "peak RSS", "peak/input", "polars peak"]
        if args.before is not None:
            header += ["before s", "before vs polars", "before cpu s", "before peak", "speed-up"]
        print()
        print(table(tuple(header), rows))
        print(f"\nInput frame in memory: {mib(in_mem)}. Aims: >= {AIM_QPS:,} quotes/s, >= {AIM_VS_POLARS}x polars, "
              f"peak <= {AIM_PEAK_X}x the input frame.")
        print(f"Read floor (a process that only imports polars and reads the file): best "
              f"{fmt_rate(max(floors))} quotes/s: no whole process reading the file with polars is faster here"
              + ("; the quotes/s aim is above it" if max(floors) < AIM_QPS else ""))
        for name, qps, ratio, peak in summary:
            print(f"  {name}: {verdict(qps >= AIM_QPS)} quotes/s, {verdict(ratio >= AIM_VS_POLARS)} vs polars, "
                  f"{verdict(peak <= AIM_PEAK_X)} peak")
        print(f"Load average at end: {load_average()}")
    finally:
        if outdir is not None:
            shutil.rmtree(outdir, ignore_errors=True)
        if args.cache is None and not args.prepare:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
