"""Pure mapping of The Odds API v4 odds responses to quotes.

A v4 response is a list of events, each with ``bookmakers[].markets[].outcomes[]``.
Outcomes map to sides by team name: ``h2h_home`` / ``h2h_away`` / ``h2h_draw``,
``spread_home@{point}``, ``total_over@{point}``; player props (outcomes ``Over``/``Under``
with a ``description`` naming the player) map to ``{market_key}:{player}:over@{point}``.
Each quote is timed by its market's ``last_update`` (falling back to the bookmaker's), so
an unchanged market repeated in the next snapshot is a re-observation, not a move.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..core.errors import FeedError
from ..core.quote import Quote
from ..core.sides import OverUnder, h2h_side, prop_side, spread_side, total_side
from ..core.skips import SkipLog
from .frames import coerce_line, coerce_ms, coerce_price

__all__ = ["iso_to_ms", "outcome_side", "quotes_from_odds_api", "snapshot_of"]

_ISO_CACHE: dict[str, int] = {}
_GAME_MARKETS = frozenset({"h2h", "spreads", "totals"})


def iso_to_ms(text: object, field: str = "last_update") -> int:
    """ISO-8601 UTC (``2025-11-08T12:39:04Z``) to unix ms; cached, as feeds repeat stamps."""
    if type(text) is not str:
        raise FeedError(f"{field}: {text!r} is not an ISO-8601 time", "bad time")
    ms = _ISO_CACHE.get(text)
    if ms is None:
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise FeedError(f"{field}: {text!r} is not an ISO-8601 time", "bad time") from None
        if dt.tzinfo is None:
            raise FeedError(f"{field}: {text!r} has no time zone (expected UTC, e.g. ...Z)", "bad time")
        ms = int(dt.timestamp() * 1000 + (0.5 if dt.timestamp() >= 0 else -0.5))
        if len(_ISO_CACHE) < 1_000_000:
            _ISO_CACHE[text] = ms
    return ms


def outcome_side(market_key: str, outcome: Mapping[str, Any], home: str, away: str) -> str | None:
    """The side string for one outcome (The Odds API's ``name``/``point``, the event's teams), or
    None when the market is not one we map. Mapped tables with an outcome column use it too."""
    name = outcome.get("name")
    if market_key == "h2h":
        if name == home:
            return h2h_side("home")
        if name == away:
            return h2h_side("away")
        if name == "Draw":
            return h2h_side("draw")
        raise FeedError(f"name: {name!r} is neither team of {home!r} v {away!r} nor Draw", "unknown outcome")
    player = outcome.get("description")
    is_prop = name in ("Over", "Under") and type(player) is str and bool(player) and ":" not in market_key
    if market_key not in ("spreads", "totals") and not is_prop:
        return None
    point = coerce_line(outcome.get("point"), "point")
    if point is None:
        raise FeedError(f"point: missing on a {market_key} outcome", "missing field")
    if market_key == "spreads":
        if name == home:
            return spread_side("home", point)
        if name == away:
            return spread_side("away", point)
        raise FeedError(f"name: {name!r} is neither team of {home!r} v {away!r}", "unknown outcome")
    over_under: OverUnder | None = "over" if name == "Over" else "under" if name == "Under" else None
    if market_key == "totals":
        if over_under is None:
            raise FeedError(f"name: {name!r} is not Over or Under", "unknown outcome")
        return total_side(over_under, point)
    assert over_under is not None and type(player) is str  # is_prop
    return prop_side(market_key, player, over_under, point)


def quotes_from_odds_api(events: object, skips: SkipLog, where: str = "") -> list[Quote]:
    """Quotes for every outcome of every market of every bookmaker, in document order.

    Markets this mapping does not cover (``h2h_lay``, ``alternate_spreads`` ...) are counted
    in ``skips`` as ``unsupported market``; bad outcomes are skipped one by one.
    """
    if not isinstance(events, list):
        skips.add(where, "bad document", f"expected a list of events, got {type(events).__name__}")
        return []
    out: list[Quote] = []
    for ei, event in enumerate(events):
        at_event = f"{where} event {ei}".strip()
        if not isinstance(event, Mapping):
            skips.add(at_event, "bad event", f"expected an object, got {type(event).__name__}")
            continue
        event_id, sport, home, away = (event.get(k) for k in ("id", "sport_key", "home_team", "away_team"))
        if not all(type(v) is str and v for v in (event_id, sport, home, away)):
            skips.add(at_event, "missing field", "id, sport_key, home_team and away_team are required")
            continue
        commence = event.get("commence_time") if type(event.get("commence_time")) is str else None
        books = event.get("bookmakers")
        for book in books if isinstance(books, list) else ():
            if not isinstance(book, Mapping) or type(book.get("key")) is not str or not book["key"]:
                skips.add(at_event, "missing field", "bookmaker without a key")
                continue
            book_key = book["key"]
            markets = book.get("markets")
            for market in markets if isinstance(markets, list) else ():
                at = f"{at_event} {book_key}"
                if not isinstance(market, Mapping) or type(market.get("key")) is not str:
                    skips.add(at, "missing field", "market without a key")
                    continue
                mkey = market["key"]
                try:
                    lu = iso_to_ms(market.get("last_update") or book.get("last_update"))
                except FeedError as exc:
                    skips.add(f"{at} {mkey}", exc.reason, str(exc))
                    continue
                outcomes = market.get("outcomes")
                outcomes = outcomes if isinstance(outcomes, list) else []
                if mkey not in _GAME_MARKETS and not any(
                    isinstance(o, Mapping) and o.get("description") for o in outcomes
                ):
                    skips.add(f"{at} {mkey}", "unsupported market", f"market {mkey!r} is not mapped")
                    continue
                for outcome in outcomes:
                    try:
                        if not isinstance(outcome, Mapping):
                            raise FeedError("outcome is not an object", "bad row")
                        side = outcome_side(mkey, outcome, home, away)  # type: ignore[arg-type]
                        if side is None:
                            raise FeedError(
                                f"name: {outcome.get('name')!r} is not Over/Under with a player in {mkey!r}",
                                "unknown outcome",
                            )
                        price = coerce_price(outcome.get("price"), "price")
                        is_prop = ":" in side
                        out.append(
                            Quote(
                                sport, event_id, book_key, side, price, lu,  # type: ignore[arg-type]
                                "prop" if is_prop else "game",
                                mkey,
                                None,
                                outcome.get("description") if is_prop else None,
                                None if mkey == "h2h" or outcome.get("point") is None else float(outcome["point"]),
                                home, away, commence,
                            )
                        )
                    except FeedError as exc:
                        skips.add(f"{at} {mkey}", exc.reason, str(exc))
    return out


def snapshot_of(doc: Any, skips: SkipLog, where: str) -> tuple[int, list[Quote]] | None:
    """One response (a list of events, one event, or a historical ``{"timestamp", "data"}``
    object) as ``(clock, quotes)``: ``clock`` stamps its alerts, the fetch time (the
    ``timestamp``, else the newest quote's ``last_update``). ``None`` when it holds no quote."""
    clock: int | None = None
    events = doc
    if isinstance(doc, dict) and "data" in doc:
        events = doc["data"]
        if doc.get("timestamp") is not None:
            try:
                ts = doc["timestamp"]
                clock = coerce_ms(ts, "timestamp") if isinstance(ts, int) else iso_to_ms(ts, "timestamp")
            except FeedError as exc:
                skips.add(where, exc.reason, str(exc))
    if isinstance(events, dict):  # a single-event response (/events/{id}/odds)
        events = [events]
    quotes = quotes_from_odds_api(events, skips, where)
    if not quotes:
        return None
    if clock is None:
        clock = max(q.last_update for q in quotes)
    return clock, quotes
