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
- **Steam and own line moves.** Soft books follow the sharp book's moves within minutes of each
  other, so several of them move a line the same way together (steam, SPEC 11). With
  :attr:`SimConfig.line_moves` a soft book also moves one of its lines half a point on its own
  now and then (a line move no other book follows); :attr:`SimConfig.line_only` books write their
  spread and total lines without prices (SPEC 10 line-only books). Both are off by default, which
  keeps every recording of before byte for byte.
- **Suspensions.** Books suspend (null prices) after news jumps (the sharp book almost
  always, soft books often), around kick-off, after in-play scores, and at the end of the
  game; in play a market goes off the board (null prices) once a side is beyond 99%.
- **In play the feed thins:** only books that trade in play reopen after kick-off, props are
  pulled, and instead of following every change of the game state (every 10 s) each soft
  book re-quotes on its own cycle of about :attr:`SimConfig.inplay_interval_s` (the sharp book
  three times as often). Per key, in-play prices still change far more often than pre-game
  ones, as they do in the real recordings (``docs/simulator.md``).

Layout: :mod:`~dropengine.sim.profiles` holds the calibration data (books, sports, ladders,
props), :mod:`~dropengine.sim.config` the validated :class:`SimConfig`,
:mod:`~dropengine.sim.pricing` how a probability becomes a price on a book's ladder,
:mod:`~dropengine.sim.market` the price process of one game, :mod:`~dropengine.sim.rows` the
vendor rows its books write, :mod:`~dropengine.sim.feed` the merged stream on the vendor's
clock. This module is the public face of all of them.

Output: :func:`simulate_envelopes` yields the vendor's envelopes (SPEC section 5:
``connected``, ``hot_feed_status``, ``initial_state``, ``odds_update``, ``heartbeat``) with
full (not ``_diff``) rows; :func:`simulate_quote_rows` yields the same simulation as SPEC
section 2 quote rows, decoded by :class:`~dropengine.formats.frames.FrameDecoder` so both forms
replay to the same alerts.
"""

from __future__ import annotations

from .config import SimConfig
from .feed import quote_rows_from_envelopes, simulate_envelopes, simulate_quote_rows
from .pricing import round_to_ladder, two_way_probs
from .profiles import (
    BOOKMAKERS,
    CENT_LADDER,
    DEFAULT_START_MS,
    DIME_LADDER,
    NICKEL_LADDER,
    SPORTS,
    BookProfile,
    Ladder,
    PropMarket,
    SportProfile,
)

__all__ = [
    "BOOKMAKERS",
    "CENT_LADDER",
    "DEFAULT_START_MS",
    "DIME_LADDER",
    "NICKEL_LADDER",
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
