"""Closing-line value (CLV) of acting on drop alerts, from recorded odds (SPEC section 9).

Pure: a quotes table in, tables out (no files, no clock). Built on the columnar path:
alerts come from :func:`dropengine.analysis.batch.detect_counted`, and price histories from
:func:`dropengine.analysis.batch.accepted_quotes`, so the backtest sees exactly what detection saw.

For every alert:

- **taken price**: ``take="same"`` takes the alerting book's new price; ``"best-other"``
  takes the best price (highest decimal odds) for the same side among the *other* books,
  as each book stood at ``alert.last_update + latency_ms`` (a backward as-of join on
  ``last_update``, so nothing posted after that moment can be picked), as a steam chaser would;
- **close**: the key's last price at or before ``commence_time`` (``close=
  "last-before-commence"``, SPEC section 9), its last price at all (``"last"``), or its
  starting price (``"starting-price"``: Betfair's ``bsp``, or a table's ``starting_price``,
  given as :attr:`BacktestConfig.starting_prices`; a key without one is ``no starting price``),
  measured on the taking book or on ``sharp``. A close is missing, and the alert kept and flagged in
  ``close_status``, when the key's last quote is a suspension (``suspended at close``), when
  its market moved on to another line (``line moved``), when there is no quote before the
  close, when the event has no commence time that parses (``no commence time``: with
  ``last-before-commence`` there is no close to look for; ``"last"`` needs none), when the
  alert itself came after the close (``alert after close``: in play), or
  when ``best-other`` found no other book quoting the side (``nothing to take``), or when the
  close was taken more than ``early_close_minutes`` before ``commence_time`` (``early close``:
  the recording ended before kick-off, so the last price seen is no closing price);
- **fair close probability**: the closing market's sides (both sides of a line, the two
  or three moneyline outcomes, or every runner of a multi-runner market that was still running
  at the close: with starting prices, the runners that have one) devigged with ``devig``
  (``multiplicative`` by default);
- **price CLV** ``d_taken / d_close - 1`` and **no-vig CLV** ``p_fair_close * d_taken - 1``.

With ``types`` beyond price drops (SPEC 10-11) a line move or a steam is taken from the books'
*standing* on its outcome (a book's latest accepted observation of the outcome at any line, at
or before a time; its line there is its current line):

- a **line move**, ``same``: the alerting book's new price at its new line (a line-only book
  publishes none: ``nothing to take``; line-only observations count for detection and steam,
  never as a price to take); ``best-other``: the best offer among the other books at
  ``last_update + latency_ms``, each at its current line;
- a **steam**, ``same``: the last of its ``books`` (the latest move in data time; usually the
  move that completed it, not when moves arrive out of time order), at its
  standing at the steam's ``last_update`` T; ``best-other`` (a steam follower): the best offer at
  ``T + latency_ms`` among the books that *had not moved*: not one of the steam's books, and its
  standing at ``T + latency_ms`` not moved in the steam's direction from its standing just
  before the window opened (``T - steam_window_ms``; a book first seen later: its first
  standing), where moved means a line move in that direction (SPEC 10) or, on the same line, a
  price move in it (SPEC 1), of any size;
- the **best offer** is the best line for the bettor (higher for spread and under sides, lower
  for over sides: the cheaper side of SPEC 10's direction rule), then the highest decimal price,
  then the bookmaker's name; a suspended standing offers nothing;
- the price CLV is measured at the taken line (the close of the taken book's key
  ``side@line``); when the book's market closed on another line the status is ``line moved``
  (no price CLV, counted as ``line_moved`` in the summary), and ``line_clv`` measures the taken
  line in points against the book's closing line (positive: a better number than the close).

The bet is always on the alert's own side, in both directions, as for drops.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Unpack

import polars as pl

from ..core import rules
from ..core.alerts import by_signal_order
from ..core.engine import EngineCounters
from ..core.errors import ConfigError, FeedError
from ..core.odds import american_to_decimal
from ..core.options import DetectKeywords, DetectOptions, resolve
from ..core.quote import MAX_MS, commence_ms
from ..core.sides import format_line, parse_side
from .batch import _computed, accepted_quotes, detect_counted
from .devig import DEVIG_METHODS, DevigMethod, devig

__all__ = [
    "CLOSE_CONVENTIONS",
    "SIZE_BUCKETS",
    "STARTING_PRICE_COLUMNS",
    "TAKE_POLICIES",
    "Backtest",
    "BacktestConfig",
    "Measured",
    "assemble_backtest",
    "measure_alerts",
    "run_backtest",
    "summarize",
]

CLOSE_CONVENTIONS: Final = ("last-before-commence", "last", "starting-price")
#: The columns of :attr:`BacktestConfig.starting_prices` (``dropengine.io.starting.starting_prices``);
#: an optional ``off_time`` (unix ms) says when each was struck (the off; a late off moves the close)
STARTING_PRICE_COLUMNS: Final = ("event_id", "bookmaker", "side", "starting_price")
TAKE_POLICIES: Final = ("same", "best-other")
#: Size of move buckets (absolute cents) for the summary.
SIZE_BUCKETS: Final = ((0, 10, "<10"), (10, 15, "10-14"), (15, 20, "15-19"), (20, 30, "20-29"),
                       (30, 50, "30-49"), (50, math.inf, "50+"))
_KEY: Final = ("event_id", "bookmaker", "side")


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """How an alert is acted on and judged; validated on construction."""

    close: str = "last-before-commence"
    take: str = "same"
    latency_ms: int = 0
    sharp: str | None = None
    devig: DevigMethod = "multiplicative"
    #: A close taken more than this many minutes before commence is ``early close`` (no CLV);
    #: ``None`` accepts a close however early.
    early_close_minutes: float | None = 60
    #: With ``close="starting-price"``: each key's starting price (American), columns
    #: :data:`STARTING_PRICE_COLUMNS` (``dropengine.io.starting.starting_prices`` reads them).
    #: With another convention they are not the close, but their ``off_time`` still bounds a
    #: last-before-commence close: from the off on a market is in play (or suspended for it).
    starting_prices: pl.DataFrame | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.close not in CLOSE_CONVENTIONS:
            raise ConfigError(f"close: {self.close!r} must be one of {', '.join(CLOSE_CONVENTIONS)}")
        sp = self.starting_prices
        if sp is not None:
            if not isinstance(sp, pl.DataFrame):
                raise ConfigError(f"starting_prices: {type(sp).__name__} is not a polars DataFrame")
            missing = [c for c in STARTING_PRICE_COLUMNS if c not in sp.columns]
            if missing:
                raise ConfigError(f"starting_prices: lacks the column(s) {', '.join(missing)}"
                                  f" (needs {', '.join(STARTING_PRICE_COLUMNS)})")
            for side in sp.get_column("side").cast(pl.String).unique().to_list():
                try:
                    parse_side(side)
                except FeedError as exc:
                    raise ConfigError(f"starting_prices: {exc}") from None
            object.__setattr__(self, "starting_prices", sp.select(
                *(pl.col(c).cast(pl.String) for c in STARTING_PRICE_COLUMNS[:3]),
                pl.col("starting_price").cast(pl.Float64),
                (pl.col("off_time") if "off_time" in sp.columns else pl.lit(None)).cast(pl.Int64).alias("off_time"),
            ))
        elif self.close == "starting-price":
            raise ConfigError("close: 'starting-price' needs starting_prices (a table of event_id, bookmaker, side,"
                              " starting_price; dropengine.io.starting.starting_prices reads them from the input)")
        if self.take not in TAKE_POLICIES:
            raise ConfigError(f"take: {self.take!r} must be one of {', '.join(TAKE_POLICIES)}")
        if isinstance(self.latency_ms, bool) or not isinstance(self.latency_ms, int) or self.latency_ms < 0:
            raise ConfigError(f"latency_ms: {self.latency_ms!r} must be a non-negative integer")
        if self.latency_ms and self.take != "best-other":
            raise ConfigError(
                f"latency_ms: {self.latency_ms!r} has no effect with take={self.take!r}"
                " (--latency-ms applies only with --take best-other)"
            )
        if self.sharp is not None and (not isinstance(self.sharp, str) or not self.sharp):
            raise ConfigError(f"sharp: {self.sharp!r} must be a bookmaker key")
        if self.devig not in DEVIG_METHODS:
            raise ConfigError(f"devig: {self.devig!r} must be one of {', '.join(DEVIG_METHODS)}")
        m = self.early_close_minutes
        try:
            ok = m is None or (not isinstance(m, bool) and isinstance(m, (int, float)) and m >= 0 and math.isfinite(m))
        except OverflowError:  # an int too large for a float
            ok = False
        if not ok:
            raise ConfigError(f"early_close_minutes: {str(m)[:40]} must be a non-negative number of minutes or None")
        if m is not None:
            object.__setattr__(self, "early_close_minutes", float(m))  # numpy.float64 & co. as plain


@dataclass(frozen=True, slots=True)
class Backtest:
    """Per-alert results, their summary, and the detector's counters."""

    alerts: pl.DataFrame
    summary: pl.DataFrame
    counters: EngineCounters
    config: BacktestConfig
    #: One line each about the input that makes the result less than it seems (a ``sharp``
    #: book absent from the data); the command line prints them on stderr.
    warnings: tuple[str, ...] = ()
    #: The alert types measured (SPEC 10-11 signals beyond ``odds_drop`` add the signal columns).
    types: tuple[str, ...] = ("odds_drop",)


