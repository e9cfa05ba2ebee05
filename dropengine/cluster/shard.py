"""Sharded batch detection and backtests: shards by ``event_id``, one task per shard, merged back.

Every piece of state detection keeps (a key's series, a line series, a steam group, a
cooldown) and every figure a backtest computes (a close, a take, a devigged market) lives
inside one event, so splitting the input by event with :func:`dropengine.core.partition.partition_of`
(the bus's rule, never a second hash) and running the batch engine on each shard gives, per
shard, exactly the alerts one process gives for those events, in the same relative order.
The merge restores the single-process order: each alert carries the input position of the
quote that produced it (:attr:`dropengine.analysis.batch.BatchResult.rows`), mapped to a
global *order key* ``(_clock, _f, _r)``; sorting every shard's alerts by it (stable, so a
quote's several alerts keep their order) is the single-process detection order. Counters
and skip counts are sums; the skip report keeps the first rows set aside, in input order.

Where the workers read (the client never ships the quotes):

- :class:`ParquetSource`: Parquet quote tables (files given, or a directory of Parquet
  shards): each task scans every file lazily and keeps its partition's rows. The order key is
  the single-process one of :func:`dropengine.io.tables.parquet_quote_table` (per-file
  running-max clock, file index, row in file), so a task's rows sorted by it are in replay
  order. A worker holds one input file's columns at a time, then its shard.
- :class:`SplitSource`: every other input (vendor recordings, CSV/NDJSON tables, The Odds
  API files) is decoded once by the client with :func:`dropengine.io.replay.load_table` (the
  same table one process detects on) and written as one Parquet file per shard in a temporary
  directory (``TMPDIR``: on a cluster of several machines, one they all read), which its task
  reads; the order key is the global row. The client holds the decoded table, as one process
  does; detection's working memory is the workers'.

This module imports dask only inside :func:`open_client` (``import dropengine.cluster`` stays
light); the task functions are plain functions of polars and the batch engine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from ..analysis.backtest import Backtest, BacktestConfig, assemble_backtest, measure_alerts
from ..analysis.batch import PRICE_INT_COLUMN, BatchResult, detect_counted
from ..core.alerts import Alert
from ..core.engine import EngineCounters
from ..core.errors import ClusterError, ConfigError, DropEngineError, short_repr
from ..core.options import DetectOptions
from ..core.partition import check_count, partition_of
from ..formats.tables import REQUIRED_COLUMNS
from ..io.inputs import DEFAULT_INPUTS, InputOptions
from ..io.replay import ReplayStats, load_table
from ..io.tables import (
    PARQUET_ORDER_KEY,
    WORKING_COLUMNS,
    file_clock,
    held_moves_clock,
    held_rows_reorder,
    listable_rejections,
    ms_times,
    parquet_position,
    plain_parquet_schema,
    rejected_detail,
    stamp_column,
    table_lacks_columns,
)
from .inputs import expand_parquet_dirs

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "ORDER_KEY", "ParquetSource", "ShardedBacktest", "ShardedDetect", "SplitSource", "backtest_sharded",
    "detect_sharded", "open_client", "partition_expr", "shard_count", "shard_events", "shard_frame",
]

#: The columns of the order key: a row's place in the single-process replay order.
ORDER_KEY: Final = PARQUET_ORDER_KEY  # io.tables: the replay order of Parquet rows
#: The row index of a scanned file, before it becomes ``_r`` (a name no quote table uses).
_ROW: Final = "__dropengine_row"
#: Shards per worker when not given: several, so a slow shard does not idle the other workers
#: and each task holds a smaller part of the input.
SHARDS_PER_WORKER: Final = 2

#: A shard's progress: called with the shard number when its task is done.
OnShard = Callable[[int], None]


# -- input ----------------------------------------------------------------------------------


def partition_expr(shards: int) -> pl.Expr:
    """Each row's shard: :func:`partition_of` of its ``event_id`` (one call per distinct event);
    a row without one (skipped by the detector as ``missing field``) goes to shard 0."""
    def parts(s: pl.Series) -> pl.Series:
        mapping = {e: partition_of(e, shards) for e in s.drop_nulls().unique().to_list()}
        return s.replace_strict(mapping, default=0, return_dtype=pl.UInt32)

    return pl.col("event_id").cast(pl.String).map_batches(parts, return_dtype=pl.UInt32, is_elementwise=True)


@dataclass(frozen=True, slots=True)
class ParquetSource:
    """Parquet quote tables the workers scan themselves (the columnar fast path's input)."""

    #: ``(file index, path)`` of every usable file, the index its place among the files given
    files: tuple[tuple[int, str], ...]
    #: Int64 prices in some files and Float64 in others: each file says which arrived as ints
    mixed_prices: bool
    #: ``(file index, rows)``: the rows of a file the detector skips (row numbers in the file), which
    #: move no clock (core/merge.py); given for the second run, when the first found one that had
    #: (:func:`_in_replay_order`); empty: the clocks of every row's time
    held: tuple[tuple[int, pl.Series], ...] = ()


@dataclass(frozen=True, slots=True)
class SplitSource:
    """One Parquet file per shard, written by the client from the decoded table."""

    directory: str
    shards: int

    def path(self, shard: int) -> str:
        return str(Path(self.directory) / f"shard-{shard:04d}.parquet")


Source = ParquetSource | SplitSource


def shard_frame(source: Source, shard: int, events: Sequence[str] = ()) -> pl.DataFrame:
    """The rows of one shard in replay order, with the :data:`ORDER_KEY` columns (run by a
    worker). From a :class:`ParquetSource`: the rows of ``events`` (the shard's event ids, by
    :func:`partition_of`; shard 0 also takes the rows without one), file by file: the filter is
    pushed into the Parquet scan, so only this shard's rows are materialised."""
    if isinstance(source, SplitSource):
        frame = pl.read_parquet(source.path(shard))
        row = pl.col("_row").cast(pl.Int64)
        return frame.with_columns(row.alias("_clock"), pl.lit(0, dtype=pl.Int64).alias("_f"),
                                  row.alias("_r")).drop("_row")
    event = pl.col("event_id").cast(pl.String)
    mine = event.is_in(list(events))
    if shard == 0:
        mine = mine | event.is_null()
    parts = []
    held = dict(source.held)
    for f_idx, path in source.files:
        lf = pl.scan_parquet(path, glob=False, row_index_name=_ROW)
        schema = lf.collect_schema()
        # a column of the file named like a key column or a working column is dropped, as
        # parquet_quote_table replaces or drops it
        part = lf.filter(mine).drop((*ORDER_KEY, *WORKING_COLUMNS), strict=False).rename({_ROW: "_r"}).collect()
        if len(source.files) > 1:  # several files meet in one column (as io.tables.parquet_quote_table)
            part = ms_times(part)
        # the clock of io.tables.parquet_quote_table (held rows: io.replay.in_replay_order's): the
        # running max of last_update over the whole file (one column read), taken at this shard's rows
        clock = file_clock(_times(path), held.get(f_idx))
        part = part.with_columns(clock.gather(part.get_column("_r")).alias("_clock"),
                                 pl.lit(f_idx, dtype=pl.Int64).alias("_f"), pl.col("_r").cast(pl.Int64))
        if source.mixed_prices:
            is_int = schema.get("price", pl.Null).is_integer()
            part = part.with_columns(pl.lit(is_int, dtype=pl.Boolean).alias(PRICE_INT_COLUMN))
        # an empty part is kept: the shard's columns and types are then those of the whole input
        parts.append(part)
    return pl.concat(parts, how="diagonal_relaxed").sort(list(ORDER_KEY), maintain_order=True)


def _times(path: str) -> pl.Series:
    """The ``last_update`` column of a whole Parquet file (what its clock is made of), a
    Datetime as unix ms (:func:`~dropengine.io.tables.ms_times`)."""
    return ms_times(pl.scan_parquet(path, glob=False).select("last_update").collect()).to_series()


def _held_keys(source: Source, keys: pl.DataFrame, rows: pl.Series) -> tuple[pl.DataFrame, bool]:
    """The order keys (``_f``, ``_r``) of a shard's rows the detector skipped (``rows``, in the
    shard's frame), and whether any of them sets its file's clock (only asked of a first run from
    Parquet files: :func:`~dropengine.io.tables.held_moves_clock`, true of every shard's held rows
    together exactly when true of one shard's)."""
    held = keys[rows].select("_f", "_r")
    if not isinstance(source, ParquetSource) or source.held or held.is_empty() or len(source.files) < 2:
        return held, False
    paths = dict(source.files)
    moved = any(held_moves_clock(_times(paths[f]), group.get_column("_r"))
                for (f,), group in held.group_by("_f", maintain_order=True))
    return held, moved


def shard_events(source: ParquetSource, shards: int) -> list[list[str]]:
    """The distinct event ids of every file of ``source`` (one column read), split into
    ``shards`` lists by :func:`partition_of`."""
    scans = [pl.scan_parquet(path, glob=False).select(pl.col("event_id").cast(pl.String))
             for _, path in source.files]
    distinct = pl.concat(scans).unique().drop_nulls().collect().to_series().sort().to_list()
    out: list[list[str]] = [[] for _ in range(shards)]
    for e in distinct:
        out[partition_of(e, shards)].append(e)
    return out


def _split_keys(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    return frame.drop(ORDER_KEY), frame.select(ORDER_KEY)


# -- tasks (run on the workers) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _DetectPart:
    shard: int
    alerts: pl.DataFrame
    #: the alerts as values when the engine built them (signals); else the client builds them
    #: from the merged table and :attr:`price_types`, as one process does (cheaper to ship)
    values: tuple[Alert, ...] | None
    price_types: pl.DataFrame
    #: the order key of each alert
    keys: pl.DataFrame
    counters: EngineCounters
    skipped: dict[str, int]
    #: the first rows set aside before detection (skip reasons only), with their order keys
    rejected: pl.DataFrame
    #: every row set aside (``_f``, ``_r``), and whether one of them moved its file's clock
    held: pl.DataFrame
    moved: bool


def _detect_task(
    source: Source, shard: int, events: list[str], options: DetectOptions, per_reason: int
) -> _DetectPart:
    frame, keys = _split_keys(shard_frame(source, shard, events))
    res = detect_counted(frame, options, timestamp_column=stamp_column(frame.columns))
    # a shard's rows a report can list: the merged report lists the first per_reason of each
    # reason over every shard, which are among each shard's first per_reason; of each file's, when
    # several files may meet in another order in the report (_in_replay_order's HeldReorder.skips)
    skipped = res.skipped_rows
    several = isinstance(source, ParquetSource) and len(source.files) > 1
    files = keys.get_column("_f").gather(skipped.get_column("row")) if several else None
    rejected = listable_rejections(skipped, per_reason, files)
    # the row reader's message, as one process's report gives it (only the worker holds the rows); an
    # int price of a file among Float64 ones as its file holds it (one process reads it as this does)
    paths = dict(source.files) if isinstance(source, ParquetSource) and source.mixed_prices else None

    def place(row: int) -> tuple[str, int] | None:
        return None if paths is None else (paths[keys.item(row, "_f")], keys.item(row, "_r"))

    message = pl.Series("message", [rejected_detail(frame, row, reason, place(row)) for row, reason in
                                    rejected.select("row", "reason").iter_rows()], dtype=pl.String)
    return _DetectPart(
        shard, res.alerts, res.values, res.price_types, keys[res.rows], res.counters, res.skipped,
        pl.concat([keys[rejected.get_column("row")], rejected.select("reason"), message.to_frame()],
                  how="horizontal"),
        *_held_keys(source, keys, skipped.get_column("row")),
    )


@dataclass(frozen=True, slots=True)
class _BacktestPart:
    shard: int
    table: pl.DataFrame
    keys: pl.DataFrame
    counters: EngineCounters
    books: frozenset[str]
    fair_failed: int
    held: pl.DataFrame
    moved: bool


def _backtest_task(source: Source, shard: int, events: list[str], cfg: BacktestConfig,
                   options: DetectOptions) -> _BacktestPart:
    frame, keys = _split_keys(shard_frame(source, shard, events))
    m = measure_alerts(frame, cfg, options, timestamp_column=stamp_column(frame.columns))
    return _BacktestPart(shard, m.table, keys[m.rows], m.counters, m.books, m.fair_failed,
                         *_held_keys(source, keys, m.held))


# -- the client side ------------------------------------------------------------------------


@contextlib.contextmanager
def open_client(workers: int | None = None, scheduler: str | None = None, *,
                connect_timeout_s: float = 10.0) -> Iterator[Client]:
    """A dask ``Client``: on a new local cluster of ``workers`` processes (one thread each, on
    127.0.0.1, its HTTP server on a free loopback port, spilling to a temporary directory removed
    at the end), or on the running scheduler at ``scheduler`` (given up after ``connect_timeout_s``).
    :class:`ConfigError` names a bad count or address; :class:`ClusterError` a cluster that could
    not start or be reached."""
    if (workers is None) == (scheduler is None):
        raise ConfigError("cluster: give a number of workers or a scheduler address (one of them)")
    from distributed import Client, LocalCluster
    from distributed.comm.addressing import get_address_host_port

    if scheduler is not None:
        address = scheduler.strip() if isinstance(scheduler, str) else ""
        try:
            # the address's form first: a Client made from a malformed one lingers at exit
            get_address_host_port(address)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"scheduler: {short_repr(scheduler)} is not a scheduler address such as "
                              f"tcp://HOST:8786 ({exc})") from None
        _probe_scheduler(address, scheduler, connect_timeout_s)
        try:
            client = Client(address, timeout=connect_timeout_s, set_as_default=False)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"scheduler: cannot connect to {scheduler!r} ({type(exc).__name__}: {exc})") from None
        with client:
            yield client
        return
    check_count(workers, "workers")
    with tempfile.TemporaryDirectory(prefix="dropengine-dask-") as spill, contextlib.ExitStack() as stack:
        try:
            # (the scheduler's HTTP server starts whatever the dashboard setting: None put it on port
            # 8787, warning "Port 8787 is already in use" on stderr when another cluster held it;
            # a free loopback port never clashes and is never reachable from another machine)
            cluster = stack.enter_context(LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address="127.0.0.1:0", local_directory=spill, silence_logs=logging.ERROR,
            ))
            client = stack.enter_context(Client(cluster, set_as_default=False))  # type: ignore[no-untyped-call]
        except Exception as exc:  # dask raises many types; translated at this edge
            raise ClusterError(f"workers: a local Dask cluster of {workers} could not start "
                               f"({type(exc).__name__}: {exc})") from None
        yield client


