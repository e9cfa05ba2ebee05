"""``dropengine replay``: the alerts of recordings, one JSON object per line.

With ``--types`` (SPEC 10-12) the alerts are line moves and steam as well as price drops;
the summary then also shows the signal counters and the alerts by type (without it, output
and summary are exactly those of the price drops alone).

Alerts go to stdout as JSON lines (or to ``--output``); the summary, skip report and the
progress bar go to stderr, so ``dropengine replay ... | jq`` sees only alerts. The progress
bar and the exit rule for unusable input are shared with ``backtest``, which reads the same
inputs.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..cluster.inputs import expand_parquet_dirs
from ..core.alerts import Alert, by_signal_order
from ..core.engine import DropEngine, EngineCounters
from ..core.errors import ClusterError, ConfigError
from ..core.options import DetectOptions
from ..core.partition import check_count
from ..core.skips import printable
from ..io.inputs import InputOptions
from ..io.replay import ReplayStats, replay, replay_batch
from ..io.sinks import OUTPUT_SUFFIXES, AlertWriter
from .extras import StartupError, require_extra
from .interrupt import CtrlC, callback
from .options import detect_options, input_options, quiet_option

if TYPE_CHECKING:  # rich loads when something is shown: a quiet replay never needs it
    from rich.console import Console
    from rich.progress import Progress

__all__ = ["PROGRESS_MIN_BYTES", "cluster_options", "exit_if_unusable", "progress_bar", "replay_cmd", "shard_bar"]

#: Inputs above this many bytes get a progress bar (when stderr is a terminal).
PROGRESS_MIN_BYTES = 8 << 20


def _output(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None and value.suffix.lower() not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"{str(value)!r} must end in {', '.join(OUTPUT_SUFFIXES)}", ctx, param)
    return value


def progress_bar(err: Console, paths: tuple[Path, ...], quiet: bool) -> tuple[Progress, Callable[[int], None] | None]:
    """A byte progress bar over ``paths`` on ``err``, shown only on a terminal for large input
    (:data:`PROGRESS_MIN_BYTES`) and never with ``quiet``; the callback advances it (``None``
    when hidden, so readers skip the accounting)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    total = sum(_size(p) for p in paths)
    show = err.is_terminal and total >= PROGRESS_MIN_BYTES and not quiet
    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TimeRemainingColumn(), console=err, transient=True, disable=not show)
    task = bar.add_task("reading", total=total)

    def advance(n: int) -> None:
        bar.advance(task, n)

    return bar, advance if show else None


def _count(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """``--workers``/``--shards``: the core's count rule (core.partition.check_count)."""
    if value is not None:
        try:
            check_count(value, str(param.name))
        except ConfigError as exc:
            raise click.BadParameter(str(exc).partition(": ")[2], ctx, param) from None
    return value


def cluster_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--workers``/``--scheduler``/``--shards``: the batch work sharded by event_id on Dask
    (the ``cluster`` extra), with exactly the output of one process."""
    f = click.option("--shards", type=int, default=None, callback=_count, metavar="S",
                     help="With --workers/--scheduler: split the input into S shards by event_id "
                          "(default: 2 per worker). More shards: less memory per task.")(f)
    f = click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Shard the work on the running Dask scheduler at ADDRESS (tcp://HOST:8786); "
                          "its workers must read the input paths. Needs the cluster extra.")(f)
    return click.option("--workers", type=int, default=None, callback=_count, metavar="N",
                        help="Shard the work by event_id over N local worker processes (Dask). Same "
                             "output as one process. Needs the cluster extra.")(f)


def check_cluster(command: str, workers: int | None, scheduler: str | None, shards: int | None) -> bool:
    """Whether the run is sharded; a usage error for flags that do not go together, and the
    ``pip install`` line when the cluster extra is missing."""
    if workers is not None and scheduler is not None:
        raise click.UsageError("--workers and --scheduler: give one of them (a local cluster, or a running one)")
    if workers is None and scheduler is None:
        if shards is not None:
            raise click.UsageError(f"--shards {shards}: needs --workers or --scheduler")
        return False
    require_extra("cluster", f"dropengine {command} --{'workers' if workers is not None else 'scheduler'}")
    return True


def shard_bar(err: Console, quiet: bool) -> tuple[Progress, Callable[[int], None], Callable[[int], None]]:
    """A progress bar over the shards of a sharded run on ``err`` (a terminal only, never with
    ``quiet``): ``start(total)`` shows it once the input is read, ``done(shard)`` advances it;
    stop it with ``bar.stop()``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    show = err.is_terminal and not quiet
    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=err, transient=True, disable=not show)
    task = bar.add_task("shards", total=None)

    def start(total: int) -> None:
        bar.update(task, total=total)
        bar.start()

    def done(shard: int) -> None:
        bar.advance(task, 1)

    return bar, start, done


