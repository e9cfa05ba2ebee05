"""The ``dropengine`` command line: a thin loop around the pure core.

Alerts go to stdout as JSON lines (or to ``--output``); the summary, skip report and the
progress bar go to stderr, so ``dropengine replay ... | jq`` sees only alerts.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .. import __version__
from ..core.alerts import Drop
from ..core.engine import DropEngine, EngineCounters
from ..core.errors import ConfigError
from ..core.filters import DIRECTIONS
from ..core.skips import printable
from ..io.recordings import FORMATS
from ..io.replay import ReplayStats, replay, replay_batch
from ..io.sinks import OUTPUT_SUFFIXES, AlertWriter
from ..sim.simfile import write_simulation
from ..sim.simulate import DEFAULT_START_MS, SPORTS, SimConfig

__all__ = ["detection_options", "exit_if_unusable", "main"]

#: Inputs above this many bytes get a progress bar (when stderr is a terminal).
PROGRESS_MIN_BYTES = 8 << 20


def _positive(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not value > 0 or value == float("inf"):
        raise click.BadParameter(f"{value!r} must be a positive number", ctx, param)
    return int(value) if float(value).is_integer() else value


def _output(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None and value.suffix.lower() not in OUTPUT_SUFFIXES:
        raise click.BadParameter(f"{str(value)!r} must end in {', '.join(OUTPUT_SUFFIXES)}", ctx, param)
    return value


def _kinds(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        bad = [k for k in value.split(",") if k.strip() not in ("game", "prop")]
        if bad or not value.strip():
            raise click.BadParameter(f"{value!r}: use game, prop or game,prop", ctx, param)
    return value


def _open_file_room(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> tuple[Path, ...]:
    """Raise the soft open-file limit toward the hard one when the recordings need it.

    Every recording (each file of a directory too) is open while the merge runs; past the
    soft limit (256 by default on macOS, 1024 on Linux) further files could not be read.
    """
    try:
        import resource
    except ImportError:  # not on this platform
        return value
    need = 64 + sum(sum(1 for _ in p.iterdir()) if p.is_dir() else 1 for p in value)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return value


def _nonempty_csv(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not any(v.strip() for v in value.split(",")):
        raise click.BadParameter("give at least one comma-separated value", ctx, param)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dropengine")
def main() -> None:
    """dropengine: price-drop (line-move, steam) alerts from sports-betting odds streams."""


def detection_options(f: Callable[..., None]) -> Callable[..., None]:
    """The input and detection flags shared by ``replay`` and ``backtest``."""
    options = [
        click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path),
                       callback=_open_file_room),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
                     help="Input format; auto decides from the extension, else by a vote of the first lines."),
        click.option("--threshold", type=float, default=10, show_default=True, callback=_positive,
                     help="Minimum move: American-odds cents (or probability points with --unit prob)."),
        click.option("--direction", type=click.Choice(DIRECTIONS), default="both", show_default=True,
                     help="Which moves to report: shortening (toward_favorite), drifting, or both."),
        click.option("--reference", type=click.Choice(["last", "anchor"]), default="last", show_default=True,
                     help="Measure against the previous price (last) or the price at priming/last alert "
                          "(anchor)."),
        click.option("--unit", type=click.Choice(["cents", "prob"]), default="cents", show_default=True,
                     help="Threshold unit."),
        click.option("--sports", callback=_nonempty_csv, help="Only these sport keys (comma-separated)."),
        click.option("--event-id", callback=_nonempty_csv, help="Only these event ids (comma-separated)."),
        click.option("--bookmakers", callback=_nonempty_csv, help="Only these bookmakers (comma-separated)."),
        click.option("--markets", callback=_nonempty_csv, help="Only these market keys (h2h,spreads,...)."),
        click.option("--kinds", callback=_kinds, help="Only game or prop alerts (game, prop or game,prop)."),
        click.option("--quiet", "-q", is_flag=True, help="No summary on stderr."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _progress(err: Console, paths: tuple[Path, ...], quiet: bool) -> tuple[Progress, Callable[[int], None] | None]:
    total = sum(_size(p) for p in paths)
    show = err.is_terminal and total >= PROGRESS_MIN_BYTES and not quiet
    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TimeRemainingColumn(), console=err, transient=True, disable=not show)
    task = bar.add_task("reading", total=total)

    def advance(n: int) -> None:
        bar.advance(task, n)

    return bar, advance if show else None


@main.command("replay")
@detection_options
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), callback=_output,
              help="Write alerts to FILE (.ndjson, .csv or .parquet) instead of stdout.")
@click.option("--engine", "engine_kind", type=click.Choice(["stream", "batch"]), default="stream",
              show_default=True,
              help="stream: quote by quote; batch: columnar (polars), for large tables. Same alerts.")
def replay_cmd(paths: tuple[Path, ...], fmt: str, threshold: float, direction: str, reference: str,
               unit: str, sports: str | None, event_id: str | None, bookmakers: str | None,
               markets: str | None, kinds: str | None, output: Path | None, engine_kind: str,
               quiet: bool) -> None:
    """Replay recordings and print their drop alerts, one JSON object per line.

    PATHS are vendor frame recordings (NDJSON, .gz too), raw SSE captures, quote tables
    (.ndjson/.csv/.parquet with the SPEC section 2 columns) or The Odds API v4 responses
    (a JSON file, a directory of them, or NDJSON snapshots). Several PATHS are merged by
    last_update, ties in the order given. Bad lines are skipped, counted and reported on
    stderr; they never stop the replay, and neither does a file that cannot be read (it is
    reported). Exit status: 0 when some input was usable, 1 when no quote at all could be
    read from the input (the message says what the files lack), 2 for a usage error, 130
    after Ctrl-C (the alerts found until then are written, and the summary printed).
    """
    err = Console(stderr=True)
    try:
        engine = DropEngine(threshold, direction, reference, unit,  # type: ignore[arg-type]
                            sports=sports, event_id=event_id, bookmakers=bookmakers,
                            markets=markets, kinds=kinds)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    stats = ReplayStats()
    bar, advance = _progress(err, paths, quiet)
    counters = engine.counters
    keys: int | None = None
    interrupted = False
    writer: AlertWriter | None = None
    try:
        with bar, AlertWriter(output) as writer:
            if engine_kind == "batch":
                result = replay_batch(
                    list(paths), fmt, stats, advance, threshold=threshold,
                    direction=direction, reference=reference, unit=unit, sports=sports, event_id=event_id,
                    bookmakers=bookmakers, markets=markets, kinds=kinds,
                )
                rows = [{k: v for k, v in r.items() if v is not None} for r in result.alerts.iter_rows(named=True)]
                writer.write_dicts(rows)
                counters = result.counters
            else:
                pending: list[Drop] = []
                with _CtrlC() as ctrl_c:
                    try:
                        for drop in replay(list(paths), engine, fmt, stats, advance):
                            pending.append(drop)
                            if len(pending) >= 256:
                                batch, pending = pending, []
                                with ctrl_c.deferred():
                                    writer.write(batch)
                    except KeyboardInterrupt:  # Ctrl-C: keep what was found, then say so
                        interrupted = True
                    ctrl_c.defer = True  # from here on (the last write, closing): finish first
                    writer.write(pending)
                    counters, keys = engine.counters, engine.keys_held
                    interrupted = interrupted or ctrl_c.pending
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (``| head``): stop quietly
        return
    except KeyboardInterrupt:  # the batch engine, or while writing: nothing more to save
        interrupted = True
    written = writer.count if writer is not None else 0
    if not quiet:
        _summary(err, counters, keys, stats, written, output)
    if interrupted:
        err.print(f"interrupted (Ctrl-C): {written:,} alerts written; the summary counts the input read "
                  "until then", markup=False, highlight=False, soft_wrap=True)
        sys.exit(130)
    exit_if_unusable(err, stats)


class _CtrlC:
    """SIGINT raises KeyboardInterrupt, except while alerts are being written: then it is
    held until the write is done, so that Ctrl-C never leaves half a JSON line (or the same
    alerts twice) in the output."""

    def __init__(self) -> None:
        self.defer = False
        self.pending = False
        self._old: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.defer:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.defer = True
        try:
            yield
        finally:
            self.defer = False
        if self.pending:
            raise KeyboardInterrupt

    def __enter__(self) -> _CtrlC:
        try:
            self._old = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread (an embedding caller): leave signals alone
            self._old = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def exit_if_unusable(err: Console, stats: ReplayStats) -> None:
    """Exit with status 1, saying why once, when no quote at all was usable (even ``-q``)."""
    reason = stats.unusable_reason()
    if reason is not None:
        err.print(f"error: {reason}", style="red", markup=False, highlight=False, emoji=False, soft_wrap=True)
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


def _summary(err: Console, c: EngineCounters, keys: int | None, stats: ReplayStats, alerts: int,
             output: Path | None) -> None:
    table = Table(title="dropengine replay", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows: list[tuple[str, Any]] = [
        ("files", _files_line(stats.formats)),
        ("quotes", stats.quotes),
        ("alerts", alerts),
    ]
    if keys is not None:
        rows.append(("keys held", keys))
    rows += [(k, v) for k, v in c.as_dict().items() if k != "alerts"]
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




_SIM_FLAGS = {
    "events": "--events", "books": "--books", "hours": "--hours", "seed": "--seed", "sport_key": "--sport",
    "start_ms": "--start-ms", "out": "--out", "format": "--format", "props": "--props",
}


@main.command("simulate")
@click.option("--events", type=int, default=8, show_default=True, help="Number of games (1-500).")
@click.option("--books", type=int, default=6, show_default=True,
              help="Bookmakers quoting them (1-12; the sharp book, pinnacle, first).")
@click.option("--hours", type=float, default=24.0, show_default=True, help="Length of the recording.")
@click.option("--props", is_flag=True, help="Add player props.")
@click.option("--seed", type=int, default=0, show_default=True, help="The only source of randomness.")
@click.option("--sport", default="americanfootball_nfl", show_default=True,
              type=click.Choice(sorted(SPORTS)), help="Sport profile (scoring, lines, in-play length).")
@click.option("--start-ms", type=int, default=DEFAULT_START_MS, show_default=True,
              help="Unix ms at which the recording starts.")
@click.option("--format", "fmt", type=click.Choice(["frames", "sse", "quotes"]), default=None,
              help="Override the format the extension implies.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="FILE: .ndjson/.jsonl (vendor frames), .sse (raw SSE capture), .csv/.parquet (quotes); .gz too.")
def simulate_cmd(events: int, books: int, hours: float, props: bool, seed: int, sport: str, start_ms: int,
                 fmt: str | None, out: Path) -> None:
    """Write a realistic simulated odds recording that `dropengine replay` reads.

    A fair probability per game random-walks with news jumps; a sharp book moves first and
    soft books follow with lags and their own vig, on the price ladders books quote; lines
    move; suspensions around jumps and kick-off; in play, fewer books and slower re-quotes.
    The same seed gives byte-identical output. The model and its calibration against real
    recordings: docs/simulator.md.
    """
    err = Console(stderr=True)
    try:
        cfg = SimConfig(events=events, books=books, hours=hours, props=props, seed=seed, start_ms=start_ms,
                        sport_key=sport)
        with err.status(f"simulating {events} events x {books} books, {hours:g} h -> {out}"):
            counts = write_simulation(cfg, out, fmt)
    except ConfigError as exc:
        field = str(exc).split(":", 1)[0]
        raise click.BadParameter(str(exc), param_hint=_SIM_FLAGS.get(field, field)) from None
    err.print(f"wrote {out}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()),
              markup=False, highlight=False, soft_wrap=True)


def _register_live() -> None:
    from .backtest import backtest_cmd
    from .live import record_cmd, watch_cmd
    from .mock_upstream import mock_upstream
    from .serve import serve_cmd

    main.add_command(backtest_cmd)
    main.add_command(serve_cmd)
    main.add_command(watch_cmd)
    main.add_command(record_cmd)
    main.add_command(mock_upstream)


_register_live()