def _probe_scheduler(address: str, scheduler: str, timeout_s: float) -> None:
    """Ask the scheduler who it is, under one deadline for connect, handshake and answer:
    ``Client(timeout=)`` bounds only the TCP connect, so a peer that accepts and never answers
    (a wrong service, a load balancer without a backend) would hang the run for ever. A
    ``tls://`` address without TLS settings fails here too, named, instead of in a traceback."""
    import asyncio

    from distributed.core import rpc

    async def identity() -> object:
        remote = rpc(address, timeout=timeout_s)  # type: ignore[no-untyped-call]
        try:
            return await asyncio.wait_for(remote.identity(), timeout_s)
        finally:
            await remote.close_rpc()  # type: ignore[no-untyped-call]

    try:
        asyncio.run(identity())
    except (TypeError, ValueError) as exc:  # e.g. tls:// without an ssl context
        raise ConfigError(f"scheduler: {short_repr(scheduler)} cannot be used as given ({type(exc).__name__}: "
                          f"{exc}); a tls:// scheduler needs dask's TLS settings") from None
    except Exception as exc:  # no answer within the deadline, refused, reset: dask raises many types
        raise ClusterError(f"scheduler: cannot connect to {scheduler!r} within {timeout_s:g} s "
                           f"({type(exc).__name__}: {exc or 'no answer'})") from None


