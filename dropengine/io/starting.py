"""Starting prices in the input files: the true close of exchange and tote-style markets.

``backtest`` measures CLV against a close; where the input carries each runner's starting
price (Betfair's ``bsp``, fixed at the off from the whole exchange's SP bets), that price is the
close (``--close starting-price``). This module finds them, per file:

- a Betfair stream recording: each runner's ``bsp`` from the latest market definition that
  carries it (the final, reconciled one), by :class:`~dropengine.formats.betfair.BetfairDecoder`;
- a quote table whose (mapped) rows carry a ``starting_price`` field:
  :func:`dropengine.io.tables.table_starting_prices`;
- any other format carries none.

Decimal starting prices become American through :func:`dropengine.core.odds.decimal_to_american`,
as every Betfair price does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from ..core.errors import ConfigError, FeedError
from ..core.odds import decimal_to_american
from ..core.sides import runner_side
from ..core.skips import SkipLog
from ..formats.betfair import BetfairDecoder, market_key_of_type
from .files import expand_paths
from .inputs import DEFAULT_INPUTS, InputOptions
from .recordings import FORMATS, _resolve, betfair_messages
from .tables import table_starting_prices

__all__ = ["STARTING_PRICE_SCHEMA", "betfair_starting_prices", "starting_prices"]

#: The columns of a starting-price table (prices American; ``off_time``: when it was struck,
#: unix ms, null when the file does not say)
STARTING_PRICE_SCHEMA: dict[str, type[pl.DataType]] = {
    "event_id": pl.String, "bookmaker": pl.String, "side": pl.String, "starting_price": pl.Float64,
    "off_time": pl.Int64,
}


def betfair_starting_prices(path: Path, skips: SkipLog, inputs: InputOptions = DEFAULT_INPUTS) -> pl.DataFrame:
    """The runners' starting prices (American) of one Betfair stream recording, with the off
    (when pre-off trading last ended); a runner without one (a non-runner, a market never
    reconciled) has no row, unless its market went off with no starting price at all: then
    every runner has a row with a null price and the off."""
    decoder = BetfairDecoder(inputs.betfair_price)
    for where, msg in betfair_messages(path, skips):
        decoder.feed(msg, where, skips)
    rows: list[tuple[str, str, str, float | None, int | None]] = []
    for sp in decoder.starting_prices():
        try:
            rows.append((sp.event_id, "betfair", sp.side, decimal_to_american(sp.bsp), sp.off_ms))
        except ConfigError:  # a decimal SP that maps outside SPEC 1's range: no close for it
            skips.add(f"{path.name} {sp.event_id} {sp.side}", "invalid price",
                      f"bsp: {sp.bsp!r} maps outside the valid American range")
    # A market that went off without starting prices still says when it went off: its runners
    # get a row without a price, whose off bounds a last-before-commence close (an exchange
    # suspends the market at the off, on time or early, and then trades in play).
    priced = {r[0] for r in rows}
    for market_id in decoder.market_ids():
        view = decoder.market(market_id)
        if view is None or view.off_ms is None or market_id in priced or view.market_type is None:
            continue
        try:
            key = market_key_of_type(view.market_type)
        except FeedError:  # the decoder quoted nothing of it either
            continue
        rows.extend((market_id, "betfair", runner_side(key, r.selection_id), None, view.off_ms)
                    for r in view.runners)
    return pl.DataFrame(rows, schema=STARTING_PRICE_SCHEMA, orient="row")


def starting_prices(paths: Sequence[str | Path], fmt: str = "auto", inputs: InputOptions = DEFAULT_INPUTS,
                    skips: SkipLog | None = None) -> pl.DataFrame | None:
    """The starting prices of every input file that carries them: columns ``event_id,
    bookmaker, side, starting_price`` (American, Float64) and ``off_time`` (when it was struck,
    unix ms: a Betfair market's off; null for a table), one row per key (a key in several
    files: the last file's). ``None`` when no file is of a kind that carries starting prices
    (a Betfair recording, a table with a ``starting_price`` field).

    Files are read again here (the quotes are read by the replay path), so skips go to
    ``skips`` only when given: by default the replay's own report tells about bad input once.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    log = skips if skips is not None else SkipLog()
    frames: list[pl.DataFrame] = []
    for given in expand_paths([Path(p) for p in paths], log):
        resolved = _resolve(given, fmt, log, inputs)
        if resolved is None:
            continue
        path, kind = resolved
        if kind == "betfair":
            frames.append(betfair_starting_prices(path, log, inputs))
        elif kind == "quotes":
            # (a table without the field is told by its header or schema: no row read twice)
            table = table_starting_prices(path, inputs, skips=log)
            if table is not None:
                frames.append(table)
    if not frames:
        return None
    merged = pl.concat(frames, how="diagonal_relaxed")  # a table's frame has no off_time
    return merged.select(
        (pl.col(c) if c in merged.columns else pl.lit(None)).cast(t).alias(c) for c, t in STARTING_PRICE_SCHEMA.items()
    ).unique(["event_id", "bookmaker", "side"], keep="last", maintain_order=True)
