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
  "last-before-commence"``, SPEC section 9) or its last price at all (``"last"``), measured on
  the taking book or on ``sharp``. A close is missing, and the alert kept and flagged in
  ``close_status``, when the key's last quote is a suspension (``suspended at close``), when
  its market moved on to another line (``line moved``), when there is no quote before the
  close, when the event has no commence time that parses (``no commence time``: with
  ``last-before-commence`` there is no close to look for; ``"last"`` needs none), when the
  alert itself came after the close (``alert after close``: in play), or
  when ``best-other`` found no other book quoting the side (``nothing to take``), or when the
  close was taken more than ``early_close_minutes`` before ``commence_time`` (``early close``:
  the recording ended before kick-off, so the last price seen is no closing price);
- **fair close probability**: the closing market's sides (both sides of a line, or the two
  or three moneyline outcomes) devigged with ``devig`` (``multiplicative`` by default);
- **price CLV** ``d_taken / d_close - 1`` and **no-vig CLV** ``p_fair_close * d_taken - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from ..core.engine import EngineCounters
from ..core.errors import ConfigError
from ..core.odds import american_to_decimal
from ..core.quote import commence_ms
from ..core.sides import format_line, parse_side
from .batch import _computed, accepted_quotes, detect_counted
from .devig import DEVIG_METHODS, DevigMethod, devig

__all__ = [
    "CLOSE_CONVENTIONS",
    "SIZE_BUCKETS",
    "TAKE_POLICIES",
    "Backtest",
    "BacktestConfig",
    "run_backtest",
    "summarize",
]

CLOSE_CONVENTIONS: Final = ("last-before-commence", "last")
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

    def __post_init__(self) -> None:
        if self.close not in CLOSE_CONVENTIONS:
            raise ConfigError(f"close: {self.close!r} must be one of {', '.join(CLOSE_CONVENTIONS)}")
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


def run_backtest(
    quotes: pl.DataFrame | pl.LazyFrame, config: BacktestConfig | None = None, **detect_args: Any
) -> Backtest:
    """Detect alerts in ``quotes`` (``detect_args`` as for :func:`~dropengine.analysis.batch.detect`)
    and measure each against the close."""
    cfg = config if config is not None else BacktestConfig()
    if not isinstance(cfg, BacktestConfig):
        raise ConfigError(f"config: {type(cfg).__name__} is not a BacktestConfig (build one with BacktestConfig(...))")
    frame = _computed(quotes.collect) if isinstance(quotes, pl.LazyFrame) else quotes
    detected = detect_counted(frame, **detect_args)
    hist = _with_families(accepted_quotes(frame))
    commence = _commence_times(hist)
    hist = hist.join(commence, on="event_id", how="left")
    alerts = detected.alerts.with_row_index("alert").join(commence, on="event_id", how="left")

    closes = _closes(hist, cfg.close, cfg.early_close_minutes)
    fair, fair_failed = _fair(closes, cfg.devig)
    table = _taken(alerts, hist, cfg)
    # The close is measured where the bet is placed (the taking book), or on the sharp book.
    close_book = pl.lit(cfg.sharp) if cfg.sharp else pl.col("taken_book")
    table = table.with_columns(close_book.alias("close_book"))
    table = table.join(
        closes.select(
            "event_id", pl.col("bookmaker").alias("close_book"), "side",
            pl.col("close_price"), pl.col("close_time"), pl.col("close_status"),
        ),
        on=["event_id", "close_book", "side"], how="left",
    ).with_columns(pl.col("close_status").fill_null("no quote before close"))
    if cfg.close == "last-before-commence":  # an in-play alert has no close left to beat
        table = table.with_columns(
            pl.when(pl.col("commence_ms").is_null()).then(pl.lit("no commence time"))
            .otherwise(pl.col("close_status")).alias("close_status")
        )
        after = pl.col("last_update") > pl.col("commence_ms")
        table = table.with_columns(
            pl.when(after).then(pl.lit("alert after close")).otherwise(pl.col("close_status")).alias("close_status"),
            pl.when(after).then(None).otherwise(pl.col("close_price")).alias("close_price"),
        )
    table = table.with_columns(
        pl.when(pl.col("taken_price").is_null()).then(pl.lit("nothing to take"))
        .otherwise(pl.col("close_status")).alias("close_status")
    )
    table = table.join(
        fair.select("event_id", pl.col("bookmaker").alias("close_book"), "side", "p_fair_close"),
        on=["event_id", "close_book", "side"], how="left",
    ).with_columns(
        pl.when(pl.col("close_status") == "ok").then(pl.col("p_fair_close")).alias("p_fair_close"),
        pl.when(pl.col("close_status") == "ok").then(pl.col("close_price")).alias("close_price"),
    )
    table = _clv(table, cfg).sort("alert")
    return Backtest(table, summarize(table, cfg), detected.counters, cfg, _warnings(hist, table, cfg, fair_failed))