@contextlib.contextmanager
def sharding(workers: int | None, scheduler: str | None, guard: CtrlC) -> Iterator[Any]:
    """The Dask client of a sharded run (a ``distributed.Client``: the cli layer names dask
    only through dropengine.cluster), closed at the end; a bad worker count or scheduler
    address is a usage error naming it. The command's signals are held while a local cluster
    starts: one cut short in its start cannot be closed (distributed's exit handler then fails on
    its worker, a traceback after the run's last line); started, it is closed as after any signal.
    A remote scheduler's connect is not held (nothing local to cut short; it may take its whole
    timeout: review24's R24-7)."""
    from ..cluster import open_client

    with contextlib.ExitStack() as stack:
        try:
            with guard.deferred() if workers is not None else contextlib.nullcontext():
                client = stack.enter_context(open_client(workers, scheduler))
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        except ClusterError as exc:  # could not start or reach the cluster: not a usage error
            raise StartupError(str(exc)) from None
        yield client


@click.command("replay")
@input_options
@detect_options()
@quiet_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), callback=_output,
              help="Write alerts to FILE (.ndjson, .csv or .parquet) instead of stdout.")
@click.option("--engine", "engine_kind", type=click.Choice(["stream", "batch"]), default="stream",
              show_default=True,
              help="stream: quote by quote; batch: columnar (polars), for large tables. Same alerts.")
