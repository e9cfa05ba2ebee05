"""``dropengine backtest``: closing-line value of drop alerts at the command line (SPEC 9).

A thin loop: read any input ``replay`` reads, detect with the same flags in the same order, measure
CLV with :func:`dropengine.io.replay.replay_backtest` (:func:`dropengine.analysis.backtest.run_backtest`
in core/merge.py's replay order), print tables or write a report directory.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import nullcontext as _nullcontext
from pathlib import Path
from typing import Any

import click
import polars as pl
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..analysis.backtest import CLOSE_CONVENTIONS, TAKE_POLICIES, Backtest, BacktestConfig
from ..analysis.devig import DEVIG_METHODS
from ..cluster.inputs import expand_parquet_dirs
from ..core.errors import ClusterError, ConfigError
from ..core.options import DetectOptions
from ..core.skips import printable
from ..io.inputs import InputOptions
from ..io.replay import ReplayStats, load_table, replay_backtest
from ..io.report import write_report
from ..io.starting import starting_prices
from .interrupt import CtrlC
from .options import detect_options, input_options, quiet_option
from .replay import check_cluster, cluster_options, exit_if_unusable, progress_bar, shard_bar, sharding

__all__ = ["backtest_cmd"]


def _minutes_or_off(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    if value.strip().lower() in ("off", "none"):
        return None
    try:
        minutes = float(value)
    except ValueError:
        minutes = -1.0
    if not 0 <= minutes < float("inf"):
        raise click.BadParameter(f"{value!r} must be a non-negative number of minutes, or off", ctx, param)
    return minutes


@click.command("backtest")
@input_options
@detect_options()
@quiet_option
@click.option("--close", type=click.Choice(("auto", *CLOSE_CONVENTIONS)), default="auto", show_default=True,
              help="Which price counts as closing: last-before-commence (the last at or before commence_time), "
                   "last (the last at all), or starting-price (each runner's starting price: Betfair's bsp, or "
                   "a table's starting_price field; a key without one gets close_status 'no starting price'). "
                   "auto: starting-price when the input carries starting prices, else last-before-commence.")
@click.option("--take", type=click.Choice(TAKE_POLICIES), default="same", show_default=True,
              help="same: the alerting book's new price; best-other: the best other book at alert time + latency "
                   "(for a steam: among the books that had not moved; docs/backtest.md).")
@click.option("--latency-ms", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --take best-other (only): how long after the alert the bet is placed.")
@click.option("--sharp", default=None, help="Measure the close on this book (e.g. pinnacle) instead of the taking one.")
@click.option("--devig", type=click.Choice(DEVIG_METHODS), default="multiplicative", show_default=True,
              help="How the closing market's vig is removed for the no-vig CLV.")
@click.option("--early-close-minutes", "early_close", default="60", show_default=True, callback=_minutes_or_off,
              metavar="MINUTES|off",
              help="A close taken more than MINUTES before commence_time (the recording ended before kick-off) "
                   "is flagged 'early close' and gets no CLV; off keeps every close.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="DIR for alerts.parquet/.csv, summary.csv, report.md and PNG charts; else a table here.")
@cluster_options
def backtest_cmd(paths: tuple[Path, ...], fmt: str, inputs: InputOptions, detect: DetectOptions, quiet: bool,
                 close: str, take: str, latency_ms: int, sharp: str | None, devig: str, early_close: float | None,
                 out_dir: Path | None, workers: int | None, scheduler: str | None, shards: int | None) -> None:
    """Closing-line value of acting on the alerts of recorded odds (--types: drops, line moves, steam).

    Takes any input `replay` takes and its detection flags. For each alert: the price
    taken (and where), the close (and why there is none, when there is none), the fair
    close probability, price CLV (d_taken / d_close - 1) and no-vig CLV
    (p_fair_close * d_taken - 1), and minutes to commence; then a summary by bookmaker,
    market, direction and size of move with 95% intervals; with --types beyond odds_drop also by
    type and by the number of books in a steam, with the line CLV in points.

    A directory of Parquet shards (.parquet files only) is read as its files. --workers N (or
    --scheduler ADDRESS) splits the work by event_id over a Dask cluster: the same tables,
    summary and files as one process.

    Exit status: 0, 1 when no quote at all could be read from the input, 2 for a usage error,
    130 after Ctrl-C and 143 after SIGTERM: nothing is written then (a previous --out directory
    is left as it was), except while the report is being written, which finishes first.
    """
    # Ctrl-C and SIGTERM as in replay (cli/interrupt.py): from the first line (the cluster extra's import
    # takes ~1 s) one line and 130/143, never click's "Aborted!" and 1; the report directory is written
    # whole (the signal held until it is) or not at all
    guard = CtrlC()
    with guard.starting():
        err = Console(stderr=True)
        sharded = check_cluster("backtest", workers, scheduler, shards)
        stats = ReplayStats()
        paths = tuple(expand_parquet_dirs(paths))
        bar, advance = progress_bar(err, paths, quiet)
    with guard.running():
        try:
            close, sp = _close_of(close, paths, fmt, inputs)
            cfg = BacktestConfig(close, take, latency_ms, sharp, devig, early_close,  # type: ignore[arg-type]
                                 starting_prices=sp)
            if sharded:
                bt = _sharded(err, quiet, paths, fmt, inputs, stats, cfg, detect, workers, scheduler, shards, bar,
                              advance, guard)
            else:
                from ..fast import warm_up, warmed

                # numba and the cached kernel load in a thread while the input is read, as replay --engine
                # batch does: LLVM calls Python back (its object cache) while it loads or compiles, and a
                # signal handled in such a callback on the main thread is dropped or crashes (break24's
                # B24-5); the main thread waits for its event (fast.warmed), where a signal lands as usual.
                # Waited for also after a Ctrl-C or an error: a thread killed mid-compile can crash the exit
                # (review22's R22-5); started and waited for with the signals held, as replay does (C21-4,
                # C21-7: a signal in its start, or a second raise at the finally's first call, left it running)
                try:
                    with guard.deferred():
                        warm_up(signals=detect.signals)
                    with bar:
                        # line-only observations (SPEC 10) only when lines are detected, as replay reads them
                        table, where = load_table(list(paths), fmt, stats, advance,
                                                  line_only=detect.detects_lines, inputs=inputs)
                    exit_if_unusable(err, stats)
                finally:
                    # (the hold before any call, then the wait: CtrlC.wait_held)
                    held, guard.defer = guard.defer, True
                    guard.wait_held(warmed, held)
                with err.status("detecting and measuring CLV", spinner="dots") if not quiet else _nullcontext():
                    # in core/merge.py's replay order, as replay detects (break22's B22-6)
                    bt = replay_backtest(table, where, cfg, detect)
            if out_dir is not None:
                guard.defer = True  # (whole: a signal while the files are written ends the run after them)
                written = write_report(bt, out_dir, "dropengine backtest " + " ".join(sys.argv[2:]))
                guard.defer = False  # (the report is whole: a signal from here on ends the run at once)
                if guard.pending:
                    guard.end(f" while the report was written: written whole to {printable(str(out_dir))}")
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        except KeyboardInterrupt:
            guard.end(" while backtesting: " + ("no tables printed" if out_dir is None else
                                                f"no report written, {printable(str(out_dir))} as it was"))
        whole = (None if out_dir is None else
                 f" after the report was written: written whole to {printable(str(out_dir))}")
        try:
            _print(err, bt, stats, quiet, out_dir, written if out_dir is not None else [])
        except KeyboardInterrupt:
            guard.end(whole or " while the tables were printed")
        if guard.pending:  # (a signal whose raise the interpreter dropped in a callback: review24's R24-11)
            guard.end(whole or " after the tables were printed")


def _print(err: Console, bt: Backtest, stats: ReplayStats, quiet: bool, out_dir: Path | None,
           written: list[Path]) -> None:
    """The end of a backtest: exit 1 when no quote was usable, the warnings, then the tables (or the
    files written) on stdout and the skipped input on stderr."""
    exit_if_unusable(err, stats, bt.counters)
    for warning in bt.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    # not a terminal: wide enough for every column (the signal columns too) on one line each
    out = Console() if sys.stdout.isatty() else Console(width=150 if bt.types == ("odds_drop",) else 200)
    if out_dir is None:
        _backtest_tables(out, bt)
    else:
        files = ", ".join(p.name for p in written)
        if bt.alerts.height == 0:
            line = f"no alerts, so no charts: wrote {files} to {out_dir}"
        elif not any(p.suffix == ".png" for p in written):
            line = f"no alert has a close, so no charts: wrote {files} to {out_dir}"
        else:
            line = f"wrote {files} to {out_dir}"
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if not quiet and stats.skips:
        reasons = ", ".join(f"{k} {v}" for k, v in stats.skips.counts.items())
        err.print(f"skipped input: {stats.skips.total} ({reasons})", markup=False, highlight=False, soft_wrap=True)


def _close_of(close: str, paths: tuple[Path, ...], fmt: str,
              inputs: InputOptions) -> tuple[str, pl.DataFrame | None]:
    """The close convention (``auto`` decided) and the starting prices it needs (with
    last-before-commence too: their off times bound that close, see ``BacktestConfig``)."""
    if close == "last":
        return close, None
    per_file = {str(p): starting_prices([p], fmt, inputs) for p in paths}
    found = [f for f in per_file.values() if f is not None and f.height]
    sp = pl.concat(found, how="vertical_relaxed") if found else None
    if close == "last-before-commence":
        return close, sp  # only their off times matter: they bound the close
    # a file of a kind that carries starting prices (a Betfair recording, a table with the field)
    # says so even when a market of it has none (never reconciled: its rows hold only the off)
    carrying = [n for n, f in per_file.items() if f is not None]
    priced = sp is not None and sp.get_column("starting_price").is_not_null().any()
    if priced and close == "auto" and len(carrying) < len(per_file):
        lacking = [n for n in per_file if n not in carrying]
        raise click.UsageError(
            f"--close auto: {', '.join(carrying)} carry starting prices and {', '.join(lacking)} do not, so no "
            "one close fits every input; give --close starting-price (alerts without one get no close) or "
            "--close last-before-commence, or backtest them apart")
    if priced:
        return "starting-price", sp
    if close == "starting-price":
        raise click.UsageError("--close starting-price: the input carries no starting prices (a Betfair stream "
                               "recording's bsp, or a quote table with a starting_price field); use --close "
                               "last-before-commence or last")
    return "last-before-commence", sp


def close_label(close: str) -> str:
    """How a close convention is named in the output (the starting price says what it is)."""
    return "starting-price (starting price, bsp)" if close == "starting-price" else close


def _sharded(err: Console, quiet: bool, paths: tuple[Path, ...], fmt: str, inputs: InputOptions, stats: ReplayStats,
             cfg: BacktestConfig, detect: DetectOptions, workers: int | None, scheduler: str | None, shards: int | None,
             bar: Progress, advance: Callable[[int], None] | None, guard: CtrlC) -> Backtest:
    """The backtest sharded by event_id on a Dask cluster (the same result as one process)."""
    from ..cluster import backtest_sharded

    sbar, start, done = shard_bar(err, quiet)

    def started(n: int) -> None:  # the input is read: stop on unusable input, as one process does
        bar.stop()
        exit_if_unusable(err, stats)
        start(n)

    try:
        with sharding(workers, scheduler, guard) as client, bar:
            return backtest_sharded(client, list(paths), cfg, detect, fmt, stats, shards=shards, inputs=inputs,
                                    on_start=started, on_shard=done, progress=advance).backtest
    except ClusterError as exc:  # the cluster failed the run (a task, every worker lost): one line, exit 1
        raise click.ClickException(str(exc)) from None
    finally:
        sbar.stop()


def _backtest_tables(out: Console, bt: Backtest) -> None:
    cfg = bt.config
    status = bt.alerts.group_by("close_status").len().sort(["len", "close_status"], descending=[True, False])
    counts = ", ".join(f"{s} {n}" for s, n in status.iter_rows())
    early = "off" if cfg.early_close_minutes is None else f"more than {cfg.early_close_minutes:g} min before commence"
    out.print(f"close: {close_label(cfg.close)}; take: {cfg.take}; close on: {cfg.sharp or 'the taking book'}; "
              f"devig: {cfg.devig}; early close: {early}; "
              + (f"types: {', '.join(bt.types)}; " if bt.types != ("odds_drop",) else "")
              + f"alerts {bt.alerts.height}"
              + (f" ({counts})" if counts else ""), markup=False, highlight=False, soft_wrap=True)
    for dim in bt.summary.get_column("dimension").unique(maintain_order=True).to_list():
        table = Table(title=f"CLV by {dim} (close: {close_label(cfg.close)})", title_justify="left")
        cols = ["group", "alerts", "closed", "early_close", "mean_clv", "median_clv", "beat_close", "ci95_low",
                "ci95_high", "mean_novig_clv"]
        heads = ["group", "alerts", "closed", "early close", "mean CLV", "median", "beat close", "95% low",
                 "95% high", "no-vig CLV"]
        if "line_moved" in bt.summary.columns:  # with signals: line moved again, CLV in points
            cols += ["line_moved", "line_closed", "mean_line_clv"]
            heads += ["line moved", "line closed", "line CLV (pt)"]
        for h in heads:
            table.add_column(h, justify="left" if h == "group" else "right")
        for row in bt.summary.filter(pl.col("dimension") == dim).select(cols).iter_rows():
            table.add_row(*(_cell(v, c) for v, c in zip(row, cols, strict=True)))
        out.print(table)


#: Summary columns measured in points, not as a share (the line CLV of line moves and steam).
_POINT_COLUMNS = frozenset({"mean_line_clv"})


def _cell(v: Any, column: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if column in _POINT_COLUMNS:
            return f"{v:+.2f}"  # points: the header says "(pt)"
        return f"{v:+.2%}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)
