"""The vendor row schema has one home (dropengine.formats.vendor): the row of a quote decodes
back to that quote, and the decoder, mock-upstream and the simulator all use that one schema."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from dropengine.core.quote import Quote
from dropengine.core.sides import h2h_side, prop_side, spread_side, total_side
from dropengine.core.skips import SkipLog
from dropengine.formats import vendor
from dropengine.formats.frames import FrameDecoder
from dropengine.mock import frames as mock_frames
from dropengine.mock import timeline

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
_OPT = st.none() | _TEXT
_LINE = st.integers(-400, 400).map(lambda n: n / 2) | st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
# any number: the decoder judges no price's validity (the engine does), so an out-of-range
# price (0, +50, -99, 1e9) comes back as it went in
_PRICE = st.none() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
_MARKET_KEY = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=":"), min_size=1, max_size=8)


@st.composite
def quotes(draw: st.DrawFn) -> Quote:
    kind = draw(st.sampled_from(["h2h", "spread", "total", "prop"]))
    market = None
    if kind == "h2h":
        side = h2h_side(draw(st.sampled_from(["home", "away", "draw"])))
    elif kind == "spread":
        side = spread_side(draw(st.sampled_from(["home", "away"])), draw(_LINE))
    elif kind == "total":
        side = total_side(draw(st.sampled_from(["over", "under"])), draw(_LINE))
    else:
        side = prop_side(draw(_MARKET_KEY), draw(_TEXT), draw(st.sampled_from(["over", "under"])), draw(_LINE))
        market = draw(_OPT)
    return Quote(
        draw(_TEXT), draw(_TEXT), draw(_TEXT), side, draw(_PRICE), draw(st.integers(0, 2**63 - 1)),
        market=market, home_team=draw(_OPT), away_team=draw(_OPT), commence_time=draw(_OPT),
    )


def _decode(rows: list[Any], sport: str) -> tuple[list[Quote], SkipLog]:
    envelope = msgspec.json.decode(msgspec.json.encode({"type": "odds_update", "sport_key": sport, "data": rows}))
    skips = SkipLog()
    return FrameDecoder().feed(envelope, skips), skips


@given(quotes())
def test_the_row_of_a_quote_decodes_back_to_the_quote(q: Quote) -> None:
    row = vendor.vendor_row(q)
    got, skips = _decode([row], q.sport_key)
    assert got == [q] and not skips
    # one field priced, and that field is the quote's: the row's price fields say so
    assert vendor.price_fields_of(row, vendor.row_kind(row) or "") == [f for f in row if f in vendor.PRICE_FIELDS]


@given(st.lists(quotes(), min_size=1, max_size=6))
def test_a_diff_row_merged_by_identity_gives_the_same_quotes_as_the_full_row(qs: list[Quote]) -> None:
    # the first row of an identity full, the rest as _diff rows: the decoder (which merges) and
    # the vendor merge applied by hand give the same quotes
    rows = [vendor.vendor_row(q) for q in qs]
    held: dict[tuple[Any, ...], dict[str, Any]] = {}
    wire: list[dict[str, Any]] = []
    for row in rows:
        ident = vendor.row_identity(row)
        if ident in held:
            diff = {k: v for k, v in row.items() if held[ident].get(k, object()) != v or k == "last_update"}
            diff.update(event_id=row["event_id"], bookmaker=row["bookmaker"], kind=row["kind"], _diff=True)
            if row["kind"] == "prop":
                diff.update(market_key=row["market_key"], player=row["player"])
            wire.append(diff)
            held[ident] = vendor.merge_diff(held[ident], diff)
        else:
            wire.append(row)
            held[ident] = row
    merged_rows = []
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in wire:
        ident = vendor.row_identity(row)
        full = vendor.merge_diff(seen.get(ident), row) if row.get("_diff") else row
        seen[ident] = full
        merged_rows.append(full)
    sport = qs[0].sport_key
    assert _decode(wire, sport)[0] == _decode(merged_rows, sport)[0]


def test_row_kind_follows_the_vendor_union() -> None:
    assert vendor.row_kind({"event_id": "e"}) == "game"
    assert vendor.row_kind({"player": "p"}) == "prop"
    assert vendor.row_kind({"market_key": "m", "kind": None}) == "prop"
    assert vendor.row_kind({"kind": "game", "player": "p"}) == "game"
    assert vendor.row_kind({"kind": "futures"}) is None
    assert vendor.row_kind({"kind": 3}) is None


def test_the_mock_and_the_decoder_share_the_schema() -> None:
    # one home: mock-upstream's names are the vendor module's objects, not copies
    # (imported from formats.vendor, under the vendor's names: no second name in the mock)
    assert timeline.vendor_row is vendor.vendor_row
    assert timeline.row_identity is vendor.row_identity
    assert mock_frames.row_kind is vendor.row_kind
    assert mock_frames.GAME_MARKET_FIELDS is vendor.GAME_MARKET_FIELDS
    assert not {"quote_row", "GAME_MARKET_FIELDS", "row_kind", "row_identity"} & set(timeline.__all__)
    fields = {f for fs in vendor.GAME_MARKET_FIELDS.values() for f in fs}
    assert fields == {f.price for f in vendor.GAME_FIELDS} | {f.line for f in vendor.GAME_FIELDS if f.line}
