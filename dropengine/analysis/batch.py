"""Vectorized (columnar) drop detection over a whole table of quotes, in polars.

The streaming :class:`~dropengine.core.engine.DropEngine` takes one quote at a time; a backtest
over months of recorded odds wants the whole table at once. :func:`detect` applies every
rule of SPEC section 3 to a polars ``DataFrame``/``LazyFrame`` of quotes (SPEC section 2
columns) and returns the alerts (SPEC section 4 fields) in detection order. The contract is
equivalence: on any input, the batch path gives exactly the alerts of the streaming engine
fed the same rows in order (a hypothesis property test and the real NFL data check it).

How the rules become column operations, per key ``(event_id, bookmaker, side)``, after one
stable sort by key and input position:

1. *invalid*: a non-null price that is not a valid American price; dropped first, it never
   touches a key's state;
2. *stale*: ``last_update`` below the running maximum of the key's earlier (valid or null)
   rows; dropped;
3. *suspension*: a null price; with re-priming (the default) each null starts a new
   *segment* of the key, and the first price of a segment primes silently;
4. *repeat*: a price with the same cents as the previous accepted price of the segment;
   a *run* is a maximal stretch of equal cents, and only a run's first row is a move;
5. ``reference="last"``: each move is measured against the previous run's first row (the
   stored price keeps the form in which it was first seen, and ``elapsed_ms`` counts from
   it) — a shift, fully vectorized. ``reference="anchor"`` is path-dependent (the anchor
   moves only when an alert fires), so it runs a tight loop over the moves alone, not over
   every row: its cost is one Python step per price change (repeats and stale rows are
   removed in bulk first);
6. threshold, direction and the attribute filters exactly as in the streaming engine: every
   constant and formula comes from :mod:`dropengine.core.rules` (``valid_price_expr``,
   ``cents_expr``, ``prob_move_expr``, ``direction_expr`` restate its functions as polars
   expressions with the same float operations, and tests check them equal; the threshold is
   compared on the written delta, ``rules.round_delta``, as the engine does), and the filter is
   the one :class:`~dropengine.core.filters.AlertFilter` (``filter_expr``).

Prices keep the type they arrived with (SPEC 4): see :data:`PRICE_INT_COLUMN` and
:meth:`BatchResult.drops`.

The signals of SPEC 10-12 (``types``, ``cooldown_ms``; off by default, and then none of this
runs and the output is 0.1's, byte for byte):

- *line series* (SPEC 10) are a second key column: the same passes (stale, suspension
  segments, priming, runs of equal lines) keyed on ``(event_id, bookmaker, line side)``
  (:func:`rules.line_side_of`) with the line the side spells as the value
  (:func:`rules.series_line`). A row with an invalid price observes neither series; a
  line-only row (:data:`~dropengine.formats.tables.LINE_ONLY_COLUMN`) observes only its line
  series, and its empty price is no suspension. The price riding on a line is that of its
  latest observation (a repeat updates it, a suspension quoted at it makes it null), so
  ``prev_price`` under ``last`` is a shift; under ``anchor`` a tight Python loop over the line
  changes and suspensions (as for prices) tracks the latest price seen at the anchor line.
  Points, direction and key numbers come from :mod:`dropengine.core.rules` (``line_points``,
  ``line_direction``, ``key_numbers_crossed``, ``written_line``), called per detected move;
- *cooldown and steam* (SPEC 11-12) are a pass over the detected moves in arrival order (a
  quote's price move before its line move) through the stream engine's own objects,
  :class:`~dropengine.core.steam.Cooldown` and :class:`~dropengine.core.steam.SteamTracker`,
  routed by the engine's own :class:`~dropengine.core.steam.SignalRouter` (cooldown, ``types``,
  the filter, what counts for steam); :meth:`BatchResult.alert_values` gives the returned alerts
  as values.

All of the above is the *pure* path (``accel="pure"``). The *compiled* path (``accel="fast"``, or
``"auto"`` with numba installed: :mod:`dropengine.fast`) gives the same result (frame, dtypes,
values, counters, skips; the conformance suite runs on both and hypothesis properties compare
them on hostile tables) another way, in :func:`_compiled_passes`: the key columns become dense
integer codes (a Categorical's codes; text encoded once; every rule on text judged once per
distinct value), the row checks are per-code flags in :func:`_load`'s order of reasons, then ONE
pass in arrival order (:func:`dropengine.fast.kernel.detect_pass`) does the price and line rules
of SPEC 3 and 10 for every key, no sort, and cooldown and steam are a second compiled pass over
the moves (:func:`dropengine.fast.signals.route`, a restatement of ``SignalRouter`` tested equal
to it). The price drops' columns are written by the same code as the pure path's (``_alerts``,
``_typed``); line moves and steams are written as columns too (``_line_table``, ``_steam_table``:
each text rule of SPEC 10-11 called once per distinct side or (sport, market, lines) combination,
a steam's fields gathered from its moves' rows), so no Python alert value is built on the way to
the table: :attr:`BatchResult.values` builds them on first use, as the stream engine does
(``_drop_values``, ``_line_values``, :func:`~dropengine.core.steam.steam_alert`), for callers that
iterate values; table writers read :meth:`BatchResult.number_types` instead.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Generic, Protocol, TypeVar, Unpack

import msgspec
import polars as pl

from ..core import rules
from ..core.alerts import ALERT_FIELDS, NUMBER_FIELDS, TIME_FIELDS, Alert, Drop, LineMove, alert_fields, alert_row
from ..core.engine import EngineCounters
from ..core.errors import ConfigError, FeedError
from ..core.filters import AlertFilter
from ..core.options import DetectKeywords, DetectOptions, resolve
from ..core.quote import KINDS
from ..core.sides import canonical_side, parse_side
from ..core.steam import Cooldown, SignalRouter, SteamTracker
from ..fast import resolve_accel
from ..formats.tables import _TRUE_FALSE, LINE_ONLY_COLUMN, REQUIRED_COLUMNS, SKIP_ORDER

__all__ = [
    "ALERT_SCHEMA", "PRICE_INT_COLUMN", "BatchResult", "accepted_quotes", "cents_expr", "detect",
    "detect_counted", "direction_expr", "filter_expr", "prob_move_expr", "valid_price_expr",
]

KEY: Final = ("event_id", "bookmaker", "side")
#: The key of a line series (SPEC 10): the side without its line (``_ls``, rules.line_side_of).
LINE_KEY: Final = ("event_id", "bookmaker", "_ls")
#: the columns a quote table must have: the required fields of :class:`~dropengine.core.quote.Quote`
REQUIRED: Final = REQUIRED_COLUMNS
_META_TEXT: Final = ("kind", "market_key", "market", "player", "home_team", "away_team", "commence_time")
_PLAIN_NUMBER: Final = f"^(?:{rules.PLAIN_NUMBER})$"
_INTEGER_TEXT: Final = f"^(?:{rules.INTEGER_TEXT})$"

#: Optional Boolean input column: true where the row's price arrived as an integer (SPEC 4:
#: prices keep the type they arrived with). A Float64 price column cannot say so by itself
#: once one price of the table is fractional; a table builder that knows each quote's type
#: (``dropengine.io.replay``) sets this column, and the alerts keep each row's type. Without it
#: (or where it is null) the type follows the column: integer columns are ints, float columns
#: floats, text per cell (an integer literal is an int), decimals per value (integral = int).
#: A true flag on a fractional price is ignored (the price stays a float).
PRICE_INT_COLUMN: Final = "_price_int"

#: The working column of :data:`~dropengine.formats.tables.LINE_ONLY_COLUMN` (optional input:
#: true on a line-only observation, SPEC 10, which observes only its line series; read as the
#: row reader reads it: booleans, or the texts ``true``/``false``, empty or null = false).
_LINE_ONLY: Final = "_lo"
#: Working columns of the line series (dropped before the text is joined to alerts).
_LINE_WORK: Final = (_LINE_ONLY, "_l", "_ls")

#: Column order of the alerts frame: the wire order of :class:`~dropengine.core.alerts.Drop`.
ALERT_SCHEMA: Final = ALERT_FIELDS
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Alerts, the engine-equivalent counters, and rows dropped before detection."""

    #: The returned alerts as a table in detection order. With the default types (price drops
    #: only) 0.1's columns (:data:`ALERT_SCHEMA`; text columns Categorical where the input's
    #: were, String otherwise); with other types the columns are
    #: :func:`~dropengine.core.alerts.alert_fields` of the types (a ``type`` column, each
    #: type's own fields, null where a type has none) and the rows
    #: :func:`~dropengine.core.alerts.alert_row`.
    alerts: pl.DataFrame
    counters: EngineCounters
    skipped: dict[str, int]
    #: Input rows not used: ``row`` (0-based position in the input) and ``reason`` (the
    #: skip reasons above, and ``invalid price``), in input order.
    rejected: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={"row": pl.UInt32, "reason": pl.String}))
    #: Per alert row (aligned with :attr:`alerts`): ``prev_int`` and ``new_int``, whether that
    #: price arrived as an integer. The ``alerts`` columns are Int64 when every alert's prices are
    #: integers, else Float64; :meth:`drops` gives each alert its own types back. Empty for a
    #: table of several types (:meth:`alert_values` gives every value its own type).
    price_types: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={"prev_int": pl.Boolean, "new_int": pl.Boolean})
    )
    #: The alerts as values (the signals of SPEC 10-12 are on): a tuple, or (the compiled path)
    #: a :class:`_LazyValues` that builds them on first use; ``None``: :meth:`drops` builds them
    #: from the table. Read :attr:`values`.
    _values: tuple[Alert, ...] | _LazyValues | None = None
    #: Per returned alert (aligned with :attr:`alerts` and :meth:`alert_values`): the 0-based
    #: input position of the quote that produced it (a steam: the quote whose move completed
    #: it). Detection order is this position, ties in the order given; the sharded engine
    #: (``dropengine.cluster``) merges the alerts of its shards by it.
    rows: pl.Series = field(default_factory=lambda: pl.Series("row", [], dtype=pl.UInt32))

    @property
    def values(self) -> tuple[Alert, ...] | None:
        """The alerts as values when the result is of several types (the signals of SPEC 10-12
        are on), in detection order; ``None``: price drops alone (:meth:`drops`). The compiled
        path builds them here, on first use (its table is built column by column)."""
        v = self._values
        return v.get() if isinstance(v, _LazyValues) else v

    @property
    def signals(self) -> bool:
        """Whether the alerts are held as values of several types (:attr:`values` is not
        ``None``), without building them."""
        return self._values is not None

    @property
    def skipped_rows(self) -> pl.DataFrame:
        """The rows of :attr:`rejected` that are skips (a reason of :attr:`skipped`: no quote could
        be built from them, as a row reader skips them), not the invalid prices the engine counts:
        the rows a replay's skip report lists."""
        return self.rejected.filter(pl.col("reason").is_in(list(self.skipped)))

    def number_types(self, names: Iterable[str]) -> dict[str, set[type]]:
        """Per number column of :attr:`alerts` in ``names`` (prices, lines, points:
        :data:`~dropengine.core.alerts.NUMBER_FIELDS`; times:
        :data:`~dropengine.core.alerts.TIME_FIELDS`), the Python types of that field among the
        alert values (``None`` left out): a table writer types its columns by them. The compiled
        path answers from its columns, without building the values."""
        v = self._values
        if isinstance(v, _LazyValues):
            return {c: set(v.numbers.get(c, ())) for c in names}
        if v is None:  # price drops alone: :meth:`drops` types each cell by the column and its flags
            return {c: _drop_number_types(self.alerts, self.price_types, c) for c in names}
        out: dict[str, set[type]] = {}
        for c in names:
            out[c] = {type(x) for a in v if (x := getattr(a, c, None)) is not None}
        return out

    def drops(self) -> list[Drop]:
        """The price-drop alerts as :class:`Drop` values, each price with the type it arrived
        with and ``delta`` an int when both are (SPEC 4), so they serialise byte for byte as the
        streaming engine's alerts do."""
        if self.values is not None:
            return [a for a in self.values if isinstance(a, Drop)]
        flags = self.price_types.iter_rows() if self.price_types.height == self.alerts.height else None
        return _drop_values(self.alerts, flags)

    def alert_values(self) -> list[Alert]:
        """Every returned alert (:class:`Drop`, :class:`LineMove`, :class:`Steam`) in detection
        order, as the streaming engine returns them (byte for byte)."""
        if self.values is not None:
            return list(self.values)
        return list(self.drops())


def _drop_number_types(alerts: pl.DataFrame, flags: pl.DataFrame, name: str) -> set[type]:
    """The types of a price-drops table's number column ``name`` as :func:`_drop_values` gives
    them: an int where the column is an integer column or the row's flag says the price arrived
    as one (``delta``: both), else a float."""
    if name not in alerts.columns:
        return set()
    col = alerts.get_column(name)
    present = col.is_not_null()
    if not present.any():
        return set()
    if col.dtype.is_integer():
        return {int}
    flag: pl.Series | None = None
    if flags.height == alerts.height and name in ("prev", "new", "delta"):
        prev, new = flags.get_column("prev_int"), flags.get_column("new_int")
        flag = {"prev": prev, "new": new, "delta": prev & new}[name].fill_null(False).filter(present)
    if flag is None or not flag.any():
        return {float}
    return {int} if flag.all() else {int, float}


class _LazyValues:
    """Alert values built on first use (:attr:`BatchResult.values`): the compiled path's tables
    are columns, and a caller that writes tables never needs a Python value per alert. ``numbers``
    answers :meth:`BatchResult.number_types` from the columns.

    Built once under a lock (threads reading a result's values at once wait for the one build);
    pickled as its built values (the builder is a closure over the run's columns: a result
    crossing a process, a Dask task's or a pool's, carries its values instead)."""

    __slots__ = ("_build", "_built", "_lock", "count", "numbers")

    def __init__(self, build: Callable[[], tuple[Alert, ...]] | None, count: int,
                 numbers: dict[str, frozenset[type]], built: tuple[Alert, ...] | None = None) -> None:
        if (build is None) == (built is None):
            raise ConfigError("_LazyValues: give exactly one of build and built")
        self._build = build
        self._built = built
        self._lock = threading.Lock()
        self.count = count
        self.numbers = numbers

    def get(self) -> tuple[Alert, ...]:
        built = self._built
        if built is not None:
            return built
        with self._lock:
            if self._built is None:  # (another thread may have built them while this one waited)
                build = self._build
                assert build is not None
                values = build()
                assert len(values) == self.count
                self._built = values
                self._build = None  # the columns it held are no longer needed
            return self._built

    def __reduce__(self) -> tuple[Any, ...]:
        return (_LazyValues, (None, self.count, self.numbers, self.get()))


def _drop_values(alerts: pl.DataFrame, flags: Iterator[tuple[Any, ...]] | None) -> list[Drop]:
    """Rows of an alerts table as :class:`Drop` values; ``flags`` gives per row whether prev and
    new arrived as ints (``delta`` is an int when both did)."""
    out: list[Drop] = []
    fields = ALERT_SCHEMA[1:]  # the Drop's own fields, in its order (type is its tag)
    assert fields == Drop.__struct_fields__
    p_at, n_at, d_at = (fields.index(c) for c in ("prev", "new", "delta"))
    # column lists zipped: cheaper than polars' row tuples
    for row in zip(*(alerts.get_column(c).to_list() for c in fields), strict=True):
        prev_int, new_int = next(flags) if flags is not None else (False, False)
        if prev_int or new_int:
            values = list(row)
            if prev_int:
                values[p_at] = int(values[p_at])
            if new_int:
                values[n_at] = int(values[n_at])
            if prev_int and new_int:
                values[d_at] = int(values[d_at])
            out.append(Drop(*values))
        else:
            out.append(Drop(*row))
    return out


def detect(
    quotes: pl.DataFrame | pl.LazyFrame,
    options: DetectOptions | None = None,
    *,
    timestamp_column: str | None = None,
    accel: str = "auto",
    **keywords: Unpack[DetectKeywords],
) -> pl.DataFrame:
    """Alerts of ``quotes`` in detection order, as the streaming engine would give them.

    The options are :class:`~dropengine.core.options.DetectOptions` (``options=``) or the
    same keywords as :class:`~dropengine.core.engine.DropEngine` takes, not both.
    ``timestamp_column`` names an optional column holding each row's arrival time, used
    as the alert ``timestamp`` (the streaming engine's ``now_ms``); without it, an
    alert's ``timestamp`` is its ``last_update``.

    ``accel`` chooses the engine of the key passes (SPEC 3 and 10): ``"auto"`` the compiled
    kernel (:mod:`dropengine.fast`) when numba is installed, else polars; ``"pure"`` polars;
    ``"fast"`` the kernel (a ConfigError without numba). The results are identical.
    """
    return detect_counted(quotes, options, timestamp_column=timestamp_column, accel=accel, **keywords).alerts


def detect_counted(
    quotes: pl.DataFrame | pl.LazyFrame,
    options: DetectOptions | None = None,
    *,
    timestamp_column: str | None = None,
    accel: str = "auto",
    **keywords: Unpack[DetectKeywords],
) -> BatchResult:
    """Like :func:`detect`, with the counters and the rows skipped before detection."""
    cfg = resolve(options, keywords)
    compiled = resolve_accel(accel)
    meta_of: _MetaOf
    line: _Pass | None = None
    ids: _Ids | None = None
    # The compiled path takes every configuration; past its row limit (int32 rows), ``auto`` runs the
    # pure path as without numba (None), ``fast`` is a ConfigError.
    passes = _compiled_passes(quotes, cfg, timestamp_column, accel == "auto") if compiled else None
    if passes is not None:
        loaded, price, line, meta_of, ids = passes
    else:
        loaded = _load(quotes, timestamp_column, lines=cfg.detects_lines)
        price = _price_pass(loaded.frame, cfg)
        if cfg.detects_lines:
            line = _line_pass(loaded.frame, cfg)
        meta = loaded.frame.drop("_lu", "_p", "_c", "_invalid", "_pint", *_LINE_WORK, strict=False)

        def meta_of(moves: pl.DataFrame, leave: Collection[str] = ()) -> pl.DataFrame:
            return moves.join(meta, on="_i", how="left")

    drops: pl.DataFrame | Callable[[], pl.DataFrame]
    if ids is not None and cfg.signals:
        if "odds_drop" not in cfg.types:
            # no price drop is returned: the routing needs their rows, times and sizes only (a
            # cooldown counts them), and a steam the columns of the few in it
            # (_with_signals_compiled writes those), so their columns are not written here
            drops = (price.fired.with_columns(pl.col("_lu").alias("last_update"), pl.col("_d").alias("delta"))
                     if _drops_read(cfg) else price.fired)  # (their rows alone: nothing reads them)
        else:
            # the drops' columns (polars, outside the GIL) are written in a thread while the line
            # moves' table is written and the moves routed (from the kernel's columns)
            # (the input's text columns nothing reads of the drops' table are not gathered where
            # it is not the returned table: the alerts table gathers them by row itself, and the
            # steams' table does not write them, _STEAM_WRITTEN; the filter reads the others)
            leave = () if _drops_returned(cfg.types) else _UNREAD_BY_SIGNALS
            # (the moves by the thread's arguments, not a closure's cell of this frame: the thread's
            # function goes with the drops' table, and the moves with it)
            drops = _in_thread(functools.partial(_drops_table, meta_of, price.fired, leave, timestamp_column))
        # (memory: the call is handed the only references to the drops' table and to both passes'
        # moves, so that each goes once read: the drops' table once the alerts table has taken its
        # columns (~0.33 GB at 10M quotes), the moves' kernel columns once the moves a result reads
        # are taken out of them (_with_signals_compiled))
        handed = [drops]
        handed_passes = [price, line]
        del drops, passes, price, line
        result = _with_signals_compiled(cfg, loaded, handed_passes, handed, meta_of, timestamp_column, ids)
        return replace(result, alerts=_text_types(result.alerts, loaded.schema))
    alerts = _alerts(meta_of(price.fired), timestamp_column)
    if cfg.signals:  # (the pure path: the compiled path's ids are there whenever signals are)
        result = _with_signals(cfg, loaded, price, alerts, line, meta_of, timestamp_column)
        return replace(result, alerts=_text_types(result.alerts, loaded.schema))
    alerts = alerts.filter(filter_expr(cfg.filter)).sort("_i")
    rows = alerts.get_column("_i").alias("row")
    alerts, types = _typed(alerts, loaded.int_column)
    counters = EngineCounters(
        loaded.seen, price.primed, price.stale, loaded.invalid, price.suspended, price.repeated,
        price.fired.height, alerts.height,
    )
    return BatchResult(_text_types(alerts, loaded.schema), counters, loaded.skipped, loaded.rejected, types, rows=rows)


#: The text columns every alert type takes from its (firing) move's input row as they are
#: (never derived, as kind, market key, player and side may be): the alerts table gathers them
#: once from the input by the alert's row (a steam has no bookmaker: null there).
_FROM_INPUT: Final = ("sport_key", "event_id", "bookmaker", "market", "home_team", "away_team", "commence_time")

#: The text columns of an alerts table that come from the input's columns of the same name.
_TEXT_COLUMNS: Final = ("sport_key", *KEY, *_META_TEXT)
#: The text columns of a table of several alert types whose values are a few words the detector
#: writes (the alert types, the directions, a line move's key numbers, a steam's leader book):
#: Categorical (4 bytes a row) whatever the input, not String (a 16-byte view a row): 5M line
#: moves, ~0.17 GB less in the alerts table, and a Parquet writer takes them as they are (text
#: compares equal; a CSV or NDJSON file holds the same text).
_WORD_COLUMNS: Final = ("type", "direction", "key_numbers", "leader")


