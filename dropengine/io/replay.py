"""Replay recordings through an engine: read, merge by clock, decode, detect. No printing.

:func:`replay` is a generator of alerts in detection order, so a caller can stream them
out as they come; :class:`ReplayStats` (filled as it runs) holds what was read and skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

from ..core.alerts import Alert
from ..core.engine import DropEngine, EngineCounters
from ..core.errors import ConfigError
from ..core.merge import merge_by_clock
from ..core.options import resolve
from ..core.quote import Quote
from ..core.rules import MAX_ABS_PRICE, MIN_ABS_PRICE
from ..core.skips import SkipLog
from ..formats.frames import FrameDecoder, envelope_clock
from ..formats.fused import FusedFrames, TypedEnvelope, decode_strict, envelope_top, typed_envelope
from ..formats.jsonline import SKIPPED, decode_json, decode_line
from ..formats.tables import LINE_ONLY_COLUMN, QUOTE_COLUMNS, TEXT_COLUMNS
from .files import expand_paths, guarded, lines, open_bytes
from .inputs import DEFAULT_INPUTS, InputOptions
from .recordings import Envelope, Progress, Snapshot, _resolve, open_recordings, read_recording
from .tables import (
    STAMP_COLUMN,
    ParquetPlaces,
    listable_rejections,
    needs_float,
    parquet_quote_table,
    parquet_replay_order,
    plain_parquet_schema,
    rejected_detail,
    stamp_column,
)

if TYPE_CHECKING:  # polars loads only when the batch path is used
    import polars as pl

    from ..analysis.backtest import Backtest, BacktestConfig
    from ..analysis.batch import BatchResult
    from ..core.options import DetectOptions

__all__ = ["ReplayStats", "in_replay_order", "load_table", "read_quotes", "replay", "replay_backtest", "replay_batch"]

_BATCH = 4096
#: The fused path applies its observations in smaller batches: an observation is two tuples
#: (tracked by the garbage collector), so a batch of 4096 quotes kept ~8,000 young objects alive
#: across a dozen young collections, each traversing them; applied every ~256 quotes they die
#: young, between collections (callgrind, 30k rows: ~150M fewer instructions, mostly gc).
_FUSED_BATCH = 256


@dataclass(slots=True)
class ReplayStats:
    """What a replay read: files and their formats, quotes, envelope types, skips."""

    formats: dict[str, str] = field(default_factory=dict)
    quotes: int = 0
    skips: SkipLog = field(default_factory=SkipLog)
    envelopes: dict[str, int] = field(default_factory=dict)
    unknown_envelope_types: int = 0

    def unusable_reason(self, counters: EngineCounters | None = None) -> str | None:
        """One line saying why nothing was usable when not one quote was read, else ``None``.

        The one judgement behind "zero usable input is not success" (``replay`` and
        ``backtest`` exit 1 on it): names what each unusable file lacks (its missing
        columns, the foreign format it looks like, why it could not be read), or else sums
        up the skips. A quote filtered out or not alerting still counts as usable, and an
        input with nothing wrong in it that holds no odds (a recording of a quiet hour: only
        ``connected`` and ``heartbeat``; a table with its header only) is empty, not
        unusable: ``None`` here, :meth:`empty_note` says so.

        Whether a price is valid is the engine's judgement (SPEC 3 rule 2), so with the
        detector's ``counters`` an input whose every quote the engine counted ``invalid`` is
        unusable too (a file of decimal odds, such as The Odds API's default ``oddsFormat``).
        """
        if self.quotes > 0:
            if counters is not None and counters.seen > 0 and counters.invalid == counters.seen:
                return (f"no usable quotes in the input: all {counters.invalid:,} prices are invalid American odds "
                        f"(a valid price has {MIN_ABS_PRICE} <= |A| <= {MAX_ABS_PRICE}; decimal odds such as 1.91 "
                        "are not American: from The Odds API, request oddsFormat=american)")
            return None
        skips = self.skips
        if skips.files:
            shown = "; ".join(f"{s.where}: {s.message}" for s in skips.files[:3])
            more = f" (and {len(skips.files) - 3} more files)" if len(skips.files) > 3 else ""
            return f"no usable quotes in the input: {shown}{more}"
        if skips:
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(skips.counts.items(), key=lambda kv: -kv[1]))
            example = f"; the first: {skips.first[0]}" if skips.first else ""
            return f"no usable quotes in the input: every line or row was skipped ({reasons}){example}"
        return None

    def empty_note(self) -> str | None:
        """One line when the input was read without fault but holds no odds rows, else ``None``."""
        if self.quotes > 0 or self.skips:
            return None
        seen = ", ".join(f"{t} {n:,}" for t, n in sorted(self.envelopes.items()))
        return "the input holds no odds rows" + (f" (envelopes: {seen})" if seen else "") + "; nothing to detect"


def read_quotes(
    paths: Sequence[str | Path],
    fmt: str = "auto",
    stats: ReplayStats | None = None,
    progress: Progress | None = None,
    *,
    line_only: bool = False,
    inputs: InputOptions = DEFAULT_INPUTS,
) -> Iterator[tuple[list[Quote], int | None]]:
    """Batches of quotes in replay order, each with the ``now_ms`` that stamps its alerts.

    Directories are expanded into their files, each its own stream; the streams are merged
    by clock; all vendor frames go through one decoder after the merge, which with
    ``line_only`` also yields the line-only observations of SPEC 10 (books that publish a
    spread or total without its price; wanted only when lines are detected). The stamp is
    ``None`` (alerts carry their quote's ``last_update``) except for a The Odds API
    snapshot, whose alerts carry its fetch time. Formats are detected before anything is
    read, so a path that does not exist fails fast with :class:`ConfigError`; a file that
    cannot be read or told is a whole-file skip and the others are read. ``inputs`` says how
    to read them (odds format, column mapping, Betfair quote price).
    """
    if not paths:
        raise ConfigError("paths: give at least one recording")
    st = stats if stats is not None else ReplayStats()
    formats, streams = open_recordings([Path(p) for p in paths], fmt, st.skips, progress, inputs=inputs)
    st.formats.update(formats)
    for given, f in formats.items():
        _check_odds_format(given, f, inputs)
    decoder = FrameDecoder(line_only=line_only)
    batch: list[Quote] = []
    for _, item in merge_by_clock(streams):
        if type(item) is Quote:
            batch.append(item)
        elif type(item) is Envelope:
            batch.extend(decoder.feed(item.obj, st.skips, item.where))
        else:
            assert type(item) is Snapshot
            if batch:
                st.quotes += len(batch)
                yield batch, None
                batch = []
            st.quotes += len(item.quotes)
            yield item.quotes, item.clock
            continue
        if len(batch) >= _BATCH:
            st.quotes += len(batch)
            yield batch, None
            batch = []
    if batch:
        st.quotes += len(batch)
        yield batch, None
    st.envelopes = dict(decoder.envelopes)
    st.unknown_envelope_types = decoder.unknown_types


def replay(
    paths: Sequence[str | Path],
    engine: DropEngine,
    fmt: str = "auto",
    stats: ReplayStats | None = None,
    progress: Progress | None = None,
    *,
    fused: bool = True,
    inputs: InputOptions = DEFAULT_INPUTS,
) -> Iterator[Alert]:
    """Yield the alerts of ``paths`` (see :func:`read_quotes`) in detection order, of the
    types the engine's options ask for (line-only observations are decoded when they
    detect lines).

    An alert's ``timestamp`` is its quote's ``last_update``, or the fetch time of the The
    Odds API snapshot it came from, so the same input always gives the same output.

    Vendor frames (NDJSON) take the fused path (:mod:`dropengine.formats.fused`: typed decode
    straight into detection, the general decoder for whatever it does not take) when the
    engine detects price drops only; ``fused=False`` forces the general decoder. Both give
    the same alerts, counters and skips.
    """
    if fused and type(engine) is DropEngine and not engine.options.signals:
        yield from _replay_fused(paths, engine, fmt, stats, progress, inputs)
        return
    observe = engine.observe_many
    for batch, stamp in read_quotes(paths, fmt, stats, progress, line_only=engine.options.detects_lines,
                                    inputs=inputs):
        yield from observe(batch, stamp)


class Frame(NamedTuple):
    """A vendor envelope the fused path decoded (typed), with its line and position; ``obj`` is
    the line decoded the general way when it was (:func:`~dropengine.formats.fused.typed_envelope`)."""

    where: str
    line: bytes
    env: TypedEnvelope
    obj: Any = None


def _fused_frames(
    path: Path, skips: SkipLog, progress: Progress | None, clocked: bool = True
) -> Iterator[tuple[int, Any]]:
    """The ``frames`` reader (recordings' ``_frames``: same lines, positions, skips and clock),
    but a line the fused path takes comes as a typed :class:`Frame`. Without ``clocked`` every
    clock is 0 (a stream merged with no other: its clock is never read).

    A line the typed schema does not take whole (an unknown field, an odd value, not JSON)
    is decoded here exactly as ``_frames`` decodes it (same call, same stack depth), so a line
    the general path skips is skipped alike; its known fields may still make a Frame."""
    name = path.name
    clock = 0
    with open_bytes(path, progress) as fh:
        for lineno, line in lines(fh):
            where = f"{name}:{lineno}"
            env = decode_strict(line)
            if env is not None:
                if clocked:
                    clock = envelope_top(env, clock)
                yield clock, Frame(where, line, env)
                continue
            obj = decode_line(line, where, "frames", skips)
            if obj is SKIPPED:
                continue
            if clocked:
                clock = envelope_clock(obj, clock)
            typed = typed_envelope(obj)
            yield clock, (Envelope(where, obj) if typed is None else Frame(where, line, typed, obj))


#: The formats whose prices ``inputs.odds_format`` says how to read: quote tables (a Betfair
#: recording's are decimal by its format, converted whatever the flag)
_ODDS_FORMAT_READERS: Final = frozenset({"quotes", "betfair", "skipped"})


def _check_odds_format(given: str, fmt: str, inputs: InputOptions) -> None:
    """Refuse an odds format other than American for a file whose format has American prices
    by its own contract (vendor frames, SSE, The Odds API responses): read as American the
    decimal prices of The Odds API's ``oddsFormat=decimal`` would all be invalid, and a flag
    that is ignored says nothing. ConfigError naming ``--odds-format``, the file and its format."""
    if inputs.odds_format != "american" and fmt not in _ODDS_FORMAT_READERS:
        hint = "; request oddsFormat=american from The Odds API" if fmt == "theoddsapi" else ""
        raise ConfigError(
            f"odds_format: --odds-format {inputs.odds_format} reads quote tables (CSV, Parquet, NDJSON rows); "
            f"{Path(given).name} is {fmt}, whose prices are American by its format{hint}")


def _replay_fused(
    paths: Sequence[str | Path], engine: DropEngine, fmt: str, stats: ReplayStats | None, progress: Progress | None,
    inputs: InputOptions,
) -> Iterator[Alert]:
    """:func:`replay` with the fused frames path (an engine detecting price drops only)."""
    if not paths:
        raise ConfigError("paths: give at least one recording")
    st = stats if stats is not None else ReplayStats()
    skips = st.skips
    # open_recordings, with the fused reader for vendor frames (every other format as there)
    opened: list[Iterator[tuple[int, Any]] | Path] = []
    for given in expand_paths([Path(p) for p in paths], skips):
        resolved = _resolve(given, fmt, skips, inputs)
        if resolved is None:
            st.formats[str(given)] = "skipped"
            continue
        p, f = resolved
        st.formats[str(given)] = f
        _check_odds_format(str(given), f, inputs)
        # a frames reader is a generator (nothing read before its first item): made below, once
        # the number of streams says whether clocks are needed
        opened.append(p if f == "frames" else read_recording(p, f, skips, progress, inputs=inputs))
    # one stream is not merged: its clocks are never read, so the frames reader makes none
    clocked = len(opened) > 1
    streams = [guarded(s, _fused_frames(s, skips, progress, clocked), skips) if isinstance(s, Path) else s
               for s in opened]
    decoder = FrameDecoder()
    frames = FusedFrames(decoder)
    apply = frames.envelope
    observe = engine._observe_prices
    batch: list[Any] = []
    # alerts of the observations a large envelope applied while it was decoded (flush, below)
    flushed: list[Alert] = []

    def flush() -> None:
        """What ``batch`` holds, applied in the middle of a large envelope (``FusedFrames.envelope``
        calls it every few rows): its observation tuples die young, before a collection traverses them."""
        st.quotes += len(batch)
        flushed.extend(observe(batch, None))
        batch.clear()  # (in place: the envelope goes on appending to it)

    # merged even when one (monotone then): a line is decoded at the general path's stack depth
    for _, item in merge_by_clock(streams):
        kind = type(item)
        if kind is Frame:
            obj = item.obj
            if not apply(item.env, item.line, item.where, skips, batch, None if obj is None else obj["data"], flush):
                # a resumed initial_state (SPEC 8): the general decoder's, called as read_quotes calls it
                batch.extend(decoder.feed(decode_json(item.line) if obj is None else obj, skips, item.where))
            if flushed:  # the envelope's last rows too: a caller sees whole envelopes applied at a yield
                flush()
                yield from flushed
                flushed.clear()
            if len(batch) >= _FUSED_BATCH:
                st.quotes += len(batch)
                yield from observe(batch, None)
                batch = []
            continue
        elif kind is Quote:
            batch.append(item)
        elif kind is Envelope:
            batch.extend(decoder.feed(item.obj, skips, item.where))
        else:
            assert kind is Snapshot
            if batch:
                st.quotes += len(batch)
                yield from observe(batch, None)
                batch = []
            st.quotes += len(item.quotes)
            yield from engine.observe_many(item.quotes, item.clock)
            continue
        if len(batch) >= _BATCH:
            st.quotes += len(batch)
            yield from observe(batch, None)
            batch = []
    if batch:
        st.quotes += len(batch)
        yield from observe(batch, None)
    st.envelopes = dict(decoder.envelopes)
    st.unknown_envelope_types = decoder.unknown_types


def replay_batch(
    paths: Sequence[str | Path],
    fmt: str = "auto",
    stats: ReplayStats | None = None,
    progress: Progress | None = None,
    *,
    inputs: InputOptions = DEFAULT_INPUTS,
    **detect_args: Any,
) -> BatchResult:
    """The alerts of ``paths`` through the columnar path (:func:`dropengine.analysis.batch.detect`).

    Same input order and stamps as :func:`replay`, so the same alerts. Parquet quote tables
    are read straight into polars (per-file running-max clocks, then one stable sort that
    reproduces the k-way merge); every other format is read by the streaming readers and
    only detection is columnar. Rows the detector rejects are reported in ``stats.skips``.
    """
    from ..analysis.batch import detect_counted

    st = stats if stats is not None else ReplayStats()
    keywords = dict(detect_args)
    options = resolve(keywords.pop("options", None), keywords)

    def detect(t: pl.DataFrame) -> BatchResult:
        return detect_counted(t, options, timestamp_column=stamp_column(t.columns))

    # (loaded by in_replay_order, so that a second run holds only the reordered table)
    table, where, result, skips = in_replay_order(
        lambda: load_table(paths, fmt, st, progress, line_only=options.detects_lines, inputs=inputs),
        detect, lambda r: r.skipped_rows.get_column("row"))
    # rows the detector dropped before detection are skips, as a reader's are; a row it
    # judged an invalid price is the engine's `invalid` count, as on the stream engine
    rejected = result.skipped_rows
    if skips is not None:  # in the rule's order (only theirs differs from the table's: review23's R23-4)
        rejected = skips.cast(rejected.schema["row"]).to_frame("row").join(rejected, on="row", maintain_order="left")
    place = where.file_row if isinstance(where, ParquetPlaces) else None  # (a price as its file holds it)
    st.skips.add_counted(
        ((where(row), reason, partial(rejected_detail, table, row, reason, None if place is None else place(row)))
         for row, reason in listable_rejections(rejected, st.skips.per_reason).iter_rows()),
        result.skipped,
    )
    st.quotes = max(0, st.quotes - sum(result.skipped.values()))  # rows the detector rejected were not usable
    return result


_R = TypeVar("_R")


def in_replay_order(
    load: Callable[[], tuple[pl.DataFrame, Callable[[int], str]]], run: Callable[[pl.DataFrame], _R],
    held: Callable[[_R], pl.Series],
) -> tuple[pl.DataFrame, Callable[[int], str], _R, pl.Series | None]:
    """``run`` (a detection: :func:`replay_batch`'s, the backtest's) on the table ``load`` gives
    (:func:`load_table`'s table and positions) in core/merge.py's replay order: the table and
    positions it ran on (every usable row in the rule's order), the result, and the held rows (table
    rows) in the rule's order when only theirs differs from the table's (``None``: the table's is).

    :func:`load_table` orders Parquet files by every row's time: whether a row is skipped is the
    detector's judgement (``held``: the table rows ``run``'s result skipped). It is a judgement of
    the row alone, so the same rows are skipped in any order, and a skipped row moves nothing: when
    one of them had set its file's clock higher so that the usable rows' clocks change (a bad row
    ahead of its file's next usable rows: :func:`~dropengine.io.tables.held_rows_reorder`), ``run``
    runs again in the rule's order (:func:`~dropengine.io.tables.parquet_replay_order`); when only
    the skipped rows' order among themselves changes (the skip report's: review23's R23-4), the
    result stands and their order is returned, for the caller's report. Every other input is in the
    rule's order as loaded (one Parquet file; the row readers): one run. The sharded path decides
    with the same function (cluster/shard.py)."""
    table, where = load()
    result = run(table)
    order = parquet_replay_order(table, where, held(result))
    if order.again is None:
        return table, where, result, order.skips
    table, where = order.again
    del result  # (memory: the first run's alerts and columns go before the second runs: review22 R22-10)
    return table, where, run(table), None


def replay_backtest(
    table: pl.DataFrame, where: Callable[[int], str], config: BacktestConfig, options: DetectOptions
) -> Backtest:
    """:func:`~dropengine.analysis.backtest.run_backtest` of a table of :func:`load_table`
    (positions ``where``) in core/merge.py's replay order (:func:`in_replay_order`), so the
    backtest measures the alerts :func:`replay_batch` gives for the same input. (The caller holds
    ``table``: a second run holds the reordered copy beside it.)"""
    from ..analysis.backtest import assemble_backtest, measure_alerts

    stamp = stamp_column(table.columns)
    # (a backtest has no skip report: the held rows' own order is nothing to it)
    _, _, m, _ = in_replay_order(lambda: (table, where),
                                 lambda t: measure_alerts(t, config, options, timestamp_column=stamp), lambda m: m.held)
    return assemble_backtest(m.table, m.counters, config, options, m.books, m.fair_failed)


def load_table(
    paths: Sequence[str | Path],
    fmt: str = "auto",
    stats: ReplayStats | None = None,
    progress: Progress | None = None,
    *,
    line_only: bool = False,
    inputs: InputOptions = DEFAULT_INPUTS,
) -> tuple[pl.DataFrame, Callable[[int], str]]:
    """All quotes of ``paths`` as one table in replay order, and a row -> position function.

    Parquet quote tables go straight into polars (per-file running-max clocks, then one
    stable sort that reproduces the k-way merge); every other format is read by the
    streaming readers. Several Parquet files stand in the order of every row's time: a row the
    detector will skip still moves its file's clock here, so detect through
    :func:`in_replay_order` (as :func:`replay_batch` and :func:`replay_backtest` do) for
    core/merge.py's order. A ``_now`` column carries each row's alert stamp when it differs
    from ``last_update`` (The Odds API snapshots). With ``line_only`` the decoders also give
    SPEC 10's line-only observations; a Boolean ``line_only`` column marks them when
    there is any (a null price there is no suspension).
    """
    st = stats if stats is not None else ReplayStats()
    if not paths:
        raise ConfigError("paths: give at least one recording")
    files = [Path(p) for p in paths]
    if (inputs.plain_tables and fmt in ("auto", "quotes")
            and all(p.is_file() and p.name.lower().endswith(".parquet") for p in files)
            and all(plain_parquet_schema(p) for p in files)):
        for p in files:
            st.formats[str(p)] = "quotes"
        # (as read, in the file's chunks: a one-chunk copy here saved the signals ~650 MiB of peak at
        # 10M quotes but cost them 0.45-0.75 s of a 4.3-5.3 s process; benchmarks/README.md, session 14)
        table, where = parquet_quote_table(files, st.skips, progress)
        st.quotes = table.height
        return table, where
    return _decoded_table(paths, fmt, st, progress, line_only, inputs)


def _decoded_table(
    paths: Sequence[str | Path], fmt: str, st: ReplayStats, progress: Progress | None, line_only: bool,
    inputs: InputOptions,
) -> tuple[pl.DataFrame, Callable[[int], str]]:
    """The quotes of the streaming readers as one table. The price column is Int64 while
    every price is an int within int64, else Float64 with :data:`PRICE_INT_COLUMN` saying
    which prices arrived as ints, so the batch alerts keep each price's type (SPEC 4)."""
    import polars as pl

    from ..analysis.batch import PRICE_INT_COLUMN

    cols: dict[str, list[Any]] = {c: [] for c in QUOTE_COLUMNS}
    now: list[int] = []
    is_int: list[bool] = []
    marks: list[bool] = []  # the line-only observations (SPEC 10)
    all_int64 = True
    for batch, stamp in read_quotes(paths, fmt, st, progress, line_only=line_only, inputs=inputs):
        for q in batch:
            marks.append(q.line_only)
            for c in QUOTE_COLUMNS:
                cols[c].append(getattr(q, c))
            price = q.price
            # a null price is never printed; it keeps an Int64 column
            is_int.append(price is None or type(price) is int)
            if price is not None and needs_float(price):  # a float, or an int no Int64 holds
                all_int64 = False
            now.append(q.last_update if stamp is None else stamp)
    schema = {"price": pl.Int64 if all_int64 else pl.Float64, "line": pl.Float64, "last_update": pl.Int64,
              **{c: pl.String for c in TEXT_COLUMNS}}
    if not all_int64:
        cols["price"] = [_as_float(p) for p in cols["price"]]
    table = pl.DataFrame(cols, schema=schema).with_columns(pl.Series(STAMP_COLUMN, now, dtype=pl.Int64))
    if not all_int64:
        table = table.with_columns(pl.Series(PRICE_INT_COLUMN, is_int, dtype=pl.Boolean))
    if any(marks):  # only then: a table without line-only rows keeps today's columns
        table = table.with_columns(pl.Series(LINE_ONLY_COLUMN, marks, dtype=pl.Boolean))
    return table, lambda i: f"quote {i + 1}"


def _as_float(price: int | float | None) -> float | None:
    """A price for a Float64 column: an integer too large for a float (an invalid price the
    engine counts as such) becomes an infinity of its sign, which is invalid too."""
    if price is None:
        return None
    try:
        return float(price)
    except OverflowError:
        return math.inf if price > 0 else -math.inf
