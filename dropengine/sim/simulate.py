"""A seeded market simulator: realistic vendor recordings without a live feed.

Everything here is pure: no I/O and no clock. Randomness comes from ``random.Random``
instances seeded from :attr:`SimConfig.seed` (one per event, one for the feed), time from
:attr:`SimConfig.start_ms`, so the same configuration always yields the same envelopes in
the same order (the writers in :mod:`dropengine.sim.simfile` turn that into
byte-identical files).

The model (see ``docs/simulator.md`` for the calibration against real recordings):

- **Fair value.** Each event has an expected home margin and an expected total (points,
  runs, goals). Before the game they change by small *information arrivals* (a Poisson
  process whose rate rises towards kick-off) and occasional *news jumps* (injuries, weather);
  a jump can rule a player out, which pulls his props. The home win probability and the
  cover/over probabilities follow from a normal model of the final margin and total.
- **In play.** From kick-off the expectations freeze and a score process (sport-specific
  score sizes and rates) moves the margin and the total; the remaining uncertainty shrinks
  with the clock, so prices swing harder late in the game.
- **Books.** One sharp book (``pinnacle``) re-prices within seconds of every change. Soft
  books see the sharp price after their own lag (a log-normal around a per-book median of
  half a minute to several minutes), add their own slowly drifting shading, their own
  overround (about 4-5% two-way, props more) and round to the ladder they quote (1-, 5- or
  10-cent steps near even money, coarser far from it). Soft books skip moves smaller than
  their minimum step, so they move less often and in larger steps than the sharp book.
- **Lines.** Spreads and totals keep their line while the side prices absorb small moves, and
  move the line (half a point) when the cover probability leaves a band; baseball and
  hockey keep a fixed 1.5 run/puck line whose favourite side flips when the favourite does.
- **Suspensions.** Books suspend (null prices) after news jumps (the sharp book almost
  always, soft books often), around kick-off, after in-play scores, and at the end of the
  game; in play a market goes off the board (null prices) once a side is beyond 99%.
- **In play the feed thins:** only books that trade in play reopen after kick-off, props are
  pulled, and instead of following every change of the game state (every 10 s) each soft
  book re-quotes on its own cycle of about :attr:`SimConfig.inplay_interval_s` (the sharp book
  three times as often). Per key, in-play prices still change far more often than pre-game
  ones, as they do in the real recordings (``docs/simulator.md``).

Output: :func:`simulate_envelopes` yields the vendor's envelopes (SPEC section 5:
``connected``, ``hot_feed_status``, ``initial_state``, ``odds_update``, ``heartbeat``) with
full (not ``_diff``) rows; :func:`simulate_quote_rows` yields the same simulation as SPEC
section 2 quote rows, decoded by :class:`~dropengine.formats.frames.FrameDecoder` so both forms
replay to the same alerts.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any, Final

from ..core.errors import ConfigError
from ..core.odds import cents, prob_to_american
from ..core.quote import Quote
from ..core.skips import SkipLog
from ..formats.frames import FrameDecoder

__all__ = [
    "BOOKMAKERS",
    "CENT_LADDER",
    "DEFAULT_START_MS",
    "DIME_LADDER",
    "NICKEL_LADDER",
    "QUOTE_COLUMNS",
    "SPORTS",
    "BookProfile",
    "Ladder",
    "PropMarket",
    "SimConfig",
    "SportProfile",
    "quote_rows_from_envelopes",
    "round_to_ladder",
    "simulate_envelopes",
    "simulate_quote_rows",
    "two_way_probs",
]

#: 2025-11-09T12:00:00Z, a Sunday morning of the NFL season.
DEFAULT_START_MS: Final = 1_762_689_600_000

#: SPEC section 2 columns, in the order the quote writers use.
QUOTE_COLUMNS: Final = (
    "sport_key", "event_id", "bookmaker", "side", "price", "last_update", "kind", "market_key",
    "market", "player", "line", "home_team", "away_team", "commence_time",
)

Ladder = tuple[tuple[int, int], ...]
"""Price ladder: ``(upper bound of |price|, step)`` bands in increasing order."""

#: Sharp books and some US books: any cent near even money, coarser further out.
CENT_LADDER: Final[Ladder] = ((200, 1), (500, 5), (1000, 10), (2000, 25), (5000, 50), (100_000, 100))
#: 5-cent ladder (-105, -110, -115, ...), the usual soft-book ladder.
NICKEL_LADDER: Final[Ladder] = ((500, 5), (1000, 25), (2000, 50), (100_000, 100))
#: 10-cent ladder near even money (-110, -120, +110, ...).
DIME_LADDER: Final[Ladder] = ((500, 10), (1000, 25), (2000, 50), (100_000, 100))

_MINUTE: Final = 60_000
_HOUR: Final = 3_600_000
_NORMAL: Final = NormalDist()
_MAX_EVENTS: Final = 500
_MAX_HOURS: Final = 24 * 14
_MAX_START_MS: Final = 4_102_444_800_000  # 2100-01-01


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class BookProfile:
    """How one bookmaker prices and reacts.

    ``vig_*`` are two-way overrounds (``0.045`` = implied probabilities summing to 104.5%);
    ``lag_s`` the median delay, in seconds, before a soft book reflects a sharp move before
    the game (in play a tenth of it, at least 2 s); ``follow`` the chance that it looks at a
    given pre-game move at all (a book that skips one catches up, in one larger step, at the
    next one it follows); ``min_move`` the smallest change, in cents, worth a re-quote;
    ``line_band`` how far the cover probability of the current spread/total line may drift
    from 50% before the line moves.
    """

    key: str
    sharp: bool
    vig_h2h: float
    vig_lines: float
    vig_props: float
    ladder: Ladder
    min_move: int
    lag_s: float
    follow: float
    inplay: bool
    props: bool
    line_band: float


BOOKMAKERS: Final[tuple[BookProfile, ...]] = (
    BookProfile("pinnacle", True, 0.026, 0.025, 0.05, CENT_LADDER, 1, 1.0, 1.0, True, True, 0.012),
    BookProfile("draftkings", False, 0.043, 0.047, 0.075, NICKEL_LADDER, 5, 60.0, 0.6, True, True, 0.015),
    BookProfile("fanduel", False, 0.041, 0.047, 0.075, CENT_LADDER, 2, 90.0, 0.55, True, True, 0.015),
    BookProfile("betmgm", False, 0.044, 0.047, 0.08, NICKEL_LADDER, 5, 240.0, 0.2, True, True, 0.02),
    BookProfile("caesars", False, 0.048, 0.048, 0.08, CENT_LADDER, 2, 150.0, 0.6, True, True, 0.015),
    BookProfile("bovada", False, 0.043, 0.047, 0.08, NICKEL_LADDER, 5, 300.0, 1.0, True, True, 0.02),
    BookProfile("fanatics", False, 0.044, 0.047, 0.08, NICKEL_LADDER, 5, 200.0, 1.0, True, True, 0.02),
    BookProfile("betrivers", False, 0.059, 0.06, 0.09, CENT_LADDER, 2, 240.0, 0.7, True, True, 0.015),
    BookProfile("mybookieag", False, 0.05, 0.047, 0.08, DIME_LADDER, 10, 420.0, 0.7, False, False, 0.02),
    BookProfile("lowvig", False, 0.04, 0.025, 0.06, CENT_LADDER, 2, 30.0, 0.8, False, False, 0.012),
    BookProfile("betus", False, 0.038, 0.047, 0.08, NICKEL_LADDER, 5, 480.0, 0.6, False, False, 0.02),
    BookProfile("espnbet", False, 0.045, 0.047, 0.08, NICKEL_LADDER, 5, 180.0, 0.6, True, True, 0.02),
)
"""The books, in the order ``SimConfig.books`` takes them: the sharp book first."""


@dataclass(frozen=True, slots=True)
class PropMarket:
    """A player prop: key, label, range of player means, and spread of the outcome."""

    key: str
    label: str
    mean_lo: float
    mean_hi: float
    sd_frac: float
    sd_min: float


@dataclass(frozen=True, slots=True)
class SportProfile:
    """Scoring model of one sport.

    The final home margin is normal with ``margin_sd`` around the expected margin (drawn
    per event around ``home_edge`` with ``edge_sd``), the total normal with ``total_sd``
    around an expectation drawn around ``total_mean``. ``fixed_spread`` is a run/puck line
    that never moves (the favourite side flips instead). ``scores`` are in-play score sizes
    with their weights; ``suspend_on_score`` makes books suspend after every score;
    ``situation`` is the s.d. (margin and total units) of the in-play game situation between
    scores (field position, base runners, power plays), which mean-reverts over minutes;
    ``pregame_activity`` scales the rate of pre-game information (baseball: pitchers, line-ups
    and weather keep day-of markets busier than football ones); ``total_band`` scales a book's
    line band for the total (football books move a total sooner than a spread, baseball and
    hockey ones move its price first).
    ``roles`` are the prop players per team, each with the prop markets he is offered in.
    """

    key: str
    teams: tuple[str, ...]
    margin_sd: float
    home_edge: float
    edge_sd: float
    total_mean: float
    total_spread: float
    total_sd: float
    fixed_spread: float | None
    duration_h: float
    scores: tuple[tuple[int, float], ...]
    suspend_on_score: bool
    situation: float
    pregame_activity: float
    total_band: float
    roles: tuple[tuple[PropMarket, ...], ...]


_PASS_YDS = PropMarket("player_pass_yds", "Pass Yards", 195.0, 285.0, 0.2, 30.0)
_RUSH_YDS = PropMarket("player_rush_yds", "Rush Yards", 40.0, 95.0, 0.4, 15.0)
_REC_YDS = PropMarket("player_reception_yds", "Reception Yards", 35.0, 90.0, 0.45, 15.0)
_RECEPTIONS = PropMarket("player_receptions", "Receptions", 3.0, 7.5, 0.35, 1.5)
_POINTS = PropMarket("player_points", "Points", 11.0, 31.0, 0.25, 4.0)
_REBOUNDS = PropMarket("player_rebounds", "Rebounds", 3.5, 12.5, 0.3, 2.0)
_ASSISTS = PropMarket("player_assists", "Assists", 2.0, 9.5, 0.35, 1.5)
_STRIKEOUTS = PropMarket("pitcher_strikeouts", "Strikeouts", 4.0, 8.0, 0.35, 1.6)
_TOTAL_BASES = PropMarket("batter_total_bases", "Total Bases", 1.1, 2.0, 0.8, 1.0)
_SHOTS = PropMarket("player_shots_on_goal", "Shots On Goal", 1.8, 4.2, 0.5, 1.2)
_NHL_POINTS = PropMarket("player_points", "Points", 0.6, 1.3, 0.9, 0.8)

_NFL_TEAMS = (
    "Arizona Cardinals", "Atlanta Falcons", "Baltimore Ravens", "Buffalo Bills", "Carolina Panthers",
    "Chicago Bears", "Cincinnati Bengals", "Cleveland Browns", "Dallas Cowboys", "Denver Broncos",
    "Detroit Lions", "Green Bay Packers", "Houston Texans", "Indianapolis Colts", "Jacksonville Jaguars",
    "Kansas City Chiefs", "Las Vegas Raiders", "Los Angeles Chargers", "Los Angeles Rams", "Miami Dolphins",
    "Minnesota Vikings", "New England Patriots", "New Orleans Saints", "New York Giants", "New York Jets",
    "Philadelphia Eagles", "Pittsburgh Steelers", "San Francisco 49ers", "Seattle Seahawks",
    "Tampa Bay Buccaneers", "Tennessee Titans", "Washington Commanders",
)
_NBA_TEAMS = (
    "Atlanta Hawks", "Boston Celtics", "Brooklyn Nets", "Charlotte Hornets", "Chicago Bulls",
    "Cleveland Cavaliers", "Dallas Mavericks", "Denver Nuggets", "Detroit Pistons", "Golden State Warriors",
    "Houston Rockets", "Indiana Pacers", "Los Angeles Clippers", "Los Angeles Lakers", "Memphis Grizzlies",
    "Miami Heat", "Milwaukee Bucks", "Minnesota Timberwolves", "New Orleans Pelicans", "New York Knicks",
    "Oklahoma City Thunder", "Orlando Magic", "Philadelphia 76ers", "Phoenix Suns", "Portland Trail Blazers",
    "Sacramento Kings", "San Antonio Spurs", "Toronto Raptors", "Utah Jazz", "Washington Wizards",
)
_MLB_TEAMS = (
    "Arizona Diamondbacks", "Athletics", "Atlanta Braves", "Baltimore Orioles", "Boston Red Sox",
    "Chicago Cubs", "Chicago White Sox", "Cincinnati Reds", "Cleveland Guardians", "Colorado Rockies",
    "Detroit Tigers", "Houston Astros", "Kansas City Royals", "Los Angeles Angels", "Los Angeles Dodgers",
    "Miami Marlins", "Milwaukee Brewers", "Minnesota Twins", "New York Mets", "New York Yankees",
    "Philadelphia Phillies", "Pittsburgh Pirates", "San Diego Padres", "San Francisco Giants",
    "Seattle Mariners", "St. Louis Cardinals", "Tampa Bay Rays", "Texas Rangers", "Toronto Blue Jays",
    "Washington Nationals",
)
_NHL_TEAMS = (
    "Anaheim Ducks", "Boston Bruins", "Buffalo Sabres", "Calgary Flames", "Carolina Hurricanes",
    "Chicago Blackhawks", "Colorado Avalanche", "Columbus Blue Jackets", "Dallas Stars", "Detroit Red Wings",
    "Edmonton Oilers", "Florida Panthers", "Los Angeles Kings", "Minnesota Wild", "Montréal Canadiens",
    "Nashville Predators", "New Jersey Devils", "New York Islanders", "New York Rangers", "Ottawa Senators",
    "Philadelphia Flyers", "Pittsburgh Penguins", "San Jose Sharks", "Seattle Kraken", "St Louis Blues",
    "Tampa Bay Lightning", "Toronto Maple Leafs", "Utah Mammoth", "Vancouver Canucks", "Vegas Golden Knights",
    "Washington Capitals", "Winnipeg Jets",
)

SPORTS: Final[Mapping[str, SportProfile]] = {
    p.key: p
    for p in (
        SportProfile(
            "americanfootball_nfl", _NFL_TEAMS, 13.5, 1.5, 6.5, 44.5, 4.5, 10.0, None, 3.25,
            ((3, 0.38), (7, 0.55), (6, 0.04), (2, 0.03)), True, 2.5, 1.0, 0.7,
            ((_PASS_YDS,), (_RUSH_YDS,), (_RECEPTIONS, _REC_YDS), (_RECEPTIONS, _REC_YDS)),
        ),
        SportProfile(
            "basketball_nba", _NBA_TEAMS, 12.5, 2.5, 6.5, 228.0, 7.0, 18.0, None, 2.5,
            ((2, 0.57), (3, 0.36), (1, 0.07)), False, 2.0, 1.5, 0.8,
            ((_POINTS, _REBOUNDS, _ASSISTS), (_POINTS, _REBOUNDS, _ASSISTS), (_POINTS, _REBOUNDS)),
        ),
        SportProfile(
            "baseball_mlb", _MLB_TEAMS, 4.4, 0.25, 1.0, 8.7, 0.8, 4.3, 1.5, 3.0,
            ((1, 0.5), (2, 0.28), (3, 0.14), (4, 0.08)), True, 0.25, 3.0, 2.0,
            ((_STRIKEOUTS,), (_TOTAL_BASES,), (_TOTAL_BASES,)),
        ),
        SportProfile(
            "icehockey_nhl", _NHL_TEAMS, 2.4, 0.2, 0.7, 6.2, 0.4, 2.4, 1.5, 2.6,
            ((1, 1.0),), True, 0.2, 1.5, 2.0,
            ((_NHL_POINTS, _SHOTS), (_NHL_POINTS, _SHOTS)),
        ),
    )
}
"""Supported ``sport_key`` values and their scoring models."""

_FIRST = (
    "Aaron", "Jalen", "Ja'Marr", "Amon-Ra", "Luka", "Nikola", "Tyreek", "Josh", "Shai", "Derrick",
    "Bijan", "Puka", "CeeDee", "De'Von", "Giannis", "Víctor", "Joel", "Trae", "Kyren", "Brock",
    "Saquon", "Lamar", "Jayson", "Tyrese", "Christian", "Marcus", "Jordan", "Malik", "Andrés", "Zion",
)
_LAST = (
    "Allen", "Jackson", "Dončić", "Jokić", "Hill", "Henry", "Robinson", "Nacua", "Lamb", "Brown",
    "Smith-Njigba", "St. Brown", "Williams", "Gilgeous-Alexander", "Purdy", "O'Neal", "Núñez", "Barkley",
    "Tatum", "Maxey", "McCaffrey", "Mahomes", "Love", "Herbert", "Wembanyama", "Embiid", "Young",
    "Müller", "Chase", "Antetokounmpo",
)


# --------------------------------------------------------------------------- config


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if type(value) is not int or not lo <= value <= hi:
        raise ConfigError(f"{name}: {value!r} must be an integer from {lo} to {hi}")


def _check_num(name: str, value: object, lo: float, hi: float, lo_open: bool = False) -> None:
    ok = type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > lo if lo_open else v >= lo) and v <= hi
    if not ok:
        low = f"above {lo:g}" if lo_open else f"from {lo:g}"
        raise ConfigError(f"{name}: {value!r} must be a number {low} to {hi:g}")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate; every field is validated and a bad one raises :class:`ConfigError` naming it.

    - ``events``: number of games (1-500); ``books``: how many of :data:`BOOKMAKERS` quote them
      (1-12, the sharp book first); ``hours``: length of the recording (up to two weeks);
      ``props``: add player props; ``seed``: any integer, the only source of randomness.
    - ``start_ms``: unix ms at which the recording starts; ``sport_key``: one of :data:`SPORTS`.
    - ``heartbeat_s``: a ``heartbeat`` envelope after this many idle seconds (1-30, as the
      vendor's ``heartbeat_s``); ``push_interval_ms``: rows written within one such window go
      out in one ``odds_update`` (the vendor's coalescing; 0 = one envelope per instant).
    - ``inplay_interval_s``: mean seconds between in-play re-quotes of a soft book (the sharp
      book re-quotes three times as often).
    - ``activity``: multiplies the rate of pre-game information arrivals; ``jump_rate``: news
      jumps per event per hour, far from kick-off (the rate rises up to 5x towards it).
    """

    events: int = 8
    books: int = 6
    hours: float = 24.0
    props: bool = False
    seed: int = 0
    start_ms: int = DEFAULT_START_MS
    sport_key: str = "americanfootball_nfl"
    heartbeat_s: int = 5
    push_interval_ms: int = 1000
    inplay_interval_s: float = 90.0
    activity: float = 1.0
    jump_rate: float = 0.02

    def __post_init__(self) -> None:
        _check_int("events", self.events, 1, _MAX_EVENTS)
        _check_int("books", self.books, 1, len(BOOKMAKERS))
        _check_num("hours", self.hours, 0.0, _MAX_HOURS, lo_open=True)
        if type(self.props) is not bool:
            raise ConfigError(f"props: {self.props!r} must be true or false")
        if type(self.seed) is not int:
            raise ConfigError(f"seed: {self.seed!r} must be an integer")
        _check_int("start_ms", self.start_ms, 0, _MAX_START_MS)
        if self.sport_key not in SPORTS:
            raise ConfigError(f"sport_key: {self.sport_key!r} must be one of {', '.join(sorted(SPORTS))}")
        _check_int("heartbeat_s", self.heartbeat_s, 1, 30)
        _check_int("push_interval_ms", self.push_interval_ms, 0, 60_000)
        _check_num("inplay_interval_s", self.inplay_interval_s, 1.0, 600.0)
        _check_num("activity", self.activity, 0.0, 100.0)
        _check_num("jump_rate", self.jump_rate, 0.0, 10.0)

    @property
    def end_ms(self) -> int:
        """Unix ms at which the recording ends."""
        return self.start_ms + round(self.hours * _HOUR)

    @property
    def bookmakers(self) -> tuple[BookProfile, ...]:
        """The books quoting, in order."""
        return BOOKMAKERS[: self.books]