def run_backtest(
    quotes: pl.DataFrame | pl.LazyFrame,
    config: BacktestConfig | None = None,
    options: DetectOptions | None = None,
    *,
    timestamp_column: str | None = None,
    **keywords: Unpack[DetectKeywords],
) -> Backtest:
    """Detect alerts in ``quotes`` (``options`` or the keywords, and ``timestamp_column``, as for
    :func:`~dropengine.analysis.batch.detect`) and measure each against the close.

    With ``types`` beyond ``odds_drop`` the table and the summary gain the signal columns
    (``type``, ``steam_books``, ``taken_side``, ``taken_line``, ``close_line``, ``line_clv``) and
    the summary the ``type``, ``type_direction`` and ``steam_books`` dimensions; with the default
    types both are exactly as before."""
    cfg = config if config is not None else BacktestConfig()
    if not isinstance(cfg, BacktestConfig):
        raise ConfigError(f"config: {type(cfg).__name__} is not a BacktestConfig (build one with BacktestConfig(...))")
    opts = resolve(options, keywords)
    part = measure_alerts(quotes, cfg, opts, timestamp_column=timestamp_column)
    return assemble_backtest(part.table, part.counters, cfg, opts, part.books, part.fair_failed)


@dataclass(frozen=True, slots=True)
class Measured:
    """The per-alert part of a backtest, before the summary: what the sharded engine
    (``dropengine.cluster``) computes per shard and merges. Every value of :attr:`table` depends
    on its alert's event alone (SPEC 9's closes, takes and devigging never look across events),
    except the ``alert`` number, which is the alert's place in this input's detection order."""

    #: one row per alert, sorted by ``alert``
    table: pl.DataFrame
    counters: EngineCounters
    #: the input position (0-based) of the quote that produced each alert, by ``alert``
    rows: pl.Series
    #: the bookmakers of the accepted quotes (for the ``sharp`` warning)
    books: frozenset[str]
    #: closing markets that could not be devigged
    fair_failed: int
    #: the input positions of the rows the detector skipped (no quote could be built from them:
    #: :attr:`~dropengine.analysis.batch.BatchResult.skipped_rows`), which move no file's replay
    #: clock (core/merge.py; ``dropengine.io.replay.in_replay_order``)
    held: pl.Series = field(default_factory=lambda: pl.Series("row", [], dtype=pl.UInt32))