def shard_count(client: Client, shards: int | None = None) -> int:
    """``shards``, or :data:`SHARDS_PER_WORKER` per worker of ``client``'s cluster."""
    if shards is None:
        n = len(client.scheduler_info().get("workers", {})) or 1
        shards = n * SHARDS_PER_WORKER
    return check_count(shards, "shards")


@dataclass(slots=True)
class _Prepared:
    source: Source | None
    #: the row -> position text of a skip, by order key ``(_f, _r)``
    where: Callable[[int, int], str]
    #: the input as one table, when there was nothing to shard (no usable Parquet file)
    empty: pl.DataFrame | None = None


def _prepare(paths: Sequence[str | Path], fmt: str, stats: ReplayStats, shards: int, workdir: Path,
             line_only: bool, progress: Callable[[int], None] | None, inputs: InputOptions) -> _Prepared:
    """Decide where the workers read, and read what the client must (see the module docstring).
    Mapped tables and prices in another odds format (``inputs``) are read by the client, as
    every format but plain Parquet is."""
    if not paths:
        raise ConfigError("paths: give at least one recording")
    files = expand_parquet_dirs([Path(p) for p in paths])
    if (inputs.plain_tables and fmt in ("auto", "quotes")
            and all(p.is_file() and p.name.lower().endswith(".parquet") for p in files)
            and all(plain_parquet_schema(p) for p in files)):
        usable: list[tuple[int, str]] = []
        kinds: set[bool] = set()
        for f_idx, path in enumerate(files):
            stats.formats[str(path)] = "quotes"
            # what io.tables._read_parquet checks, from the file's metadata (the workers read the rows)
            try:
                lf = pl.scan_parquet(path, glob=False)
                schema = lf.collect_schema()
                height = lf.select(pl.len()).collect().item()
            except Exception as exc:  # polars raises many exception types; the file is skipped
                stats.skips.add_file(path.name, "unreadable file", f"{type(exc).__name__}: {exc}")
                continue
            if table_lacks_columns(path, list(schema), height, stats.skips):
                continue
            if progress is not None:
                progress(path.stat().st_size)
            usable.append((f_idx, os.path.abspath(path)))  # a worker's working directory is not ours
            stats.quotes += height
            if schema["price"] != pl.Null:
                kinds.add(schema["price"].is_integer())
        names = [p.name for p in files]
        where = lambda f, r: parquet_position(names[f], r)  # noqa: E731
        if not usable:
            return _Prepared(None, where, pl.DataFrame({c: [] for c in REQUIRED_COLUMNS}))  # as one process
        return _Prepared(ParquetSource(tuple(usable), len(kinds) > 1), where)
    table, row_where = load_table(files, fmt, stats, progress, line_only=line_only, inputs=inputs)
    source = SplitSource(str(workdir), shards)
    table = table.with_row_index("_row")
    part = table.select(partition_expr(shards).alias("_p")).get_column("_p")
    for k in range(shards):
        table.filter(part == k).write_parquet(source.path(k))
    return _Prepared(source, lambda f, r: row_where(r))