def _warnings(hist: pl.DataFrame, table: pl.DataFrame, cfg: BacktestConfig, fair_failed: int) -> tuple[str, ...]:
    """Input that makes every close impossible, said once (a status per alert hides why)."""
    out = []
    statuses = set(table.get_column("close_status").unique().to_list())
    if "no commence time" in statuses and not statuses & {"ok", "early close", "alert after close"}:
        out.append("close: no event has a commence_time that parses (ISO 8601 with an offset), so no alert has"
                   " a last-before-commence close; use --close last (close='last') for the last price at all")
    if "ok" in statuses and fair_failed:
        out.append(f"devig: {fair_failed} closing market(s) cannot be devigged with {cfg.devig!r} (e.g. shin needs"
                   " an overround), so their alerts have no no-vig CLV")
    if cfg.sharp is not None:
        books = sorted(hist.get_column("bookmaker").unique().to_list())
        if cfg.sharp not in books:
            shown = ", ".join(books[:20]) + (f" and {len(books) - 20} more" if len(books) > 20 else "")
            out.append(f"sharp: no quotes from {cfg.sharp!r} in the input, so no alert has a close"
                       f" (books present: {shown or 'none'})")
        elif table.height and not statuses & {"ok", "early close", "line moved", "suspended at close"}:
            by_status = table.group_by("close_status").len().sort("close_status")
            counts = ", ".join(f"{s} {n}" for s, n in by_status.iter_rows())
            out.append(f"sharp: {cfg.sharp!r} quotes, but no alert has a close on it ({counts})")
    return tuple(out)


def _with_families(hist: pl.DataFrame) -> pl.DataFrame:
    """Add ``market_key`` and ``family``: the sides devigged together (one market, one line)."""
    market: dict[str, str] = {}
    family: dict[str, str] = {}
    for side in hist.get_column("side").unique().to_list():
        info = parse_side(side)
        market[side] = info.market_key
        if info.kind == "prop":
            family[side] = f"{info.market_key}:{info.player}@{format_line(info.line or 0.0)}"
        elif info.line is None:
            family[side] = "h2h"
        elif info.market_key == "spreads":  # home -3 pairs with away +3
            home_line = info.line if info.outcome == "home" else -info.line
            family[side] = f"spreads@{format_line(home_line)}"
        else:
            family[side] = f"totals@{format_line(info.line)}"
    return hist.with_columns(
        pl.col("side").replace_strict(market, return_dtype=pl.String).alias("market_key"),
        pl.col("side").replace_strict(family, return_dtype=pl.String).alias("family"),
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


def _closes(hist: pl.DataFrame, convention: str, early_minutes: float | None) -> pl.DataFrame:
    """Per key: the closing price, its time, and ``close_status`` (``ok`` or why not)."""
    cand = hist
    if convention == "last-before-commence":
        cand = hist.filter(pl.col("last_update") <= pl.col("commence_ms"))
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
    moved = (pl.col("market_key") != "h2h") & (pl.col("close_time") < pl.col("market_last"))
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


def _fair(closes: pl.DataFrame, method: DevigMethod) -> tuple[pl.DataFrame, int]:
    """Fair close probability of each side whose whole closing market has a close, and how many
    such markets ``method`` could not devig (they get none)."""
    failed = 0
    ok = closes.filter(pl.col("close_status") == "ok")
    groups = ok.group_by(["event_id", "bookmaker", "family"]).agg("side", "close_price")
    rows: list[tuple[str, str, str, float]] = []
    for event_id, book, fam, sides, prices in groups.iter_rows():
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
        ((pl.col("commence_ms") - pl.col("last_update")) / 60_000).alias("minutes_to_commence"),
        ((pl.col("commence_ms") - pl.col("close_time")) / 60_000).alias("close_minutes_before_commence"),
        pl.lit(cfg.close).alias("close_convention"),
        pl.lit(cfg.take).alias("take_policy"),
        pl.lit(cfg.devig).alias("devig_method"),
    ).drop("commence_ms")


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
    """
    t = table.with_columns(_size_bucket().alias("size"), pl.lit("all").alias("overall"))
    parts = []
    for dim in ("overall", "bookmaker", "market_key", "direction", "size"):
        g = t.group_by(dim).agg(
            pl.len().alias("alerts"),
            pl.col("clv").is_not_null().sum().alias("closed"),
            (pl.col("close_status") == "early close").sum().alias("early_close"),
            pl.col("clv").mean().alias("mean_clv"),
            pl.col("clv").median().alias("median_clv"),
            (pl.col("clv") > 0).mean().alias("beat_close"),
            pl.col("clv").std().alias("_sd"),
            pl.col("novig_clv").is_not_null().sum().alias("fair"),
            pl.col("novig_clv").mean().alias("mean_novig_clv"),
        ).with_columns(
            (1.96 * pl.col("_sd") / pl.col("closed").cast(pl.Float64).sqrt()).alias("_half"),
        ).select(
            pl.lit(dim).alias("dimension"), pl.col(dim).cast(pl.String).alias("group"), "alerts", "closed",
            "early_close",
            "mean_clv", "median_clv", "beat_close",
            (pl.col("mean_clv") - pl.col("_half")).alias("ci95_low"),
            (pl.col("mean_clv") + pl.col("_half")).alias("ci95_high"),
            "fair", "mean_novig_clv",
        )
        if dim == "size":  # smallest moves first, as the buckets are defined
            order = {label: i for i, (_, _, label) in enumerate(SIZE_BUCKETS)}
            g = g.sort(pl.col("group").replace_strict(order, default=len(order), return_dtype=pl.Int64))
        else:
            g = g.sort(["alerts", "group"], descending=[True, False])
        parts.append(g)
    return pl.concat(parts).with_columns(pl.lit(cfg.close).alias("close_convention"))