@cluster_options
def replay_cmd(paths: tuple[Path, ...], fmt: str, inputs: InputOptions, detect: DetectOptions, quiet: bool,
               output: Path | None, engine_kind: str, workers: int | None, scheduler: str | None,
               shards: int | None) -> None:
    """Replay recordings and print their alerts, one JSON object per line.

    The alerts are price drops; --types adds line moves (spreads, totals, props; books that
    publish a line without its price too) and steam (the same move at --steam-books books
    within --steam-window). --output .csv/.parquet then has a type column and each type's
    own columns.

    PATHS are vendor frame recordings (NDJSON, .gz too), raw SSE captures, quote tables
    (.ndjson/.csv/.parquet with the SPEC section 2 columns) or The Odds API v4 responses
    (a JSON file, a directory of them, or NDJSON snapshots). A table with other column names,
    one column per side, or decimal/probability prices is read with --columns/--wide/--recode/
    --where (or --mapping FILE.toml) and --odds-format. Several PATHS are merged by
    last_update, ties in the order given. Bad lines are skipped, counted and reported on
    stderr; they never stop the replay, and neither does a file that cannot be read (it is
    reported). Exit status: 0 when some input was usable, 1 when no quote at all could be
    read from the input (the message says what the files lack), 2 for a usage error, 130
    after Ctrl-C and 143 after SIGTERM (the alerts found until then are written, and the summary
    printed).

    A directory of Parquet shards (.parquet files only) is read as its files. With --engine
    batch, --workers N (or --scheduler ADDRESS) splits the work by event_id over a Dask
    cluster: the same alerts, in the same order, and the same summary as one process.
    """
    # Ctrl-C and SIGTERM (a service manager's stop) alike: keep what was found, write it whole. From the
    # first line: a signal while starting (the cluster extra's import takes ~1 s) ends the run at once
    # with one line and 130/143, not click's "Aborted!" and 1 (break23's B23-5); no output is touched yet
    guard = CtrlC()
    keys: int | None = None
    interrupted = False
    writer: AlertWriter | None = None
    with guard.starting():
        err = _Stderr()
        sharded = check_cluster("replay", workers, scheduler, shards)
        if sharded and engine_kind != "batch":
            raise click.UsageError("--workers/--scheduler shard the batch engine: add --engine batch")
        paths = tuple(expand_parquet_dirs(paths))
        engine = DropEngine.from_options(detect)
        stats = ReplayStats()
        bar: Any = _NoBar()
        advance: Callable[[int], None] | None = None
        if not quiet and sum(_size(p) for p in paths) >= PROGRESS_MIN_BYTES:  # else no bar: rich stays unloaded
            bar, advance = progress_bar(err.console, paths, quiet)
        counters = engine.counters
    with guard.running():  # (its handlers set by starting(): kept until the summary and the exit status are out)
        try:
            with bar, AlertWriter(output, types=detect.types) as writer:
                if sharded:
                    _import_polars(guard)  # (dropengine.cluster imports it: break23's B23-4)
                    from ..cluster import detect_sharded

                    sbar, start, done = shard_bar(err.console, quiet)

                    def started(n: int) -> None:  # the input is read: the shards' bar replaces the bytes'
                        bar.stop()
                        start(n)

                    try:
                        with sharding(workers, scheduler, guard) as client:
                            merged = detect_sharded(client, list(paths), detect, fmt, stats, shards=shards,
                                                    on_start=started, on_shard=done, progress=advance, inputs=inputs)
                    except ClusterError as exc:  # the cluster failed the run (a task, every worker lost): exit 1
                        raise click.ClickException(str(exc)) from None
                    finally:
                        sbar.stop()
                    guard.defer = True  # (detection is done: the alerts are written whole, then the signal)
                    for chunk in merged.value_chunks():  # every type, in detection order
                        writer.write(chunk)
                    counters = merged.counters
                elif engine_kind == "batch":
                    from ..fast import warm_up, warmed

                    # numba and the cached kernel load in a thread while the input is read (the signals'
                    # pass only when asked); joined before the command ends, so no compile of a cold
                    # cache runs into the interpreter's teardown (review22 R22-5: a crash in LLVM there)
                    # (the collector's older generations frozen as in the stream path: the run's imports
                    # (polars, numba and its cached kernels) are walked by no full collection again; 10M
                    # quotes: two gen-2 collections, 0.45-0.61 s of CPU, gone)
                    with _long_lived_frozen(guard):
                        detected = False
                        try:
                            # (started with the signals held: one landing in its start, which waits for the
                            # thread to run, left a running warm-up nobody waited for: C21-4)
                            with guard.deferred():
                                warm_up(signals=detect.signals)
                            _import_polars(guard)
                            result = replay_batch(list(paths), fmt, stats, advance, inputs=inputs, options=detect)
                            detected = True
                        # (also after a Ctrl-C or an error: a daemon thread killed mid-compile can crash the exit)
                        finally:
                            # (the hold before any call, then the wait: CtrlC.wait_held, C21-4 and C21-7; a signal
                            # marked by then, after a detection that returned, ends the run once its alerts are
                            # written: RR21-10; and after one the hold stays on through the collector block's
                            # exit to the write: a signal in that exit threw the alerts away, reread22's RR22-10)
                            held, guard.defer = guard.defer, True
                            guard.wait_held(warmed, held or detected, raise_pending=not detected)
                    guard.defer = True  # (detection is done: the alerts are written whole, then the signal)
                    writer.write_batch(result)  # every type, in detection order
                    counters = result.counters
                    # The writer holds its own typed table: the run's alerts frame and what its values would be
                    # built from go before the file is written (10M steam: peak 4.88x -> 4.02x the input).
                    del result
                else:
                    if writer.kind in ("csv", "parquet"):
                        _import_polars(guard)
                    pending: list[Alert] = []
                    try:
                        with _long_lived_frozen(guard):
                            for drop in replay(list(paths), engine, fmt, stats, advance, inputs=inputs):
                                pending.append(drop)
                                if len(pending) >= 256:
                                    batch, pending = pending, []
                                    with guard.deferred():
                                        writer.write(batch)
                    except KeyboardInterrupt:  # Ctrl-C: keep what was found, then say so
                        interrupted = True
                    guard.defer = True  # from here on (the last write, closing): finish first
                    writer.write(pending)
                    counters, keys = engine.counters, engine.keys_held
        except ConfigError as exc:  # e.g. an unwritable --output
            raise click.UsageError(str(exc)) from None
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (``| head``): stop quietly
            return
        except KeyboardInterrupt:  # the batch engine, or while writing: nothing more to save
            interrupted = True
        # the summary and the exit status under the guard too (break24's B24-2: a signal there gave "Aborted!" and
        # exit 1, replay's "no usable input", or killed the process): held, then the run ends as after one before
        guard.defer = True
        if writer is not None and not writer.written:
            # polars' own SIGINT hook aborts its next query with KeyboardInterrupt(''): after a Ctrl-C that can be
            # the output's write, in the writer's close, which keeps its table then: written once more, the signals
            # held (aborted again: the output is as it was, and not said written; critic20's C20-4)
            try:
                writer.close()
            except KeyboardInterrupt:
                pass
            except ConfigError as exc:
                raise click.UsageError(str(exc)) from None
        saved = writer is not None and writer.written
        written = writer.count if saved and writer is not None else 0
        if not quiet:
            by_type: dict[str, int] | None = None
            if writer is not None and detect.signals:  # the alerts of each type asked for (written: none if not)
                by_type = {t: writer.counts.get(t, 0) if saved else 0 for t in by_signal_order(detect.types)}
            _summary(err.console, counters, keys, stats, written, output if saved else None, by_type)
        if interrupted or guard.pending:  # (a signal held while the alerts or the summary were written)
            kept = (f"{written:,} alerts written" if saved or output is None
                    else f"no alerts written, {printable(str(output))} as it was")
            guard.end(f": {kept}; the summary counts the input read until then")
        exit_if_unusable(err, stats, counters)