def _events(source: Source, shards: int) -> list[list[str]]:
    return shard_events(source, shards) if isinstance(source, ParquetSource) else [[] for _ in range(shards)]


#: Seconds between two looks at the cluster while waiting for the shards' tasks.
_POLL_S: Final = 1.0
#: How long a local cluster of this process may have no worker at all before the run gives up:
#: its nannies restart a worker that died within a second or two; none at all for this long means
#: they are gone too (killed, or interrupted by a Ctrl-C this process ignores, e.g. as a script's
#: background job), and the tasks would wait for ever.
NO_WORKER_S: Final = 15.0


def _next_finished(finished: Any, local: Client | None, unfinished: int, total: int) -> Any:
    """The next task to end, from ``finished``; while none does, each :data:`_POLL_S` a look at
    the ``local`` cluster (``None``: a remote scheduler, waited for): no worker for
    :data:`NO_WORKER_S` is a ClusterError."""
    import queue
    import time

    no_worker_since: float | None = None
    while True:
        try:
            return finished.get(timeout=_POLL_S)
        except queue.Empty:
            if local is None or local.scheduler_info().get("workers"):
                no_worker_since = None
                continue
            now = time.monotonic()
            no_worker_since = now if no_worker_since is None else no_worker_since
            if now - no_worker_since >= NO_WORKER_S:
                raise ClusterError(
                    f"workers: every worker of the local Dask cluster has ended and none came back within "
                    f"{NO_WORKER_S:g} s ({unfinished} of {total} shards unfinished); killed, or interrupted by a "
                    "signal this process ignores"
                ) from None


