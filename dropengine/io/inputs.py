"""How to read the input files: the choices a user makes about data dropengine cannot tell.

One frozen value carries them from the CLI (or the library caller) to every reader, so the
row reader, the columnar reader and the format readers see the same choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from ..core.errors import ConfigError
from ..formats.mapping import TableMapping

__all__ = ["BETFAIR_PRICES", "DEFAULT_INPUTS", "ODDS_FORMATS", "InputOptions"]

OddsFormat = Literal["american", "decimal", "prob"]
BetfairPrice = Literal["ltp", "back"]

#: how a table's price column is written (SPEC 1 converts decimal and probability to American)
ODDS_FORMATS: Final = ("american", "decimal", "prob")
#: which Betfair stream price becomes the quote: last traded price or best available back price
BETFAIR_PRICES: Final = ("ltp", "back")


@dataclass(frozen=True, slots=True)
class InputOptions:
    """``odds_format``: the price column's odds format in quote tables (a table's own
    ``odds_format`` column, where it has one, decides per row). ``betfair_price``: the
    quote of a Betfair stream recording (``ltp`` last traded, ``back`` best back).
    ``mapping``: how a table with other column names (or one column per side) becomes
    quote rows (:class:`~dropengine.formats.mapping.TableMapping`); ``None``: the table has
    SPEC 2's columns."""

    odds_format: OddsFormat = "american"
    betfair_price: BetfairPrice = "ltp"
    mapping: TableMapping | None = None

    def __post_init__(self) -> None:
        if self.odds_format not in ODDS_FORMATS:
            raise ConfigError(f"odds_format: {self.odds_format!r} must be one of {', '.join(ODDS_FORMATS)}")
        if self.betfair_price not in BETFAIR_PRICES:
            raise ConfigError(f"betfair_price: {self.betfair_price!r} must be one of {', '.join(BETFAIR_PRICES)}")
        if self.mapping is not None and not isinstance(self.mapping, TableMapping):
            raise ConfigError(f"mapping: {type(self.mapping).__name__} must be a TableMapping or None")

    @property
    def plain_tables(self) -> bool:
        """Whether quote tables are read as they are (American prices, SPEC 2's columns):
        then the columnar Parquet reader may read them."""
        return self.mapping is None and self.odds_format == "american"


DEFAULT_INPUTS: Final = InputOptions()
