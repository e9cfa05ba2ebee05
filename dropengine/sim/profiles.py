"""Calibration data of the simulator: the books, the sports, their price ladders and player props.

Pure data (frozen dataclasses and tuples). The numbers are calibrated against real recordings
in ``docs/simulator.md``; :mod:`dropengine.sim.market` turns them into prices and
:class:`~dropengine.sim.config.SimConfig` picks from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BOOKMAKERS",
    "CENT_LADDER",
    "DEFAULT_START_MS",
    "DIME_LADDER",
    "FIRST_NAMES",
    "HOUR_MS",
    "INFO_RATE",
    "INFO_SIZE",
    "LAST_NAMES",
    "MINUTE_MS",
    "NICKEL_LADDER",
    "OWN_RATE",
    "PROPS_OPEN_H",
    "PROP_RATE",
    "RAMP",
    "RAMP_H",
    "SIT_TAU_S",
    "SPORTS",
    "TICK_MS",
    "BookProfile",
    "Ladder",
    "PropMarket",
    "SportProfile",
]

#: 2025-11-09T12:00:00Z, a Sunday morning of the NFL season.
DEFAULT_START_MS: Final = 1_762_689_600_000

Ladder = tuple[tuple[int, int], ...]
"""Price ladder: ``(upper bound of |price|, step)`` bands in increasing order."""

#: Sharp books and some US books: any cent near even money, coarser further out.
CENT_LADDER: Final[Ladder] = ((200, 1), (500, 5), (1000, 10), (2000, 25), (5000, 50), (100_000, 100))
#: 5-cent ladder (-105, -110, -115, ...), the usual soft-book ladder.
NICKEL_LADDER: Final[Ladder] = ((500, 5), (1000, 25), (2000, 50), (100_000, 100))
#: 10-cent ladder near even money (-110, -120, +110, ...).
DIME_LADDER: Final[Ladder] = ((500, 10), (1000, 25), (2000, 50), (100_000, 100))

#: Milliseconds per minute and per hour: the simulator's clock is unix ms.
MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000

# The market model's rates and clocks, the same for every sport (``SportProfile.pregame_activity``
# and ``SimConfig.activity`` scale the pre-game rates).
TICK_MS: Final = 10_000  # in play, the game situation moves every 10 s
SIT_TAU_S: Final = 120.0  # the in-play situation mean-reverts over a couple of minutes
INFO_RATE: Final = 0.1  # small information arrivals per event-hour, far from kick-off
INFO_SIZE: Final = 0.025  # their s.d., as a share of the margin / total s.d.
PROP_RATE: Final = 0.06  # per prop-hour
OWN_RATE: Final = 0.02  # soft-book re-shading per book-event-hour
RAMP: Final = 4.0  # rates rise to (1 + RAMP) times at kick-off ...
RAMP_H: Final = 4.0  # ... decaying with this many hours to go
PROPS_OPEN_H: Final = (6.0, 10.0)  # props go up this many hours before kick-off


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

FIRST_NAMES: Final = (
    "Aaron", "Jalen", "Ja'Marr", "Amon-Ra", "Luka", "Nikola", "Tyreek", "Josh", "Shai", "Derrick",
    "Bijan", "Puka", "CeeDee", "De'Von", "Giannis", "Víctor", "Joel", "Trae", "Kyren", "Brock",
    "Saquon", "Lamar", "Jayson", "Tyrese", "Christian", "Marcus", "Jordan", "Malik", "Andrés", "Zion",
)
LAST_NAMES: Final = (
    "Allen", "Jackson", "Dončić", "Jokić", "Hill", "Henry", "Robinson", "Nacua", "Lamb", "Brown",
    "Smith-Njigba", "St. Brown", "Williams", "Gilgeous-Alexander", "Purdy", "O'Neal", "Núñez", "Barkley",
    "Tatum", "Maxey", "McCaffrey", "Mahomes", "Love", "Herbert", "Wembanyama", "Embiid", "Young",
    "Müller", "Chase", "Antetokounmpo",
)