def _gather(client: Client, futures: list[Any], on_shard: OnShard | None) -> list[Any]:
    """Every task's result, in shard order; a failed task's error raised as a DropEngineError
    (itself when it is one: bad input is reported as it is by one process). A local cluster that
    lost every worker for :data:`NO_WORKER_S` is a ClusterError, not a wait for ever (break22's
    B22-1); a remote scheduler's workers may come and go (scaling), so it is waited for."""
    import queue

    out: dict[int, Any] = {}
    finished: queue.SimpleQueue[Any] = queue.SimpleQueue()  # each task as it ends (done, failed or cancelled)
    for fut in futures:
        fut.add_done_callback(finished.put)
    own = getattr(client, "cluster", None) is not None  # a LocalCluster this process started
    try:
        for _ in futures:
            fut = _next_finished(finished, client if own else None, len(futures) - len(out), len(futures))
            try:
                part = fut.result()
            except DropEngineError:
                raise
            except Exception as exc:
                raise ClusterError(f"cluster: a shard task failed ({type(exc).__name__}: {exc})") from None
            out[part.shard] = part
            if on_shard is not None:
                on_shard(part.shard)
    finally:
        for fut in futures:
            fut.cancel()
    return [out[k] for k in sorted(out)]


def _in_replay_order(client: Client, source: Source, events: list[list[str]], task: Callable[..., Any],
                     args: tuple[Any, ...], on_shard: OnShard | None) -> tuple[list[Any], pl.DataFrame | None]:
    """Every shard's ``task(source, shard, events[shard], *args)``, the rows in core/merge.py's
    replay order: :func:`dropengine.io.replay.in_replay_order` across the shards. The first run
    orders Parquet rows by every row's time; when a row the detector skipped had set its file's
    clock (a shard says so of its own held rows) and that changes what a detection reads
    (:func:`~dropengine.io.tables.held_rows_reorder`, one process's decision, over every shard's
    held rows), every task runs again with them holding no clock (the same rows: the detector
    judges a row alone). When it changes only the held rows' order among themselves, the parts
    stand and that order (their ``_f, _r``) is returned for the skip report (review23's R23-4);
    else ``None``. ``on_shard`` is told of the first run's tasks."""

    def run(src: Source, told: OnShard | None) -> list[Any]:
        return _gather(client, [client.submit(task, src, k, events[k], *args, pure=False)
                                for k in range(len(events))], told)

    parts = run(source, on_shard)
    if not any(p.moved for p in parts):  # no held row set a clock: the order is the rule's
        return parts, None
    assert isinstance(source, ParquetSource)
    held = pl.concat([p.held for p in parts]).sort("_f", "_r")
    rows = tuple((int(f), group.get_column("_r")) for (f,), group in held.group_by("_f", maintain_order=True))
    # what that changes: the files' times of the held rows' files, read here
    paths = dict(source.files)
    reorder = held_rows_reorder(len(source.files), ((f, _times(paths[f]), r) for f, r in rows))
    if not reorder.detect:
        return parts, reorder.skips
    del parts  # (memory: the first run's results go before the second runs)
    return run(replace(source, held=rows), None), None