def assemble_backtest(table: pl.DataFrame, counters: EngineCounters, cfg: BacktestConfig, opts: DetectOptions,
                      books: frozenset[str], fair_failed: int) -> Backtest:
    """The :class:`Backtest` of a per-alert table (:attr:`Measured.table`, or the merge of several
    in detection order): its summary and its warnings."""
    return Backtest(table, summarize(table, cfg), counters, cfg, _warnings(books, table, cfg, fair_failed),
                    by_signal_order(opts.types))


def measure_alerts(quotes: pl.DataFrame | pl.LazyFrame, cfg: BacktestConfig, opts: DetectOptions, *,
                   timestamp_column: str | None = None) -> Measured:
    """Detect the alerts of ``quotes`` and measure each against the close (:func:`run_backtest`
    without the summary)."""
    frame = _computed(quotes.collect) if isinstance(quotes, pl.LazyFrame) else quotes
    detected = detect_counted(frame, opts, timestamp_column=timestamp_column)
    signals = opts.types != frozenset({"odds_drop"})
    hist = _with_families(accepted_quotes(frame))
    commence = _commence_times(hist)
    hist = hist.join(commence, on="event_id", how="left")
    alerts = _plain_text(detected.alerts).with_row_index("alert").join(commence, on="event_id", how="left")

    closes = (_starting_closes(hist, cfg.starting_prices) if cfg.close == "starting-price" and
              cfg.starting_prices is not None else
              _closes(hist, cfg.close, cfg.early_close_minutes, _offs(cfg.starting_prices)))
    fair, fair_failed = _fair(closes, cfg.devig)
    stand: _Standings | None = None
    if signals:
        stand = _Standings(hist)
        table = _all_taken(alerts, hist, stand, cfg, opts.steam_window_ms)
    else:
        table = _taken(alerts, hist, cfg)
    key = "taken_side" if signals else "side"  # the price key taken (a drop's own side)
    # The close is measured where the bet is placed (the taking book), or on the sharp book.
    close_book = pl.lit(cfg.sharp) if cfg.sharp else pl.col("taken_book")
    table = table.with_columns(close_book.alias("close_book"))
    table = table.join(
        closes.select(
            "event_id", pl.col("bookmaker").alias("close_book"), pl.col("side").alias(key),
            pl.col("close_price"), pl.col("close_time"), pl.col("close_status"),
        ),
        on=["event_id", "close_book", key], how="left",
    ).with_columns(pl.col("close_status").fill_null("no quote before close"))
    if cfg.close != "last":  # an in-play alert has no close left to beat
        # the starting price is struck at the off: its time when the input says (a late off), else commence
        table = table.join(_offs(cfg.starting_prices), on="event_id", how="left") \
            if cfg.close == "starting-price" else table.with_columns(pl.lit(None, dtype=pl.Int64).alias("_off"))
        bound = pl.coalesce("_off", "commence_ms")
        table = table.with_columns(
            pl.when(bound.is_null()).then(pl.lit("no commence time"))
            .otherwise(pl.col("close_status")).alias("close_status")
        )
        after = pl.col("last_update") > bound
        table = table.with_columns(
            pl.when(after).then(pl.lit("alert after close")).otherwise(pl.col("close_status")).alias("close_status"),
            pl.when(after).then(None).otherwise(pl.col("close_price")).alias("close_price"),
        ).drop("_off")
    table = table.with_columns(
        pl.when(pl.col("taken_price").is_null()).then(pl.lit("nothing to take"))
        .otherwise(pl.col("close_status")).alias("close_status")
    )
    table = table.join(
        fair.select("event_id", pl.col("bookmaker").alias("close_book"), pl.col("side").alias(key), "p_fair_close"),
        on=["event_id", "close_book", key], how="left",
    ).with_columns(
        pl.when(pl.col("close_status") == "ok").then(pl.col("p_fair_close")).alias("p_fair_close"),
        pl.when(pl.col("close_status") == "ok").then(pl.col("close_price")).alias("close_price"),
    )
    if stand is not None:
        table = _line_clv(table, stand, cfg)
    table = _clv(table, cfg).sort("alert")
    books = frozenset(hist.get_column("bookmaker").unique().to_list())
    return Measured(table, detected.counters, detected.rows, books, fair_failed,
                    detected.skipped_rows.get_column("row"))


def _plain_text(alerts: pl.DataFrame) -> pl.DataFrame:
    """The alerts' dictionary-encoded text columns as String: the one place the backtest meets
    the input's encoding. detect keeps a Categorical input column Categorical in its alerts (a
    dictionary-keyed Parquet file's), while the history (:func:`accepted_quotes`) and every table
    built here (commence times, closes, devigged markets, takes) are keyed by String, and polars
    joins no Categorical key with a String one. Cast once here, the per-alert table is the same,
    types included, whatever the input's encoding (and so is a merge of shards' tables)."""
    casts = [pl.col(c).cast(pl.String) for c, t in alerts.schema.items() if isinstance(t, (pl.Categorical, pl.Enum))]
    return alerts.with_columns(casts) if casts else alerts


