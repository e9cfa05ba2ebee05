"""Issue 14 breaker (breaker14b): ``DropEngine.observe_prices`` (the fused frames path's entry
point, a public name on a public class) and the compact per-key state.

Misuse of a public method raises ConfigError naming the value (HOUSE.md: errors name the field
and the value), and a refused call leaves the engine as it was: never a poisoned key that
breaks every later quote, never a key counted that is not held."""

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


def after_misuse(item: Any) -> DropEngine:
    """An engine that refused ``item`` with ConfigError (naming nothing else is asked here)."""
    engine = DropEngine()
    with pytest.raises(ConfigError):
        engine.observe_prices([item])
    return engine


@pytest.mark.xfail(strict=True, reason="breaker14b: observe_prices accepts a str last_update; the key is poisoned "
                                       "(every later quote of it raises TypeError)")
def test_observe_prices_refuses_a_text_time_and_keeps_the_engine_usable() -> None:
    engine = after_misuse((KEY, -110, "1000", "h2h", None, INFO))
    assert engine.observe_many([quote(-110, 2000), quote(-150, 2001)])[0].delta == -40


@pytest.mark.xfail(strict=True, reason="breaker14b: observe_prices accepts a negative last_update (a nonsense "
                                       "elapsed_ms later); observe_many's Quote refuses it")
def test_observe_prices_refuses_a_negative_time() -> None:
    after_misuse((KEY, -110, -5, "h2h", None, INFO))


@pytest.mark.xfail(strict=True, reason="breaker14b: observe_prices with info=None raises AttributeError after "
                                       "counting the key for its event (snapshot differs from a fresh engine)")
def test_observe_prices_refuses_a_missing_info_and_counts_no_key() -> None:
    engine = after_misuse((KEY, -110, 1000, "h2h", None, None))
    assert engine.snapshot() == DropEngine().snapshot()


@pytest.mark.xfail(strict=True, reason="breaker14b: observe_prices with a short tuple raises ValueError (unpack), "
                                       "not ConfigError naming the item")
def test_observe_prices_refuses_a_short_tuple() -> None:
    after_misuse((KEY, -110, 1000))