def _order(keys: list[pl.DataFrame]) -> pl.Series:
    """The merge order: indices into the concatenation of the shards' alerts (in shard order)
    sorted by their order keys; stable, so one quote's alerts keep their order."""
    return (pl.concat(keys).with_row_index("_n").sort(list(ORDER_KEY), maintain_order=True)
            .get_column("_n"))


def _sum_counters(parts: Sequence[EngineCounters]) -> EngineCounters:
    return EngineCounters(**{f.name: sum(getattr(c, f.name) for c in parts) for f in fields(EngineCounters)})


@dataclass(frozen=True, slots=True)
class ShardedDetect:
    """The merged result of a sharded detection: what :func:`dropengine.io.replay.replay_batch`
    gives one process (the same alerts table, values, counters and skip counts)."""

    alerts: pl.DataFrame
    counters: EngineCounters
    skipped: dict[str, int]
    shards: int
    #: the alerts as values, when the engine built them (signals on); ``None``: price drops
    #: alone, built from :attr:`alerts` and :attr:`price_types` on demand, a chunk at a time
    values: tuple[Alert, ...] | None = None
    price_types: pl.DataFrame = field(default_factory=pl.DataFrame)

    def value_chunks(self, size: int = 1 << 16) -> Iterator[list[Alert]]:
        """The alerts as values (:meth:`BatchResult.alert_values`) in detection order, ``size``
        at a time: writing them never holds all of them as Python objects at once."""
        if self.values is not None:
            for lo in range(0, len(self.values), size):
                yield list(self.values[lo:lo + size])
            return
        for lo in range(0, self.alerts.height, size):
            part = BatchResult(self.alerts.slice(lo, size), EngineCounters(), {},
                               price_types=self.price_types.slice(lo, size))
            yield list(part.drops())

    def alert_values(self) -> list[Alert]:
        return [a for chunk in self.value_chunks() for a in chunk]


