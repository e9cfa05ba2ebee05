"""Side strings (SPEC section 2): build them from parts and parse them back.

Game lines: ``h2h_home``, ``h2h_away``, ``h2h_draw``, ``spread_home@-3``, ``total_over@220.5``.
Props: ``{market_key}:{player}:over@{line}``. Player names may contain ``:`` and ``@``, so a
prop side is parsed with the market key taken from the left and the ``over@``/``under@``
suffix from the right; whatever lies between is the player.
Runners of multi-runner markets (exchange WIN/PLACE markets; SPEC 2 is silent on them):
``{market_key}:{selection}`` with exactly one ``:`` (``win:12115648``), kind ``game``. A prop
side always has two, so no side that parsed before reads differently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .errors import ConfigError, FeedError

__all__ = [
    "SideInfo",
    "canonical_side",
    "format_line",
    "h2h_side",
    "join_line",
    "join_prop",
    "market_key_of",
    "parse_side",
    "prop_side",
    "runner_side",
    "spread_side",
    "total_side",
]

GameOutcome = Literal["home", "away", "draw"]
LineOutcome = Literal["home", "away"]
OverUnder = Literal["over", "under"]

_GAME_MARKETS = {"h2h": "h2h", "spread": "spreads", "total": "totals"}
#: names a runner side's market key may not take: the game markets keep their own sides
_GAME_MARKET_KEYS = frozenset(_GAME_MARKETS.values()) | frozenset(_GAME_MARKETS)
_RUNNER_KEY = re.compile(r"[^:@\s]+")
_RUNNER_SELECTION = re.compile(r"[^:@\s](?:[^:@]*[^:@\s])?")


def format_line(line: float) -> str:
    """Shortest text for a line: no ``+`` sign, no trailing ``.0`` (``-3``, ``220.5``, ``0``)."""
    if isinstance(line, bool) or not isinstance(line, (int, float)):
        raise ConfigError(f"line: {line!r} is not a number")
    if isinstance(line, int) and -(2**53) <= line <= 2**53:
        return str(line)  # exact: every int a float holds exactly
    try:
        value = float(line)  # a larger int is the float a quote's line holds (Quote canonicalises so)
    except OverflowError:
        raise ConfigError(f"line: {line!r} is not finite") from None
    if not math.isfinite(value):
        raise ConfigError(f"line: {line!r} is not finite")
    if value.is_integer():
        return str(int(value))  # also turns -0.0 into "0"
    text = repr(value)
    if "e" in text:  # 1e-07 and the like: spell the digits out, never an exponent
        text = format(Decimal(text), "f")
    return text


def join_line(prefix: str, line_text: str) -> str:
    """``{prefix}@{line_text}``, unchecked: the one spelling of a line side, which the checked
    builders below and the hot frame decoder (whose parts are checked already) both use."""
    return f"{prefix}@{line_text}"


def join_prop(market_key: str, player: str, outcome: str, line_text: str) -> str:
    """``{market_key}:{player}:{outcome}@{line_text}``, unchecked (see :func:`join_line`)."""
    return f"{market_key}:{player}:{outcome}@{line_text}"


def h2h_side(outcome: GameOutcome) -> str:
    """``h2h_home``, ``h2h_away`` or ``h2h_draw``."""
    if outcome not in ("home", "away", "draw"):
        raise ConfigError(f"outcome: {outcome!r} must be home, away or draw")
    return f"h2h_{outcome}"


def spread_side(outcome: LineOutcome, line: float) -> str:
    """``spread_home@-3`` style side of a point spread."""
    if outcome not in ("home", "away"):
        raise ConfigError(f"outcome: {outcome!r} must be home or away")
    return join_line(f"spread_{outcome}", format_line(line))


def total_side(outcome: OverUnder, line: float) -> str:
    """``total_over@220.5`` style side of a game total."""
    if outcome not in ("over", "under"):
        raise ConfigError(f"outcome: {outcome!r} must be over or under")
    return join_line(f"total_{outcome}", format_line(line))


def prop_side(market_key: str, player: str, outcome: OverUnder, line: float) -> str:
    """``player_points:{player}:over@24.5``; the market key may not contain ``:``."""
    if not market_key or ":" in market_key:
        raise ConfigError(f"market_key: {market_key!r} must be non-empty and contain no ':'")
    if not player:
        raise ConfigError("player: must be a non-empty name")
    if outcome not in ("over", "under"):
        raise ConfigError(f"outcome: {outcome!r} must be over or under")
    return join_prop(market_key, player, outcome, format_line(line))


def runner_side(market_key: str, selection: str | int) -> str:
    """``{market_key}:{selection}``: one runner of a multi-runner market (``win:12115648``)."""
    text = str(selection) if type(selection) is int else selection
    if not isinstance(market_key, str) or not _RUNNER_KEY.fullmatch(market_key) or market_key in _GAME_MARKET_KEYS:
        raise ConfigError(f"market_key: {market_key!r} must be non-empty, without ':', '@' or spaces, "
                          "and not a game market (h2h, spreads, totals)")
    if not isinstance(text, str) or not _RUNNER_SELECTION.fullmatch(text):
        raise ConfigError(f"selection: {selection!r} must be non-empty, without ':' or '@' or surrounding spaces")
    return f"{market_key}:{text}"


@dataclass(frozen=True, slots=True)
class SideInfo:
    """The parts of a side string (for a runner, ``outcome`` is the selection)."""

    kind: Literal["game", "prop"]
    market_key: str
    outcome: str
    line: float | None = None
    player: str | None = None


# A line is a plain ASCII decimal (no "_", no exponent, no spaces, no other scripts' digits).
_LINE_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def _parse_line(text: str, side: str) -> float:
    if not _LINE_TEXT.fullmatch(text):
        raise FeedError(f"side: {side!r} has a non-numeric line {text!r}", "bad side")
    line = float(text)
    if not math.isfinite(line):  # digits past a double's range ('9' * 400): float() makes inf of them
        raise FeedError(
            f"side: a line of {len(text)} characters is beyond any number a line holds ({text[:20]}...)", "bad side"
        )
    return line


def parse_side(side: str) -> SideInfo:
    """Split a side string into its parts; raises :class:`FeedError` naming the side."""
    if not isinstance(side, str) or not side:
        raise FeedError(f"side: {side!r} is not a non-empty string", "bad side")
    if ":" in side:
        market_key, _, rest = side.partition(":")
        if ":" not in rest:  # exactly one ':': a runner side (a prop has two)
            if (_RUNNER_KEY.fullmatch(market_key) and market_key not in _GAME_MARKET_KEYS
                    and _RUNNER_SELECTION.fullmatch(rest)):
                return SideInfo("game", market_key, rest)
            raise FeedError(
                f"side: {side!r} is not {{market_key}}:{{selection}} (a runner, win:12115648) nor "
                "{market_key}:{player}:over|under@{line} (a prop)", "bad side")
        player, sep, tail = rest.rpartition(":")
        outcome, at, line_text = tail.partition("@")
        if not market_key or not sep or not player or not at or outcome not in ("over", "under"):
            raise FeedError(
                f"side: {side!r} is not {{market_key}}:{{player}}:over|under@{{line}}", "bad side"
            )
        return SideInfo("prop", market_key, outcome, _parse_line(line_text, side), player)
    head, at, line_text = side.partition("@")
    market, underscore, outcome = head.partition("_")
    if market == "h2h" and not at and outcome in ("home", "away", "draw"):
        return SideInfo("game", "h2h", outcome)
    if ((market == "spread" and outcome in ("home", "away")) or (
        market == "total" and outcome in ("over", "under")
    )) and at and underscore:
        return SideInfo("game", _GAME_MARKETS[market], outcome, _parse_line(line_text, side))
    raise FeedError(
        f"side: {side!r} is not a known side (h2h_home, spread_home@-3, total_over@220.5, "
        "{market_key}:{player}:over@{line}, win:12115648, ...)",
        "bad side",
    )


def canonical_side(side: str) -> str:
    """The side in its canonical spelling (``spread_home@-3.0`` -> ``spread_home@-3``).

    Raises :class:`FeedError` for a side that does not parse, so callers can skip it.
    """
    info = parse_side(side)
    if info.kind == "prop":
        assert info.player is not None and info.line is not None
        return join_prop(info.market_key, info.player, info.outcome, format_line(info.line))
    if info.line is None:
        return side
    return join_line(f"{side.partition('_')[0]}_{info.outcome}", format_line(info.line))


def market_key_of(side: str) -> str:
    """The market key a side belongs to (``h2h``, ``spreads``, ``totals`` or the prop key)."""
    return parse_side(side).market_key