def _warnings(books: frozenset[str], table: pl.DataFrame, cfg: BacktestConfig, fair_failed: int) -> tuple[str, ...]:
    """Input that makes every close impossible, said once (a status per alert hides why)."""
    out = []
    statuses = set(table.get_column("close_status").unique().to_list())
    if "no commence time" in statuses and not statuses & {"ok", "early close", "alert after close"}:
        out.append("close: no event has a commence_time that parses (ISO 8601 with an offset), so no alert has"
                   " a last-before-commence close; use --close last (close='last') for the last price at all")
    if "ok" in statuses and fair_failed:
        out.append(f"devig: {fair_failed} closing market(s) cannot be devigged with {cfg.devig!r} (e.g. shin needs"
                   " an overround; a multi-runner market has more outcomes than the method reads), so their"
                   " alerts have no no-vig CLV")
    if cfg.sharp is not None:
        if cfg.sharp not in books:
            listed = sorted(books)
            shown = ", ".join(listed[:20]) + (f" and {len(listed) - 20} more" if len(listed) > 20 else "")
            out.append(f"sharp: no quotes from {cfg.sharp!r} in the input, so no alert has a close"
                       f" (books present: {shown or 'none'})")
        elif table.height and not statuses & {"ok", "early close", "line moved", "suspended at close"}:
            by_status = table.group_by("close_status").len().sort("close_status")
            counts = ", ".join(f"{s} {n}" for s, n in by_status.iter_rows())
            out.append(f"sharp: {cfg.sharp!r} quotes, but no alert has a close on it ({counts})")
    return tuple(out)


def _family(side: str) -> tuple[str, str]:
    """``(market_key, family)`` of a side: the family is the sides devigged together (one
    market, one line; every runner of a multi-runner market)."""
    info = parse_side(side)
    if info.kind == "prop":
        return info.market_key, f"{info.market_key}:{info.player}@{format_line(info.line or 0.0)}"
    if info.market_key == "h2h":
        return "h2h", "h2h"
    if info.line is None:  # a runner side (`win:12115648`): the whole market is one family
        return info.market_key, f"{_RUNNERS}{info.market_key}"
    if info.market_key == "spreads":  # home -3 pairs with away +3
        home_line = info.line if info.outcome == "home" else -info.line
        return "spreads", f"spreads@{format_line(home_line)}"
    return info.market_key, f"totals@{format_line(info.line)}"


#: The family prefix of a multi-runner market (its size is the runners still running at the close)
_RUNNERS: Final = "runners:"


def _with_families(hist: pl.DataFrame) -> pl.DataFrame:
    """Add ``market_key`` and ``family``: the sides devigged together (one market, one line)."""
    parts = {side: _family(side) for side in hist.get_column("side").unique().to_list()}
    return hist.with_columns(
        pl.col("side").replace_strict({s: m for s, (m, _) in parts.items()}, return_dtype=pl.String)
        .alias("market_key"),
        pl.col("side").replace_strict({s: f for s, (_, f) in parts.items()}, return_dtype=pl.String)
        .alias("family"),
    )


def _commence_times(hist: pl.DataFrame) -> pl.DataFrame:
    """``event_id -> commence_ms`` from the first ISO-8601 commence time seen for the event
    (the scheduled start, even when later snapshots move it)."""
    if "commence_time" not in hist.columns:
        return pl.DataFrame(schema={"event_id": pl.String, "commence_ms": pl.Int64})
    # "first" in arrival order: the history's own row order is per key, in no fixed key order,
    # and an event's commence_time can change between snapshots (a late kick-off)
    firsts = hist.filter(pl.col("commence_time").is_not_null()).group_by("event_id").agg(
        pl.col("commence_time").sort_by("row").first()
    )
    ms = [commence_ms(text) for text in firsts.get_column("commence_time").to_list()]
    return firsts.select("event_id").with_columns(pl.Series("commence_ms", ms, dtype=pl.Int64))