# --------------------------------------------------------------------------- price helpers


def round_to_ladder(price: float, ladder: Ladder) -> int:
    """The nearest price on ``ladder`` (``-103.4`` on the 5-cent ladder is ``-105``).

    Even money comes out as ``+100``; the result is always a valid American price.
    """
    magnitude = abs(price)
    step = ladder[-1][1]
    for limit, band_step in ladder:
        if magnitude < limit:
            step = band_step
            break
    rounded = min(100_000, max(100, round(magnitude / step) * step))
    if rounded == 100:
        return 100
    return rounded if price > 0 else -rounded


def two_way_probs(p: float, overround: float) -> tuple[float, float]:
    """Implied probabilities of a two-way market with fair probability ``p`` and a given overround.

    Both sides are shifted by the same amount in log-odds, so the two implied probabilities
    sum to ``1 + overround`` and each stays below 1 however lopsided the market (the
    favourite-longshot shading books apply). Closed form of
    ``sigmoid(x + s) + sigmoid(-x + s) = 1 + v`` with ``x = logit(p)``.
    """
    a = p / (1.0 - p)
    v = overround
    b = a * a + 1.0
    u = (v * b + math.sqrt(v * v * b * b + 4.0 * a * a * (1.0 - v) * (1.0 + v))) / (2.0 * a * (1.0 - v))
    return u * a / (1.0 + u * a), u / (a + u)