def detect_sharded(
    client: Client,
    paths: Sequence[str | Path],
    options: DetectOptions,
    fmt: str = "auto",
    stats: ReplayStats | None = None,
    *,
    shards: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_shard: OnShard | None = None,
    progress: Callable[[int], None] | None = None,
    inputs: InputOptions = DEFAULT_INPUTS,
) -> ShardedDetect:
    """:func:`dropengine.io.replay.replay_batch` on ``client``'s cluster: the same alerts, in the
    same order, the same counters, and ``stats`` filled as it fills them (formats, quotes, the
    skips with their positions in the input).

    ``progress`` is told the bytes the client reads; ``on_start`` the number of shards once the
    input is read (before any task runs); ``on_shard`` each shard as its task finishes.
    ``inputs``: how the files are read (:class:`~dropengine.io.inputs.InputOptions`), as replay reads them."""
    st = stats if stats is not None else ReplayStats()
    n = shard_count(client, shards)
    with tempfile.TemporaryDirectory(prefix="dropengine-shards-") as tmp:
        prep = _prepare(paths, fmt, st, n, Path(tmp), options.detects_lines, progress, inputs)
        if prep.source is None:
            assert prep.empty is not None
            res: BatchResult = detect_counted(prep.empty, options)
            return ShardedDetect(res.alerts, res.counters, res.skipped, n, tuple(res.alert_values()))
        if on_start is not None:
            on_start(n)
        per_reason = st.skips.per_reason
        parts: list[_DetectPart]
        parts, skips = _in_replay_order(client, prep.source, _events(prep.source, n), _detect_task,
                                        (options, per_reason), on_shard)
    order = _order([p.keys for p in parts])
    alerts = pl.concat([p.alerts for p in parts], how="diagonal_relaxed")[order]
    values: tuple[Alert, ...] | None = None
    flags = pl.DataFrame()
    if all(p.values is not None for p in parts):
        values_all = [a for p in parts if p.values is not None for a in p.values]
        values = tuple(values_all[i] for i in order.to_list())
    else:  # price drops alone: built from the merged table, each price with its arrival type
        flags = pl.concat([p.price_types for p in parts])[order]
    skipped: dict[str, int] = {}
    for p in parts:
        for reason, count in p.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    counters = _sum_counters([p.counters for p in parts])
    # as replay_batch: rows the detector set aside before detection are skips, in input order (the
    # rule's order of the held rows when only theirs differs from the first run's: R23-4)
    rejected = pl.concat([p.rejected for p in parts])
    if skips is None:
        rejected = rejected.sort(list(ORDER_KEY), maintain_order=True)
    else:
        rejected = skips.cast({c: rejected.schema[c] for c in ("_f", "_r")}).join(
            rejected, on=["_f", "_r"], maintain_order="left").select(rejected.columns)
    st.skips.add_counted(
        ((prep.where(f, r), reason, partial(str, message)) for _, f, r, reason, message in rejected.iter_rows()),
        skipped,
    )
    st.quotes = max(0, st.quotes - sum(skipped.values()))
    return ShardedDetect(alerts, counters, skipped, n, values, flags)