def _closes(hist: pl.DataFrame, convention: str, early_minutes: float | None,
            offs: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per key: the closing price, its time, and ``close_status`` (``ok`` or why not).

    Last before commence: at or before ``commence_ms``, and before the event's off where
    ``offs`` knows it (an exchange suspends the market at the off, on time or early, and then
    trades in play: that suspension is no withdrawal and those prices are no close)."""
    cand = hist
    if convention == "last-before-commence":
        cand = hist.filter(pl.col("last_update") <= pl.col("commence_ms"))
        if offs is not None and offs.height:
            cand = cand.join(offs, on="event_id", how="left") \
                .filter(pl.col("_off").is_null() | (pl.col("last_update") < pl.col("_off"))).drop("_off")
    last = cand.sort([*_KEY, "last_update", "row"]).group_by(list(_KEY), maintain_order=True).agg(
        pl.col("price").last().alias("close_price"),
        pl.col("last_update").last().alias("close_time"),
        pl.col("market_key").first(),
        pl.col("family").first(),
        pl.col("commence_ms").first(),
    )
    # A line side whose market was last quoted on another line has no close on this one.
    market_last = cand.group_by(["event_id", "bookmaker", "market_key"]).agg(
        pl.col("last_update").max().alias("market_last")
    )
    last = last.join(market_last, on=["event_id", "bookmaker", "market_key"], how="left")
    # (a moneyline or a runner has no line to move on)
    moved = (pl.col("market_key") != "h2h") & ~pl.col("family").str.starts_with(_RUNNERS) \
        & (pl.col("close_time") < pl.col("market_last"))
    # The recording ended (or the book stopped quoting) long before kick-off: the last price
    # seen is not a closing price. Unknown commence times are never early.
    early = (
        pl.lit(False) if early_minutes is None
        else (pl.col("commence_ms") - pl.col("close_time") > early_minutes * 60_000).fill_null(False)
    )
    return last.with_columns(
        pl.when(pl.col("close_price").is_null()).then(pl.lit("suspended at close"))
        .when(moved).then(pl.lit("line moved"))
        .when(early).then(pl.lit("early close"))
        .otherwise(pl.lit("ok")).alias("close_status")
    ).with_columns(
        pl.when(pl.col("close_status") == "ok").then(pl.col("close_price")).alias("close_price")
    ).drop("commence_ms")


def _starting_closes(hist: pl.DataFrame, starting: pl.DataFrame) -> pl.DataFrame:
    """Per key (every key quoted, and every key with a starting price): its starting price as
    the close (``close_time``: the off when known, else commence), ``ok``, or ``no starting price``."""
    keys = hist.group_by(list(_KEY)).agg(pl.col("commence_ms").first())
    keys = pl.concat([keys, starting.select(*_KEY).join(keys.select("event_id", "commence_ms").unique("event_id"),
                                                        on="event_id", how="left")], how="vertical_relaxed") \
        .unique(list(_KEY), keep="first", maintain_order=True)
    parts = {side: _family(side) for side in keys.get_column("side").unique().to_list()}
    keys = keys.with_columns(
        pl.col("side").replace_strict({s: m for s, (m, _) in parts.items()}, return_dtype=pl.String)
        .alias("market_key"),
        pl.col("side").replace_strict({s: f for s, (_, f) in parts.items()}, return_dtype=pl.String)
        .alias("family"),
    )
    return keys.join(starting, on=list(_KEY), how="left").select(
        *_KEY,
        pl.col("starting_price").alias("close_price"),
        pl.when(pl.col("starting_price").is_not_null()).then(pl.coalesce("off_time", "commence_ms"))
        .alias("close_time"),
        "market_key", "family",
        pl.when(pl.col("starting_price").is_not_null()).then(pl.lit("ok")).otherwise(pl.lit("no starting price"))
        .alias("close_status"),
    )


def _offs(starting: pl.DataFrame | None) -> pl.DataFrame:
    """``event_id -> _off``: when each event's starting prices were struck (its earliest
    ``off_time``), for the events whose starting prices say."""
    if starting is None:
        return pl.DataFrame(schema={"event_id": pl.String, "_off": pl.Int64})
    return starting.filter(pl.col("off_time").is_not_null()).group_by("event_id").agg(
        pl.col("off_time").min().alias("_off"))


def _fair(closes: pl.DataFrame, method: DevigMethod) -> tuple[pl.DataFrame, int]:
    """Fair close probability of each side whose whole closing market has a close, and how many
    such markets ``method`` could not devig (they get none).

    A multi-runner market's whole market is its runners still running at the close: those
    whose close is not a withdrawal (a removed runner's last quote is a suspension; with
    starting prices, a runner without one did not run)."""
    failed = 0
    gone = ("suspended at close", "no starting price")
    running = closes.filter(pl.col("family").str.starts_with(_RUNNERS) & ~pl.col("close_status").is_in(gone)) \
        .group_by(["event_id", "bookmaker", "family"]).agg(pl.len().alias("running"))
    ok = closes.filter(pl.col("close_status") == "ok")
    groups = ok.group_by(["event_id", "bookmaker", "family"]).agg("side", "close_price") \
        .join(running, on=["event_id", "bookmaker", "family"], how="left")
    rows: list[tuple[str, str, str, float]] = []
    for event_id, book, fam, sides, prices, n_running in groups.iter_rows():
        if fam.startswith(_RUNNERS):
            want = n_running if n_running is not None and n_running >= 2 else -1
        else:
            want = 3 if fam == "h2h" and "h2h_draw" in sides else 2
        if len(sides) != want:
            continue
        try:
            fair = devig(prices, method).probabilities
        except ConfigError:  # e.g. shin on an underround: this market gets no fair probability
            failed += 1
            continue
        rows.extend((event_id, book, side, p) for side, p in zip(sides, fair, strict=True))
    return pl.DataFrame(rows, schema={"event_id": pl.String, "bookmaker": pl.String, "side": pl.String,
                                      "p_fair_close": pl.Float64}, orient="row"), failed


def _decimal(col: str, values: Iterable[float | None]) -> pl.Expr:
    """Decimal odds of an American price column, through :func:`american_to_decimal`."""
    table = {p: american_to_decimal(p) for p in set(values) if p is not None}
    return pl.col(col).cast(pl.Float64).replace_strict(table, default=None, return_dtype=pl.Float64)


def _taken(table: pl.DataFrame, hist: pl.DataFrame, cfg: BacktestConfig) -> pl.DataFrame:
    if cfg.take == "same":
        return table.with_columns(
            pl.col("new").cast(pl.Float64).alias("taken_price"),
            pl.col("bookmaker").alias("taken_book"),
            pl.col("last_update").alias("taken_time"),
        )
    # Every other book that ever quoted the side, as it stood at alert time + latency.
    books = hist.select("event_id", "side", pl.col("bookmaker").alias("other")).unique()
    cand = table.select("alert", "event_id", "side", "bookmaker", (pl.col("last_update") + cfg.latency_ms)
                        .alias("at")).join(books, on=["event_id", "side"]).filter(
        pl.col("other") != pl.col("bookmaker"))
    right = hist.select("event_id", "side", pl.col("bookmaker").alias("other"), "last_update", "price", "row")
    # ties in time resolve as the engine does: the later arrival is the price that stood
    asof = cand.sort("at").join_asof(
        right.sort(["last_update", "row"]).drop("row"), left_on="at", right_on="last_update",
        by=["event_id", "side", "other"],
        strategy="backward", check_sortedness=False,
    ).filter(pl.col("price").is_not_null())
    asof = asof.with_columns(_decimal("price", asof.get_column("price").to_list()).alias("_d"))
    best = asof.sort(["alert", "_d", "other"], descending=[False, True, False]).group_by(
        "alert", maintain_order=True).first()
    return table.join(
        best.select("alert", pl.col("price").alias("taken_price"), pl.col("other").alias("taken_book"),
                    pl.col("last_update").alias("taken_time")),
        on="alert", how="left",
    )


def _clv(table: pl.DataFrame, cfg: BacktestConfig) -> pl.DataFrame:
    prices = table.get_column("taken_price").to_list() + table.get_column("close_price").to_list()
    out = table.with_columns(
        _decimal("taken_price", prices).alias("d_taken"),
        _decimal("close_price", prices).alias("d_close"),
    )
    return out.with_columns(
        (pl.col("d_taken") / pl.col("d_close") - 1).alias("clv"),
        (pl.col("p_fair_close") * pl.col("d_taken") - 1).alias("novig_clv"),
        _minutes_before(out, "last_update").alias("minutes_to_commence"),
        _minutes_before(out, "close_time").alias("close_minutes_before_commence"),
        pl.lit(cfg.close).alias("close_convention"),
        pl.lit(cfg.take).alias("take_policy"),
        pl.lit(cfg.devig).alias("devig_method"),
    ).drop("commence_ms")


def _minutes_before(table: pl.DataFrame, column: str) -> pl.Series:
    """Minutes from ``column`` (unix ms) to commence, each row divided on its own (numpy's true
    division, as Python's ``ms / 60_000``): polars divides a column of several rows by a scalar
    through its reciprocal (1 ulp off for about a third of values) and a one-row column exactly,
    so a row's minutes depended on how many alerts the table held, and a sharded backtest whose
    shard held one alert was not one process's to the bit (break23's B23-3)."""
    ms = table.select((pl.col("commence_ms") - pl.col(column)).cast(pl.Float64)).to_series()
    return pl.Series(ms.to_numpy() / 60_000.0, nan_to_null=True)


def _size_bucket() -> pl.Expr:
    size = pl.col("delta").cast(pl.Float64).abs()
    expr: Any = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.String))
    for lo, hi, label in SIZE_BUCKETS:
        expr = expr.when((size >= lo) & (size < hi)).then(pl.lit(label))
    out: pl.Expr = expr.otherwise(pl.lit(None, dtype=pl.String))
    return out


def summarize(table: pl.DataFrame, cfg: BacktestConfig) -> pl.DataFrame:
    """CLV by bookmaker, market, direction and size of move (and overall).

    Columns: ``dimension``, ``group``, ``alerts``, ``closed`` (alerts with a close),
    ``early_close`` (alerts whose last price came too long before commence to be a close),
    ``mean_clv``, ``median_clv``, ``beat_close`` (share with CLV > 0), ``ci95_low`` and
    ``ci95_high`` (normal approximation: mean ± 1.96·sd/√n), ``fair`` and
    ``mean_novig_clv``, ``close_convention``.

    A table with signals (a ``line_clv`` column) is also summarised by ``type``, ``type_direction``
    and ``steam_books`` (steam by its number of books), and gains ``line_moved`` (alerts whose
    taken line was no longer the book's line at the close: no price CLV), ``line_closed`` and
    ``mean_line_clv`` (points beaten against the closing line); groups without a value (a
    steam's bookmaker, a line move's size) are left out.
    """
    signals = "line_clv" in table.columns
    t = table.with_columns(_size_bucket().alias("size"), pl.lit("all").alias("overall"))
    dims = ["overall", "bookmaker", "market_key", "direction", "size"]
    if signals:
        t = t.with_columns((pl.col("type") + " " + pl.col("direction")).alias("type_direction"))
        dims[1:1] = ["type", "type_direction", "steam_books"]
    extra = [
        (pl.col("close_status") == "line moved").sum().alias("line_moved"),
        pl.col("line_clv").is_not_null().sum().alias("line_closed"),
        pl.col("line_clv").mean().alias("mean_line_clv"),
    ] if signals else []
    parts = []
    for dim in dims:
        part = t if dim == "overall" or not signals else t.filter(pl.col(dim).is_not_null())
        g = part.group_by(dim).agg(
            pl.len().alias("alerts"),
            pl.col("clv").is_not_null().sum().alias("closed"),
            (pl.col("close_status") == "early close").sum().alias("early_close"),
            pl.col("clv").mean().alias("mean_clv"),
            pl.col("clv").median().alias("median_clv"),
            (pl.col("clv") > 0).mean().alias("beat_close"),
            pl.col("clv").std().alias("_sd"),
            pl.col("novig_clv").is_not_null().sum().alias("fair"),
            pl.col("novig_clv").mean().alias("mean_novig_clv"),
            *extra,
        ).with_columns(
            (1.96 * pl.col("_sd") / pl.col("closed").cast(pl.Float64).sqrt()).alias("_half"),
        ).select(
            pl.lit(dim).alias("dimension"), pl.col(dim).cast(pl.String).alias("group"), "alerts", "closed",
            "early_close",
            "mean_clv", "median_clv", "beat_close",
            (pl.col("mean_clv") - pl.col("_half")).alias("ci95_low"),
            (pl.col("mean_clv") + pl.col("_half")).alias("ci95_high"),
            "fair", "mean_novig_clv", *(e.meta.output_name() for e in extra),
        )
        if dim == "size":  # smallest moves first, as the buckets are defined
            order = {label: i for i, (_, _, label) in enumerate(SIZE_BUCKETS)}
            g = g.sort(pl.col("group").replace_strict(order, default=len(order), return_dtype=pl.Int64))
        elif dim == "steam_books":  # 3 books, 4 books, ...
            g = g.sort(pl.col("group").cast(pl.Int64))
        else:
            g = g.sort(["alerts", "group"], descending=[True, False])
        parts.append(g)
    return pl.concat(parts).with_columns(pl.lit(cfg.close).alias("close_convention"))


# --------------------------------------------------------------------------- signals (SPEC 10-11)
#
# With ``types`` beyond price drops the alerts table holds line moves and steam too. Drops are
# taken exactly as above; a line move or a steam is taken from the books' *standing* on the
# outcome: a book's standing at time t is its latest accepted observation of the outcome at any
# line with ``last_update <= t`` (ties: the later arrival), so its line there is its current line.
# A standing that is a suspension (null price) offers nothing to take. Line-only observations (SPEC 10) are not
# in the price history (accepted_quotes leaves them out): a line-only book never offers a price.


@dataclass(frozen=True, slots=True)
class _Obs:
    last_update: int
    side: str
    line: float | None
    price: float | None


class _Standings:
    """Every book's observations of every outcome, in time order, for as-of look-ups."""

    def __init__(self, hist: pl.DataFrame) -> None:
        lines: dict[str, float | None] = {s: parse_side(s).line for s in hist.get_column("side").unique().to_list()}
        rows = hist.sort(["last_update", "row"]).select("event_id", "bookmaker", "side", "price", "last_update")
        self._obs: dict[tuple[str, str], dict[str, list[_Obs]]] = {}
        for event_id, book, side, price, lu in rows.iter_rows():
            books = self._obs.setdefault((event_id, rules.outcome_of(side)), {})
            books.setdefault(book, []).append(_Obs(lu, side, lines[side], price))
        self._times = {key: {b: [o.last_update for o in obs] for b, obs in books.items()}
                       for key, books in self._obs.items()}

    def books(self, event_id: str, outcome: str) -> list[str]:
        return sorted(self._obs.get((event_id, outcome), {}))

    def at(self, event_id: str, outcome: str, book: str, t: int, *, before: bool = False,
           skip_suspended: bool = False) -> _Obs | None:
        """The book's standing at ``t`` (``before``: strictly before ``t``); ``skip_suspended``
        looks past suspensions to the latest observation with a price."""
        obs = self._obs.get((event_id, outcome), {}).get(book)
        if not obs:
            return None
        times = self._times[(event_id, outcome)][book]
        i = (bisect_left(times, t) if before else bisect_right(times, t)) - 1
        while i >= 0 and skip_suspended and obs[i].price is None:
            i -= 1
        return obs[i] if i >= 0 else None

    def first(self, event_id: str, outcome: str, book: str) -> _Obs | None:
        """The book's first observation of the outcome with a price."""
        for obs in self._obs.get((event_id, outcome), {}).get(book, ()):
            if obs.price is not None:
                return obs
        return None

    def close_line(self, event_id: str, outcome: str, book: str, until: int | None) -> tuple[float | None, int | None]:
        """The book's last line on the outcome at or before ``until`` (None: at all), and its time."""
        obs = self.at(event_id, outcome, book, until if until is not None else MAX_MS, skip_suspended=True)
        return (obs.line, obs.last_update) if obs is not None else (None, None)


def _better_line_sign(line_side: str) -> int:
    """+1 when a higher line is better for a bettor on ``line_side`` (spread and under sides),
    -1 when a lower one is (over sides): the side of SPEC 10's direction rule that is cheaper."""
    return 1 if rules.line_direction(line_side, 1.0) == "toward_dog" else -1


def _offer(obs: _Obs | None) -> bool:
    return obs is not None and obs.price is not None


def _rank(line_side: str, obs: _Obs, book: str) -> tuple[float, float, str]:
    """Sort key of an offer, best first: the best line for the bettor, then the highest decimal
    price, then the bookmaker's name (a fixed order for ties)."""
    assert obs.price is not None
    line = 0.0 if obs.line is None else -_better_line_sign(line_side) * obs.line
    return (line, -american_to_decimal(obs.price), book)


def _moved(line_side: str, direction: str, base: _Obs | None, now: _Obs) -> bool:
    """Whether a book's standing went from ``base`` to ``now`` in ``direction``: a line move in it
    (SPEC 10's direction) or, on the same line, a price move in it (SPEC 1's), of any size."""
    if base is None:
        return False  # nothing to compare with
    if base.line != now.line and base.line is not None and now.line is not None:
        return rules.line_direction(line_side, now.line - base.line) == direction
    if base.price is None or now.price is None:
        return False
    return rules.direction_of(rules.to_cents(now.price) - rules.to_cents(base.price)) == direction


def _signal_taken(alerts: pl.DataFrame, stand: _Standings, cfg: BacktestConfig, window_ms: int) -> pl.DataFrame:
    """What is taken for each line move and steam (see the module docstring)."""
    out: list[dict[str, Any]] = []
    cols = ["alert", "type", "event_id", "bookmaker", "side", "direction", "last_update", "new_price", "new_line",
            "books"]
    for a, typ, event_id, book, side, direction, lu, new_price, new_line, books_json in alerts.select(cols).iter_rows():
        outcome = rules.outcome_of(side)
        taken: tuple[str, _Obs] | None = None
        n_books: int | None = None
        if typ == "line_move":
            if cfg.take == "same":
                if new_price is not None:
                    obs = stand.at(event_id, outcome, book, lu)
                    if _offer(obs) and obs is not None and obs.line == new_line:
                        taken = (book, obs)
            else:
                t = lu + cfg.latency_ms
                offers = [(b, o) for b in stand.books(event_id, outcome) if b != book
                          for o in (stand.at(event_id, outcome, b, t),) if _offer(o) and o is not None]
                taken = min(offers, key=lambda bo: _rank(outcome, bo[1], bo[0]), default=None)
        else:  # steam
            moves = json.loads(books_json)
            n_books = len(moves)
            moved = {m["bookmaker"] for m in moves}
            if cfg.take == "same":  # the book whose move made the steam: the last of its books
                last = moves[-1]["bookmaker"]
                obs = stand.at(event_id, outcome, last, lu)
                taken = (last, obs) if _offer(obs) and obs is not None else None
            else:
                t = lu + cfg.latency_ms
                offers = []
                for b in stand.books(event_id, outcome):
                    if b in moved:
                        continue
                    now = stand.at(event_id, outcome, b, t)
                    if not _offer(now) or now is None:
                        continue
                    # its standing when the window opened (a book first seen inside it: its first one)
                    base = (stand.at(event_id, outcome, b, lu - window_ms, before=True, skip_suspended=True)
                            or stand.first(event_id, outcome, b))
                    if not _moved(outcome, direction, base, now):
                        offers.append((b, now))
                taken = min(offers, key=lambda bo: _rank(outcome, bo[1], bo[0]), default=None)
        row: dict[str, Any] = {"alert": a, "steam_books": n_books, "taken_price": None, "taken_book": None,
                               "taken_time": None, "taken_side": None, "taken_line": None}
        if taken is not None:
            tb, obs = taken
            row.update(taken_price=obs.price, taken_book=tb, taken_time=obs.last_update, taken_side=obs.side,
                       taken_line=obs.line)
        out.append(row)
    schema = {"alert": pl.UInt32, "steam_books": pl.Int64, "taken_price": pl.Float64, "taken_book": pl.String,
              "taken_time": pl.Int64, "taken_side": pl.String, "taken_line": pl.Float64}
    return alerts.join(pl.DataFrame(out, schema=schema, orient="row"), on="alert", how="left")


def _all_taken(alerts: pl.DataFrame, hist: pl.DataFrame, stand: _Standings, cfg: BacktestConfig,
               window_ms: int) -> pl.DataFrame:
    """Every alert's take: drops as without signals (their own side), the rest from the standings."""
    is_drop = pl.col("type") == "odds_drop"
    drops = _taken(alerts.filter(is_drop), hist, cfg)
    lines = {s: parse_side(s).line for s in drops.get_column("side").unique().to_list()}
    drops = drops.with_columns(
        pl.lit(None, dtype=pl.Int64).alias("steam_books"),
        pl.when(pl.col("taken_price").is_not_null()).then(pl.col("side")).alias("taken_side"),
        pl.when(pl.col("taken_price").is_not_null())
        .then(pl.col("side").replace_strict(lines, default=None, return_dtype=pl.Float64)).alias("taken_line"),
    )
    others = _signal_taken(alerts.filter(~is_drop), stand, cfg, window_ms)
    table = pl.concat([drops, others], how="diagonal_relaxed").sort("alert")
    return table.with_columns(pl.col("taken_time").cast(pl.Int64))


def _line_clv(table: pl.DataFrame, stand: _Standings, cfg: BacktestConfig) -> pl.DataFrame:
    """``close_line``: the close book's last line on the taken outcome (by the close convention;
    none when that close is early, the alert came after it, or nothing was taken), and
    ``line_clv``: the points by which the taken line beats it for the bettor (positive = a
    better number than the close, on the side of SPEC 10's direction rule)."""
    early = None if cfg.early_close_minutes is None else cfg.early_close_minutes * 60_000
    before = cfg.close == "last-before-commence"
    close_lines: list[float | None] = []
    line_clv: list[float | None] = []
    cols = ["event_id", "close_book", "taken_side", "taken_line", "commence_ms", "close_status"]
    for event_id, book, side, line, commence, status in table.select(cols).iter_rows():
        close: float | None = None
        if line is not None and book is not None and status not in ("alert after close", "no commence time",
                                                                   "nothing to take"):
            outcome = rules.outcome_of(side)
            close, at = stand.close_line(event_id, outcome, book, commence if before else None)
            if close is not None and early is not None and commence is not None and at is not None \
                    and commence - at > early:
                close = None
        close_lines.append(close)
        line_clv.append(None if close is None or line is None
                        else round(_better_line_sign(rules.outcome_of(side)) * (line - close), 9))
    return table.with_columns(pl.Series("close_line", close_lines, dtype=pl.Float64),
                              pl.Series("line_clv", line_clv, dtype=pl.Float64))
