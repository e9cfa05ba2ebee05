"""Issue 14 breaker (breaker14b, B3): the fused frames path's entry point took its observation
tuples unchecked, and it was a public method: a text or negative time, a missing row info or a
short tuple poisoned a key (every later quote of it raised) or counted a key not held. It is now
private (``DropEngine._observe_prices``, called only by the fused frames path, whose typed schema
guarantees the types); the public ways in refuse an observation tuple with a ConfigError naming
it and leave the engine as it was."""

from __future__ import annotations

from typing import Any

import pytest

from dropengine import DropEngine, Quote
from dropengine.core.errors import ConfigError
from dropengine.core.quote import QuoteInfo

INFO = QuoteInfo("nba", "game", None, None, None, None, None)
KEY = ("e", "b", "h2h_home")


def quote(price: int, lu: int) -> Quote:
    return Quote("nba", *KEY, price, lu)


def test_the_trusted_entry_point_is_not_public() -> None:
    assert not hasattr(DropEngine, "observe_prices")
    assert all(name.startswith("_") for name in dir(DropEngine) if "prices" in name)


@pytest.mark.parametrize("item", [
    (KEY, -110, "1000", "h2h", None, INFO),   # text time
    (KEY, -110, -5, "h2h", None, INFO),       # negative time
    (KEY, -110, 1000, "h2h", None, None),     # no row info
    (KEY, -110, 1000),                        # short tuple
])
@pytest.mark.parametrize("way", ["observe", "observe_many"])
def test_public_ways_refuse_an_observation_tuple_and_keep_the_engine(item: Any, way: str) -> None:
    engine = DropEngine()
    with pytest.raises(ConfigError, match="is not a Quote"):
        if way == "observe":
            engine.observe(item)
        else:
            engine.observe_many([item])
    assert engine.snapshot() == DropEngine().snapshot()
    assert engine.observe_many([quote(-110, 2000), quote(-150, 2001)])[0].delta == -40