class _Stderr:
    """The rich console on stderr, made (and rich imported) the first time something is shown."""

    def __init__(self) -> None:
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console


class _NoBar:
    """The progress bar of a run that shows none (quiet, or small input)."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def stop(self) -> None:
        return None


@contextlib.contextmanager
def _long_lived_frozen(guard: CtrlC | None = None) -> Iterator[None]:
    """While the ``replay`` command's engine runs (stream or batch), what survives a collection of the
    collector's older generations is moved to its permanent generation (``gc.freeze``); all of it is
    moved back when the block ends (``gc.unfreeze``), however it ends. Only where the command owns
    the process (not in the library's :func:`~dropengine.io.replay.replay`: a caller's objects, its
    cycles and its own freezes are the caller's), and only when nothing is frozen already (what
    another part froze is never unfrozen here). ``guard``: the command's, holding the signals while
    the block's end unregisters the callback.

    Why: a replay's state (the engine's keys, the decoder's rows) grows with every new event and
    lives to the replay's end, and each full collection walks all of it again. On a recording
    where new events keep arriving (``benchmarks/engine.py --churn 0.3``, 300k rows, 450k keys)
    the collector took a third of the fused path's CPU (5.0-5.4 s -> 3.2-3.6 s frozen; the general
    path 7.0-7.3 -> 5.9-6.2 s); with a steady set of keys it costs nothing either way. The batch
    engine's own objects are few, but its imports (polars, numba, the cached kernels: loaded in a
    thread meanwhile) are many: at 10M quotes two full collections walked them (0.45-0.61 s CPU),
    none now. Objects are
    still freed by their reference counts while frozen: only cyclic garbage made during the
    replay, and alive at a collection, waits for the replay's end to be collected."""

    if gc.get_freeze_count():
        yield
        return
    gc.callbacks.append(_survivors)
    try:
        yield
    finally:
        # (the command's ``guard`` holds the signals first, before any call: a second signal landing
        # in the remove, after a first one ended the block, left the callback registered, and an
        # in-process caller's every later collection froze what survived it: reread21's RR21-6. One
        # held here is marked, and the command's end reads the mark.)
        held = False
        if guard is not None:
            held, guard.defer = guard.defer, True
        try:
            gc.callbacks.remove(_survivors)
            gc.unfreeze()
        finally:
            if guard is not None:
                guard.defer = held