def _price(q: float, ladder: Ladder) -> int:
    return round_to_ladder(prob_to_american(min(0.99, max(0.01, q))), ladder)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _clamp_p(p: float, lo: float = 0.005) -> float:
    return min(1.0 - lo, max(lo, p))


def _half(x: float, step: float = 0.5) -> float:
    return round(x / step) * step


def _line_value(x: float) -> float | int:
    """Lines as JSON numbers: integral ones as ints (``-3``), the others as floats (``-3.5``)."""
    return int(x) if float(x).is_integer() else x


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _derive_seed(seed: int, label: str) -> int:
    digest = hashlib.sha256(f"dropengine.sim.simulate/{seed}/{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


# --------------------------------------------------------------------------- event model


@dataclass(frozen=True, slots=True)
class _Snap:
    """The fair state of one event at time ``t`` (what the sharp book knows)."""

    t: int
    inplay: bool
    mu: float  # expected home margin (pre-game; frozen at kick-off)
    total: float  # expected total (pre-game; frozen at kick-off)
    diff: int  # in-play score, home minus away
    points: int  # in-play points scored
    sit_margin: float  # in-play situation: expected margin still to come beyond the average
    sit_total: float  # ... and expected extra points
    props: tuple[float, ...]  # prop means; negative = player ruled out
    jump: int  # news jumps so far


@dataclass(frozen=True, slots=True)
class _Prop:
    player: str
    home: bool
    market: PropMarket


@dataclass(slots=True)
class _PropQuote:
    line: float | None = None
    over: int | None = None
    under: int | None = None
    open: bool = False
    closed: bool = False
    as_of: int = -1


@dataclass(slots=True)
class _Book:
    profile: BookProfile
    index: int
    as_of: _Snap
    bias: list[float]  # logit shading of h2h, spread, total
    spread: float | None = None  # home line
    total: float | None = None
    quote: tuple[Any, ...] | None = None  # last game prices and lines written
    suspended: bool = False
    suspend_until: int = 0
    closed: bool = False
    inplay: bool = False
    seen_jump: int = 0
    reopen_at_least: _Snap | None = None  # the news a suspended book re-opens on
    props: list[_PropQuote] = field(default_factory=list)


# action kinds
_INFO, _NEWS, _PROP_INFO, _OWN, _CHECK, _SUSPEND, _REOPEN, _PROPS_OPEN, _PROP_CHECK = range(9)
_KICKOFF, _START_PLAY, _INPLAY_OPEN, _INPLAY_CHECK, _TICK, _SCORE, _END = range(9, 16)

_TICK_MS: Final = 10_000
_SIT_TAU_S: Final = 120.0  # the in-play situation mean-reverts over a couple of minutes
_SIT_KEEP: Final = math.exp(-_TICK_MS / 1000 / _SIT_TAU_S)
_SIT_NOISE: Final = math.sqrt(1.0 - _SIT_KEEP**2)
_INFO_RATE: Final = 0.1  # small information arrivals per event-hour, far from kick-off
_INFO_SIZE: Final = 0.025  # their s.d., as a share of the margin / total s.d.
_PROP_RATE: Final = 0.06  # per prop-hour
_OWN_RATE: Final = 0.02  # soft-book re-shading per book-event-hour
_RAMP: Final = 4.0  # rates rise to (1 + _RAMP) times at kick-off ...
_RAMP_H: Final = 4.0  # ... decaying with this many hours to go
_PROPS_OPEN_H: Final = (6.0, 10.0)  # props go up this many hours before kick-off


class _EventSim:
    """One game: its fair-value process and every book's quotes on it, in time order."""

    def __init__(self, cfg: SimConfig, index: int, home: str, away: str, commence: int, rng: random.Random) -> None:
        self.cfg = cfg
        self.sport = SPORTS[cfg.sport_key]
        self.index = index
        self.rng = rng
        self.event_id = f"{rng.getrandbits(128):032x}"
        self.home = home
        self.away = away
        self.commence = commence
        self.game_end = commence + round(self.sport.duration_h * _HOUR)
        self.commence_iso = _iso(commence)
        self.window_end = cfg.end_ms
        sp = self.sport
        self.props: list[_Prop] = []
        means: list[float] = []
        if cfg.props:
            used: set[str] = set()
            for is_home in (True, False):
                for markets in sp.roles:
                    name = self._player_name(used)
                    for market in markets:
                        self.props.append(_Prop(name, is_home, market))
                        means.append(rng.uniform(market.mean_lo, market.mean_hi))
        mu = rng.gauss(sp.home_edge, sp.edge_sd)
        total = rng.gauss(sp.total_mean, sp.total_spread)
        self.history: list[_Snap] = [_Snap(cfg.start_ms - _HOUR, False, mu, total, 0, 0, 0.0, 0.0, tuple(means), 0)]
        self.times: list[int] = [self.history[0].t]
        self.books: list[_Book] = []
        for i, profile in enumerate(cfg.bookmakers):
            bias = [0.0, 0.0, 0.0] if profile.sharp else [rng.gauss(0.0, 0.02) for _ in range(3)]
            self.books.append(
                _Book(profile, i, self.history[0], bias, props=[_PropQuote() for _ in self.props])
            )
        self.soft = [b for b in self.books if not b.profile.sharp]
        self._queue: list[tuple[int, int, int, tuple[Any, ...]]] = []
        self._seq = 0
        self._out: list[tuple[int, dict[str, Any]]] = []
        self._rows = 0
        self.initial: list[dict[str, Any]] = []
        self._setup()

    # ------------------------------------------------------------------ set-up

    def _player_name(self, used: set[str]) -> str:
        while True:
            name = f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"
            if name not in used:
                used.add(name)
                return name

    def _setup(self) -> None:
        cfg, rng = self.cfg, self.rng
        start = cfg.start_ms
        snap = self.history[0]
        for book in self.books:
            lu = start - rng.randrange(0, 30 * _MINUTE)
            self._requote(book, snap, lu, force=True)
        self.initial = [row for _, row in self._out]
        self._out.clear()
        if self.commence <= start:
            return
        prop_open = [self.commence - round(rng.uniform(*_PROPS_OPEN_H) * _HOUR) for _ in self.books]
        for book, t_open in zip(self.books, prop_open, strict=True):
            if not self.props or not book.profile.props:
                continue
            if t_open <= start:
                self._props_open(book, snap, start - rng.randrange(0, 30 * _MINUTE))
                self.initial.extend(row for _, row in self._out)
                self._out.clear()
            else:
                self._push(t_open, _PROPS_OPEN, book.index)
        self._schedule_poisson(start, _INFO)
        self._schedule_poisson(start, _NEWS)
        if self.props:
            self._schedule_poisson(start, _PROP_INFO)
        if self.soft:
            self._schedule_poisson(start, _OWN)
        for book in self.books:
            self._push(self.commence - rng.randrange(0, 2 * _MINUTE), _KICKOFF, book.index)
        self._push(self.commence, _START_PLAY)

    def _push(self, t: int, kind: int, *payload: Any) -> None:
        if t < self.window_end:
            self._seq += 1
            heapq.heappush(self._queue, (t, self._seq, kind, payload))

    def _base_rate(self, kind: int) -> float:
        """Events per hour of a pre-game Poisson process, before the kick-off ramp."""
        cfg = self.cfg
        if kind == _INFO:
            return _INFO_RATE * cfg.activity * self.sport.pregame_activity
        if kind == _NEWS:
            return cfg.jump_rate
        if kind == _PROP_INFO:
            return _PROP_RATE * cfg.activity * len(self.props)
        return _OWN_RATE * cfg.activity * len(self.soft)

    def _schedule_poisson(self, now: int, kind: int) -> None:
        """Next arrival of a process whose rate rises towards kick-off (thinning method)."""
        peak = self._base_rate(kind) * (1.0 + _RAMP)
        if peak <= 0.0:
            return
        t = float(now)
        while True:
            t += self.rng.expovariate(peak) * _HOUR
            if t >= self.commence or t >= self.window_end:
                return
            ramp = 1.0 + _RAMP * math.exp(-(self.commence - t) / (_RAMP_H * _HOUR))
            if self.rng.random() * (1.0 + _RAMP) <= ramp:
                self._push(round(t), kind)
                return

    # ------------------------------------------------------------------ fair value

    def _snap(self, t: int, **changes: Any) -> _Snap:
        snap = replace(self.history[-1], t=t, **changes)
        if t == self.times[-1]:
            self.history[-1] = snap
        else:
            self.history.append(snap)
            self.times.append(t)
        if len(self.history) > 4096:  # keep what the slowest lag can still look at
            keep = max(0, bisect_right(self.times, t - 2 * _HOUR) - 1)
            del self.history[:keep]
            del self.times[:keep]
        return snap

    def _seen(self, t: int) -> _Snap:
        """The newest fair state at or before ``t``."""
        i = bisect_right(self.times, t) - 1
        return self.history[max(i, 0)]

    def _fair(self, snap: _Snap) -> tuple[float, float, float, float]:
        """Expected margin, its s.d., expected total, its s.d., as seen at ``snap``."""
        sp = self.sport
        if not snap.inplay:
            return snap.mu, sp.margin_sd, snap.total, sp.total_sd
        rem = min(1.0, max(0.02, (self.game_end - snap.t) / (self.game_end - self.commence)))
        root = math.sqrt(rem)
        return (
            snap.diff + snap.mu * rem + snap.sit_margin, sp.margin_sd * root,
            snap.points + snap.total * rem + snap.sit_total, sp.total_sd * root,
        )

    # ------------------------------------------------------------------ quotes

    def _game_quote(self, book: _Book, snap: _Snap) -> tuple[Any, ...]:
        """``(home_ml, away_ml, home_line, home_price, away_price, total, over, under)``."""
        prof, sp = book.profile, self.sport
        e_margin, sd_m, e_total, sd_t = self._fair(snap)
        p_home = _NORMAL.cdf(e_margin / sd_m)
        home_ml, away_ml = self._pair(snap, p_home, book.bias[0], prof.vig_h2h, prof.ladder)
        # spread: the home line L covers when margin + L > 0
        if sp.fixed_spread is not None:
            fixed = sp.fixed_spread
            if book.spread is None or abs(p_home - 0.5) > 0.03:
                book.spread = -fixed if p_home >= 0.5 else fixed
        else:
            cover = _NORMAL.cdf((e_margin + book.spread) / sd_m) if book.spread is not None else 0.0
            if book.spread is None or abs(cover - 0.5) > prof.line_band:
                book.spread = _half(-e_margin) + 0.0
        line = book.spread
        cover = _NORMAL.cdf((e_margin + line) / sd_m)
        home_price, away_price = self._pair(snap, cover, book.bias[1], prof.vig_lines, prof.ladder)
        # total: over wins when total > K
        band = prof.line_band * sp.total_band
        over = 1.0 - _NORMAL.cdf((book.total - e_total) / sd_t) if book.total is not None else 0.0
        if book.total is None or abs(over - 0.5) > band or book.total <= snap.points:
            book.total = max(_half(e_total), snap.points + 0.5)
        over = 1.0 - _NORMAL.cdf((book.total - e_total) / sd_t)
        over_price, under_price = self._pair(snap, over, book.bias[2], prof.vig_lines, prof.ladder)
        return home_ml, away_ml, line, home_price, away_price, book.total, over_price, under_price

    @staticmethod
    def _pair(snap: _Snap, p: float, bias: float, vig: float, ladder: Ladder) -> tuple[int | None, int | None]:
        """Both prices of a two-way market; in play, off the board (null) once a side is beyond 99%."""
        if snap.inplay and not 0.01 < p < 0.99:
            return None, None
        q1, q2 = two_way_probs(_sigmoid(_logit(_clamp_p(p, 0.01)) + bias), vig)
        return _price(q1, ladder), _price(q2, ladder)

    def _game_row(self, book: _Book, t: int, quote: tuple[Any, ...] | None) -> dict[str, Any]:
        """A full vendor game row; ``quote=None`` suspends (null prices, lines kept)."""
        q = quote if quote is not None else book.quote
        assert q is not None
        prices = quote is not None
        line, total = q[2], q[5]
        return {
            "kind": "game", "event_id": self.event_id, "bookmaker": book.profile.key,
            "home_team": self.home, "away_team": self.away, "commence_time": self.commence_iso,
            "last_update": t,
            "home_ml": q[0] if prices else None, "away_ml": q[1] if prices else None,
            "home_spread": _line_value(line), "away_spread": _line_value(-line + 0.0),
            "home_spread_price": q[3] if prices else None, "away_spread_price": q[4] if prices else None,
            "total": _line_value(total),
            "over_price": q[6] if prices else None, "under_price": q[7] if prices else None,
        }

    def _emit(self, t: int, row: dict[str, Any]) -> None:
        self._out.append((t, row))

    def _requote(self, book: _Book, snap: _Snap, t: int, force: bool = False) -> None:
        """Re-price the game row; write it when a line moved or a price moved by ``min_move``."""
        quote = self._game_quote(book, snap)
        old = book.quote
        book.as_of = snap
        if not force and old is not None and not book.suspended and quote[2] == old[2] and quote[5] == old[5]:
            moved = 0.0
            for i in (0, 1, 3, 4, 6, 7):
                a, b = old[i], quote[i]
                if a is None or b is None:
                    moved = math.inf if a is not b else moved
                else:
                    moved = max(moved, abs(cents(a) - cents(b)))
            if moved < book.profile.min_move:
                return
        book.quote = quote
        book.suspended = False
        self._emit(t, self._game_row(book, t, quote))

    def _suspend(self, book: _Book, t: int, until: int) -> None:
        book.suspend_until = max(book.suspend_until, until)
        if book.suspended or book.closed or book.quote is None:
            return
        book.suspended = True
        self._emit(t, self._game_row(book, t, None))

    # props

    def _prop_row(self, book: _Book, i: int, t: int, pq: _PropQuote, prices: bool) -> dict[str, Any]:
        prop = self.props[i]
        assert pq.line is not None
        return {
            "kind": "prop", "event_id": self.event_id, "bookmaker": book.profile.key,
            "home_team": self.home, "away_team": self.away, "commence_time": self.commence_iso,
            "player": prop.player, "market_key": prop.market.key, "market": prop.market.label,
            "line": _line_value(pq.line), "over_price": pq.over if prices else None,
            "under_price": pq.under if prices else None, "last_update": t,
        }

    def _prop_quote(self, book: _Book, i: int, snap: _Snap, t: int, force: bool = False) -> None:
        pq = book.props[i]
        if not pq.open or pq.closed or snap.t < pq.as_of:
            return  # not offered, or a slower look at older news than the book already has
        pq.as_of = snap.t
        mean = snap.props[i]
        if mean < 0:  # ruled out: suspend and pull
            pq.closed = True
            self._emit(t, self._prop_row(book, i, t, pq, prices=False))
            return
        market = self.props[i].market
        sd = max(market.sd_min, market.sd_frac * mean)
        line = pq.line
        over = 1.0 - _NORMAL.cdf((line - mean) / sd) if line is not None else 0.0
        if line is None or abs(over - 0.5) > 0.06:
            line = math.floor(mean) + 0.5
            over = 1.0 - _NORMAL.cdf((line - mean) / sd)
        qo, qu = two_way_probs(_clamp_p(over, 0.03), book.profile.vig_props)
        po, pu = _price(qo, book.profile.ladder), _price(qu, book.profile.ladder)
        if not force and line == pq.line and pq.over is not None and pq.under is not None:
            moved = max(abs(cents(po) - cents(pq.over)), abs(cents(pu) - cents(pq.under)))
            if moved < book.profile.min_move:
                return
        pq.line, pq.over, pq.under = line, po, pu
        self._emit(t, self._prop_row(book, i, t, pq, prices=True))

    def _props_open(self, book: _Book, snap: _Snap, t: int) -> None:
        for i, pq in enumerate(book.props):
            if snap.props[i] >= 0:
                pq.open = True
                self._prop_quote(book, i, snap, t, force=True)

    def _props_pull(self, book: _Book, t: int) -> None:
        for i, pq in enumerate(book.props):
            if pq.open and not pq.closed:
                pq.closed = True
                self._emit(t, self._prop_row(book, i, t, pq, prices=False))

    # ------------------------------------------------------------------ timing

    def _lag(self, book: _Book, inplay: bool) -> int:
        """How long after the sharp book this book reflects a change (ms)."""
        rng = self.rng
        if book.profile.sharp:
            return round(rng.uniform(0.3, 3.0) * 1000)
        median = book.profile.lag_s / 10.0 if inplay else book.profile.lag_s
        return round(max(2.0, median * rng.lognormvariate(0.0, 0.6)) * 1000)

    def _react(self, snap: _Snap, t: int, kind: int, *payload: Any) -> None:
        """Every book looks at ``snap`` after its own lag (the sharp one within seconds)."""
        for book in self.books:
            self._push(t + self._lag(book, False), kind, book.index, snap, *payload)

    # ------------------------------------------------------------------ the loop

    def updates(self) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
        """Rows after the initial state: ``(last_update, event index, sequence, row)`` in time order."""
        queue = self._queue
        while queue:
            t, _, kind, payload = heapq.heappop(queue)
            self._act(t, kind, payload)
            for when, row in self._out:
                self._rows += 1
                yield when, self.index, self._rows, row
            self._out.clear()

    def _act(self, t: int, kind: int, payload: tuple[Any, ...]) -> None:
        rng, sp = self.rng, self.sport
        if kind == _INFO:
            last = self.history[-1]
            r = rng.random()
            mu = last.mu + (rng.gauss(0.0, _INFO_SIZE * sp.margin_sd) if r < 0.55 else 0.0)
            total = last.total + (rng.gauss(0.0, _INFO_SIZE * sp.total_sd) if r >= 0.45 else 0.0)
            self._react(self._snap(t, mu=mu, total=total), t, _CHECK)
            self._schedule_poisson(t, _INFO)
        elif kind == _NEWS:
            self._news(t)
            self._schedule_poisson(t, _NEWS)
        elif kind == _PROP_INFO:
            last = self.history[-1]
            alive = [i for i, m in enumerate(last.props) if m >= 0]
            if alive:
                i = rng.choice(alive)
                market = self.props[i].market
                means = list(last.props)
                means[i] = max(0.1, means[i] + rng.gauss(0.0, 0.5 * max(market.sd_min, market.sd_frac * means[i])))
                self._react(self._snap(t, props=tuple(means)), t, _PROP_CHECK, i)
            self._schedule_poisson(t, _PROP_INFO)
        elif kind == _OWN:
            book = rng.choice(self.soft)
            m = rng.randrange(3)
            book.bias[m] = min(0.05, max(-0.05, 0.6 * book.bias[m] + rng.gauss(0.0, 0.04)))
            if not book.suspended and not book.inplay and not book.closed:
                self._requote(book, book.as_of, t)
            self._schedule_poisson(t, _OWN)
        elif kind == _CHECK:
            book, snap = self.books[payload[0]], payload[1]
            self._check(book, snap, t)
        elif kind == _SUSPEND:
            book = self.books[payload[0]]
            self._suspend(book, t, payload[1])
            self._push(payload[1], _REOPEN, book.index)
        elif kind == _REOPEN:
            book = self.books[payload[0]]
            if book.suspended and not book.closed and t >= book.suspend_until:
                snap = self._seen(t - self._lag(book, book.inplay))
                news = book.reopen_at_least
                if news is not None and news.t > snap.t and news.inplay == snap.inplay:
                    snap = news  # a book that suspended on news re-opens on it, however slow it is
                book.reopen_at_least = None
                if snap.inplay == book.inplay:
                    self._requote(book, snap, t, force=True)
        elif kind == _PROPS_OPEN:
            book = self.books[payload[0]]
            if not book.closed and not book.inplay:
                self._props_open(book, self._seen(t - self._lag(book, False)), t)
        elif kind == _PROP_CHECK:
            book, snap, i = self.books[payload[0]], payload[1], payload[2]
            if not book.inplay and not book.closed:
                self._prop_quote(book, i, snap, t)
        elif kind == _KICKOFF:
            book = self.books[payload[0]]
            self._suspend(book, t, self.window_end)  # pending pre-game re-opens no longer apply
            book.reopen_at_least = None
            self._props_pull(book, t)
            book.inplay = True
            if book.profile.inplay:
                self._push(self.commence + rng.randrange(1 * _MINUTE, 5 * _MINUTE), _INPLAY_OPEN, book.index)
            else:
                book.closed = True
        elif kind == _START_PLAY:
            self._snap(t, inplay=True, diff=0, points=0)
            self._push(t + _TICK_MS, _TICK)
            self._schedule_score(t)
            for book in self.books:
                self._push(self.game_end + rng.randrange(0, _MINUTE), _END, book.index)
        elif kind == _INPLAY_OPEN:
            book = self.books[payload[0]]
            if not book.closed:
                book.spread = book.total = None  # lines are re-set for the game state
                book.suspend_until = 0
                self._requote(book, self._seen(t - self._lag(book, True)), t, force=True)
                self._push(t + self._interval(book), _INPLAY_CHECK, book.index)
        elif kind == _INPLAY_CHECK:
            book = self.books[payload[0]]
            if not book.closed:
                if not book.suspended:
                    self._requote(book, self._seen(t - self._lag(book, True)), t)
                self._push(t + self._interval(book), _INPLAY_CHECK, book.index)
        elif kind == _TICK:
            if t < self.game_end:
                last = self.history[-1]
                sd = sp.situation * _SIT_NOISE
                self._snap(
                    t,
                    sit_margin=last.sit_margin * _SIT_KEEP + rng.gauss(0.0, sd),
                    sit_total=max(-last.points, last.sit_total * _SIT_KEEP + rng.gauss(0.0, sd)),
                )
                self._push(t + _TICK_MS, _TICK)
        elif kind == _SCORE:
            self._score(t)
        elif kind == _END:
            book = self.books[payload[0]]
            self._suspend(book, t, self.window_end)
            book.closed = True

    def _interval(self, book: _Book) -> int:
        mean = self.cfg.inplay_interval_s / (3.0 if book.profile.sharp else 1.0)
        return max(1000, round(mean * self.rng.uniform(0.5, 1.5) * 1000))

    def _check(self, book: _Book, snap: _Snap, t: int) -> None:
        """A pre-game book looks at the fair state ``snap`` (after its lag)."""
        if book.closed or book.inplay or snap.t < book.as_of.t:
            return
        if snap.jump <= book.seen_jump and self.rng.random() >= book.profile.follow:
            return  # this book lets the move pass for now
        if snap.jump > book.seen_jump:
            book.seen_jump = snap.jump
            if not book.profile.sharp and not book.suspended and self.rng.random() < 0.5:
                until = t + round(self.rng.uniform(30.0, 240.0) * 1000)
                self._suspend(book, t, until)
                book.reopen_at_least = snap
                self._push(until, _REOPEN, book.index)
                return
        if book.suspended:
            return
        self._requote(book, snap, t)

    def _news(self, t: int) -> None:
        """A news jump: the fair value moves a lot; the sharp book usually suspends first."""
        rng, sp = self.rng, self.sport
        last = self.history[-1]
        mu = last.mu + rng.gauss(0.0, 0.18 * sp.margin_sd)
        total = last.total + (rng.gauss(0.0, 0.1 * sp.total_sd) if rng.random() < 0.5 else 0.0)
        means = last.props
        injured: list[int] = []
        alive = sorted({self.props[i].player for i, m in enumerate(means) if m >= 0})
        if alive and rng.random() < 0.5:  # a player is ruled out: his side is weaker, his props go
            player = rng.choice(alive)
            injured = [i for i, p in enumerate(self.props) if p.player == player]
            home = self.props[injured[0]].home
            shift = abs(rng.gauss(0.0, 0.12 * sp.margin_sd))
            mu += -shift if home else shift
            means = tuple(-1.0 if i in injured else m for i, m in enumerate(means))
        snap = self._snap(t, mu=mu, total=total, props=means, jump=last.jump + 1)
        for book in self.books:
            lag = self._lag(book, False)
            if book.profile.sharp and rng.random() < 0.85:
                until = t + lag + round(rng.uniform(20.0, 120.0) * 1000)
                book.seen_jump = snap.jump
                self._push(t + lag, _SUSPEND, book.index, until)
            else:
                self._push(t + lag, _CHECK, book.index, snap)
            for i in injured:
                self._push(t + lag, _PROP_CHECK, book.index, snap, i)

    def _schedule_score(self, now: int) -> None:
        sp = self.sport
        mean_value = sum(v * w for v, w in sp.scores) / sum(w for _, w in sp.scores)
        total = max(self.history[-1].total, 1.0)
        per_ms = total / mean_value / (self.game_end - self.commence)
        t = now + round(self.rng.expovariate(per_ms))
        if t < self.game_end:
            self._push(t, _SCORE)

    def _score(self, t: int) -> None:
        rng, sp = self.rng, self.sport
        last = self.history[-1]
        value = rng.choices([v for v, _ in sp.scores], [w for _, w in sp.scores])[0]
        p_home = min(0.9, max(0.1, 0.5 + last.mu / (2.0 * max(last.total, 1.0))))
        home = rng.random() < p_home
        self._snap(
            t, diff=last.diff + (value if home else -value), points=last.points + value, sit_margin=0.0, sit_total=0.0
        )
        if sp.suspend_on_score:
            for book in self.books:
                if book.closed or not book.inplay or book.quote is None:
                    continue
                lag = self._lag(book, True)
                hold = rng.uniform(10.0, 40.0) if book.profile.sharp else rng.uniform(20.0, 90.0)
                self._push(t + lag, _SUSPEND, book.index, t + lag + round(hold * 1000))
        self._schedule_score(t)


# --------------------------------------------------------------------------- the feed


def _schedule(cfg: SimConfig, rng: random.Random) -> list[tuple[str, str, int]]:
    """``(home, away, commence_ms)`` per event: kick-offs bunched in a few slots in the window.

    Every fifth event (from the fifth on) starts after the recording ends, so it is only
    seen before the game, as in a real feed that carries next week's games too.
    """
    teams = list(SPORTS[cfg.sport_key].teams)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < cfg.events:
        rng.shuffle(teams)
        pairs.extend((teams[i], teams[i + 1]) for i in range(0, len(teams) - 1, 2))
    span = cfg.end_ms - cfg.start_ms
    step = 5 * _MINUTE

    def on_the_clock(t: float) -> int:  # kick-offs fall on whole five minutes, after the start
        return max(math.ceil((cfg.start_ms + 1) / step), round(t / step)) * step

    n_slots = max(1, min(4, math.ceil(cfg.events / 4)))
    slots = sorted(on_the_clock(cfg.start_ms + span * rng.uniform(0.3, 0.75)) for _ in range(n_slots))
    out = []
    for i in range(cfg.events):
        later = on_the_clock(cfg.end_ms + rng.uniform(2.0, 72.0) * _HOUR)
        out.append((pairs[i][0], pairs[i][1], later if i % 5 == 4 else slots[i % n_slots]))
    return out


def _events(cfg: SimConfig) -> list[_EventSim]:
    rng = random.Random(_derive_seed(cfg.seed, "schedule"))
    return [
        _EventSim(cfg, i, home, away, commence, random.Random(_derive_seed(cfg.seed, f"event/{i}")))
        for i, (home, away, commence) in enumerate(_schedule(cfg, rng))
    ]


def simulate_envelopes(cfg: SimConfig) -> Iterator[dict[str, Any]]:
    """The simulated stream: ``connected``, ``hot_feed_status``, ``initial_state``, then
    ``odds_update`` and ``heartbeat`` envelopes in time order until ``cfg.end_ms``.

    Rows are full vendor rows (SPEC section 5; no ``_diff``): game rows carry every price
    and line field, a suspension is a row whose prices are null. Lazy: events are simulated
    as the stream is consumed, so memory does not grow with ``hours``.
    """
    sims = _events(cfg)
    sport = cfg.sport_key
    start = cfg.start_ms
    yield {
        "type": "connected", "sport_key": sport, "tier": "business", "min_push_interval_s": cfg.push_interval_ms / 1000,
        "push_mode": "coalesced" if cfg.push_interval_ms else "raw", "diff_mode": False, "filters": {},
        "timestamp": start // 1000,
        "note": f"simulated by dropengine.sim.simulate (seed {cfg.seed}, {cfg.events} events, {cfg.books} books)",
    }
    initial = [row for sim in sims for row in sim.initial]
    latest: dict[str, int] = {}
    for row in initial:
        latest[row["bookmaker"]] = max(latest.get(row["bookmaker"], 0), row["last_update"])
    yield {
        "type": "hot_feed_status", "sport_key": sport,
        "sources": [
            {"bookmaker": b.key, "latest_ms": latest[b.key], "age_s": round((start - latest[b.key]) / 1000, 3),
             "rows_60s": sum(1 for r in initial if r["bookmaker"] == b.key and r["last_update"] >= start - _MINUTE)}
            for b in cfg.bookmakers if b.key in latest
        ],
        "timestamp": start,
    }
    yield {"type": "initial_state", "sport_key": sport, "timestamp": start, "count": len(initial), "data": initial}
    beat = cfg.heartbeat_s * 1000
    push = cfg.push_interval_ms
    last_frame = start
    end = cfg.end_ms

    def beats(until: int) -> Iterator[dict[str, Any]]:
        nonlocal last_frame
        while last_frame + beat < until:
            last_frame += beat
            yield {"type": "heartbeat", "sport_key": sport, "timestamp": last_frame}

    merged = heapq.merge(*(sim.updates() for sim in sims), key=lambda item: item[:3])
    batch: list[dict[str, Any]] = []
    window = -1
    for t, _, _, row in merged:
        w = t // push if push else t
        if w != window and batch:
            yield from _flush(batch, sport, push, beats)
            last_frame = _frame_time(batch, push)
            batch = []
        window = w
        batch.append(row)
    if batch:
        yield from _flush(batch, sport, push, beats)
        last_frame = _frame_time(batch, push)
    yield from beats(end + 1)


def _frame_time(batch: list[dict[str, Any]], push: int) -> int:
    """When the server pushes a batch: the end of its coalescing window."""
    t: int = batch[-1]["last_update"]
    return (t // push + 1) * push if push else t


def _flush(
    batch: list[dict[str, Any]], sport: str, push: int, beats: Any
) -> Iterator[dict[str, Any]]:
    ts = _frame_time(batch, push)
    yield from beats(ts)
    yield {
        "type": "odds_update", "sport_key": sport, "timestamp": ts, "count": len(batch),
        "coalesced": len({r["last_update"] for r in batch}) > 1, "data": list(batch),
    }


def quote_rows_from_envelopes(envelopes: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """SPEC section 2 quote rows (keys :data:`QUOTE_COLUMNS`) of a stream of vendor envelopes.

    Decoded by :class:`~dropengine.formats.frames.FrameDecoder`, exactly as a replay of the frames
    would, so a quote table and the frames it came from give the same alerts. Raises
    :class:`ConfigError` if an envelope does not decode cleanly (never the case for
    simulated ones).
    """
    decoder = FrameDecoder()
    skips = SkipLog()
    for envelope in envelopes:
        quotes = decoder.feed(envelope, skips)
        if skips.total:
            raise ConfigError(f"envelopes: a row did not decode: {skips.first[0]}")
        for q in quotes:
            yield _quote_row(q)


def _quote_row(q: Quote) -> dict[str, Any]:
    return {
        "sport_key": q.sport_key, "event_id": q.event_id, "bookmaker": q.bookmaker, "side": q.side,
        "price": q.price, "last_update": q.last_update, "kind": q.kind, "market_key": q.market_key,
        "market": q.market, "player": q.player, "line": q.line, "home_team": q.home_team,
        "away_team": q.away_team, "commence_time": q.commence_time,
    }


def simulate_quote_rows(cfg: SimConfig) -> Iterator[dict[str, Any]]:
    """The same simulation as :func:`simulate_envelopes`, as SPEC section 2 quote rows.

    One row per price field of every vendor row (a null price is a suspended quote), in
    stream order; keys are :data:`QUOTE_COLUMNS`.
    """
    return quote_rows_from_envelopes(simulate_envelopes(cfg))