def _text_types(alerts: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """The alerts' text columns Categorical where the input's column of that name was
    dictionary-encoded (Categorical or Enum: a Parquet reader's), else String, and in a table of
    several alert types (the signals' :func:`alert_fields`) :data:`_WORD_COLUMNS` Categorical
    (:func:`_column_type`); every path gives the same types, whatever it worked with."""
    casts = []
    signals = "key_numbers" in alerts.columns  # (a signals type's own field: price drops alone have none)
    for c in (*_TEXT_COLUMNS, *(_WORD_COLUMNS if signals else ())):
        if c not in alerts.columns:
            continue
        want = _column_type(c, schema)
        if alerts.schema[c] != want:
            casts.append(pl.col(c).cast(pl.String).cast(want))
    return alerts.with_columns(casts) if casts else alerts


def _typed(alerts: pl.DataFrame, int_column: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The alerts table without its working columns, prices Int64 when every alert's prices
    arrived as ints (else Float64), and the per-row type flags."""
    types = alerts.select(pl.col("_rpint").alias("prev_int"), pl.col("_pint").alias("new_int"))
    all_int = types.height == 0 or bool(types.select(pl.all_horizontal(pl.all()).all()).item())
    price_type = pl.Int64 if (all_int and int_column) else pl.Float64
    alerts = alerts.drop("_i", "_rpint", "_pint").with_columns(pl.col("prev", "new", "delta").cast(price_type))
    return alerts, types


@dataclass(frozen=True, slots=True)
class _Pass:
    """One series pass (price keys or line series): the detected moves (before cooldown and
    filters, in key order) and the counts of the rules that did not fire."""

    fired: pl.DataFrame
    primed: int
    stale: int
    suspended: int
    repeated: int
    #: rows that observed the series (the line series count them; ``seen`` counts every quote)
    seen: int = 0


def _price_pass(frame: pl.DataFrame, cfg: DetectOptions) -> _Pass:
    """SPEC 3 over the price keys. Line-only observations (SPEC 10) are not price quotes."""
    rows = frame.filter(~pl.col(_LINE_ONLY)) if _LINE_ONLY in frame.columns else frame
    w, n_stale = _accept(rows.filter(~pl.col("_invalid")), KEY, ("_lu", "_p", "_c", "_pint"))

    # 3. Suspensions: nulls counted; with re-priming each null opens a new segment.
    is_null = pl.col("_p").is_null()
    n_susp = w.select(is_null.sum()).item() or 0
    seg_start = pl.col("_newkey") | (is_null if cfg.reprime_after_suspension else pl.lit(False))
    w = w.with_columns(seg_start.cum_sum().alias("_s")).filter(~is_null)

    # 4. Priming and repeats: the first price of a segment primes; equal cents repeat.
    first = (pl.col("_s") != pl.col("_s").shift(1)).fill_null(True)
    w = w.with_columns(first.alias("_first"))
    w = w.with_columns((pl.col("_first") | (pl.col("_c") != pl.col("_c").shift(1))).alias("_run"))
    n_primed = w.select(pl.col("_first").sum()).item() or 0
    n_rep = w.height - (w.select(pl.col("_run").sum()).item() or 0)
    runs = w.filter(pl.col("_run"))

    # 5-6. Moves against the reference price, thresholds (rules.crosses: on the written delta in
    # cents, on the probability move with unit=prob).
    thr = rules.threshold_floor(cfg.threshold)
    if cfg.reference == "last":
        moves = runs.with_columns(
            pl.col("_p").shift(1).alias("_rp"),
            pl.col("_c").shift(1).alias("_rc"),
            pl.col("_lu").shift(1).alias("_rlu"),
            pl.col("_pint").shift(1).alias("_rpint"),
        ).filter(~pl.col("_first"))
        moves = _with_delta(moves)
        move = prob_move_expr(pl.col("_rp"), pl.col("_p")) if cfg.unit == "prob" else pl.col("_d")
        fired = moves.filter((move >= thr) | (-move >= thr))
    else:
        fired = _anchor(runs, thr, cfg.unit == "prob")
    return _Pass(fired, n_primed, n_stale, n_susp, n_rep)


class _Coded:
    """A text column as dense integer codes (int32 numpy, -1 for null) and its distinct values
    (``values[code]``): a Categorical's or Enum's physical codes renumbered (the rows use few of
    its categories; no string is materialized per row), other text encoded once first (hashed
    into a Categorical, no sort). Rules that judge text run once per distinct value."""

    __slots__ = ("codes", "has_null", "values")

    def __init__(self, column: pl.Series, kernel: Any) -> None:
        if not isinstance(column.dtype, (pl.Categorical, pl.Enum)):
            column = column.cast(pl.Categorical)
        # the physical codes as polars holds them (UInt32, chunk by chunk: kernel.codes reads each
        # chunk where it is), a null beyond every code
        physical = column.to_physical().cast(pl.UInt32)
        top = physical.max()
        stop = 0 if top is None else int(top) + 1  # type: ignore[arg-type]
        #: whether some row is null (code -1): a rule judging text per row then has that to flag
        self.has_null = bool(physical.null_count())
        if self.has_null:
            physical = physical.fill_null(kernel.NO_CODE)
        # (chunk by chunk where polars holds them: no copy of the column into one array first)
        self.codes, _, first = kernel.codes([c.to_numpy() for c in physical.get_chunks()], stop)
        self.values: list[str] = column.gather(first).cast(pl.String).to_list()

    def of_values(self, np: Any, flags: list[Any], dtype: Any, null: Any) -> Any:
        """Per row, ``flags[code]`` (``null`` for a null)."""
        return np.array([*flags, null], dtype=dtype)[self.codes]


class _MetaOf(Protocol):
    """Joins the rows' text to moves (by their ``_i``): every text column of the input, but for
    those in ``leave`` (the caller reads none of them: they may be left out)."""

    def __call__(self, moves: pl.DataFrame, leave: Collection[str] = ()) -> pl.DataFrame: ...


def _drops_returned(types: Collection[str]) -> bool:
    """Whether the price drops' table is the returned table on the signals path (price drops
    alone, a cooldown on): then it carries every text column itself; otherwise the alerts table
    gathers the input's (:data:`_UNREAD_BY_SIGNALS`). The one place both paths decide it."""
    return set(types) == {"odds_drop"}


def _routes(cfg: DetectOptions) -> bool:
    """Whether routing the detected moves can change anything: a cooldown or steam is on
    (:class:`~dropengine.core.steam.SignalRouter` holds neither otherwise: every move goes, a move
    is returned when its type is asked and the filter accepts it). The one place the compiled
    signals path decides it."""
    return cfg.cooldown_ms > 0 or "steam" in cfg.types


def _drops_read(cfg: DetectOptions) -> bool:
    """Whether anything reads the price moves' columns (beyond their count and rows): they are
    returned, or routed (a cooldown counts them, a steam holds them)."""
    return "odds_drop" in cfg.types or _routes(cfg)


#: The text columns :func:`filter_expr` reads, each with the :class:`AlertFilter` field it tests
#: (the one list: the tables the signals path writes keep these, and may leave out the input's others).
_FILTER_TEXT: Final = {"sport_key": "sports", "event_id": "event_ids", "bookmaker": "bookmakers",
                       "market_key": "markets", "kind": "kinds"}
#: The input's text columns a price drop's table needs on the signals path only where it is the
#: returned table: the alerts table gathers them by row, the steams' table and the filter read none.
_UNREAD_BY_SIGNALS: Final = tuple(c for c in _FROM_INPUT if c not in _FILTER_TEXT)
#: The input's columns the line moves' table (:func:`_line_table`) leaves out of its moves' text:
#: those above, and the input's ``line`` (a line move's table row has no ``line``: its own are the
#: series' lines; 10M quotes: 5M moves' 40 MB gathered, then dropped). Also what a steam's completing drops
#: leave out (:func:`_steam_table`): none of them is in :data:`_STEAM_WRITTEN`.
_LEFT_BY_LINE_TABLE: Final = (*_UNREAD_BY_SIGNALS, "line")


def _compiled_passes(
    quotes: pl.DataFrame | pl.LazyFrame, cfg: DetectOptions, timestamp_column: str | None, fallback: bool = False,
) -> tuple[_Loaded, _Pass, _Pass | None, _MetaOf, _Ids | None] | None:
    """:func:`_load`, :func:`_price_pass` and :func:`_line_pass` by the compiled kernel
    (:func:`dropengine.fast.kernel.detect_pass`): the same checks and skips, then one pass in
    arrival order over integer key ids, no sort. Text is never materialized per row: the key
    columns become dense codes (:class:`_Coded`), every per-side rule (the canonical side, its
    line, its line series) runs once per distinct side, and the moves' columns are gathered
    from the input rows by position (so dictionary-encoded columns stay so). Returns what the
    polars path gives: the loaded counts, both passes' moves, and the join of text to moves;
    and the rows' ids for the compiled signals pass (``None`` without signals: the per-row
    arrays are let go as soon as the pass has run, for the peak memory)."""
    import numpy as np  # numba's own dependency: there whenever the kernel is

    from .. import fast

    fast.warmed()  # (a warm-up started by the caller compiles a cold cache in its thread, not here: B22-8)
    from ..fast import kernel  # numba is loaded here, on the first compiled call only

    plan = _plan(quotes, timestamp_column)
    text = ["sport_key", *KEY, *plan.meta]
    # (a text column of another type, e.g. Int64 ids or kinds, as its text: as the pure load reads it)
    working: list[str | pl.Expr] = [c if _is_text(plan.schema[c]) else pl.col(c).cast(pl.String) for c in text]
    # The times and prices the pass reads are polars' own columns, chunk by chunk where they are
    # (kernel.detect_pass: no numpy copy of either, 10M rows: 2 x 80 MB written once, not twice):
    # so with no null in them (a null price as NaN, beside its mask; a missing or negative time as
    # 0, beside its mask), and an Int64 time column of non-negative times as it is (not written at all)
    lu_expr, lu_missing = plan.lu
    direct = (isinstance(quotes, pl.DataFrame) and plan.schema["last_update"] == pl.Int64
              and not quotes.get_column("last_update").null_count()
              and (quotes.height == 0 or int(quotes.get_column("last_update").min()) >= 0))  # type: ignore[arg-type]
    times = ([pl.col("last_update").alias("_lu"), lu_missing] if direct else
             [lu_expr.fill_null(0).alias("_lu"), lu_missing, lu_expr.is_null().alias("_lu_null")])
    prices: list[pl.Expr] = []
    for price_column in plan.price:
        name = price_column.meta.output_name()
        if name == "_p":
            prices += [price_column.fill_null(math.nan).alias("_p"), price_column.is_null().alias("_p_null")]
        elif name != "_c":  # (no cents of every row, ``_c``: a move's are computed from its price, priced())
            prices.append(price_column)
    working += [*times, *prices, *plan.line, *plan.line_only, *plan.stamp]
    # A DataFrame is selected eagerly: its columns come back chunked as they are (one chunk for
    # one chunk: no rechunk below, numpy views of its numbers), where a LazyFrame's collect cuts
    # every column into morsels (polars 2.1: 10 chunks at 1M rows; rechunking them and copying
    # them out for numpy cost ~10 ms of 1M quotes' detect)
    frame = _computed(functools.partial(quotes.select, *working) if isinstance(quotes, pl.DataFrame)
                      else plan.lf.select(*working).collect)
    _check_stamps(frame, timestamp_column)
    n = frame.height
    if n > fast.MAX_ROWS:  # (rows are int32 in the kernel: kernel.detect_pass)
        if fallback:
            return None  # (``auto``: the pure path, as without numba; a LazyFrame is computed again there)
        raise ConfigError(f"quotes: {n} rows; accel='fast' takes at most {fast.MAX_ROWS} (accel='auto' or 'pure': any)")
    cols = frame.columns
    # (The text columns stay in the chunks they came in, on every path: the moves' and alerts'
    # text is taken from them by row in row order, which :func:`_taker` does by a mask, one walk
    # per chunk. The signals path copied them into one chunk first, for its gathers: 10M quotes,
    # ~0.4-0.6 GB of peak (line_move 3,487 -> 3,083 MiB, steam 3,327 -> 2,693) for no time saved
    # once the gathers are masks.)
    # -- rows no quote could be built from (the reasons and their order as in _load) ------------
    coded = {c: _Coded(frame.get_column(c), kernel) for c in KEY}

    def flagged(flag: pl.Series) -> Any:
        """A Boolean column's rows as numpy bools, or None where no row is flagged: a skip step
        with no row writes no 10M-row array (nor the reasons' temporaries below)."""
        return flag.to_numpy() if flag.any() else None

    bad_field = flagged(frame.get_column("_lu_missing"))
    # sport_key is only judged here, never part of a key: coded only when some row may be flagged
    # (a Categorical's ``== ""`` reads no row when no category is empty; other types, e.g. numbers,
    # are coded, their text judged, as before)
    sport = frame.get_column("sport_key")
    judged = [coded[c] for c in KEY]
    if not isinstance(sport.dtype, (pl.String, pl.Categorical, pl.Enum)) or sport.null_count() or (sport == "").any():
        judged.append(_Coded(sport, kernel))
    for column in judged:
        # a per-row array only when some row is flagged (an empty value or a null): 10M rows a column
        empty = [v == "" for v in column.values]
        if column.has_null or any(empty):
            rows = column.of_values(np, empty, np.bool_, True)
            bad_field = rows if bad_field is None else bad_field | rows
    side = coded["side"]
    canonical: list[str | None] = []
    for v in side.values:
        try:
            canonical.append(canonical_side(v))
        except FeedError:
            canonical.append(None)
    reason = np.zeros(n, np.int8)  # an index into _REASONS (0: none)
    lu = frame.get_column("_lu")
    p = frame.get_column("_p")
    null = frame.get_column("_p_null").to_numpy()
    invalid = frame.get_column("_invalid").to_numpy()
    line_only = frame.get_column(_LINE_ONLY).to_numpy() if _LINE_ONLY in cols else np.zeros(n, np.bool_)

    def line_only_line(codes: Any) -> Any:  # Quote's own check of a line-only observation: a line to observe
        lo = line_only & (reason == 0)
        if not lo.any():
            return None
        at = pl.Series(np.flatnonzero(lo))
        sides = [c for c in canonical if c is not None]
        picked = frame[at]
        sub = pl.DataFrame([
            pl.Series("side", np.array([*canonical, None], dtype=object)[codes[at.to_numpy()]], dtype=pl.String),
            *[picked.get_column(c).cast(pl.String) for c in ("kind", "market_key") if c in cols],
            *[picked.get_column(c) for c in ("line",) if c in cols],
        ])
        no_line = sub.select(
            _quote_line(sub, sides).is_null() | ~pl.col("side").str.contains("@", literal=True)
        ).to_series().to_numpy()
        mask = np.zeros(n, np.bool_)
        mask[at.to_numpy()[no_line]] = True
        return mask

    # a mask (or None: no row) per step of SKIP_ORDER; each row takes the first step it fails (a
    # missing time is the missing step's; a null side too, so never a bad side). The rare field
    # faults are judged per row only when some distinct value or column type may have them.
    text_faults = _text_faults(plan.schema)
    field_faults: Any
    if _field_judged(frame, plan.schema):
        kinds = {v: parse_side(c).kind for v, c in zip(side.values, canonical, strict=True) if c is not None}
        field_faults = flagged(frame.select(_field_faults(frame, plan.schema, kinds)).to_series())
    else:
        field_faults = flagged(frame.get_column("_bad_mark")) if "_bad_mark" in cols else None
    masks: dict[str, Any] = {
        "missing": bad_field,
        "text": None if text_faults is None else flagged(frame.select(text_faults).to_series()),
        "line": flagged((frame.get_column("line").is_not_null() & ~frame.get_column("line").is_finite())
                        .fill_null(False)) if "line" in cols else None,
        "side": side.of_values(np, [c is None for c in canonical], np.bool_, False) if None in canonical else None,
        "time": None if direct else flagged(frame.get_column("_lu_null")),
        "field": field_faults,
        "line_only_price": line_only & (~null | invalid) if _LINE_ONLY in cols else None,
        "price": None,  # not a skip here: counted as an invalid price (code 0 of a rejected row)
    }
    some = False  # whether some row is skipped
    for code, (step, _) in enumerate(SKIP_ORDER, 1):
        # (the line-only line check reads the rows no earlier step took)
        mask = (line_only_line(side.codes) if _LINE_ONLY in cols else None) if step == "line_only_line" else masks[step]
        if mask is not None and mask.any():
            reason[(reason == 0) & mask] = code
            some = True
    del masks, field_faults
    # (no row skipped, the usual case: zeros no one writes, no page touched, and the arrays of
    # skipped or invalid rows are the invalid ones: 10M rows, ~50 MB of bools not written)
    skip = reason != 0 if some else np.zeros(n, np.bool_)
    # (the skipped rows' reasons alone: index 0 is not read; 1M rows, none skipped: ~5 -> 0.5 ms)
    counts = np.bincount(reason[skip], minlength=len(_REASONS))
    skipped: dict[str, int] = {}
    for j in range(1, len(_REASONS)):
        if counts[j]:
            skipped[_REASONS[j]] = skipped.get(_REASONS[j], 0) + int(counts[j])
    out = np.flatnonzero(skip | invalid if some else invalid)
    rejected = pl.DataFrame({
        "row": pl.Series(out, dtype=pl.UInt32),
        "reason": pl.Series(np.array([*_REASONS[1:], _REASONS[0]], dtype=object)[reason[out] - 1], dtype=pl.String),
    })
    n_skipped = int(np.count_nonzero(skip)) if some else 0
    n_invalid = int(np.count_nonzero(invalid & ~skip if some else invalid))
    loaded = _Loaded(frame, plan.schema, plan.int_column, n - n_skipped, n_invalid, skipped, rejected)

    # -- key ids: dense codes, the side's canonical spelling and line series once per distinct side
    ids: dict[str, int] = {}
    canon_id = [0 if c is None else ids.setdefault(c, len(ids)) for c in canonical]
    canon = list(ids)
    event, book = coded["event_id"], coded["bookmaker"]
    # a skipped row's codes (-1 for a null) as 0, in place (the codes are this function's own
    # arrays, read no more as codes): no new 10M-row arrays
    e, b = event.codes, book.codes
    if some:
        e[skip] = 0
        b[skip] = 0
    sid = side.of_values(np, canon_id, np.int32, 0)
    n_events, n_books = max(len(event.values), 1), max(len(book.values), 1)
    book_names, side_values = book.values, side.values
    # per row, its canonical side's id, for the text of moves (only when some side is spelled otherwise)
    spelled = all(c == v for c, v in zip(canonical, side_values, strict=True))
    canon_at = None if spelled else pl.Series(np.where(skip, len(canon), sid))
    # memory (issue 14: peak at most 3x the input): the codes live on in e, b and sid only
    del coded, event, book, side
    # (the pass reads the times and prices where polars holds them, chunk by chunk: no copy; they
    # have no null, above)
    lu_at, p_at = [c.to_numpy() for c in lu.get_chunks()], [c.to_numpy() for c in p.get_chunks()]
    bad = invalid | skip if some else invalid  # (read by the passes alone)
    # the text of moves: the input's columns at their rows, the side in its canonical spelling
    # (gathered as it is when every distinct side is canonical already)
    canon_text = pl.Series("side", [*canon, None], dtype=pl.String)
    extra = [c for c in ("line", "_ts") if c in cols]
    pint = frame.get_column("_pint")
    # (memory: from here on only those columns and the flags are read of the input's rows, by
    # meta_of and the alerts table; the working columns (the times and prices once the passes have
    # read them: ``lu_at``, ``p_at``), ~0.16 GB at 10M rows, go instead of living in ``loaded`` and
    # meta_of to the end: nothing on this path reads ``loaded.frame``, and the lazy values keep meta_of
    # for the result's life). Built from the columns as they are: a ``select`` makes every column
    # one chunk when their chunks differ (the price-drop path's 120-chunk text columns: +0.65 GB at 10M)
    frame = pl.DataFrame([frame.get_column(c) for c in (*text, *extra)])
    loaded = replace(loaded, frame=frame)
    del lu, p
    anchor, prob = cfg.reference == "anchor", cfg.unit == "prob"
    thr, line_thr = rules.threshold_floor(cfg.threshold), rules.threshold_floor(cfg.line_threshold)
    n_sides = max(len(canon), 1)
    no_series = np.full(1, -1, np.int32)

    # only the routing (and the steams' table) reads the rows' codes and key ids after the passes
    # (memory: 10M rows, five 40 MB arrays (int32) go as soon as no pass reads them, not at the end of the routing)
    keep_rows = cfg.signals and _routes(cfg)
    # and of those the key and series ids only the routing's cooldown keys (steam alone, 10M rows: two
    # 40 MB arrays less through the moves' tables and the routing's columns, where its peak was)
    keep_keys = False
    if keep_rows:
        from ..fast import signals  # (only where moves are routed: a price-drop-only run never loads it, C22-2)

        keep_keys = signals.reads_keys(cfg)

    # (the price moves' values are written by the pass only when something reads them)
    drops_read = _drops_read(cfg)

    def price_pass(kid: Any, nkeys: int) -> Any:
        """SPEC 3 over the price keys ``kid`` (the pass without line series)."""
        return kernel.detect_pass(kid, nkeys, no_series, 0, lu_at, p_at, null, bad, line_only, np.zeros(1),
                                  cfg.reprime_after_suspension, anchor, prob, thr, line_thr,
                                  price_values=drops_read)

    # the price keys' ids first, here: then the rows' event and book codes are read by the line
    # series' ids alone (the price pass, the longer, runs meanwhile), and go before the line pass
    kid, nkeys = kernel.ids(e, b, sid, n_events, n_books, n_sides)
    if cfg.detects_lines:
        # The price keys and the line series share no state: their passes run side by side, the
        # price pass in a thread (numba runs without the GIL). The line pass is the same pass
        # with an infinite price threshold (no price move is written) over one price key per
        # canonical side (a small table, in cache): its line moves and line counts are the one
        # pass's (the price part reads nothing the line part writes); its price counts are dropped.
        price_result = _in_thread(functools.partial(price_pass, kid, nkeys))
        line_ids: dict[str, int] = {}
        series_of = [rules.series_line(c) for c in canon]
        ls_of = [line_ids.setdefault(rules.line_side_of(c), len(line_ids)) if x is not None else -1
                 for c, x in zip(canon, series_of, strict=True)]
        ls = np.array([*ls_of, -1], dtype=np.int32)[sid]
        lid, nseries = kernel.ids(e, b, ls, n_events, n_books, max(len(line_ids), 1))
        del ls
        if not keep_rows:
            e = b = None
        # per canonical side its series line, read by the pass through each row's side (the line
        # pass's key): no per-row array (10M rows: 80 MB written and read once before)
        line = np.array([*(np.nan if x is None else x for x in series_of), np.nan], dtype=np.float64)
        # (with the line moves' values: their new lines, canonical sides, times, prices and their
        # references' times and prices, written by the pass as it holds them: no gather by row)
        lm = kernel.detect_pass(sid, n_sides, lid, nseries, lu_at, p_at, null, bad, line_only, line,
                                cfg.reprime_after_suspension, anchor, prob, math.inf, line_thr, line_by_key=True,
                                price_values=False, line_values=True)
        lmoves, lprices = lm.lmoves, lm.lprices
        # per line move, its canonical side's id (the line moves' table: by move, not by row)
        line_side = lm.lkey if cfg.signals else None
        if not keep_rows:
            sid = None  # (before waiting for the price pass)
        if not keep_keys:
            lid = None
        pm = price_result()
        del price_result  # (it holds its result)
        tally = pm.counts.copy()
        for slot in (kernel.LINE_SEEN, kernel.LINE_PRIMED, kernel.LINE_STALE, kernel.LINE_SUSPENDED,
                     kernel.LINE_REPEATED):
            tally[slot] = lm.counts[slot]
    else:
        # no series: the pass reads neither a row's series id nor its line
        lid, nseries, line = no_series, 0, np.zeros(1)
        pm = price_pass(kid, nkeys)
        tally, lm = pm.counts, None
        lmoves = lprices = np.zeros(0, np.int32)
        line_side = np.zeros(0, np.int32) if cfg.signals else None
    moves = pm.moves
    if not keep_rows:
        e = b = sid = None
    if not keep_keys:
        kid = lid = None
    # (memory: the times and prices, polars' working columns, are read no more; by the passes'
    # closures, which have run)
    lu_at = p_at = []
    # (memory: the rows' masks, ~70 MB at 10M rows, read by the passes alone)
    del skip, bad_field, invalid
    null = bad = line_only = np.zeros(0, np.bool_)  # (read by the passes' closures, which have run)
    reason = np.zeros(0, np.int8)
    # (the pass writes its moves into per-row buffers and returns their written fronts: kept as
    # they are, not copied out: a buffer is np.empty, so only the pages written are memory at all;
    # the copies cost 10M quotes, line_move, 5M moves' three columns and 2.5M drops' two, ~0.1 s
    # of first-touched pages and as much memory again while both were alive)

    # -- the moves' columns ------------------------------------------------------------------------
    # (their times and prices, and the references', written by the pass itself; only the int-price
    # flags are gathered by row below; a move's and a reference's price is never null, nor a line's time)
    # (uint32 as the pass writes them: no copy; the pass finds moves in row order)
    rows = pl.Series("_i", moves, dtype=pl.UInt32).set_sorted()
    # (never null: numpy gathers it too)
    pint_at = pint.to_numpy() if not pint.null_count() else None

    def flags(at: Any, name: str) -> pl.Series:
        return pl.Series(name, pint_at[at]) if pint_at is not None else pint.gather(at).alias(name)

    def priced(at: Any, names: tuple[str, str, str, str], times: Any, prices: Any) -> list[pl.Series]:
        price_at = pl.Series(names[1], prices)
        return [pl.Series(names[0], times), price_at,
                pl.select(cents_expr(pl.lit(price_at)).alias(names[2])).to_series(), flags(at, names[3])]

    if drops_read:
        # (the moves' and their references' times and prices as the pass wrote them: no row gathered;
        # their cents are read by the delta alone: 10M quotes, 2.5M drops' two 20 MB columns not kept
        # through the routing, the steams' books and the values)
        fired = _with_delta(pl.DataFrame([rows, *priced(moves, ("_lu", "_p", "_c", "_pint"), pm.move_lu,
                                                         pm.move_price),
                                          *priced(pm.refs, ("_rlu", "_rp", "_rc", "_rpint"), pm.ref_lu,
                                                  pm.ref_price)])).drop("_c", "_rc")
    else:
        # line moves alone, nothing routed: a price move is counted, never read (10M quotes: 2.5M
        # drops' ten columns not written)
        fired = pl.DataFrame([rows])
    price = _Pass(fired, int(tally[kernel.PRIMED]), int(tally[kernel.STALE]), int(tally[kernel.SUSPENDED]),
                  int(tally[kernel.REPEATED]))
    line_pass: _Pass | None = None
    if lm is not None:
        # -1: no observation at the reference line (never read: a series primes first): null
        none = lprices < 0
        some_none = bool(none.any())
        lrows = pl.Series("_i", lmoves, dtype=pl.UInt32).set_sorted()
        # a line's price may be null (a line-only observation, a suspension): NaN from the pass, null here
        at = np.maximum(lprices, 0)
        # the flags at those rows, null where there is none (as the gather by a null row gave them;
        # only rows with a reference price read them): by numpy when the flags have no null, as flags()
        # (the column comes in many chunks), else polars' gather by the rows with nulls
        if pint_at is None:
            at_price = pl.Series(lprices).set(pl.Series(none), None) if some_none else pl.Series(lprices)
            ref_flags = pint.gather(at_price).alias("_rpint")
        else:
            ref_flags = pl.Series("_rpint", pint_at[at])
            if some_none:
                ref_flags = ref_flags.set(pl.Series(none), None)
        lfired = pl.DataFrame([
            lrows, pl.Series("_lu", lm.lmove_lu), pl.Series("_l", lm.lnew),
            pl.Series("_p", lm.lmove_price).fill_nan(None), flags(lmoves, "_pint"),
            pl.Series("_rl", lm.lref_line), pl.Series("_rlu", lm.lref_lu),
            pl.Series("_rprice", lm.lref_price).fill_nan(None), ref_flags,
        ])
        del lm
        line_pass = _Pass(lfired, int(tally[kernel.LINE_PRIMED]), int(tally[kernel.LINE_STALE]),
                          int(tally[kernel.LINE_SUSPENDED]), int(tally[kernel.LINE_REPEATED]),
                          int(tally[kernel.LINE_SEEN]))

    def meta_of(moves: pl.DataFrame, leave: Collection[str] = ()) -> pl.DataFrame:
        at = moves.get_column("_i")
        meta = _gather(frame, {c: c for c in (*text, *extra) if c not in leave}, at)
        if canon_at is not None and "side" not in leave:
            meta = meta.with_columns(canon_text.gather(canon_at.gather(at)))
        return pl.concat([moves, meta], how="horizontal")

    if not cfg.signals:
        return loaded, price, line_pass, meta_of, None
    outcome: dict[str, int] = {}
    outcome_of = np.array([outcome.setdefault(rules.outcome_of(c), len(outcome)) for c in canon] or [0],
                          dtype=np.int64)
    over = np.array([rules.outcome_of(c).endswith("over") for c in canon] or [False], dtype=np.bool_)
    # (without routing the per-row arrays are None: nothing reads them, _with_signals_compiled)
    row_ids = _Ids(kid, nkeys, lid, nseries, e, n_events, b, book_names, sid, canon, outcome_of,
                   max(len(outcome), 1), over, frame.select(c for c in text if c in _FROM_INPUT), line_side)
    return loaded, price, line_pass, meta_of, row_ids


def _drops_table(meta_of: _MetaOf, fired: pl.DataFrame, leave: Collection[str],
                 timestamp_column: str | None) -> pl.DataFrame:
    """The price drops' table of the moves ``fired`` (their rows' text but ``leave``)."""
    return _alerts(meta_of(fired, leave), timestamp_column)


def _gather(frame: pl.DataFrame, names: dict[str, str], at: pl.Series) -> pl.DataFrame:
    """The rows ``at`` of ``frame``'s columns ``names`` (renamed to their values), one column at a
    time: a frame's gather makes every column one chunk first, all at once, and the input's
    columns come in many chunks (a Parquet file's row groups): per column, one at a time is
    alive (issue 14: detect's peak memory). By :func:`_taker` (moves in row order: a mask)."""
    take = _taker(at, frame.height)
    return pl.DataFrame([take(frame.get_column(c)).alias(name) for c, name in names.items()])


def _taker(at: pl.Series, height: int) -> Callable[[pl.Series], pl.Series]:
    """``column.gather(at)`` for columns of ``height`` rows, the same values, the fastest way for
    ``at``. Rows in increasing order (a pass's moves, found in row order) are the rows a mask
    keeps: a filter walks each chunk once where a gather looks every row up among the chunks
    (10M rows in 40 chunks, 2.5M moves, the 12 text columns: 0.035 vs 0.25 s wall, 0.037 vs 0.167
    s CPU). Rows that only never decrease (alerts in detection order: a row may hold several) are
    the distinct rows by a mask, then repeated by a gather from those (few, in one chunk)."""
    import numpy as np  # (only the compiled path gathers: numpy is there with numba)

    rows = at.to_numpy()
    if rows.size < 2 or at.null_count():
        return lambda column: column.gather(at)
    step = rows[1:] != rows[:-1]
    if not bool((rows[1:] >= rows[:-1]).all()) or rows[-1] >= height:  # (out of range: the gather's error)
        return lambda column: column.gather(at)
    keep = np.zeros(height, np.bool_)
    keep[rows] = True
    mask = pl.Series(keep)
    if bool(step.all()):
        return lambda column: column.gather(at) if column.n_chunks() == 1 else column.filter(mask)
    nth = np.empty(rows.size, np.int64)  # per row of ``at``: its distinct row's place among them
    nth[0] = 0
    np.cumsum(step, out=nth[1:])
    repeat = pl.Series(nth, dtype=pl.UInt32)
    return lambda column: column.gather(at) if column.n_chunks() == 1 else column.filter(mask).rechunk().gather(repeat)


@dataclass(slots=True)
class _Ids:
    """Per input row, what the compiled signals pass (:mod:`dropengine.fast.signals`) needs of
    a move's row: its price key and line series ids (``None`` where the routing reads none:
    :func:`~dropengine.fast.signals.reads_keys`), its event and book codes, its canonical
    side's id, and per canonical side its outcome's id and whether it is an over side.
    :meth:`let_go_rows` drops the per-row arrays once the routing and the steams have read them."""

    kid: Any
    nkeys: int
    lid: Any
    nseries: int
    event: Any
    n_events: int
    book: Any
    book_names: list[str]
    side: Any
    #: the canonical sides, by id
    side_names: list[str]
    outcome_of: Any
    n_outcomes: int
    over: Any
    #: the input's text columns, by row (the alerts' text gathered once from them, by row)
    texts: pl.DataFrame
    #: per line move (in row order), its canonical side's id (the line moves' table reads it by move)
    line_side: Any

    def let_go_rows(self) -> None:
        """Drop the per-row arrays (``kid``, ``lid``, ``event``, ``book``, ``side``: 40 MB each
        at 10M rows): read by the routing and the steams' table only, not by the alerts table
        nor the values, and the caller's frame holds this object to the end (issue 14: peak).
        (``kid``, ``lid`` and ``event`` go earlier, once the moves' columns are written.)"""
        # (after this the five are None: a reader left for later, e.g. handed to the lazy values,
        # would fail there; every reader runs before the call in _with_signals_compiled)
        self.kid = self.lid = self.event = self.book = self.side = None


#: Why a row was set aside, by the codes of :func:`_compiled_passes`: 0 an invalid price (no skip),
#: then :data:`~dropengine.formats.tables.SKIP_ORDER`'s reasons by step (its price step is never
#: a code: the batch counts an unparsed price as invalid).
_REASONS: Final = ("invalid price", *(r for _, r in SKIP_ORDER))


def _with_signals(
    cfg: DetectOptions, loaded: _Loaded, price: _Pass, drops: pl.DataFrame, line_pass: _Pass | None,
    meta_of: Callable[[pl.DataFrame], pl.DataFrame], timestamp_column: str | None,
) -> BatchResult:
    """The signals of SPEC 10-12: the line moves (``line_pass``: the line series detected as a
    second key column; ``meta_of`` joins the rows' text to moves), then every
    detected move (price moves and line moves merged in arrival order, a quote's price move
    before its line move) through the cooldown and the steam tracker the stream engine uses
    (:class:`~dropengine.core.steam.Cooldown`, :class:`~dropengine.core.steam.SteamTracker`),
    then ``types`` and the filter."""
    drops = drops.sort("_i")
    drop_values = _drop_values(drops, drops.select("_rpint", "_pint").iter_rows())
    drop_rows = drops.get_column("_i").to_list()
    line_values: list[LineMove] = []
    line_rows: list[int] = []
    line = _Pass(pl.DataFrame(), 0, 0, 0, 0)
    if line_pass is not None:
        line = line_pass
        fired = meta_of(line.fired).sort("_i")
        line_values = _line_values(fired, cfg, timestamp_column)
        line_rows = fired.get_column("_i").to_list()

    # the stream engine's routing (cooldown, types, filter, steam counting and firing), fed the
    # detected moves in arrival order: a quote's price move before its line move (SPEC 11)
    router = SignalRouter(cfg, Cooldown(cfg.cooldown_ms),
                          SteamTracker(cfg.steam_books, cfg.steam_window_ms, cfg.steam_groups))
    route = router.route
    out: list[Alert] = []
    # where each detected move went in ``out`` (-1: not returned), for the table
    drop_at: list[int] = []
    line_at: list[int] = []
    steam_at: list[int] = []
    # the input position of each alert in ``out``: that of the move routed when it was appended
    out_rows: list[int] = []
    d = ln = 0
    n_drops, n_lines = len(drop_rows), len(line_rows)
    while d < n_drops or ln < n_lines:
        if ln >= n_lines or (d < n_drops and drop_rows[d] <= line_rows[ln]):
            row = drop_rows[d]
            at, fired_at = route(drop_values[d], out)
            drop_at.append(at)
            d += 1
        else:
            row = line_rows[ln]
            at, fired_at = route(line_values[ln], out)
            line_at.append(at)
            ln += 1
        if fired_at >= 0:
            steam_at.append(fired_at)
        out_rows.extend([row] * (len(out) - len(out_rows)))
    types = cfg.types

    returned = pl.Series("_at", drop_at, dtype=pl.Int64)
    if _drops_returned(types):
        # price drops alone (a cooldown on): 0.1's table, the returned rows of the drops table
        table, flags = _typed(drops.filter(returned >= 0), loaded.int_column)
    else:
        others: list[tuple[int, Alert]] = [(line_at[j], lm) for j, lm in enumerate(line_values) if line_at[j] >= 0]
        others += [(j, out[j]) for j in steam_at]
        table, flags = _alert_table(drops.with_columns(returned), others, alert_fields(types)), pl.DataFrame()
    counters = EngineCounters(
        loaded.seen, price.primed, price.stale, loaded.invalid, price.suspended, price.repeated,
        price.fired.height, len(out), line.seen, line.primed, line.stale, line.suspended, line.repeated,
        line.fired.height, router.cooled, router.steams,
    )
    return BatchResult(table, counters, loaded.skipped, loaded.rejected, flags, tuple(out),
                       pl.Series("row", out_rows, dtype=pl.UInt32))


def _with_signals_compiled(
    cfg: DetectOptions, loaded: _Loaded, passes: list[_Pass | None],
    handed: list[pl.DataFrame | Callable[[], pl.DataFrame]], meta_of: _MetaOf, timestamp_column: str | None,
    ids: _Ids,
) -> BatchResult:
    """:func:`_with_signals` with the routing (cooldown, steam) as the compiled pass of
    :mod:`dropengine.fast.signals` over move arrays (the same routing as
    :class:`~dropengine.core.steam.SignalRouter`, one pass in arrival order); ``types`` and the
    filter, which change no state, decide afterwards which moves are returned (vectorized:
    :func:`filter_expr` per alert type).

    Columnar: the line moves are columns (:func:`_line_table`: every rule on text once per
    distinct side or (sport, market, lines) combination), the steams are columns gathered from
    their moves (:func:`_steam_table`), and the alerts table is their rows in detection order.
    No Python value is built per alert here: :attr:`BatchResult.values` builds them on first use
    (:func:`_values_builder`).

    ``passes``: the price pass and the line pass (or None), the only references to them (taken out
    here: their moves' tables go once what reads them is done)."""
    import numpy as np

    from ..fast import MAX_ROWS, signals

    price, line_pass = passes
    passes.clear()
    assert price is not None  # (the price pass always runs)

    # the routing reads the price moves' rows, times and sizes from the kernel's columns (the
    # drops' ``_i``, ``last_update`` and ``delta``); ``handed``: the drops table, or what gives
    # it (written in a thread meanwhile), taken after the routing (the only reference: the
    # values are built from the kernel's columns, ``early``, so the table goes with its part)
    drops_of = handed.pop()
    # (whether the moves are routed: below, where the plain case writes no per-move column)
    plain = not _routes(cfg)
    early = price.fired.sort("_i")
    # (the kernel's uint32 rows as they are, a view: the routing takes them so; 10M quotes, 2.5M drops'
    # and 5M line moves' int64 copies, 60 MB alive through the routing, not written)
    drop_rows = early.get_column("_i").to_numpy()
    # (the counts alone are read of the passes from here on: their moves' tables are ``early`` and
    # ``moved``, which may be cut down to the moves read after the routing)
    price_counts = (price.primed, price.stale, price.suspended, price.repeated, price.fired.height)
    del price

    def full(moves: pl.DataFrame, leave: Collection[str] = ()) -> pl.DataFrame:
        """Rows of ``drops`` with every column of a price drop's table row (when ``odds_drop``
        is not asked, ``drops`` holds the kernel's columns only: written for these rows alone;
        the input's columns in ``leave`` then null: the caller reads none of them)."""
        if "sport_key" in moves.columns:
            return moves
        return _alerts(meta_of(moves.drop("last_update", "delta", strict=False), leave), timestamp_column)

    line_counts = (0, 0, 0, 0, 0, 0)
    lfired: Callable[[pl.Series | None], pl.DataFrame] | None = None
    line_full: Callable[[pl.Series | None], pl.DataFrame] | None = None
    lines: pl.DataFrame | None = None
    # the line moves' table, written in a thread while the moves are routed (the routing reads
    # their numbers alone): taken right after the routing
    line_table: Callable[[], pl.DataFrame] | None = None
    line_rows = np.zeros(0, np.uint32)
    moved = pl.DataFrame()
    # (whether ``lines`` is ``_line_numbers(moved)``: four of its columns are then ``moved``'s own)
    numbers_only = False
    has_lines = line_pass is not None
    if line_pass is not None:
        moved = line_pass.fired.sort("_i")
        line_counts = (line_pass.seen, line_pass.primed, line_pass.stale, line_pass.suspended, line_pass.repeated,
                       line_pass.fired.height)
    del line_pass
    if has_lines:

        def line_texts(at: pl.Series | None) -> pl.DataFrame:
            """The line moves ``at`` (positions among them, in arrival order; None: all) joined
            with their rows' text (not kept for the values: written again for the few they need)."""
            return meta_of(moved if at is None else moved[at])

        def line_rows_of(at: pl.Series | None,
                         numbers: pl.DataFrame | Callable[[], pl.DataFrame] | None = None,
                         leave: Collection[str] = _LEFT_BY_LINE_TABLE) -> pl.DataFrame:
            """The line moves ``at`` as :func:`_line_table` rows (each row's columns are its move's alone;
            ``numbers``: their :func:`_line_numbers`, or what gives them, when made elsewhere). The
            sides by ``ids.line_side`` (per move: no per-row array kept for it). The input's columns
            the alerts table gathers by row itself and nothing here reads (``leave``: by default
            :data:`_LEFT_BY_LINE_TABLE`) are left out (10M quotes: 5M line moves' five columns
            gathered, then dropped)."""
            moves = moved if at is None else moved[at]
            sub = meta_of(moves, leave)
            sides = ids.line_side if at is None else ids.line_side[at.to_numpy()]
            return _line_table(sub, cfg, timestamp_column, sides, ids.side_names, numbers)

        lfired, line_full = line_texts, line_rows_of
        if plain and "line_move" in cfg.types:
            # Plain (no routing: nothing else to do here): the table's thread gathers the moves' text
            # while their numbers are written here, and takes them when it needs them (10M quotes, line
            # moves alone: ~0.35 s of this thread's, which ran before the table's thread started)
            # (event_id and bookmaker are not gathered for the table where the filter tests neither:
            # the alerts table takes them from the input by row; 10M quotes, 5M moves' 2 x 20 MB)
            # (nor the side's text where no input row leaves a kind or market key to it: the table's
            # side is the line side, by id; 10M quotes, 5M moves' 20 MB)
            leave = (*_LEFT_BY_LINE_TABLE, *(c for c in ("event_id", "bookmaker")
                                             if getattr(cfg.filter, _FILTER_TEXT[c]) is None),
                     *(() if _derives(loaded.frame) else ("side",)))
            numbers = _Once(functools.partial(_line_numbers, moved))
            line_table = _in_thread(functools.partial(line_rows_of, None, numbers, leave))
            numbers()
            del numbers  # (the thread holds them until the table is made)
            line_rows = moved.get_column("_i").to_numpy()
        else:
            # no line move returned: the routing and the steams' books read the moves' numbers alone,
            # and a steam completed by a line move its text (written for those moves alone, by
            # _steam_table): the text of ~5M line moves at 10M quotes is not written
            lines = _line_numbers(moved)
            numbers_only = True
        if "line_move" in cfg.types and line_table is None:
            # (the text and key numbers of the line moves, beside the routing: 1M quotes, all
            # types, ~10 ms of the main thread's CPU; the routing runs outside the GIL)
            # (the numbers by the thread's arguments, not a closure's cell of this frame: they go with it)
            line_table = _in_thread(functools.partial(line_rows_of, None, lines))
            numbers_only = False  # (``lines`` becomes the table, below)
        if lines is not None:
            line_rows = lines.get_column("_i").to_numpy()
    n_drops = len(drop_rows)
    n_lines = len(line_rows)
    types = cfg.types
    flt = cfg.filter
    # Without a cooldown and without steam the routing changes nothing (SignalRouter: every move
    # goes, none counts for a steam): a move is returned when its type is asked and the filter
    # accepts it, in arrival order. Then the moves it would route are only the returned ones, and
    # no per-move column is written for the others (10M quotes, line moves alone: 7.5M moves'
    # seven columns, ~0.4 GB, and the pass over them).
    if not plain:
        # the moves in arrival order (a quote's price move before its line move): per move its
        # cooldown key, size as written, steam group (event, outcome, direction) and book
        # (one compiled pass over the moves: ~15 numpy passes before; without line series the rows'
        # series ids are not kept, and no line move reads them; with the routing's options, the
        # columns route does not read with them come back empty: is_line and size without a steam
        # threshold, cool without a cooldown: kernel21's 6c24036, 10M steam ~99 MB not written; and
        # then the rows' key and series ids are not read: None here, let go after the passes)
        order = signals.arrival_order(drop_rows, line_rows)
        rows, is_line, size, group, cool, lu, book = signals.moves_in_order(
            order, drop_rows, line_rows, early.get_column("_d").cast(pl.Float64).to_numpy(),
            lines.get_column("points").to_numpy() if lines is not None else np.zeros(0),
            early.get_column("_lu").to_numpy(),
            lines.get_column("last_update").to_numpy() if lines is not None else np.zeros(0, np.int64),
            ids.side, ids.over, ids.event, ids.outcome_of, ids.n_outcomes, ids.kid, ids.nkeys, ids.lid, ids.book,
            options=cfg)
        # group ids are dense below this bound (no hashing in the routing) while it is small
        # (memory: the rows' key and series ids and event codes are read by moves_in_order alone:
        # 10M rows, three 40 MB arrays go before the routing and the steams' books, not after them)
        ids.kid = ids.lid = ids.event = None
        bound = ids.n_events * ids.n_outcomes * 2
        moves = signals.MoveArrays(lu, cool, ids.nkeys + ids.nseries, is_line, size, group, book, ids.book_names,
                                   bound if bound <= max(1 << 20, 4 * len(rows)) else None)
        routed = signals.route(moves, cfg)
        # (memory: the routing's per-move arrays go now, not after the alerts table: ~0.4 GB of 8M moves)
        del moves, size, group, cool, is_line, book
    if line_table is not None:
        lines = line_table()
        del line_table  # (with the thread's closure, it held the table)
    drops = (drops_of() if callable(drops_of) else drops_of).sort("_i")
    del drops_of  # (with the thread's closure, it held the table)

    # which moves are returned: not cooled, their type asked, the filter accepting them
    drop_ok = np.zeros(n_drops, np.bool_)
    if "odds_drop" in types and n_drops:
        drop_ok = _accepted(drops, flt, "odds_drop")
    line_ok = np.zeros(n_lines, np.bool_)
    if "line_move" in types and lines is not None and n_lines:
        line_ok = _accepted(lines, flt, "line_move")
    if plain:
        # the returned moves alone, in arrival order (indices into [drops..., line moves...]), as the
        # routing that returns each of them: nothing cooled, no steam
        kept_drops = np.flatnonzero(drop_ok)
        # every line move returned and no drop (line moves alone, no filter left one out): the
        # moves in row order as they are, no index of them (10M quotes: 5M moves' kept indices,
        # order and rows, ~100 MB of fresh numpy arrays, not written)
        every_line = not len(kept_drops) and n_lines > 0 and bool(line_ok.all())
        kept_lines = np.zeros(0, np.int64) if every_line else np.flatnonzero(line_ok)
        if every_line:
            order = np.arange(n_drops, n_drops + n_lines, dtype=np.int32 if n_drops + n_lines <= MAX_ROWS else np.int64)
            rows = line_rows
        elif len(kept_drops) and len(kept_lines):
            order = np.concatenate((kept_drops, n_drops + kept_lines))[
                signals.arrival_order(drop_rows[kept_drops], line_rows[kept_lines])]
            rows = np.concatenate((drop_rows, line_rows))[order]
        else:
            # one kind of move returned: in row order already (each pass finds its moves in row
            # order), no merge (10M quotes, line moves alone: 5M moves' merge and gathers not made)
            order = n_drops + kept_lines if len(kept_lines) else kept_drops
            rows = line_rows[kept_lines] if len(kept_lines) else drop_rows[kept_drops]
        lu = np.zeros(0, np.int64)  # (the moves' times: only a steam reads them)
        none = np.zeros(0, np.int64)
        routed = signals.Routed(np.ones(len(order), np.bool_), 0, none, none, np.zeros(1, np.int64), none)
        returned = routed.go
    else:
        returned = routed.returned(np.concatenate((drop_ok, line_ok))[order])
    # (memory: per move, read no more: 5M line moves, ~0.1 GB alive through the alerts table otherwise)
    del drop_ok, line_ok, drop_rows, line_rows
    if plain:
        del kept_drops, kept_lines
    # Memory (issue 14, steam's peak): after the routing the moves' tables (the drops' and line
    # moves' tables and their kernel columns, ``early`` and ``moved``, which the values and the
    # steams' completing moves read) are read only at the moves returned, completing a steam or
    # counted in one (steam alone, 10M quotes: 3.2M of 7.5M moves). Where at most two thirds of the
    # moves are, the tables are cut down to those moves (their rows in the same order) and ``order``
    # renumbered into them (-1: a move nothing reads again), before the books and the alerts table:
    # the full tables go (with ``passes`` and ``handed``, this call held their only references).
    if not plain and len(order):
        needed = returned.copy()
        needed[routed.fire_move] = True
        needed[routed.members] = True
        share, of = _CUT_AT
        if of * int(np.count_nonzero(needed)) <= share * len(order):
            moves_read = np.sort(order[needed])
            renumber: Any = np.full(n_drops + n_lines, -1, np.int32 if len(order) <= MAX_ROWS else np.int64)
            renumber[moves_read] = np.arange(len(moves_read), dtype=renumber.dtype)
            order = renumber[order]
            del renumber
            split = int(np.searchsorted(moves_read, n_drops))
            drop_keep, line_keep = pl.Series(moves_read[:split]), pl.Series(moves_read[split:] - n_drops)
            del moves_read
            # (rows in increasing order: each table's columns one at a time, by a mask, _gather)
            drops = _gather(drops, {c: c for c in drops.columns}, drop_keep)
            # (the kernel's columns are the drops' table's own where it is made of them: no second gather)
            early = (drops.select(early.columns) if set(early.columns) <= set(drops.columns)
                     else _gather(early, {c: c for c in early.columns}, drop_keep))
            if lines is not None:
                moved = _gather(moved, {c: c for c in moved.columns}, line_keep)
                # the moves' numbers written again from the cut moves where they are only those (a
                # row's are its own): their rows, lines and times stay ``moved``'s columns, not a second
                # gathered copy (10M steam: 2.1M moves' four columns, ~57 MB through the books and the
                # alerts table, and the full table's not held beside the cut one while it is made)
                if numbers_only:
                    lines = None  # (the full table goes first: critic22's C22-3)
                    lines = _line_numbers(moved)
                else:
                    lines = _gather(lines, {c: c for c in lines.columns}, line_keep)
                ids.line_side = ids.line_side[line_keep.to_numpy()]
            n_drops, n_lines = len(drop_keep), len(line_keep)
            del drop_keep, line_keep
        del needed

    steams: pl.DataFrame | None = None
    books: Callable[[], pl.Series] | None = None  # the steams' books, written in a thread meanwhile
    steam_ok = np.zeros(0, np.bool_)
    if routed.steams:
        # (the books by halves where the caller only waits for them: no move is returned beside
        # the steams; with the moves' tables to write, two threads more made all types no faster
        # at 10M and raised its peak)
        steams, books = _steam_table(routed, order, lu, rows, ids, drops, lines, flt, full, line_full,
                                     loaded.schema, split=not types & {"odds_drop", "line_move"})
        steam_ok = _accepted(steams, flt, "steam")
    del lu
    ids.let_go_rows()  # (memory: ~0.4 GB at 10M quotes, before the alerts table is built)
    # per alert, its move (an index into ``order``) and its steam (-1: the move itself)
    if plain:  # every move in ``order`` returned, in order, no steam (alert_order's result, not merged)
        # (int32 where every index fits, as the values' builder keeps them: no int64 copies first)
        index_type: Any = np.int32 if len(order) <= MAX_ROWS else np.int64
        at: Any = np.arange(len(order), dtype=index_type)
        steam_of: Any = np.full(len(order), -1, index_type)
        out_rows = pl.Series("row", rows, dtype=pl.UInt32)
    else:
        at, steam_of = signals.alert_order(returned, routed.fire_move, steam_ok)
        out_rows = pl.Series("row", rows[at], dtype=pl.UInt32)
    del rows  # (memory: per move its row, 5M line moves 40 MB; the alerts' rows are out_rows)

    # per move (drops then lines), its place in the alerts (-1: not returned; a move the plain
    # routing left out is none of ``order``'s)
    if plain:  # (the move ``order[k]`` is alert k)
        by_index = np.full(n_drops + n_lines, -1, np.int64)
        by_index[order] = at
    else:
        # (int32 where every place fits, as ``at``; written at the returned moves alone, through
        # ``order`` (arrival order -> the tables' moves; a returned move is never one the cut left out):
        # 10M steam returns no move, and two passes over its 7.5M moves, ~0.16 s of the main thread's
        # CPU, and a per-move position array are not made)
        place_type = at.dtype if len(order) <= MAX_ROWS else np.int64
        by_index = np.full(n_drops + n_lines, -1, place_type)
        is_move = steam_of < 0
        move_places = np.flatnonzero(is_move)
        by_index[order[at[move_places]]] = move_places
        del move_places
    if _drops_returned(types):
        # price drops alone (a cooldown on): 0.1's table, the returned rows of the drops table,
        # and (as without signals) no values: drops() builds them from it
        drop_at = pl.Series("_at", by_index[:n_drops], dtype=pl.Int64)
        table, flags = _typed(drops.filter(drop_at >= 0), loaded.int_column)
        values: _LazyValues | None = None
    else:
        parts = [_placed(drops, by_index[:n_drops])]
        if lines is not None:
            parts.append(_placed(lines, by_index[n_drops:]))
        late: dict[str, tuple[int, Callable[[], pl.Series]]] = {}
        if steams is not None and books is not None:
            steam_at = np.full(routed.steams, -1, np.int64)
            steam_at[steam_of[~is_move]] = np.flatnonzero(~is_move)
            parts.append(_placed(steams, steam_at))
            kept = steam_at >= 0
            late["books"] = (len(parts) - 1, functools.partial(_kept, books, kept))
        columns = alert_fields(types)
        number_types = _number_types(parts, columns)
        # (memory: the parts alone hold the drops', line moves' and steams' tables, and
        # _columns_table lets each of their columns go once the alerts table holds it: not both
        # at the peak; the values are built from the kernel's columns, ``early``, by ``full``;
        # the per-move places are in the parts now)
        del lines, steams, drops, by_index
        table = _columns_table(parts, columns, loaded.schema, ids.texts, out_rows, steam_of >= 0, late)
        flags = pl.DataFrame()
        # (memory: the values' builder holds the alerts' order for the result's life: 5M alerts, as
        # int32 where every index fits, three 40 MB int64 arrays half the size)
        if len(order) <= MAX_ROWS:  # (fast.MAX_ROWS: int32's largest)
            order, at, steam_of = (order.astype(np.int32, copy=False), at.astype(np.int32, copy=False),
                                   steam_of.astype(np.int32, copy=False))
        build = _values_builder(early, full, lfired, cfg, timestamp_column, order, returned, routed, at, steam_of)
        values = _LazyValues(build, len(at), number_types)
    primed, stale, suspended, repeated, price_fired = price_counts
    counters = EngineCounters(
        loaded.seen, primed, stale, loaded.invalid, suspended, repeated, price_fired, len(at), *line_counts,
        routed.cooled, routed.steams,
    )
    return BatchResult(table, counters, loaded.skipped, loaded.rejected, flags, values, out_rows)


#: The moves' tables are cut down to the moves read after the routing (:func:`_with_signals_compiled`)
#: where those are at most this share of the moves: (2, 3), two thirds (the cut gathers them; steam
#: alone at 10M quotes reads 43%; every type, no cooldown, all).
_CUT_AT: Final = (2, 3)


def _placed(part: pl.DataFrame, at: Any) -> pl.DataFrame:
    """The rows of ``part`` returned (``at``: per row its place among the returned alerts, -1:
    not returned), with their places as ``_at`` (no copy of the rows when all are returned).
    Always a new frame: :func:`_columns_table` drops its columns in place."""
    part = part.with_columns(pl.Series("_at", at, dtype=pl.Int64))
    return part if bool((at >= 0).all()) else part.filter(pl.col("_at") >= 0)


def _accepted(table: pl.DataFrame, flt: AlertFilter, alert_type: str) -> Any:
    """Per row of ``table`` (alerts of ``alert_type``), whether ``flt`` accepts it (numpy bools)."""
    return table.with_columns(filter_expr(flt, alert_type).alias("_ok")).get_column("_ok").to_numpy()


def _values_builder(
    drops: pl.DataFrame, full: Callable[[pl.DataFrame], pl.DataFrame],
    lfired: Callable[[pl.Series | None], pl.DataFrame] | None,
    cfg: DetectOptions, timestamp_column: str | None,
    order: Any, returned: Any, routed: Any, at: Any, steam_of: Any,
) -> Callable[[], tuple[Alert, ...]]:
    """What :attr:`BatchResult.values` calls on first use: the returned alerts as values, built
    as the stream engine builds them (price drops by :func:`_drop_values`, line moves by
    :func:`_line_values`, steams by :func:`~dropengine.core.steam.steam_alert` from their moves'
    values), only for the moves returned or in a steam. ``drops``: the price moves in row order
    (any columns ``full`` completes: the kernel's, so that no drops' table is held for this)."""
    def build() -> tuple[Alert, ...]:
        import numpy as np

        from ..fast import signals

        n_drops = drops.height
        needed = returned.copy()
        if routed.steams:
            needed[np.concatenate((routed.fire_move, routed.members))] = True
        picked = order[np.flatnonzero(needed)]
        values: dict[int, Drop | LineMove] = {}
        at_drops = picked[picked < n_drops]
        if len(at_drops):
            sub = full(drops[pl.Series(at_drops)])
            values.update(zip(at_drops.tolist(), _drop_values(sub, sub.select("_rpint", "_pint").iter_rows()),
                              strict=True))
        at_lines = picked[picked >= n_drops]
        if len(at_lines) and lfired is not None:
            sub = lfired(pl.Series(at_lines - n_drops))
            values.update(zip(at_lines.tolist(), _line_values(sub, cfg, timestamp_column), strict=True))

        def move_of(i: int) -> Drop | LineMove:
            return values[int(order[i])]

        steams, _ = signals.steam_alerts(routed, move_of, cfg.filter)
        return tuple(steams[k] if k >= 0 else move_of(i) for i, k in zip(at.tolist(), steam_of.tolist(), strict=True))

    return build


def _group_key(column: pl.Series, kernel: Any) -> Any:
    """``column`` as int64 values equal where its values are, as a group_by groups them (a
    grouping key, no order): a float by its bits (-0.0 as 0.0, every NaN one value, a null
    another), anything else by its text's codes (:class:`_Coded`, the one text coding: a null
    -1)."""
    import numpy as np

    # (Where the key is the column's own buffer: a view of polars' memory, no array written: numpy
    # asks huge pages for new arrays of 4 MB or more, and on this project's benchmark machine their
    # first touch costs 1.1-3.3 s per GiB (benchmarks/README.md): 10M quotes, the line table's two
    # 5M-move line keys, 80 MB, were up to ~0.15 s of its thread, most of its system time.)
    if column.dtype.is_float():
        column = column.cast(pl.Float64)
        # its bits, where they are the key already: no null, no NaN, no -0.0 (the rare others below)
        if not column.null_count() and not column.is_nan().any():
            zero = column.filter(column == 0.0).to_numpy()
            if not np.signbit(zero).any():
                return column.rechunk().to_numpy().view(np.int64)
        values = column.fill_null(0.0).to_numpy()
        nan = np.isnan(values)
        bits = ((np.where(nan, np.nan, values) if nan.any() else values) + 0.0).view(np.int64)
        if column.null_count():  # (a NaN's bits no float operation writes: a null's own value)
            bits = np.where(column.is_null().to_numpy(), np.int64(0x7FF8_0000_0000_0001), bits)
        return bits
    if not isinstance(column.dtype, (pl.Categorical, pl.Enum, pl.String)):
        column = column.cast(pl.String)
    return _Coded(column, kernel).codes.astype(np.int64)  # (int32 codes; kernel.group_rows reads int64)


def _kept(column: Callable[[], pl.Series], kept: Any) -> pl.Series:
    """The rows of ``column()`` where ``kept`` (numpy bools) is true (all of them when all are)."""
    got = column()
    return got if bool(kept.all()) else got.filter(pl.Series(kept))


def _columns_table(parts: list[pl.DataFrame], columns: tuple[str, ...], schema: pl.Schema,
                   texts: pl.DataFrame, rows: Any, is_steam: Any,
                   late: dict[str, tuple[int, Callable[[], pl.Series]]] | None = None) -> pl.DataFrame:
    """Alerts of several types as one table of ``columns`` (the rows :func:`alert_row` writes:
    times Int64, numbers Float64, the rest text, Categorical where :func:`_text_types` makes it so
    for the input's ``schema``; a type's missing fields null), in the order of each part's ``_at``
    column (its place among the returned alerts, ``0..n-1`` over the parts).

    The columns of :data:`_FROM_INPUT` are gathered once from the input's ``texts`` by ``rows``
    (per alert its move's input row; ``is_steam``: no bookmaker), not per part and again into
    detection order: the same values (each part took them from those rows), one text gather.
    ``late``: columns of one part each, not in it yet (per name: the part's index and what gives
    the column, per row of that part; the steams' books, written in a thread meanwhile): taken
    last, when every other column is gathered.

    ``parts`` is consumed: its frames lose, in place (``drop_in_place``), each column once the
    table holds it (memory: a part's columns go as the table takes them; ``type``, a literal, by
    replacing the frame in the list with one without it). Never hand it a frame read afterwards:
    the parts are :func:`_placed`'s new frames."""
    import numpy as np

    types = {c: _column_type(c, schema) for c in columns}
    direct = {c for c in _FROM_INPUT if c in types}

    def direct_columns() -> pl.DataFrame:
        """The input's text columns of the table, gathered by row (a steam without its bookmaker)."""
        by_row = _taker(pl.Series(rows, dtype=pl.UInt32), texts.height)
        got = pl.DataFrame([by_row(texts.get_column(c)) for c in direct if c in texts.columns])
        if "bookmaker" in got.columns and bool(is_steam.any()):
            got = got.with_columns(got.get_column("bookmaker").set(pl.Series(is_steam), None))
        return got

    # (in a thread of its own while the parts' columns are placed here: the two read nothing of
    # each other's, and polars and numpy gather outside the GIL, so on the second core; 10M quotes,
    # all types: ~0.75 s of CPU, a quarter of this table's)
    gathered = _in_thread(direct_columns)

    # a column only one part has (a line move's or a steam's own fields) is gathered from that
    # part alone, null at the other parts' places (no null column per other part, no concat of
    # it: the steams' ~20 MB of books are not copied into a concat first)
    late = late or {}
    having = {c: [late[c][0]] if c in late else [j for j, part in enumerate(parts) if c in part.columns]
              for c in types if c not in direct}
    # (``type`` never: below, per place its part's name, also where one part has the column: the line
    # moves' alone, when no drop is returned, wrote out its literal, 5M line moves 80 MB, and cast it)
    single = {c: js[0] for c, js in having.items()
              if len(js) == 1 and (len(parts) > 1 or c in late) and c != "type"}
    shared = [c for c in having if c not in single]
    places = [part.get_column("_at").to_numpy() for part in parts]
    n = sum(len(place) for place in places)
    # (an index below 2**32: polars' own UInt32; the places are never more on the compiled path)
    index_type: Any = np.uint32 if n < 2**32 else np.int64
    # per place, the row holding it in the parts' rows one after another (None: in order already,
    # as when one part holds every returned alert: no gather; judged part by part, no
    # concatenation of the places, nor an arange to compare them with: 5M alerts, 2 x 40 MB)
    where: pl.Series | None = None
    in_place, start = True, 0
    for place in places:
        if not _runs_from(place, start):
            in_place = False
            break
        start += len(place)
    if not in_place:
        # (uint32, part by part: no concatenation of the places, no int64 arange; polars gathers by
        # UInt32 as it is. 10M all types: 8M places, 3 x 64 MB of fresh huge pages -> 2 x 32 MB)
        where_at = np.empty(n, index_type)
        begin = 0
        for place in places:
            where_at[place] = np.arange(begin, begin + len(place), dtype=index_type)
            begin += len(place)
        where = pl.Series(where_at)
    # the shared columns one at a time, each part's column let go once taken, from the caller's
    # list too (memory: one column's concat alive besides the table, not every one's twice).
    # Series operations, not a frame's select or drop per column and part: each of those is a
    # query of its own (~0.3 ms; 9 columns x 3 parts at 1M quotes, all types: ~17 ms of drops)
    out: dict[str, pl.Series] = {}
    for c in shared:
        if c == "type" and len(parts) > 1:
            # each part is of one alert type (the drops', line moves' and steams' tables), so
            # per place its part's name: one gather from a few names instead of a concat and a
            # gather of 8M texts (0.26 -> 0.07 s CPU at 10M quotes)
            part_of = np.zeros(n, np.uint32)
            for j, place in enumerate(places):
                part_of[place] = j
            # (a part without the column, e.g. the drops' kernel columns when no drop is returned:
            # null, as _typed_column gives it)
            # (a part's first row: its ``type`` is a literal, and reading the whole column writes it out,
            # a 16-byte view per row: 5M line moves, 80 MB)
            names = [part.head(1).get_column(c)[0] if part.height and c in part.columns else None for part in parts]
            out[c] = pl.Series(c, names, dtype=types[c]).gather(pl.Series(part_of))
            # (dropped from each part, not taken out: drop_in_place returns the column, and a
            # literal column is written out for that, a 16-byte view a row: 5M line moves, 80 MB
            # and ~0.1 s for a column thrown away)
            for j, part in enumerate(parts):
                if c in part.columns:
                    parts[j] = part.drop(c)
            continue
        # one chunk (a gather from chunks is slower than the copy)
        joined = pl.concat([_typed_column(part, c, types[c]) for part in parts], rechunk=True)
        out[c] = joined if where is None else joined.gather(where)
        del joined
        _let_go(parts, c)
    # (a part keeps its ``_at`` for its height, and its own columns; the rest go now)
    for j, part in enumerate(parts):
        for c in part.columns:
            if c != "_at" and single.get(c) != j:
                part.drop_in_place(c)
    # per part: whether it holds every place, in order (its column is the table's as it is, no
    # gather: a line move's own fields when only line moves are returned); else, for its text
    # columns, per place its row there (null: another part's), made on first use
    in_order = {j: len(places[j]) == n and _runs_from(places[j], 0) for j in set(single.values())}
    index: dict[int, pl.Series] = {}

    def placed(column: pl.Series, j: int) -> pl.Series:
        """``column`` (part ``j``'s rows) at the table's places: gathered by the part's index (per
        place its row in the part, null at another part's place: made once per part), numbers too.
        (Numbers were scattered by numpy into an ``np.zeros(n)``, then copied by ``set(mask, None)``
        for their nulls: numpy asks huge pages for such arrays and their first touch, fresh, cost
        10M all types ~1.7 s of system time for the 10 number columns; a gather writes values and
        validity once, in polars' memory.)"""
        if in_order[j]:
            return column.rechunk()
        if j not in index:
            # (``index_type`` from the start, and ``empty``: every place of the part is written, the others
            # are nulls whatever they hold: no int64 array, no zeros, no cast copy)
            row = np.empty(n, index_type)
            row[places[j]] = np.arange(len(places[j]), dtype=index_type)
            mine = np.zeros(n, np.bool_)
            mine[places[j]] = True
            rows_j = pl.Series(row)
            # (a null index gathers a null)
            index[j] = rows_j if mine.all() else rows_j.set(pl.Series(~mine), None)
        # (one chunk first: polars 2.1 gathers a String column of several chunks by concatenating their
        # text, where one chunk's gather writes views over the same buffers: the steams' books come in
        # pieces (_pieces), 10M all types +~400 MiB of peak; review26's R26-8. A no-op for one chunk)
        return column.rechunk().gather(index[j])

    for c, j in single.items():
        if c not in late:
            out[c] = placed(_typed_column(parts[j], c, types[c]), j)
            _let_go(parts, c)
    for c, (j, take) in late.items():
        column = take().alias(c).to_frame()  # (waited for even when not a column here: its error is raised)
        if c in types:
            out[c] = placed(_typed_column(column, c, types[c]), j)
    got = gathered()
    # (a column the input lacks: null, as _typed_column writes it; the input always has event_id)
    for c in direct:
        out[c] = _typed_column(got, c, types[c])
    return pl.DataFrame([out[c] for c in types])


def _runs_from(place: Any, start: int) -> bool:
    """Whether the places ``place`` (distinct integers) are ``start, start + 1, ...`` in order: the
    first is ``start``, the last ``start + len - 1`` and each above the one before."""
    if len(place) == 0:
        return True
    return int(place[0]) == start and int(place[-1]) == start + len(place) - 1 and bool((place[1:] > place[:-1]).all())


def _let_go(parts: list[pl.DataFrame], c: str) -> None:
    """Column ``c`` out of every frame of ``parts`` that has it, in place (the frames are
    :func:`_columns_table`'s own: consumed; memory: a part's column goes once the table has it)."""
    for part in parts:
        if c in part.columns:
            part.drop_in_place(c)


def _column_type(c: str, schema: pl.Schema) -> pl.DataType:
    """The type of column ``c`` in a table of several alert types: times Int64, numbers Float64,
    the rest text, Categorical where :func:`_text_types` makes it so for the input's ``schema``,
    and always for :data:`_WORD_COLUMNS`. The one decision of a signals table's column types."""
    if c in _TIME_COLUMNS:
        return pl.Int64()
    if c in _FLOAT_COLUMNS:
        return pl.Float64()
    if c in _WORD_COLUMNS or (c in _TEXT_COLUMNS and isinstance(schema.get(c), (pl.Categorical, pl.Enum))):
        return pl.Categorical()
    return pl.String()


def _typed_column(part: pl.DataFrame, c: str, t: pl.DataType) -> pl.Series:
    """Column ``c`` of ``part`` as type ``t`` (Categorical by way of String), a Series of
    ``part``'s height: the casts on the column itself, no query (nulls where ``part`` has no
    such column). Every part of the alerts table is typed by it."""
    if c not in part.columns:
        # (pl.repeat: no value written; extend_constant wrote the values of a 5M-row Float64, ~10 MB)
        return pl.repeat(None, part.height, dtype=t, eager=True).alias(c)
    column = part.get_column(c)
    have = column.dtype
    if have == t:
        return column
    return column.cast(pl.String).cast(t) if t == pl.Categorical else column.cast(t)


#: Per number field of a line move's table row: the column telling whether its value is an int
#: (prices by their arrival flags; lines and points: as rules.written_line writes them, :func:`_written`).
_LINE_INT_FLAGS: Final = {"prev_price": "_rpint", "new_price": "_pint", "prev_line": "_rlint", "new_line": "_lint",
                          "points": "_dint"}


def _number_types(parts: list[pl.DataFrame], columns: tuple[str, ...]) -> dict[str, frozenset[type]]:
    """Per number field among ``columns``, the Python types its values take among the returned
    alerts (``parts``: returned rows of the drops, line and steam tables), as the values
    :attr:`BatchResult.values` builds would hold them: a drop's prices by their arrival flags
    (``delta`` an int when both are), its ``line`` a float; a line move's lines and points as
    :func:`rules.written_line` writes them (its flags from :func:`_written`), its prices by their
    flags. A time field (:data:`TIME_FIELDS`: always an int in a value) is ``{int}`` where
    any returned alert has it."""
    out: dict[str, set[type]] = {c: set() for c in columns if c in _FLOAT_COLUMNS}
    times: dict[str, set[type]] = {c: set() for c in columns if c in _TIME_COLUMNS}
    for part in parts:
        if part.height == 0 or "type" not in part.columns:
            continue
        kind = part.head(1).get_column("type")[0]  # (not the whole literal column written out: _columns_table)
        for c in times:
            if c in part.columns and part.get_column(c).is_not_null().any():
                times[c].add(int)
        for c in out:
            if c not in part.columns:
                continue
            col = part.get_column(c)
            present = col.is_not_null()
            if not present.any():
                continue
            if kind == "odds_drop":
                flag = {"prev": part.get_column("_rpint"), "new": part.get_column("_pint"),
                        "delta": part.get_column("_rpint") & part.get_column("_pint")}.get(c)
            else:  # a line move: every number field has its flag (a steam has no number field)
                flag = part.get_column(_LINE_INT_FLAGS[c])
            if flag is None:
                out[c].add(float)
                continue
            flag = flag.fill_null(False).filter(present)
            if flag.any():
                out[c].add(int)
            if not flag.all():
                out[c].add(float)
    return {c: frozenset(v) for c, v in (out | times).items()}


def _written(column: pl.Series) -> tuple[pl.Series, pl.Series]:
    """:func:`rules.written_line` of a Float64 column: the written values as Float64 (the value a
    table cell holds) and, per value, whether the rule writes it as an int (decided by the rule
    from the value before rounding: ``1e-10`` is written ``0.0``, a float, though its cell is
    whole). A multiple of ``1/rules.EXACT_STEPS`` is written as it is (an int when integral,
    what the rule gives for a value rounding leaves as it is); the rest (rare) by the rule, one
    call per distinct value."""
    scaled = column * rules.EXACT_STEPS
    frac = (scaled != scaled.floor()).fill_null(False)
    ints = (column == column.floor()).fill_null(False)
    if not frac.any():
        return column, ints
    idx = frac.arg_true()
    odd = column.gather(idx)
    written = {v: rules.written_line(v) for v in odd.unique().to_list()}
    return (column.scatter(idx, odd.replace_strict({v: float(w) for v, w in written.items()},
                                                   return_dtype=pl.Float64)),
            ints.scatter(idx, odd.replace_strict({v: isinstance(w, int) for v, w in written.items()},
                                                 return_dtype=pl.Boolean)))


_JSON: Final = msgspec.json.Encoder()


def _line_numbers(fired: pl.DataFrame) -> pl.DataFrame:
    """Of the line moves ``fired`` (the :func:`_line_pass` columns, in arrival order), the
    columns of :func:`_line_table` the routing and a steam's books read: ``_i``, the lines and
    points as written (by :func:`_written`: the points of their difference, the values
    :func:`_with_points` writes), their int flags (``_rlint``/``_lint``/``_dint``) and ``last_update``; no text."""
    prev_line, prev_int = _written(fired.get_column("_rl"))
    new_line, new_int = _written(fired.get_column("_l"))
    # points: rules.line_points(prev, new) is written_line(new - prev): its value (the one
    # :func:`_with_points` writes) and whether it is written as an int, both of the difference
    # (the points once, not by _with_points and again for their flags: 10M quotes, 5M moves' three
    # 40 MB columns and ~0.1 s not written)
    points, points_int = _written(fired.get_column("_l") - fired.get_column("_rl"))
    return pl.DataFrame([
        fired.get_column("_i"), prev_line.alias("prev_line"), new_line.alias("new_line"), points.alias("points"),
        fired.get_column("_lu").alias("last_update"), prev_int.alias("_rlint"), new_int.alias("_lint"),
        points_int.alias("_dint"),
    ])


def _line_table(fired: pl.DataFrame, cfg: DetectOptions, timestamp_column: str | None, side_ids: Any,
                canon: list[str], numbers: pl.DataFrame | Callable[[], pl.DataFrame] | None = None) -> pl.DataFrame:
    """The detected line moves (the :func:`_line_pass` columns joined with their rows' text, in
    arrival order) as the columns of their :class:`LineMove` values' table rows
    (:func:`alert_row`: numbers Float64, ``key_numbers`` JSON text), plus ``_i``, the price
    flags ``_rpint``/``_pint`` and whether the rule writes each line and the points as an int
    (``_rlint``/``_lint``/``_dint``: from the value before rounding, :func:`_written`). The
    rules are the ones :func:`_line_values` calls per value, called here once per distinct value:
    the line side (:func:`rules.line_side_of`) and the direction (:func:`rules.line_direction`)
    per canonical side (``side_ids``: per move, its side's index in ``canon``), lines by
    :func:`rules.written_line` and points by :func:`rules.line_points` (:func:`_written`,
    :func:`_with_points`), key numbers (:func:`rules.key_numbers_crossed` of the configured
    numbers) per distinct (sport, market, previous line, new line). ``numbers``: the moves'
    :func:`_line_numbers`, when the caller made them already (the routing reads them), or what
    gives them once the caller has made them (waited for after the text is gathered).

    The columns of :data:`_UNREAD_BY_SIGNALS`, ``event_id`` and ``bookmaker`` are in the table only
    where ``fired`` has them (the alerts table gathers them from the input by row; the filter may
    read the last two, and a steam's completing move: a caller reading neither gathers neither);
    the other text columns ``fired`` lacks are null. The input's side (the table's ``side`` is the
    line side, by ``side_ids``) is read only to derive a kind or market key (:func:`_derives`)."""
    cols = fired.columns
    text = {c: (pl.col(c) if c in cols else pl.lit(None, dtype=pl.String)) for c in _META_TEXT
            if c in cols or c not in _UNREAD_BY_SIGNALS}
    stamp = pl.coalesce("_ts", "_lu") if timestamp_column else pl.col("_lu")
    # (event_id and bookmaker where ``fired`` has them: a caller that reads neither of this table,
    # the plain routing with a filter that tests neither, leaves them out of its moves' text; the
    # side's text too where nothing is derived from it, :func:`_derives`: the table's side is the
    # line side, by id)
    keys = [c for c in ("event_id", "bookmaker", "side") if c in cols]
    frame = _derive_from_side(fired.select(
        "_i", "sport_key", *keys,
        *(expr.alias(c) for c, expr in text.items()),
        pl.lit(None, dtype=pl.Float64).alias("line"), "_rl", "_l", "_rprice", "_rpint", "_p", "_pint", "_lu",
        stamp.alias("_stamp"), (pl.col("_lu") - pl.col("_rlu")).alias("_elapsed"),
    ))
    if numbers is None:  # (row for row the moves of ``frame``: the caller's when it made them already)
        numbers = _line_numbers(fired)
    elif callable(numbers):  # (made meanwhile by the caller, while the text above was gathered)
        numbers = numbers()
    frame = frame.with_columns(numbers.get_column("points").alias("_d"))
    # per canonical side: its line side, and the direction of a move up or down (gathered by id,
    # no text hashed per move)
    from ..fast import kernel  # (this table is the compiled path's: numba is loaded)

    line_side = [rules.line_side_of(x) for x in canon]
    at = pl.Series(side_ids)
    # (Categorical: a code per move, where a String gather writes a 16-byte view per move and the
    # alerts table then hashed each one into its Categorical side column: 5M line moves, 80 MB and
    # ~0.07-0.1 s CPU; a String-typed table casts it back, as it cast the String before)
    frame = frame.with_columns(pl.Series("_ls", line_side, dtype=pl.Categorical).gather(at))
    # the direction: per move one gather from the sides' two words, up at 2 * side + 1 (a move
    # up, points > 0), down at 2 * side (not up: also a null, as a ``when`` reads it)
    words = pl.Series([rules.line_direction(x, d) for x in line_side for d in (-1.0, 1.0)], dtype=pl.Categorical)
    # (in polars' memory, uint32: side ids are below 2**31; numpy's int64 arithmetic wrote three
    # 40 MB arrays of fresh huge pages per 5M moves: _group_key)
    up = frame.get_column("_d").gt(0).fill_null(False).cast(pl.UInt32)
    direction = words.gather(at.cast(pl.UInt32) * 2 + up)
    # key numbers: once per distinct (sport, market key, previous line, new line), each move's
    # group by one compiled pass over the four as int64 (text by its dictionary code, a line by
    # its bits): a polars group_by of lists, exploded and scattered back, was ~40% of this table
    groups, _, first = kernel.group_rows(*(_group_key(frame.get_column(c), kernel) for c in
                                                   ("sport_key", "market_key", "_rl", "_l")))
    lookup, crossed = cfg.keys.lookup, rules.key_numbers_crossed
    key_text = [_JSON.encode(crossed(prev, new, lookup(sport, "" if mk is None else mk))).decode()
                for sport, mk, prev, new in frame[pl.Series(first)].select(
                    pl.col("sport_key", "market_key").cast(pl.String), "_rl", "_l").iter_rows()]
    key_numbers = pl.Series("key_numbers", key_text, dtype=pl.Categorical).gather(pl.Series(groups))
    written = {c: numbers.get_column(c) for c in ("prev_line", "new_line", "_rlint", "_lint", "_dint")}
    return frame.select(
        "_i", pl.lit("line_move").alias("type"), "sport_key", *(c for c in keys if c != "side"),
        pl.col("_ls").alias("side"),
        "kind", "market_key", written["prev_line"], written["new_line"], pl.col("_d").alias("points"),
        pl.col("_rprice").alias("prev_price"), pl.col("_p").alias("new_price"), direction.alias("direction"),
        key_numbers, pl.col("_lu").alias("last_update"), pl.col("_stamp").alias("timestamp"),
        pl.col("_elapsed").alias("elapsed_ms"),
        *(c for c in ("home_team", "away_team", "commence_time", "player", "market") if c in text),
        "_rpint", "_pint", written["_rlint"], written["_lint"], written["_dint"],
    )


def _json_cells(column: pl.Series, ints: pl.Series | None = None) -> pl.Series:
    """Each value of ``column`` as JSON text, as msgspec writes it inside an alert (text: per
    distinct value; numbers: an int where ``ints`` says so, else the float's JSON, per distinct
    value: a line or points column holds written values, ``ints`` the rule's int flags).
    :func:`_books_compiled` writes the books' numbers by the same rule for the compiled writer
    (an int where flagged, truncated as polars' Int64 cast; else msgspec's float text): change
    both (test_h19_steam16_books compares them)."""
    if column.dtype in (pl.String, pl.Categorical) or isinstance(column.dtype, pl.Enum):
        column = column.cast(pl.String)
        texts = {v: _JSON.encode(v).decode() for v in column.unique().drop_nulls().to_list()}
        if all(t == f'"{v}"' for v, t in texts.items()):  # nothing to escape: the text in quotes
            return pl.select(pl.concat_str(pl.lit('"'), pl.lit(column), pl.lit('"'))).to_series()
        return column.replace_strict(texts, return_dtype=pl.String)
    assert ints is not None, "a number column's cells need its int flags"
    column = column.cast(pl.Float64)
    whole = bool((column == column.floor()).fill_null(True).all())
    if whole and bool(ints.fill_null(False).all()):  # every value an int (the common case)
        return column.cast(pl.Int64).cast(pl.String)
    quarters = _quarter_cells(column, ints)
    if quarters is not None:
        return quarters
    texts = {v: _JSON.encode(v).decode() for v in column.unique().drop_nulls().to_list()}
    floats = column.replace_strict(texts, return_dtype=pl.String)
    if bool((column == 0).any()):
        # (polars' distinct values hold one zero for 0.0 and -0.0: each cell's own sign, as msgspec writes
        # it, "-0.0" or "0.0", not the text of whichever came first: critic22's C22-1, a line rounded to a
        # float zero in a steam's books)
        zero = pl.lit(column) == 0
        floats = pl.select(pl.when(zero & (1.0 / pl.lit(column) < 0)).then(pl.lit(_JSON.encode(-0.0).decode()))
                           .when(zero).then(pl.lit(_JSON.encode(0.0).decode())).otherwise(pl.lit(floats))).to_series()
    as_int = column.cast(pl.Int64, strict=False).cast(pl.String)
    return pl.select(pl.when(pl.lit(ints)).then(pl.lit(as_int)).otherwise(pl.lit(floats))).to_series()


def _quarter_cells(column: pl.Series, ints: pl.Series) -> pl.Series | None:
    """:func:`_json_cells` of a Float64 column whose values are all multiples of 1/4 in a
    small range (lines and points: whole and half points, a few quarters), else None: every
    cell gathered from the texts of the range's values (per value its float JSON and its int
    text, as the general way writes them), one gather of 2 * range cells instead of hashing
    every cell (3.2M counted line moves' numbers at 10M quotes)."""
    import numpy as np

    steps = column * 4.0
    if not bool((steps == steps.floor()).fill_null(True).all()):
        return None
    low, high = steps.min(), steps.max()
    if low is None or high is None:
        return None
    lo, hi = float(low), float(high)  # type: ignore[arg-type]
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo >= 1 << 16:
        return None
    zeros = column.filter(column == 0).to_numpy()
    if bool(np.signbit(zeros).any()):  # -0.0: written "-0.0", not the range's "0.0"
        return None
    values = [(lo + k) / 4.0 for k in range(int(hi - lo) + 1)]
    # per value: its float text, then its int text (a cast to Int64: truncated, as the general way)
    texts = pl.Series([t for v in values for t in (_JSON.encode(v).decode(), str(int(v)))], dtype=pl.String)
    at = (steps - lo).cast(pl.Int64) * 2 + ints.fill_null(False).cast(pl.Int64)
    return texts.gather(at)


#: What a counted move contributes to a steam's ``books`` (:func:`~dropengine.core.steam.book_of`):
#: per move type, the :class:`SteamBook` field -> the move table's column (``type``: the move's type).
_BOOK_OF: Final = {
    "odds_drop": ("bookmaker", "type", "side", "last_update", "prev", "new", "delta"),
    "line_move": ("bookmaker", "type", "side", "last_update", "prev_line", "new_line", "points"),
}
#: The fields of a steam taken from the move that completed it (:func:`~dropengine.core.steam.steam_alert`).
_STEAM_FROM_MOVE: Final = ("sport_key", "event_id", "market_key", "kind", "direction", "timestamp", "home_team",
                           "away_team", "commence_time", "player", "market")
#: Of those, the ones :func:`_steam_table` writes: the alerts table gathers the columns of
#: :data:`_FROM_INPUT` from the input by the alert's row itself (the completing move's row), so
#: a steam's are written only where the filter reads them (:func:`filter_expr`: sport, event)
_STEAM_WRITTEN: Final = tuple(c for c in _STEAM_FROM_MOVE if c not in _FROM_INPUT or c in _FILTER_TEXT)


def _book_texts(kind: str, book: Any, side: Any, book_names: list[str], side_names: list[str],
                last_update: Any, numbers: dict[str, pl.Series]) -> pl.Series:
    """Per counted move, its :class:`SteamBook` as the JSON object a steam's ``books`` cell holds:
    the fields in the struct's order, none null. The object's opening (``bookmaker``, ``type``,
    ``side`` and the time's key) is written once per distinct (book, side) pair (``book``,
    ``side``: per move, indices into ``book_names`` / ``side_names``); ``last_update`` holds each
    move's time (numpy int64), ``numbers`` each number field's JSON text per move."""
    import numpy as np

    from ..core.alerts import SteamBook

    fields = [f for f in SteamBook.__struct_fields__ if f in _BOOK_OF[kind]]
    assert fields[:4] == ["bookmaker", "type", "side", "last_update"] and set(fields[4:]) == set(numbers)

    def key(f: str) -> str:
        return _JSON.encode(f).decode() + ":"

    n_sides = max(len(side_names), 1)
    pairs, which = np.unique(np.asarray(book, np.int64) * n_sides + np.asarray(side, np.int64), return_inverse=True)
    opening = [
        "{" + key("bookmaker") + _JSON.encode(book_names[p // n_sides]).decode() + "," + key("type")
        + _JSON.encode(kind).decode() + "," + key("side") + _JSON.encode(side_names[p % n_sides]).decode() + ","
        + key("last_update")
        for p in pairs.tolist()
    ]
    cells = pl.DataFrame([
        pl.Series("_open", opening, dtype=pl.String).gather(pl.Series(which.ravel())),
        pl.Series("_lu", last_update).cast(pl.String), *(numbers[f].alias(f) for f in fields[4:]),
    ])
    pieces: list[pl.Expr] = [pl.col("_open"), pl.col("_lu")]
    for f in fields[4:]:
        pieces += [pl.lit("," + key(f)), pl.col(f)]
    return cells.select(pl.concat_str(*pieces, pl.lit("}")).alias("_book")).to_series()


def _books_compiled(start: Any, index: Any, n_drops: int, book: Any, side: Any, last_update: Any,
                    drops: pl.DataFrame, lines: pl.DataFrame | None, book_names: list[str],
                    side_names: list[str], arrays: dict[tuple[str, str], Any] | None = None) -> pl.Series | None:
    """The steams' ``books`` cells that :func:`_book_texts`, :func:`_json_cells` and
    :func:`_joined` write (in brackets), written in one compiled pass
    (:func:`dropengine.fast.kernel.json_arrays`) from the same texts: every text in them (a move's
    opening per distinct (book, side), the fields' keys, a float per distinct value) is msgspec's,
    written here as the polars way writes it; the pass writes only ints' digits (``last_update``,
    and a number whose int flag is set: its value truncated, as polars' Int64 cast writes it).
    Per counted move (``index``: its move's row in ``drops`` (the drops' numbers and flags) then
    ``lines`` (the line moves'); ``book``, ``side``, ``last_update``: its codes and time), per
    steam its first counted move (``start``).

    ``arrays``: where the whole columns of ``drops`` and ``lines`` this reads are kept as numpy
    arrays (made on first use), for a caller writing the books of one pair of tables in pieces:
    each column converted once, not per piece (a flag column's bits unpacked to bytes: 10M quotes'
    steams, 5M line moves x 3 flags and 2.6M drops x 2, ~0.04 s a piece); and per move type the
    openings written so far, by (book, side) pair (``("openings", type)``: the same ids in every
    piece).

    ``None`` (the polars way writes them, whose rules these are) where a number is null, not
    finite, int-flagged beyond int64, or a float zero (its own distinct values, ``np.unique``, merge
    ``-0.0`` and ``0.0``; the polars way writes each by its sign: critic22's C22-1), or where the
    text would not fit one column's buffer."""
    import numpy as np

    from ..core.alerts import SteamBook
    from ..fast import kernel

    def key(f: str) -> str:
        return _JSON.encode(f).decode() + ":"

    def numpy_of(table: pl.DataFrame, name: str, flag: bool = False) -> Any:
        """Column ``name`` of ``table`` (``drops`` or ``lines``) as numpy: a ``flag`` with its
        nulls false, a number as Float64 (a null as NaN: declined below)."""
        at = ("drops" if table is drops else "lines", name)
        got = None if arrays is None else arrays.get(at)
        if got is None:
            column = table.get_column(name)
            got = (column.fill_null(False) if flag else column.cast(pl.Float64)).to_numpy()
            if arrays is not None:
                arrays[at] = got  # (two threads may both make it first: the same array)
        return got

    total = len(index)
    pieces: list[str] = []
    opening = np.empty(total, np.int64)
    kind = np.zeros(total, np.int64)
    keys = np.zeros((2, 3), np.int64)
    number = np.zeros((total, 4), np.int64)
    text = np.full((total, 4), -1, np.int64)
    number[:, 0] = last_update
    is_drop = index < n_drops
    n_sides = max(len(side_names), 1)
    for k, name in enumerate(("odds_drop", "line_move")):
        at = np.flatnonzero(is_drop if k == 0 else ~is_drop)
        if not len(at):
            continue
        # per number field, its values (Float64; a null as NaN: declined below) and int flags, of
        # these moves (numpy gathers from the whole columns: no polars call per field)
        numbers: dict[str, tuple[Any, Any]]  # (by field name: written in SteamBook's field order below)
        if k == 0:
            j = index[at]
            prev_int, new_int = (numpy_of(drops, c, flag=True)[j] for c in ("_rpint", "_pint"))
            numbers = {f: (numpy_of(drops, f if f in drops.columns else raw)[j], flag)
                       for f, raw, flag in (("prev", "_rp", prev_int), ("new", "_p", new_int),
                                            ("delta", "_d", prev_int & new_int))}
            names = side_names
        else:
            if lines is None:
                return None
            j = index[at] - n_drops
            numbers = {f: (numpy_of(lines, f)[j], numpy_of(lines, flag, flag=True)[j])
                       for f, flag in (("prev_line", "_rlint"), ("new_line", "_lint"), ("points", "_dint"))}
            names = [rules.line_side_of(x) for x in side_names]
        fields = [f for f in SteamBook.__struct_fields__ if f in _BOOK_OF[name]]
        assert fields[:4] == ["bookmaker", "type", "side", "last_update"] and len(fields) == 7
        kind[at] = k
        for f_at, f in enumerate(fields[4:]):
            keys[k, f_at] = len(pieces)
            pieces.append("," + key(f))
        # the openings: once per distinct (book, side) pair (a lookup over the pairs' range, no sort)
        pair = np.asarray(book[at], np.int64) * n_sides + np.asarray(side[at], np.int64)
        if len(book_names) * n_sides <= 4 * len(at) + (1 << 20):
            used = np.zeros(len(book_names) * n_sides, np.bool_)
            used[pair] = True
            pairs = np.flatnonzero(used)
            opening[at] = len(pieces) + (np.cumsum(used) - 1)[pair]
        else:  # (a range much wider than the moves: sorted instead)
            pairs, which = np.unique(pair, return_inverse=True)
            opening[at] = len(pieces) + which.ravel()
        # (each pair's text written once per run where ``arrays`` is kept for the pieces: 10M steam,
        # ~6k pairs in each of ~36 pieces, ~10 ms a piece of Python)
        written: dict[int, str] = {} if arrays is None else arrays.setdefault(("openings", name), {})
        head, middle = "{" + key("bookmaker"), "," + key("type") + _JSON.encode(name).decode() + "," + key("side")
        tail = "," + key("last_update")
        for p in pairs.tolist():
            made = written.get(p)
            if made is None:
                made = written[p] = (head + _JSON.encode(book_names[p // n_sides]).decode() + middle
                                     + _JSON.encode(names[p % n_sides]).decode() + tail)
            pieces.append(made)
        for f_at, (values, as_int) in enumerate((numbers[f] for f in fields[4:]), start=1):
            if not bool(np.isfinite(values).all()):  # (a null, a NaN, an infinity)
                return None
            if bool(as_int.all()):  # (the common case: one gather, no float)
                if not bool((np.abs(values) < 2.0 ** 63).all()):
                    return None
                number[at, f_at] = values.astype(np.int64)  # (truncated toward zero, as polars' cast)
                continue
            whole = values[as_int]
            if len(whole) and not bool((np.abs(whole) < 2.0 ** 63).all()):
                return None
            number[at[as_int], f_at] = whole.astype(np.int64)
            floats = values[~as_int]
            if len(floats):
                if not bool((floats != 0).all()):
                    return None
                distinct, of = np.unique(floats, return_inverse=True)
                text[at[~as_int], f_at] = len(pieces) + of.ravel()
                pieces.extend(_JSON.encode(v).decode() for v in distinct.tolist())
    if total and int(number[:, 0].min()) == np.iinfo(np.int64).min:  # (the pass writes no int64 minimum)
        return None
    column = kernel.json_arrays("books", start, pieces, opening, kind, keys, number, text)
    if column is None:
        return None
    try:
        return pl.Series(column)  # (no copy: polars takes the Arrow array's block over)
    except TypeError:  # a polars before 1.3 imports no Arrow PyCapsule: the polars way (the block is freed)
        return None


def _joined(texts: pl.Series, start: Any, where: Any = None) -> pl.Series:
    """Per group ``j``, the texts of items ``start[j]:start[j + 1]`` joined by commas (every group
    non-empty; item ``i``'s text is ``texts[where[i]]``, or ``texts[i]`` without ``where``): the
    groups padded to the widest (few books in a steam) as one array column when that is not much
    larger than the items, else grouped."""
    import numpy as np

    sizes = np.diff(start)
    n = len(sizes)
    total = int(start[-1]) if n else 0
    width = int(sizes.max()) if n else 0
    if n * width > 4 * total + 1024:
        group = pl.Series("_s", np.repeat(np.arange(n), sizes)).set_sorted()
        items = texts if where is None else texts.gather(pl.Series(where))
        return pl.DataFrame([group, items.alias("_t")]).group_by("_s", maintain_order=True).agg(
            pl.col("_t").str.join(",")).get_column("_t")
    k = np.arange(width)
    inside = (k[None, :] < sizes[:, None]).ravel()
    item = np.minimum(start[:-1, None] + k[None, :], max(total - 1, 0)).ravel()
    at = pl.Series(item if where is None else where[item])
    # one gather straight into the padded layout (a null index gives a null, skipped by the join)
    padded = texts.gather(at.set(pl.Series(~inside), None) if not inside.all() else at)
    return padded.reshape((n, width)).arr.join(",", ignore_nulls=True)


class _Once(Generic[_T]):
    """The value of ``make``, made once by whichever thread asks first (the others wait for it):
    work handed to a thread (:func:`_in_thread`) that may also be run inline, in the caller, before
    the caller makes it. A failure (a Ctrl-C in the caller's making) is raised to every one that
    asks, once made: the thread does not make it again for a table nobody will read (reread20's RR20-8)."""

    def __init__(self, make: Callable[[], _T]) -> None:
        self._make: Callable[[], _T] | None = make
        self._made: list[_T] = []
        self._failed: list[BaseException] = []
        self._lock = threading.Lock()

    def __call__(self) -> _T:
        with self._lock:
            if self._failed:
                raise self._failed[0]
            if not self._made:
                assert self._make is not None
                try:
                    self._made.append(self._make())
                except BaseException as exc:
                    self._failed.append(exc)
                    raise
                finally:
                    self._make = None  # (what it read goes with it)
            return self._made[0]


def _in_thread(work: Callable[[], _T]) -> Callable[[], _T]:
    """``work`` run in a thread of its own (started now); the callable returned waits for it
    and gives its result, or raises its error. For work that runs outside the GIL (polars, numpy)
    while the caller goes on: the result is the same whichever finishes first.

    Run inline instead (at once, in the caller) where a thread would not help or could not
    work: when the caller is a thread Python did not start (a polars UDF runs on a worker of
    polars' pool: joining there while the thread's polars work waits for that worker deadlocks
    with one worker; break17 B17-1), or when no thread can be started (break17 B17-3).

    A caller interrupted while the work runs (Ctrl-C in :func:`result`'s wait, an error before it
    asks) leaves the work to finish on its own, result dropped: nothing in polars or numba can be
    cancelled. The thread is not a daemon, so an interpreter exiting meanwhile waits for it
    instead of ending it inside polars' or numba's native frames (review17). The wait is on an
    event the work sets when it ends, never the thread's join: CPython 3.11's ``Thread.join``
    interrupted while the thread runs marks it stopped, and the exit then no longer waits for it
    (critic21's C21-4; an interrupted event wait leaves the thread as it was)."""
    done: list[_T] = []
    failed: list[BaseException] = []
    ended = threading.Event()

    def run() -> None:
        try:
            done.append(work())
        except BaseException as e:  # handed to the caller, raised there
            failed.append(e)
        finally:
            ended.set()

    def ran() -> _T:
        if failed:
            raise failed[0]
        return done[0]

    # threading's only mark of a thread it did not start is its private _DummyThread class
    if isinstance(threading.current_thread(), threading._DummyThread):
        run()
        return ran
    thread = threading.Thread(target=run, name="dropengine-batch", daemon=False)
    try:
        thread.start()
    except RuntimeError:  # "can't start new thread": a pids limit, interpreter shutdown
        run()
        return ran

    def result() -> _T:
        ended.wait()  # (as fast.warmed waits: an interrupted event wait leaves the thread as it was)
        return ran()

    return result


#: Counted moves from which the steams' books are written in two threads (:func:`_steam_table`).
_BOOKS_SPLIT: Final = 1 << 16
#: Counted moves whose books a thread writes at a time (:func:`_steam_table`): a range of steams
#: with more is written in pieces (:func:`_pieces`), one after another. (10M steam, two threads'
#: working arrays at ~0.12 KB a counted move: 1 << 19 held ~130 MB more at the books' end, where
#: the peak was, than 1 << 17; 1 << 16 no lower and more calls: session 22, 3 runs each.)
_BOOKS_PIECE: Final = 1 << 17


def _pieces(start: Any, lo: int, hi: int, limit: int) -> list[tuple[int, int]]:
    """Steams ``lo`` to ``hi - 1`` (steam ``j``'s items: ``start[j]`` to ``start[j + 1] - 1``,
    ``start`` increasing) cut into consecutive ranges ``(a, b)`` of steams, in order, covering them
    once: each as many steams as hold at most ``limit`` items together (a steam holding more: a
    range of its own). One range where ``lo == hi``."""
    import numpy as np

    out: list[tuple[int, int]] = []
    a = lo
    while a < hi:
        # the last steam boundary at most ``limit`` items on (at least one steam a range)
        b = int(np.searchsorted(start, start[a] + limit, side="right")) - 1
        b = min(max(b, a + 1), hi)
        out.append((a, b))
        a = b
    return out or [(lo, hi)]


def _steam_table(
    routed: Any, order: Any, lu: Any, rows: Any, ids: _Ids, drops: pl.DataFrame, lines: pl.DataFrame | None,
    flt: AlertFilter, full: _MetaOf,
    line_full: Callable[[pl.Series | None], pl.DataFrame] | None, schema: pl.Schema, *, split: bool = True,
) -> tuple[pl.DataFrame, Callable[[], pl.Series]]:
    """The steams the routing fired, in firing order, as the columns of their :class:`Steam`
    values' table rows (:func:`alert_row`) but ``books`` and the input's text columns the alerts
    table gathers itself (:data:`_STEAM_WRITTEN`), plus, when ``flt`` lists bookmakers,
    ``_books_listed``: whether any of the steam's books is listed (:func:`filter_expr`); and
    ``books`` (JSON text, per steam in firing order): written in a thread of its own while the
    caller goes on (polars writes text without the GIL; the ~20 MB of books per 50k steams were
    most of this table's time), its result (or its error) when the returned callable is called.

    Every field is its moves' (:func:`~dropengine.core.steam.steam_alert`): the completing move's
    text, direction and timestamp (gathered for those moves alone), the outcome of its side
    (:func:`rules.outcome_of`, once per distinct side), ``leader`` the first counted move's book,
    ``lag_ms`` first to last, ``last_update`` the routing's ``T``; ``books`` the counted moves'
    :class:`SteamBook` objects in order (:func:`~dropengine.core.steam.book_of`), written from
    the moves' codes (book, canonical side: JSON text once per distinct value) and numbers, no
    text gathered per counted move. ``lu``, ``rows``: per move (arrival order) its time and row."""
    import numpy as np

    n_drops = drops.height
    fire, members, start = routed.fire_move, routed.members, routed.member_start
    sides = ids.side_names
    # per counted move (the steams' members, in order): its move, book, side and time
    index = order[members]
    m_rows = rows[members]
    m_book = ids.book[m_rows]
    m_side = ids.side[m_rows]
    m_lu = lu[members]
    # what the books read of the moves' tables (the threads hold no other column of them)
    drop_numbers = drops.select(c for c in ("_rpint", "_pint", "prev", "new", "delta", "_rp", "_p", "_d")
                                if c in drops.columns)
    line_numbers = None if lines is None else lines.select("prev_line", "new_line", "points", "_rlint", "_lint",
                                                             "_dint")
    # (their whole columns as numpy, made once for every piece of the books: _books_compiled)
    arrays: dict[tuple[str, str], Any] = {}

    def books_cells(lo: int, hi: int) -> pl.Series:
        """The books of steams ``lo`` to ``hi - 1``: each counted move's SteamBook, from codes
        and numbers, joined per steam (by the compiled writer, :func:`_books_compiled`, where it
        takes the numbers; else here, by polars)."""
        first, stop = int(start[lo]), int(start[hi])
        m_index, book, side, m_time = (a[first:stop] for a in (index, m_book, m_side, m_lu))
        compiled = _books_compiled(start[lo:hi + 1] - first, m_index, n_drops, book, side, m_time, drop_numbers,
                                   line_numbers, ids.book_names, sides, arrays)
        if compiled is not None:
            return compiled
        texts: list[pl.Series] = []
        where: list[Any] = []
        is_drop = m_index < n_drops
        if is_drop.any():
            at = np.flatnonzero(is_drop)
            j = pl.Series(m_index[at])
            prev_int, new_int = drop_numbers.get_column("_rpint").gather(j), drop_numbers.get_column("_pint").gather(j)
            number = {f: drop_numbers.get_column(f if f in drop_numbers.columns else raw).gather(j)
                      for f, raw in (("prev", "_rp"), ("new", "_p"), ("delta", "_d"))}
            texts.append(_book_texts("odds_drop", book[at], side[at], ids.book_names, sides, m_time[at], {
                "prev": _json_cells(number["prev"], prev_int), "new": _json_cells(number["new"], new_int),
                "delta": _json_cells(number["delta"], prev_int & new_int),
            }))
            where.append(at)
        if line_numbers is not None and not is_drop.all():
            at = np.flatnonzero(~is_drop)
            j = pl.Series(m_index[at] - n_drops)
            line_sides = [rules.line_side_of(s) for s in sides]
            texts.append(_book_texts("line_move", book[at], side[at], ids.book_names, line_sides, m_time[at], {
                f: _json_cells(line_numbers.get_column(f).gather(j), line_numbers.get_column(flag).gather(j))
                for f, flag in (("prev_line", "_rlint"), ("new_line", "_lint"), ("points", "_dint"))
            }))
            where.append(at)
        placed = np.concatenate(where)
        back = np.empty(len(placed), np.int64)
        back[placed] = np.arange(len(placed))
        books = _joined(pl.concat(texts), start[lo:hi + 1] - first, back)
        # (the brackets in one pass: ``"[" + books + "]"`` writes the ~20 MB of books twice)
        return pl.select(pl.concat_str(pl.lit("["), pl.lit(books), pl.lit("]")).alias("books")).to_series()

    # the steams in two halves (``split``), each in a thread of its own: the text is written one
    # column at a time (one core each), and the caller mostly waits for it (459k steams, 423 MB of
    # books at 10M)
    n_steams = routed.steams
    halves = (0, n_steams // 2, n_steams) if split and len(members) >= _BOOKS_SPLIT and n_steams > 1 else (0, n_steams)

    def books_run(lo: int, hi: int) -> pl.Series:
        """The books of steams ``lo`` to ``hi - 1`` by :func:`_pieces` of :data:`_BOOKS_PIECE` counted
        moves, written one after another (memory: one piece's working arrays alive at a time, ~0.12 KB
        a counted move, not the whole range's), joined in order."""
        got = [books_cells(a, b) for a, b in _pieces(start, lo, hi, _BOOKS_PIECE)]
        return got[0] if len(got) == 1 else pl.concat(got)

    pending = [_in_thread(functools.partial(books_run, lo, hi)) for lo, hi in itertools.pairwise(halves)]

    def books() -> pl.Series:
        got = [part() for part in pending]
        return got[0] if len(got) == 1 else pl.concat(got)

    # -- the rest: the completing moves' fields -------------------------------------------------
    names = pl.Series(ids.book_names, dtype=pl.String)
    fire_index = order[fire]
    parts: list[pl.DataFrame] = []
    where: list[Any] = []
    for kind, table, is_kind in (("odds_drop", drops, fire_index < n_drops),
                                 ("line_move", lines, fire_index >= n_drops)):
        if table is None or not is_kind.any():
            continue
        at = np.flatnonzero(is_kind)
        picked = pl.Series(fire_index[at] - (0 if kind == "odds_drop" else n_drops))
        if kind == "odds_drop" and "sport_key" not in table.columns:
            # written for these rows alone, of the input's text only what a steam's own columns read
            # (10M steam: 167k drops' five columns not gathered, each a pass over the input's 10M rows)
            sub = full(table[picked], _LEFT_BY_LINE_TABLE).select("side", *_STEAM_WRITTEN)
        elif kind == "line_move" and "sport_key" not in table.columns and line_full is not None:
            sub = line_full(picked).select("side", *_STEAM_WRITTEN)  # (the same)
        else:
            sub = _gather(table, {c: c for c in ("side", *_STEAM_WRITTEN)}, picked)
        side = sub.get_column("side").cast(pl.String)
        if kind == "odds_drop":
            outcome = side.replace_strict({s: rules.outcome_of(s) for s in side.unique().to_list()},
                                          return_dtype=pl.String)
        else:  # a line move's side is its outcome already (a player's name may hold '@')
            outcome = side
        # each column as the alerts table types it (the parts agree; no cast there again)
        parts.append(pl.DataFrame([_typed_column(sub, c, _column_type(c, schema)) for c in _STEAM_WRITTEN])
                     .with_columns(outcome.alias("_outcome")))
        where.append(at)
    placed = np.concatenate(where)
    back = np.empty(len(placed), np.int64)
    back[placed] = np.arange(len(placed))
    completing = pl.concat(parts)[pl.Series(back)]
    first = members[start[:-1]]
    last = members[start[1:] - 1]
    extra: list[pl.Series] = []
    if flt.bookmakers is not None:  # the filter's bookmakers: a steam passes when any of its books is listed
        listed = names.gather(m_book).is_in(sorted(flt.bookmakers)).to_numpy()
        extra.append(pl.Series("_books_listed", np.logical_or.reduceat(listed, start[:-1])))
    leaders = pl.Series("leader", ids.book_names, dtype=_column_type("leader", schema))
    return completing.select(
        pl.lit("steam").alias("type"), "sport_key", "event_id", pl.col("_outcome").alias("side"), "market_key", "kind",
        "direction",
        leaders.gather(pl.Series(ids.book[rows[first]])),
        pl.Series("lag_ms", lu[last] - lu[first], dtype=pl.Int64),
        pl.Series("last_update", routed.fire_t, dtype=pl.Int64), "timestamp", "player",
    ).with_columns(extra), books


def _line_values(fired: pl.DataFrame, cfg: DetectOptions, timestamp_column: str | None) -> list[LineMove]:
    """The detected line moves (the :func:`_line_pass` columns joined with their rows' text)
    as :class:`LineMove` values, built with the rules the stream engine uses: lines written by
    :func:`rules.written_line`, points by :func:`rules.line_points`, direction by
    :func:`rules.line_direction`, key numbers by :func:`rules.key_numbers_crossed`; kind,
    market key and player derived from the side where the row leaves them (as ``Quote``)."""
    cols = fired.columns
    text = {c: (pl.col(c) if c in cols else pl.lit(None, dtype=pl.String)) for c in _META_TEXT}
    stamp = pl.coalesce("_ts", "_lu") if timestamp_column else pl.col("_lu")
    frame = _derive_from_side(fired.select(
        "sport_key", "event_id", "bookmaker", "side", *(text[c].alias(c) for c in _META_TEXT),
        pl.lit(None, dtype=pl.Float64).alias("line"), "_rl", "_l", "_rprice", "_rpint", "_p", "_pint", "_lu",
        stamp.alias("_stamp"), (pl.col("_lu") - pl.col("_rlu")).alias("_elapsed"),
    ))
    keys, written, points_of, direction_of = cfg.keys, rules.written_line, rules.line_points, rules.line_direction
    crossed, line_side_of = rules.key_numbers_crossed, rules.line_side_of
    out: list[LineMove] = []
    for (sport, event, book, side, kind, market_key, market, player, home, away, commence, _line, prev, new,
         prev_price, prev_int, new_price, new_int, lu, ts, elapsed) in frame.iter_rows():
        if prev_int and prev_price is not None:
            prev_price = int(prev_price)
        if new_int and new_price is not None:
            new_price = int(new_price)
        line_side = line_side_of(side)
        points = points_of(prev, new)
        direction = direction_of(line_side, points)
        assert direction is not None  # a detected move is never zero points
        out.append(LineMove(
            sport, event, book, line_side, kind, market_key, written(prev), written(new), points, prev_price,
            new_price, direction, crossed(prev, new, keys.lookup(sport, market_key or "")), lu, ts, elapsed,
            home, away, commence, player, market,
        ))
    return out


#: Number columns of a table of several alert types: times are Int64, the rest (prices, lines,
#: points) Float64 (a column of several types holds both kinds of number; the values with their
#: own types are :meth:`BatchResult.alert_values`); every other column is text.
_TIME_COLUMNS: Final = frozenset(TIME_FIELDS)
_FLOAT_COLUMNS: Final = frozenset(NUMBER_FIELDS)


def _alert_table(drops: pl.DataFrame, others: list[tuple[int, Alert]], columns: tuple[str, ...]) -> pl.DataFrame:
    """Alerts of several types as one table of ``columns`` in detection order: the returned
    price drops straight from the drops table (``_at``: their place in the order, -1 for those
    not returned), the other alerts (fewer) as :func:`alert_row` writes them, each with its
    place. The fields :func:`alert_row` writes as they are are read column by column
    (``msgspec.structs.astuple``); only the cells it rewrites (JSON text) go through it."""
    def dtype(c: str) -> type[pl.DataType]:
        return pl.Int64 if c in _TIME_COLUMNS else pl.Float64 if c in _FLOAT_COLUMNS else pl.String

    schema: dict[str, type[pl.DataType]] = {"_at": pl.Int64, **{c: dtype(c) for c in columns}}
    parts = [drops.filter(pl.col("_at") >= 0).select(
        pl.col(c).cast(t) if c in drops.columns else pl.lit(None, t).alias(c) for c, t in schema.items()
    )]
    by_type: dict[type, list[tuple[int, Alert]]] = {}
    for at, alert in others:
        by_type.setdefault(type(alert), []).append((at, alert))
    for items in by_type.values():
        alerts = [a for _, a in items]
        sample = alerts[0]
        fields = sample.__struct_fields__
        data: dict[str, list[Any]] = {"_at": [at for at, _ in items], "type": [sample.type] * len(alerts)}
        values = list(zip(*(msgspec.structs.astuple(a) for a in alerts), strict=True))
        for j, c in enumerate(fields):
            if c not in schema:
                continue
            if alert_row(sample, (c,))[c] is getattr(sample, c):
                data[c] = list(values[j])
            else:  # a cell alert_row rewrites (a steam's books, a line move's key numbers)
                data[c] = [alert_row(a, (c,))[c] for a in alerts]
        parts.append(pl.DataFrame(data, schema={c: schema[c] for c in data}, strict=False))
    return pl.concat(parts, how="diagonal").select(list(schema)).sort("_at").drop("_at")


def accepted_quotes(quotes: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The rows the detector accepts, per key in arrival order.

    Invalid prices, stale rows, rows no quote could be built from and line-only observations
    (SPEC 10: no price quotes) are removed; suspensions (null ``price``) are kept. Columns: ``row`` (input position),
    ``sport_key``, ``event_id``, ``bookmaker``, ``side`` (canonical), ``price`` (Float64),
    ``last_update``, then whichever of ``kind``, ``market_key``, ``market``, ``player``,
    ``home_team``, ``away_team``, ``commence_time``, ``line`` the input has. The backtest
    reads price histories from here, so it sees exactly what detection saw.
    """
    frame = _load(quotes, None).frame
    rows = frame.filter(~pl.col(_LINE_ONLY)) if _LINE_ONLY in frame.columns else frame
    w, _ = _accept(rows.filter(~pl.col("_invalid")), KEY, ("_lu", "_p", "_c", "_pint"))
    w = w.drop("_pint").join(frame.drop("_lu", "_p", "_c", "_invalid", "_pint", *_LINE_WORK, strict=False),
                             on="_i", how="left", maintain_order="left")
    rest = [c for c in w.columns if not c.startswith("_") and c not in ("sport_key", *KEY)]
    return w.select(
        pl.col("_i").alias("row"), "sport_key", *KEY, pl.col("_p").alias("price"),
        pl.col("_lu").alias("last_update"), *rest,
    )


@dataclass(frozen=True, slots=True)
class _Loaded:
    frame: pl.DataFrame
    #: the input's schema (the alerts' text columns follow its types: :func:`_text_types`)
    schema: pl.Schema
    #: whether an all-integer result may be given Int64 columns (the price column was numbers
    #: or text; a Null column has no prices at all)
    int_column: bool
    seen: int
    invalid: int
    skipped: dict[str, int]
    rejected: pl.DataFrame


@dataclass(frozen=True, slots=True)
class _Plan:
    """What :func:`_load` and :func:`_compiled_passes` compute from the input: the checked schema and
    the typed working columns as expressions."""

    lf: pl.LazyFrame
    schema: pl.Schema
    meta: list[str]
    lu: list[pl.Expr]
    price: list[pl.Expr]
    line: list[pl.Expr]
    line_only: list[pl.Expr]
    stamp: list[pl.Expr]
    int_column: bool


def _plan(quotes: pl.DataFrame | pl.LazyFrame, timestamp_column: str | None) -> _Plan:
    """The input's columns checked (ConfigError naming the column and its type) and the typed
    working columns: ``_lu``/``_lu_missing``, the price columns, the line, the line-only flag
    and the arrival time, as expressions."""
    if isinstance(quotes, pl.DataFrame):
        lf = quotes.lazy()
    elif isinstance(quotes, pl.LazyFrame):
        lf = quotes
    else:
        raise ConfigError(f"quotes: expected a polars DataFrame or LazyFrame, got {type(quotes).__name__}")
    schema = _computed(lf.collect_schema)
    missing = [c for c in REQUIRED if c not in schema]
    if missing:
        raise ConfigError(f"quotes: missing column(s) {', '.join(missing)} (SPEC section 2 columns)")
    if timestamp_column is not None and type(timestamp_column) is not str:
        raise ConfigError(f"timestamp_column: {timestamp_column!r} must be a column name (str) or None")
    if timestamp_column is not None and timestamp_column not in schema:
        raise ConfigError(f"timestamp_column: no column {timestamp_column!r} in quotes")
    price_dtype = schema["price"]
    if not (price_dtype.is_numeric() or price_dtype == pl.String or price_dtype == pl.Null):
        raise ConfigError(f"quotes: column price has type {price_dtype}; expected numbers or text")
    meta = [c for c in _META_TEXT if c in schema]
    for c in ("sport_key", *KEY, *meta):
        dtype = schema[c]
        if dtype.is_nested() or dtype == pl.Object or dtype == pl.Binary:
            raise ConfigError(f"quotes: column {c} has type {dtype}; expected text")
    lu_dtype = schema["last_update"]
    if not (lu_dtype.is_numeric() or lu_dtype in (pl.String, pl.Null) or isinstance(lu_dtype, pl.Datetime)):
        raise ConfigError(f"quotes: column last_update has type {lu_dtype}; expected unix ms (integers) or datetimes")
    if "line" in schema and not (schema["line"].is_numeric() or schema["line"] == pl.Null):
        raise ConfigError(f"quotes: column line has type {schema['line']}; expected numbers")
    flag: pl.Expr | None = None
    if PRICE_INT_COLUMN in schema:
        if schema[PRICE_INT_COLUMN] not in (pl.Boolean, pl.Null):
            raise ConfigError(
                f"quotes: column {PRICE_INT_COLUMN} has type {schema[PRICE_INT_COLUMN]}; expected booleans"
            )
        flag = pl.col(PRICE_INT_COLUMN).cast(pl.Boolean)
    line_only: list[pl.Expr] = []
    if LINE_ONLY_COLUMN in schema:
        lo_dtype = schema[LINE_ONLY_COLUMN]
        if lo_dtype == pl.String:  # a CSV's text, read as the row reader reads it (null: not one of them)
            marks = {k: v for k, v in _TRUE_FALSE.items() if isinstance(k, str)}
            mark = pl.col(LINE_ONLY_COLUMN).replace_strict(marks, default=None, return_dtype=pl.Boolean)
            line_only = [
                mark.fill_null(False).alias(_LINE_ONLY),
                (pl.col(LINE_ONLY_COLUMN).is_not_null() & mark.is_null()).alias("_bad_mark"),
            ]
        elif lo_dtype in (pl.Boolean, pl.Null):
            line_only = [pl.col(LINE_ONLY_COLUMN).cast(pl.Boolean).fill_null(False).alias(_LINE_ONLY)]
        else:
            raise ConfigError(
                f"quotes: column {LINE_ONLY_COLUMN} has type {lo_dtype}; expected booleans (or true/false text)"
            )
    stamp: list[pl.Expr] = []
    if timestamp_column is not None:
        ts_dtype = schema[timestamp_column]
        if not (ts_dtype.is_integer() or ts_dtype == pl.Null):
            raise ConfigError(
                f"timestamp_column: column {timestamp_column!r} has type {ts_dtype}; expected integers (unix ms)"
            )
        stamp = [pl.col(timestamp_column).cast(pl.Int64).alias("_ts")]

    return _Plan(
        lf, schema, meta,
        [_ms(pl.col("last_update"), lu_dtype).alias("_lu"), _missing_expr(pl.col("last_update"), lu_dtype)],
        _price_columns(price_dtype, flag), [pl.col("line").cast(pl.Float64)] if "line" in schema else [],
        line_only, stamp, price_dtype != pl.Null,
    )


def _load(quotes: pl.DataFrame | pl.LazyFrame, timestamp_column: str | None, *, lines: bool = False) -> _Loaded:
    """Typed working columns for every row; rows no quote could be built from set aside.

    With ``lines`` (line series run), also each row's series line and line side
    (:func:`_with_lines`)."""
    plan = _plan(quotes, timestamp_column)
    line_only, stamp = plan.line_only, plan.stamp
    frame = _computed(
        plan.lf.select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i"),
            *(pl.col(c).cast(pl.String) for c in ("sport_key", *KEY)),
            *plan.lu,
            *plan.price,
            *(pl.col(c).cast(pl.String) for c in plan.meta),
            *plan.line,
            *line_only,
            *stamp,
        ).collect
    )
    _check_stamps(frame, timestamp_column)
    seen = frame.height

    # Rows no quote could be built from, each for the first step of SKIP_ORDER it fails, with the
    # reason the row reader gives (formats.tables)
    # (judged before the sides are rewritten: a side no grammar parses becomes null)
    missing = pl.any_horizontal(
        pl.col("_lu_missing"), *(pl.col(c).is_null() | (pl.col(c) == "") for c in ("sport_key", *KEY)))
    frame = _canonical_sides(frame.with_columns(missing.alias("_missing")))
    # the distinct sides, listed once for the per-side lookups below (a skipped row's too: looked up, never kept)
    sides = frame.get_column("side").drop_nulls().unique().to_list()
    if lines:
        frame = _with_lines(frame, sides)
    has_line = "line" in frame.columns
    lo = pl.col(_LINE_ONLY)
    steps: dict[str, pl.Expr | None] = {
        "missing": pl.col("_missing"),
        "text": _text_faults(plan.schema),
        "line": (pl.col("line").is_not_null() & ~pl.col("line").is_finite()) if has_line else None,
        "side": pl.col("_bad_side"),
        "time": pl.col("_lu").is_null(),
        "field": _field_faults(frame, plan.schema, {s: parse_side(s).kind for s in sides}),
        # Quote's own checks of a line-only observation: no price, and a line to observe
        "line_only_price": lo & (pl.col("_p").is_not_null() | pl.col("_invalid")) if line_only else None,
        "line_only_line": lo & (_quote_line(frame, sides).is_null() | ~pl.col("side").str.contains("@", literal=True))
        if line_only else None,
        "price": None,  # not a skip here: counted as an invalid price
    }
    chain: Any = pl
    for step, why in SKIP_ORDER:
        fault = steps[step]
        if fault is not None:
            chain = chain.when(fault.fill_null(False)).then(pl.lit(why))
    frame = frame.with_columns(chain.otherwise(None).alias("_skip")).drop(
        "_lu_missing", "_missing", "_bad_side", "_bad_mark", strict=False)
    skipped = dict(frame.filter(pl.col("_skip").is_not_null()).group_by("_skip").len().iter_rows())
    rejected = (
        frame.filter(pl.col("_skip").is_not_null() | pl.col("_invalid"))
        .select(pl.col("_i").alias("row"), pl.coalesce("_skip", pl.lit("invalid price")).alias("reason"))
    )
    frame = frame.filter(pl.col("_skip").is_null()).drop("_skip")
    n_invalid = frame.select(pl.col("_invalid").sum()).item() or 0
    seen -= sum(skipped.values())

    return _Loaded(frame, plan.schema, plan.int_column, seen, n_invalid, skipped, rejected)


def _check_stamps(frame: pl.DataFrame, timestamp_column: str | None) -> None:
    if timestamp_column is not None and frame.select((pl.col("_ts") < 0).any()).item():
        raise ConfigError(
            f"timestamp_column: column {timestamp_column!r} holds negative times"
            " (like now_ms, an arrival time is non-negative unix ms)"
        )


def _accept(frame: pl.DataFrame, key: tuple[str, ...], columns: tuple[str, ...]) -> tuple[pl.DataFrame, int]:
    """Rule 2's stale rows out of ``frame`` (rows of one kind of series, keyed by ``key``):
    a row whose time is below the running max of its key's earlier rows. Returns the rows
    (``_i`` and ``columns``) sorted by key and position, and the stale count."""
    # Sort by integer codes of the key columns (hash-encoded, O(n)) rather than by the strings:
    # any order that groups each key and keeps input order within it will do.
    # Only the narrow working columns travel through the sort; callers join the text back by _i.
    codes = [pl.col(c).cast(pl.Categorical).to_physical().alias(f"_k{j}") for j, c in enumerate(key)]
    names = [f"_k{j}" for j in range(len(key))]
    w = frame.select("_i", *codes, *columns)
    w = w.sort([*names, "_i"])
    new_key = pl.any_horizontal(*(pl.col(k) != pl.col(k).shift(1) for k in names)).fill_null(True)
    w = w.with_columns(new_key.alias("_newkey")).drop(names)
    w = w.with_columns(pl.col("_newkey").cum_sum().alias("_g"))
    lo, hi, groups = w.select(
        pl.col("_lu").min().alias("lo"), pl.col("_lu").max().alias("hi"), pl.col("_g").max()
    ).row(0)
    if lo is not None and hi - lo < 2**40 and groups < 2**22:
        # One Int64 per row, ordered by (group, time): a running max over the whole frame is the
        # running max within the group, since an earlier group's values are always smaller.
        packed = (pl.col("_g").cast(pl.Int64) * 2**40) + (pl.col("_lu") - lo)
        w = w.with_columns(packed.alias("_pk"))
        stale = pl.col("_pk") < pl.col("_pk").cum_max().shift(1)
    else:  # times spanning more than 34 years, or over 4M keys: the general windowed form
        w = w.with_columns(pl.col("_lu").cum_max().shift(1).over("_g").alias("_newest"))
        stale = pl.col("_lu") < pl.col("_newest")
    n_stale = w.select(stale.sum()).item() or 0
    w = w.filter(~stale.fill_null(False))
    # A key's first kept row starts its group (recomputed after the filter).
    w = w.with_columns((pl.col("_g") != pl.col("_g").shift(1)).fill_null(True).alias("_newkey"))
    return w, n_stale


def _computed(compute: Callable[[], _T]) -> _T:
    """Run a polars computation over the caller's frame: a LazyFrame whose own plan fails (a
    bad cast, an unreadable scanned file) is bad input, reported as a FeedError."""
    try:
        return compute()
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FeedError(f"quotes: the frame could not be computed ({first})", "unreadable") from None


def _missing_expr(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """``_lu_missing``: the row reader's 'missing field' test of a required cell (formats.tables:
    null or ``""``, the raw cell: white space alone is a cell, judged by :func:`_ms`)."""
    return (col.is_null() | (col == "") if dtype == pl.String else col.is_null()).alias("_lu_missing")


def _ms(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """``last_update`` as Int64 unix ms; anything that is not a non-negative integer is null."""
    if dtype.is_integer():
        out = col.cast(pl.Int64, strict=False)
    elif dtype.is_float() or dtype.is_decimal():  # a database export's DECIMAL(p, s) too
        col = col.cast(pl.Float64)
        out = pl.when(col.is_finite() & (col == col.floor())).then(col.cast(pl.Int64, strict=False))
    elif isinstance(dtype, pl.Datetime):
        out = col.dt.epoch("ms")
    elif dtype == pl.String:  # formats.frames.coerce_ms: ASCII digits between white space (str.strip's)
        text = col.str.strip_chars(rules.WHITESPACE)
        out = pl.when(text.str.contains(r"^[0-9]+$")).then(text.cast(pl.Int64, strict=False))
    else:
        return pl.lit(None, dtype=pl.Int64)
    return pl.when(out >= 0).then(out)


def _price_columns(dtype: pl.DataType, flag: pl.Expr | None) -> list[pl.Expr]:
    """``_p`` (Float64 price or null), ``_invalid`` (not a valid price: rules.is_valid_price),
    ``_c`` (cents: rules.to_cents) and ``_pint`` (the price arrived as an integer)."""
    col = pl.col("price")
    if dtype == pl.String:
        # rules.number_from_text in polars: the same white space stripped (rules.WHITESPACE), the same
        # regexes; empty is the raw cell "" as the row reader's (formats.tables): white space alone is
        # text that is no number, an invalid price, not a suspension (B25-3)
        text = col.str.strip_chars(rules.WHITESPACE)
        empty = col.is_null() | (col == "")
        number = pl.when(text.str.contains(_PLAIN_NUMBER)).then(text.cast(pl.Float64, strict=False))
        p = pl.when(empty).then(None).otherwise(number)
        unparsed = ~empty & number.is_null()
        is_int = text.str.contains(_INTEGER_TEXT).fill_null(False)
    else:
        p = col.cast(pl.Float64)
        unparsed = pl.lit(False)
        if dtype.is_decimal():  # as the row reader reads a decimal: integral values are ints
            is_int = (p == p.floor()).fill_null(False)
        else:
            is_int = pl.lit(dtype.is_integer() or dtype == pl.Null)
    if flag is not None:  # the table builder knew each price's type; a fractional price stays a float
        is_int = pl.coalesce(flag, is_int) & (p == p.floor()).fill_null(True)
    invalid = unparsed | (p.is_not_null() & ~valid_price_expr(p).fill_null(False))
    return [p.alias("_p"), invalid.alias("_invalid"), cents_expr(p).alias("_c"), is_int.alias("_pint")]


def valid_price_expr(p: pl.Expr) -> pl.Expr:
    """:func:`rules.is_valid_price` of a Float64 price column (NaN and infinities are not valid)."""
    lo, hi = rules.MIN_ABS_PRICE, rules.MAX_ABS_PRICE
    return p.is_between(lo, hi) | p.is_between(-hi, -lo)


def cents_expr(p: pl.Expr) -> pl.Expr:
    """:func:`rules.to_cents` of a valid-price column, with the same float operations."""
    return pl.when(p > 0).then(p - 100).otherwise(p + 100)


def prob_move_expr(prev: pl.Expr, new: pl.Expr) -> pl.Expr:
    """:func:`rules.prob_move`, with the same float operations in the same order."""
    def prob(x: pl.Expr) -> pl.Expr:  # rules.to_prob
        return pl.when(x > 0).then(100.0 / (x + 100.0)).otherwise(-x / (100.0 - x))

    return (prob(new) - prob(prev)) * -100.0


def direction_expr(delta: pl.Expr) -> pl.Expr:
    """:func:`rules.direction_of` of a non-zero delta column."""
    fav, dog = rules.direction_of(-1), rules.direction_of(1)
    return pl.when(delta < 0).then(pl.lit(fav)).otherwise(pl.lit(dog))


def _with_delta(frame: pl.DataFrame) -> pl.DataFrame:
    """``_d``: the written delta of each move (``_c - _rc`` by :func:`rules.round_delta`).

    Rounding is the identity on a multiple of ``1/rules.EXACT_STEPS`` (whole, half, quarter
    cents ...), so only other differences (rare: prices such as ``+261.9``) are rounded, one Python
    call each: polars' own rounding is not guaranteed to match Python's correctly rounded
    ``round`` bit for bit."""
    d = (frame.get_column("_c") - frame.get_column("_rc")).alias("_d")
    scaled = d * rules.EXACT_STEPS  # exact (a power of two): rounding leaves a multiple of 1/512 alone
    frac = (scaled != scaled.floor()).fill_null(False)
    if frac.any():
        idx = frac.arg_true()
        d = d.scatter(idx, [rules.round_delta(x) for x in d.gather(idx).to_list()])
    return frame.with_columns(d)


def _canonical_sides(frame: pl.DataFrame) -> pl.DataFrame:
    """Rewrite sides canonically with :func:`~dropengine.core.sides.canonical_side` (one call per
    distinct side, so the grammar lives in one place) and mark unparseable ones (``_bad_side``)."""
    mapping: dict[str, str | None] = {}
    for side in frame.get_column("side").drop_nulls().unique().to_list():
        try:
            mapping[side] = canonical_side(side)
        except FeedError:
            mapping[side] = None
    side = pl.col("side").replace_strict(mapping, default=None, return_dtype=pl.String)
    return frame.with_columns(side.alias("side"), (pl.col("side").is_not_null() & side.is_null()).alias("_bad_side"))


def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Null) or isinstance(dtype, (pl.Categorical, pl.Enum))


def _text_faults(schema: pl.Schema) -> pl.Expr | None:
    """SKIP_ORDER's ``text`` step: a required text column of a type the row reader takes no id
    from (not text, not integers: a float's 1.5): each of its cells holding a value (None: no
    such column)."""
    faults = [pl.col(c).is_not_null() for c in ("sport_key", *KEY)
              if not (_is_text(schema[c]) or schema[c].is_integer())]
    return pl.any_horizontal(faults) if faults else None


def _field_judged(frame: pl.DataFrame, schema: pl.Schema) -> bool:
    """Whether some row of ``frame`` (the compiled path's, text as the input holds it) may fail
    SKIP_ORDER's ``field`` step beyond its line-only mark: told by the columns' types and their
    distinct kinds, so the usual input (kinds game/prop, every row's market key) judges no row."""
    cols = frame.columns
    if any(not _is_text(schema[c]) and frame.get_column(c).null_count() < frame.height
           for c in _META_TEXT if c in cols):
        return True
    if "kind" not in cols:
        return False
    # (compared, never cast nor hashed: 10M rows, a Categorical ~3 ms, a String ~22 ms; is_in on
    # a String ~90 ms)
    kind = frame.get_column("kind")
    if kind.null_count() == kind.len():  # (a Null column compares to nothing)
        return False
    given = functools.reduce(operator.or_, (kind == k for k in KINDS))
    if (~(given | (kind == ""))).any():  # a kind not game/prop (a null is neither: never any)
        return True
    if not given.any():
        return False
    if "market_key" not in cols:
        return True
    market = frame.get_column("market_key")
    return bool(market.null_count()) or bool((market == "").any())


def _field_faults(frame: pl.DataFrame, schema: pl.Schema, side_kinds: Mapping[str, str]) -> pl.Expr:
    """SKIP_ORDER's ``field`` step, per row of ``frame``: an optional text column not of text (a
    cell holding a value), a kind given but not game/prop, or contradicting the side's kind
    (``side_kinds``, by the frame's spelling of the side) where the quote derives the market
    from the side (no market key), a line-only mark not true/false/empty (``_bad_mark``)."""
    cols = frame.columns
    faults = [pl.col(c).is_not_null() for c in _META_TEXT if c in cols and not _is_text(schema[c])]
    if "kind" in cols:
        kind = pl.col("kind").cast(pl.String)
        no_market = (pl.col("market_key").is_null() | (pl.col("market_key").cast(pl.String) == "")
                     if "market_key" in cols else pl.lit(True))
        side_kind = pl.col("side").cast(pl.String).replace_strict(side_kinds, default=None, return_dtype=pl.String)
        faults.append(kind.is_not_null() & (kind != "") & (~kind.is_in(KINDS) | (no_market & (kind != side_kind))))
    if "_bad_mark" in cols:
        faults.append(pl.col("_bad_mark"))
    return pl.any_horizontal(faults).fill_null(False) if faults else pl.lit(False)


def _with_lines(frame: pl.DataFrame, sides: list[str]) -> pl.DataFrame:
    """``_l``, the line a row observes on its line series (:func:`rules.series_line`: the line
    its side spells; null for a side without one, or beyond ``rules.MAX_ABS_LINE``), and
    ``_ls``, the series' side (:func:`rules.line_side_of`); one call per distinct side, as
    :func:`_canonical_sides` (``sides``: the frame's distinct usable sides)."""
    return frame.with_columns(
        pl.col("side").replace_strict({s: rules.series_line(s) for s in sides}, default=None,
                                      return_dtype=pl.Float64).alias("_l"),
        pl.col("side").replace_strict({s: rules.line_side_of(s) for s in sides}, default=None,
                                      return_dtype=pl.String).alias("_ls"),
    )


def _quote_line(frame: pl.DataFrame, sides: list[str]) -> pl.Expr:
    """:attr:`Quote.line <dropengine.core.quote.Quote.line>` of each row: the ``line`` cell, else
    the side's line where the quote derives it (``kind`` or ``market_key`` missing; ``sides``:
    the frame's distinct usable sides)."""
    side_line = pl.col("side").replace_strict(
        {s: parse_side(s).line for s in sides}, default=None, return_dtype=pl.Float64
    )
    derived = pl.when(_leaves_to_side(frame.columns)).then(side_line)
    return pl.coalesce(pl.col("line"), derived) if "line" in frame.columns else derived


def _line_pass(frame: pl.DataFrame, cfg: DetectOptions) -> _Pass:
    """SPEC 10: the rules of SPEC 3 over the line series ``(event_id, bookmaker, line side)``,
    the line as the value. Every quote with a line and no invalid price observes its series; a
    null price suspends it unless the quote is a line-only observation (no price published).

    The price riding on a line is that of the line's latest observation: a repeat updates it,
    and a suspension quoted at the series' line (or, under ``anchor``, at the anchor line) makes
    it null (the line was not available at a price just before the move).

    Columns of the detected moves: ``_i``, ``_lu``, ``_l`` (new line), ``_p``/``_pint`` (new
    price), ``_rl``/``_rlu`` (reference line, and when it was first observed or anchored),
    ``_rprice``/``_rpint`` (the price riding on the reference line) and ``_d`` (the written
    points, :func:`rules.line_points`)."""
    rows = frame.filter(~pl.col("_invalid") & pl.col("_l").is_not_null())
    lo = pl.col(_LINE_ONLY) if _LINE_ONLY in frame.columns else pl.lit(False)
    rows = rows.with_columns((pl.col("_p").is_null() & ~lo).alias("_susp"))
    w, n_stale = _accept(rows, LINE_KEY, ("_lu", "_l", "_p", "_pint", "_susp"))

    # Suspensions as for prices: with re-priming each one opens a new segment.
    is_susp = pl.col("_susp")
    n_susp = w.select(is_susp.sum()).item() or 0
    seg_start = pl.col("_newkey") | (is_susp if cfg.reprime_after_suspension else pl.lit(False))
    w = w.with_columns(seg_start.cum_sum().alias("_s"))

    # ``_cur``: the series' line just before each row (its latest priced or line-only line in
    # the segment; a suspension does not change it), null before the segment's first line.
    w = w.with_columns(
        pl.when(~is_susp).then(pl.col("_l")).forward_fill().shift(1).alias("_cur"),
        pl.when(~is_susp).then(pl.col("_s")).forward_fill().shift(1).alias("_cur_s"),
    ).with_columns(pl.when(pl.col("_cur_s") == pl.col("_s")).then(pl.col("_cur")).alias("_cur"))
    # Priming (the segment's first line) and repeats (its current line again).
    w = w.with_columns(
        (~is_susp & pl.col("_cur").is_null()).alias("_first"),
        (~is_susp & (pl.col("_cur").is_null() | (pl.col("_l") != pl.col("_cur")))).alias("_run"),
    )
    n_primed = w.select(pl.col("_first").sum()).item() or 0
    n_rep = w.height - n_susp - (w.select(pl.col("_run").sum()).item() or 0)

    thr = rules.threshold_floor(cfg.line_threshold)
    if cfg.reference == "last":
        # the price at the previous line: that of the row before, among the priced rows and
        # the suspensions quoted at the series' line
        priced = w.filter(~is_susp | (pl.col("_l") == pl.col("_cur"))).with_columns(
            pl.col("_p").shift(1).alias("_rprice"), pl.col("_pint").shift(1).alias("_rpint"),
        )
        moves = priced.filter(pl.col("_run")).with_columns(
            pl.col("_l").shift(1).alias("_rl"), pl.col("_lu").shift(1).alias("_rlu"),
        ).filter(~pl.col("_first"))
        moves = _with_points(moves)
        fired = moves.filter((pl.col("_d") >= thr) | (-pl.col("_d") >= thr))
    else:
        fired = _line_anchor(w, thr)
    return _Pass(fired.drop("_run", "_first", "_s", "_newkey", "_g", "_susp", "_cur", "_cur_s", strict=False),
                 n_primed, n_stale, n_susp, n_rep, rows.height)


def _line_anchor(w: pl.DataFrame, thr: float) -> pl.DataFrame:
    """``reference="anchor"`` for line series: one Python step per line change or suspension
    (repeats are not visited), as :func:`_anchor` for prices. A *stretch* is such an event and
    the repeats after it; its last row's price is the latest price at the current line when it
    ends. The anchor's price (SPEC 10: the latest seen at the anchor line) is that of the
    latest stretch at the anchor line, or null after a suspension quoted at the anchor line."""
    event = pl.col("_run") | pl.col("_susp")
    w = w.with_columns(event.alias("_ev"))
    events = w.filter(pl.col("_ev"))
    ends = w.filter(pl.col("_ev").shift(-1).fill_null(True)).select(
        pl.col("_i").alias("_end_i"), pl.col("_p").alias("_end_p"), pl.col("_pint").alias("_end_pint"),
    )
    first = events.get_column("_first").to_list()
    susp = events.get_column("_susp").to_list()
    line = events.get_column("_l").to_list()
    # a suspension's stretch has repeats after it (at the current line) when it does not end it
    tail = (ends.get_column("_end_i") != events.get_column("_i")).to_list()
    line_points = rules.line_points
    sure, near = thr + rules.ROUNDING_MARGIN, thr - rules.ROUNDING_MARGIN
    keep: list[int] = []
    anchors: list[int] = []
    priced: list[int | None] = []
    a = 0
    ap: int | None = 0  # the stretch whose last price is the anchor's price (None: no price)
    a_l = cur = math.nan
    for i, is_first in enumerate(first):
        x = line[i]
        if susp[i]:
            if x == a_l:
                ap = None
            if tail[i] and cur == a_l:  # repeats at the anchor line after the suspension
                ap = i
            continue
        if is_first:
            a = ap = i
            a_l = cur = x
            continue
        cur = x
        move = x - a_l
        if (near < move < sure) or (near < -move < sure):
            move = line_points(a_l, x)
        if move >= thr or -move >= thr:  # rules.crosses, against the precomputed floor
            keep.append(i)
            anchors.append(a)
            priced.append(ap)
            a = ap = i
            a_l = x
        elif x == a_l:  # back at the anchor line: its price is this stretch's
            ap = i
    ref = events.select(pl.col("_l").alias("_rl"), pl.col("_lu").alias("_rlu"))[pl.Series(anchors, dtype=pl.UInt32)]
    price = ends.select(pl.col("_end_p").alias("_rprice"), pl.col("_end_pint").alias("_rpint")).gather(
        pl.Series(priced, dtype=pl.UInt32)
    )
    fired = events.drop("_ev")[pl.Series(keep, dtype=pl.UInt32)]
    return _with_points(pl.concat([fired, ref, price], how="horizontal"))


def _with_points(frame: pl.DataFrame) -> pl.DataFrame:
    """``_d``: the written points of each move (:func:`rules.line_points` of ``_rl`` and ``_l``,
    which is ``written_line`` of their difference: :func:`_written`, the one vectorized copy of that
    rule's shortcut; critic21's C21-5)."""
    points, _ = _written(frame.get_column("_l") - frame.get_column("_rl"))
    return frame.with_columns(points.alias("_d"))


def _anchor(runs: pl.DataFrame, thr: float, prob: bool) -> pl.DataFrame:
    """Path-dependent anchor reference: one Python step per move (repeats already removed),
    deciding as the engine does with the rules' formulas. The loop keeps only row numbers (the
    fired row and its anchor row); the anchor's columns are gathered afterwards, vectorized."""
    first = runs.get_column("_first").to_list()
    price = runs.get_column("_p").to_list()
    cents = runs.get_column("_c").to_list()
    round_delta, prob_move = rules.round_delta, rules.prob_move
    # a raw delta farther than rules.ROUNDING_MARGIN from the bound is decided without rounding it
    sure, near = thr + rules.ROUNDING_MARGIN, thr - rules.ROUNDING_MARGIN
    keep: list[int] = []
    anchors: list[int] = []
    a = 0
    a_p = a_c = 0.0
    for i, is_first in enumerate(first):
        p = price[i]
        if is_first:
            a, a_p, a_c = i, p, cents[i]
            continue
        if prob:
            move = prob_move(a_p, p)
        else:
            move = cents[i] - a_c
            if (near < move < sure) or (near < -move < sure):
                move = round_delta(move)
        if move >= thr or -move >= thr:  # rules.crosses, against the precomputed floor
            keep.append(i)
            anchors.append(a)
            a, a_p, a_c = i, p, cents[i]
    idx = pl.Series("_row", keep, dtype=pl.UInt32)
    ref = runs.select(
        pl.col("_p").alias("_rp"), pl.col("_c").alias("_rc"), pl.col("_lu").alias("_rlu"),
        pl.col("_pint").alias("_rpint"),
    )[pl.Series("_row", anchors, dtype=pl.UInt32)]
    return _with_delta(pl.concat([runs[idx], ref], how="horizontal"))


def _alerts(fired: pl.DataFrame, timestamp_column: str | None) -> pl.DataFrame:
    """SPEC section 4 columns for the fired moves (Float64 prices; the caller types them), plus
    ``_i`` for detection order and ``_rpint``/``_pint``, whether prev and new arrived as ints."""
    delta = pl.col("_d")
    cols = fired.columns
    text = {c: (pl.col(c) if c in cols else pl.lit(None, dtype=pl.String)) for c in _META_TEXT}
    line = pl.col("line") if "line" in cols else pl.lit(None, dtype=pl.Float64)
    stamp = pl.coalesce("_ts", "_lu") if timestamp_column else pl.col("_lu")
    columns = {
        "type": pl.lit("odds_drop"),
        "sport_key": pl.col("sport_key"),
        **{c: pl.col(c) for c in KEY},
        **text,
        "prev": pl.col("_rp"),
        "new": pl.col("_p"),
        "delta": delta,
        "direction": direction_expr(delta),
        "line": line,
        "last_update": pl.col("_lu"),
        "timestamp": stamp,
        "elapsed_ms": pl.col("_lu") - pl.col("_rlu"),
    }
    out = fired.select(pl.col("_i"), pl.col("_rpint"), pl.col("_pint"), *(columns[c].alias(c) for c in ALERT_SCHEMA))
    return _derive_from_side(out)


def _derives(frame: pl.DataFrame) -> bool:
    """Whether :func:`_derive_from_side` may derive anything for moves of ``frame``'s rows (the
    input's text columns): a column it reads is absent, or :func:`_side_derived` holds for a row
    (the one test of both: reread21's RR21-8)."""
    return not {"kind", "market_key"} <= set(frame.columns) or _side_derived(frame)


def _leaves_to_side(columns: Collection[str]) -> pl.Expr:
    """Per row, whether it leaves its kind or market key to its side (null, empty, or a table
    without that column), as :class:`~dropengine.core.quote.Quote` derives them: the one columnar
    test of :func:`_quote_line` and :func:`_side_derived`."""
    missing = [pl.col(c).is_null() | (pl.col(c) == "") if c in columns else pl.lit(True)
               for c in ("kind", "market_key")]
    return missing[0] | missing[1]


def _side_derived(frame: pl.DataFrame) -> bool:
    """Whether some row of ``frame`` leaves its kind or market key to its side (null or empty):
    the rows :func:`_derive_from_side` fills in."""
    return frame.height > 0 and bool(frame.select(_leaves_to_side(frame.columns).any()).item())


def _derive_from_side(alerts: pl.DataFrame) -> pl.DataFrame:
    """Fill kind, market key, player and line from the side where the row left them empty,
    as :class:`~dropengine.core.quote.Quote` does (via :func:`~dropengine.core.sides.parse_side`)."""
    if not _side_derived(alerts):
        return alerts  # every row has its kind and market key: nothing is derived
    alerts = alerts.with_columns(pl.col("side", "kind", "market_key", "player").cast(pl.String))
    infos = {s: parse_side(s) for s in alerts.get_column("side").unique().to_list()}

    def lookup(attr: str, dtype: type[pl.DataType]) -> pl.Expr:
        values = {s: getattr(i, attr) for s, i in infos.items()}
        return pl.col("side").replace_strict(values, default=None, return_dtype=dtype)

    kind = pl.when(pl.col("kind").is_null() | (pl.col("kind") == "")).then(lookup("kind", pl.String))
    derive = pl.col("kind").is_null() | pl.col("market_key").is_null()
    return alerts.with_columns(
        kind.otherwise(pl.col("kind")).alias("kind"),
        pl.when(pl.col("market_key").is_null() | (pl.col("market_key") == ""))
        .then(lookup("market_key", pl.String)).otherwise(pl.col("market_key")).alias("market_key"),
        pl.when(derive & pl.col("player").is_null()).then(lookup("player", pl.String))
        .otherwise(pl.col("player")).alias("player"),
        pl.when(derive & pl.col("line").is_null()).then(lookup("line", pl.Float64))
        .otherwise(pl.col("line")).alias("line"),
    )


def filter_expr(flt: AlertFilter, alert_type: str = "odds_drop") -> pl.Expr:
    """:meth:`AlertFilter.accepts` as one polars expression over a table of alerts of one type,
    price drops by default (the same predicates with the same meaning: ``types`` on the ``type``
    column, ``threshold`` by :func:`rules.crosses` on a price drop's ``delta``,
    ``line_threshold`` on a line move's ``points``, ``since`` on ``timestamp``, the direction
    choice by :func:`rules.direction_accepts`; ``bookmakers`` of a steam: any of its books listed,
    the column ``_books_listed`` of the compiled path's steam table)."""
    cond = pl.lit(True)
    if flt.types is not None:
        cond &= pl.col("type").is_in(sorted(flt.types))
    for kind, t, column in (("odds_drop", flt.threshold, "delta"), ("line_move", flt.line_threshold, "points")):
        if t is not None and alert_type == kind:
            floor = rules.threshold_floor(t)
            cond &= (pl.col(column) >= floor) | (-pl.col(column) >= floor)
    if flt.since is not None:
        cond &= pl.col("timestamp") > flt.since
    if flt.direction != "both":
        cond &= pl.col("direction") == flt.direction
    for col, name in _FILTER_TEXT.items():
        allowed = getattr(flt, name)
        if allowed is None:
            continue
        if col == "bookmaker" and alert_type == "steam":
            cond &= pl.col("_books_listed")
        else:
            cond &= pl.col(col).is_in(sorted(allowed))
    return cond