@callback  # (the collector calls it: a Ctrl-C landing in it is put off, not printed and dropped)
def _survivors(phase: str, info: dict[str, int]) -> None:
    """:func:`_long_lived_frozen`'s collector callback: after a collection of generation 1 or 2 the
    younger ones are empty, so what is left is old: frozen."""
    if phase == "stop" and info["generation"] >= 1:
        gc.freeze()


def _import_polars(guard: CtrlC) -> None:
    """Import polars (if not yet) with the signals held: a Ctrl-C inside a first import leaves a
    half-imported module behind, and the output's close, which needs polars to write what was
    found, then failed with a traceback (break22's B22-2). Held, the interrupt comes after it."""
    with guard.deferred():
        import polars  # noqa: F401


def exit_if_unusable(err: Console | _Stderr, stats: ReplayStats, counters: EngineCounters | None = None) -> None:
    """Exit with status 1, saying why once, when no quote at all was usable (even ``-q``): none
    was read, or (given the detector's ``counters``) the engine found every price invalid."""
    reason = stats.unusable_reason(counters)
    if reason is not None:
        console = err.console if isinstance(err, _Stderr) else err
        console.print(f"error: {reason}", style="red", markup=False, highlight=False, emoji=False, soft_wrap=True)
        sys.exit(1)


def _size(p: Path) -> int:
    if p.is_dir():
        return sum(f.stat().st_size for f in p.iterdir() if f.is_file())
    return p.stat().st_size


def _files_line(formats: dict[str, str]) -> str:
    """The files row of the summary; names are escaped (a name may hold ESC or a newline)."""
    if len(formats) <= 4:
        return ", ".join(f"{printable(Path(p).name)} ({f})" for p, f in formats.items())
    counts: dict[str, int] = {}
    for f in formats.values():
        counts[f] = counts.get(f, 0) + 1
    return f"{len(formats)} files: " + ", ".join(f"{n} {f}" for f, n in sorted(counts.items()))


def counter_rows(c: EngineCounters, signals: bool) -> list[tuple[str, Any]]:
    """The engine counter rows of a summary (``alerts`` is shown apart): the price counters
    always, the signal counters (those after ``alerts``: line series, cooldown, steam) only
    when the run detected signals, so a default run's summary is unchanged."""
    counters = c.as_dict()
    names = list(counters)
    shown = names if signals else names[: names.index("alerts")]
    return [(k, counters[k]) for k in shown if k != "alerts"]


def _summary(err: Console, c: EngineCounters, keys: int | None, stats: ReplayStats, alerts: int,
             output: Path | None, by_type: dict[str, int] | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="dropengine replay", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows: list[tuple[str, Any]] = [
        ("files", _files_line(stats.formats)),
        ("quotes", stats.quotes),
        ("alerts", alerts),
    ]
    if by_type is not None:
        rows += [(f"  {t}", n) for t, n in by_type.items()]
    if keys is not None:
        rows.append(("keys held", keys))
    rows += counter_rows(c, by_type is not None)
    if stats.unknown_envelope_types:
        rows.append(("unknown envelope types", stats.unknown_envelope_types))
    rows.append(("skipped", stats.skips.total))
    for reason, n in sorted(stats.skips.counts.items()):
        rows.append((f"  {reason}", n))
    for k, v in rows:
        table.add_row(Text(k), Text(str(v)))  # Text: a file name like "[red]x.ndjson" is no markup
    err.print(table)
    if output is not None:
        err.print(f"alerts written to {printable(str(output))}", markup=False, highlight=False, soft_wrap=True)
    note = stats.empty_note()
    if note is not None:
        err.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    shown = list(stats.skips.first)
    shown += [s for s in stats.skips.files if s not in shown]  # every skipped file, always
    if stats.unusable_reason() is not None:  # the files are named once, in the error line that follows
        shown = [s for s in shown if s not in stats.skips.files]
    if shown:
        more = stats.skips.total - len(shown)
        err.print(f"first {len(shown)} skipped" + (f" ({more:,} more counted above):" if more > 0 else ":"),
                  style="yellow")
        for s in shown:
            err.print(f"  {s}", markup=False, highlight=False, emoji=False, soft_wrap=True)