@dataclass(frozen=True, slots=True)
class ShardedBacktest:
    """A sharded backtest: the single-process :class:`Backtest`, and how many shards ran."""

    backtest: Backtest
    shards: int


def backtest_sharded(
    client: Client,
    paths: Sequence[str | Path],
    cfg: BacktestConfig,
    options: DetectOptions,
    fmt: str = "auto",
    stats: ReplayStats | None = None,
    *,
    shards: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_shard: OnShard | None = None,
    progress: Callable[[int], None] | None = None,
    inputs: InputOptions = DEFAULT_INPUTS,
) -> ShardedBacktest:
    """:func:`dropengine.analysis.backtest.run_backtest` over the quotes of ``paths`` (read as
    ``dropengine backtest`` reads them) on ``client``'s cluster: the same per-alert table (the
    ``alert`` numbers in the single-process detection order), summary, counters and warnings.
    The callbacks as for :func:`detect_sharded` (``on_start`` may stop the run on unusable
    input, as one process stops before detecting)."""
    st = stats if stats is not None else ReplayStats()
    n = shard_count(client, shards)
    with tempfile.TemporaryDirectory(prefix="dropengine-shards-") as tmp:
        prep = _prepare(paths, fmt, st, n, Path(tmp), options.detects_lines, progress, inputs)
        if on_start is not None:
            on_start(n)
        if prep.source is None:
            assert prep.empty is not None
            m = measure_alerts(prep.empty, cfg, options)
            return ShardedBacktest(assemble_backtest(m.table, m.counters, cfg, options, m.books, m.fair_failed), n)
        parts: list[_BacktestPart]
        # (a backtest has no skip report: the held rows' own order is nothing to it)
        parts, _ = _in_replay_order(client, prep.source, _events(prep.source, n), _backtest_task, (cfg, options),
                                    on_shard)
    order = _order([p.keys for p in parts])
    table = pl.concat([p.table for p in parts], how="vertical_relaxed")[order]
    table = table.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("alert"))
    books = frozenset().union(*(p.books for p in parts))
    bt = assemble_backtest(table, _sum_counters([p.counters for p in parts]), cfg, options, books,
                           sum(p.fair_failed for p in parts))
    return ShardedBacktest(bt, n)
