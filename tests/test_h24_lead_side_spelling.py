"""SPEC 2: a side is one key however its line is spelt, also when a quote gives its kind and
market key (as decoders do). Before session 17 such a quote kept its side as spelt: the stream
engine keyed `spread_home@-7.50` apart from `spread_home@-7.5` (two primes, no alert) where every
batch path and every table reader keys them as one (sig17's finding)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core import quote as quote_mod
from dropengine.core.errors import FeedError
from dropengine.core.sides import canonical_side

from .strategies import signal_options
from .test_h12_batch_equivalence import check, signal_streams, wire

_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _spellings(line: str) -> list[str]:
    """Other spellings of a canonical line text (same number)."""
    out = [f"{line}0" if "." in line else f"{line}.0", f"{line}00" if "." in line else f"{line}.00"]
    if not line.startswith("-"):
        out.append(f"+{line}")
    return out


def _given_kind(q: Quote, side: str) -> Quote:
    """``q`` built again with ``side`` and its kind and market key given (the decoders' shape)."""
    fields = {f: getattr(q, f) for f in q.__struct_fields__}
    fields.update(side=side, kind=q.kind, market_key=q.market_key)
    return Quote(**fields)


@given(signal_streams(), signal_options(), st.data())
@_SETTINGS
def test_a_respelled_side_with_kind_and_market_key_given_is_one_key(
    quotes: list[Quote], opts: dict[str, Any], data: st.DataObject
) -> None:
    respelled = []
    for q in quotes:
        head, at, line = q.side.rpartition("@")
        side = q.side
        if at and data.draw(st.booleans()):
            side = f"{head}@{data.draw(st.sampled_from(_spellings(line)))}"
        respelled.append(_given_kind(q, side))
    for q, r in zip(quotes, respelled, strict=True):
        assert r.side == q.side == canonical_side(q.side)
    # the stream engine gives the canonical stream's alerts, and the batch path the stream's
    want = DropEngine(**opts).observe_many(quotes)
    got, _ = check(respelled, opts)
    assert wire(got) == wire(want)


def test_the_spellings_remembered_are_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(quote_mod, "_CANONICAL_MAX", 8)
    monkeypatch.setattr(quote_mod, "_CANONICAL", set())
    for i in range(50):
        q = Quote(
            "americanfootball_nfl",
            "e",
            "pin",
            f"spread_home@-{i}.50",
            -110,
            1,
            kind="game",
            market_key="spreads",
            line=-i - 0.5,
        )
        assert q.side == f"spread_home@-{i}.5"
        assert len(quote_mod._CANONICAL) <= 8
    # a side that does not parse is a bad side also with kind and market key given, as every table
    # reader and batch load skips it (fix18: SPEC 2's one grammar)
    with pytest.raises(FeedError) as refused:
        Quote("americanfootball_nfl", "e", "pin", "custom@x", -110, 1, kind="game", market_key="custom")
    assert refused.value.reason == "bad side"
