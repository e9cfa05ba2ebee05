"""The price process of one game: its fair value, and every book's quotes on it, in time order.

An :class:`EventSim` is a discrete-event simulation: a heap of timed actions (information
arrivals, news jumps, books looking at the fair value after their lag, suspensions, kick-off,
in-play ticks and scores) that each change the fair state (a :class:`Snap`) or re-price a
book; the rows written go out through :meth:`EventSim.updates`. One ``random.Random`` per
event drives it, so the order in which actions draw from it is part of the output: any
change here changes the simulated recordings.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any, Final

from ..core.odds import cents
from .config import SimConfig
from .pricing import clamp_p, half, logit, price_on_ladder, sigmoid, two_way_probs
from .profiles import (
    FIRST_NAMES,
    HOUR_MS,
    INFO_RATE,
    INFO_SIZE,
    LAST_NAMES,
    MINUTE_MS,
    OWN_RATE,
    PROP_RATE,
    PROPS_OPEN_H,
    RAMP,
    RAMP_H,
    SIT_TAU_S,
    SPORTS,
    TICK_MS,
    BookProfile,
    Ladder,
    PropMarket,
)
from .rows import event_meta, game_row, prop_row

__all__ = ["EventSim", "Snap"]

_NORMAL: Final = NormalDist()


@dataclass(frozen=True, slots=True)
class Snap:
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
    as_of: Snap
    bias: list[float]  # logit shading of h2h, spread, total
    shade: list[float] = field(default_factory=lambda: [0.0, 0.0])  # own offset of the spread, total (points)
    spread: float | None = None  # home line
    total: float | None = None
    quote: tuple[Any, ...] | None = None  # last game prices and lines written
    suspended: bool = False
    suspend_until: int = 0
    closed: bool = False
    inplay: bool = False
    seen_jump: int = 0
    reopen_at_least: Snap | None = None  # the news a suspended book re-opens on
    props: list[_PropQuote] = field(default_factory=list)


# action kinds
_INFO, _NEWS, _PROP_INFO, _OWN, _CHECK, _SUSPEND, _REOPEN, _PROPS_OPEN, _PROP_CHECK = range(9)
_KICKOFF, _START_PLAY, _INPLAY_OPEN, _INPLAY_CHECK, _TICK, _SCORE, _END, _OWN_LINE = range(9, 17)

# per in-play tick, the situation keeps this share of itself and gets this much new noise
_SIT_KEEP: Final = math.exp(-TICK_MS / 1000 / SIT_TAU_S)
_SIT_NOISE: Final = math.sqrt(1.0 - _SIT_KEEP**2)


class EventSim:
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
        self.game_end = commence + round(self.sport.duration_h * HOUR_MS)
        self.meta = event_meta(home, away, commence)
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
        self.history: list[Snap] = [Snap(cfg.start_ms - HOUR_MS, False, mu, total, 0, 0, 0.0, 0.0, tuple(means), 0)]
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
            name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
            if name not in used:
                used.add(name)
                return name

    def _setup(self) -> None:
        cfg, rng = self.cfg, self.rng
        start = cfg.start_ms
        snap = self.history[0]
        for book in self.books:
            lu = start - rng.randrange(0, 30 * MINUTE_MS)
            self._requote(book, snap, lu, force=True)
        self.initial = [row for _, row in self._out]
        self._out.clear()
        if self.commence <= start:
            return
        prop_open = [self.commence - round(rng.uniform(*PROPS_OPEN_H) * HOUR_MS) for _ in self.books]
        for book, t_open in zip(self.books, prop_open, strict=True):
            if not self.props or not book.profile.props:
                continue
            if t_open <= start:
                self._props_open(book, snap, start - rng.randrange(0, 30 * MINUTE_MS))
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
            self._schedule_poisson(start, _OWN_LINE)  # no draw at all at the default rate 0
        for book in self.books:
            self._push(self.commence - rng.randrange(0, 2 * MINUTE_MS), _KICKOFF, book.index)
        self._push(self.commence, _START_PLAY)

    def _push(self, t: int, kind: int, *payload: Any) -> None:
        if t < self.window_end:
            self._seq += 1
            heapq.heappush(self._queue, (t, self._seq, kind, payload))

    def _base_rate(self, kind: int) -> float:
        """Events per hour of a pre-game Poisson process, before the kick-off ramp."""
        cfg = self.cfg
        if kind == _INFO:
            return INFO_RATE * cfg.activity * self.sport.pregame_activity
        if kind == _NEWS:
            return cfg.jump_rate
        if kind == _PROP_INFO:
            return PROP_RATE * cfg.activity * len(self.props)
        if kind == _OWN_LINE:
            return cfg.line_moves * len(self.soft)
        return OWN_RATE * cfg.activity * len(self.soft)

    def _schedule_poisson(self, now: int, kind: int) -> None:
        """Next arrival of a process whose rate rises towards kick-off (thinning method)."""
        peak = self._base_rate(kind) * (1.0 + RAMP)
        if peak <= 0.0:
            return
        t = float(now)
        while True:
            t += self.rng.expovariate(peak) * HOUR_MS
            if t >= self.commence or t >= self.window_end:
                return
            ramp = 1.0 + RAMP * math.exp(-(self.commence - t) / (RAMP_H * HOUR_MS))
            if self.rng.random() * (1.0 + RAMP) <= ramp:
                self._push(round(t), kind)
                return

    # ------------------------------------------------------------------ fair value

    def _snap(self, t: int, **changes: Any) -> Snap:
        snap = replace(self.history[-1], t=t, **changes)
        if t == self.times[-1]:
            self.history[-1] = snap
        else:
            self.history.append(snap)
            self.times.append(t)
        if len(self.history) > 4096:  # keep what the slowest lag can still look at
            keep = max(0, bisect_right(self.times, t - 2 * HOUR_MS) - 1)
            del self.history[:keep]
            del self.times[:keep]
        return snap

    def _seen(self, t: int) -> Snap:
        """The newest fair state at or before ``t``."""
        i = bisect_right(self.times, t) - 1
        return self.history[max(i, 0)]

    def _fair(self, snap: Snap) -> tuple[float, float, float, float]:
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

    def _game_quote(self, book: _Book, snap: Snap) -> tuple[Any, ...]:
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
            # the book's line sits book.shade[0] points off the market's (0 unless it shades it)
            cover = _NORMAL.cdf((e_margin + book.spread - book.shade[0]) / sd_m) if book.spread is not None else 0.0
            if book.spread is None or abs(cover - 0.5) > prof.line_band:
                book.spread = half(-e_margin + book.shade[0]) + 0.0
        line = book.spread
        cover = _NORMAL.cdf((e_margin + line) / sd_m)
        home_price, away_price = self._pair(snap, cover, book.bias[1], prof.vig_lines, prof.ladder)
        # total: over wins when total > K
        band = prof.line_band * sp.total_band
        over = 1.0 - _NORMAL.cdf((book.total - book.shade[1] - e_total) / sd_t) if book.total is not None else 0.0
        if book.total is None or abs(over - 0.5) > band or book.total <= snap.points:
            book.total = max(half(e_total + book.shade[1]), snap.points + 0.5)
        over = 1.0 - _NORMAL.cdf((book.total - e_total) / sd_t)
        over_price, under_price = self._pair(snap, over, book.bias[2], prof.vig_lines, prof.ladder)
        return home_ml, away_ml, line, home_price, away_price, book.total, over_price, under_price

    @staticmethod
    def _pair(snap: Snap, p: float, bias: float, vig: float, ladder: Ladder) -> tuple[int | None, int | None]:
        """Both prices of a two-way market; in play, off the board (null) once a side is beyond 99%."""
        if snap.inplay and not 0.01 < p < 0.99:
            return None, None
        q1, q2 = two_way_probs(sigmoid(logit(clamp_p(p, 0.01)) + bias), vig)
        return price_on_ladder(q1, ladder), price_on_ladder(q2, ladder)

    def _game_row(self, book: _Book, t: int, quote: tuple[Any, ...] | None) -> dict[str, Any]:
        """A full vendor game row; ``quote=None`` suspends (null prices, lines kept)."""
        q = quote if quote is not None else book.quote
        assert q is not None
        return game_row(self.event_id, book.profile.key, self.meta, t, q, prices=quote is not None,
                        line_prices=book.profile.key not in self.cfg.line_only)

    def _emit(self, t: int, row: dict[str, Any]) -> None:
        self._out.append((t, row))

    def _requote(self, book: _Book, snap: Snap, t: int, force: bool = False) -> None:
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
        return prop_row(self.event_id, book.profile.key, self.meta, prop.player, prop.market.key, prop.market.label,
                        pq.line, pq.over if prices else None, pq.under if prices else None, t)

    def _prop_quote(self, book: _Book, i: int, snap: Snap, t: int, force: bool = False) -> None:
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
        qo, qu = two_way_probs(clamp_p(over, 0.03), book.profile.vig_props)
        po, pu = price_on_ladder(qo, book.profile.ladder), price_on_ladder(qu, book.profile.ladder)
        if not force and line == pq.line and pq.over is not None and pq.under is not None:
            moved = max(abs(cents(po) - cents(pq.over)), abs(cents(pu) - cents(pq.under)))
            if moved < book.profile.min_move:
                return
        pq.line, pq.over, pq.under = line, po, pu
        self._emit(t, self._prop_row(book, i, t, pq, prices=True))

    def _props_open(self, book: _Book, snap: Snap, t: int) -> None:
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

    def _react(self, snap: Snap, t: int, kind: int, *payload: Any) -> None:
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
        """Carry out one action. One long dispatch on purpose: it is the whole event model at a
        glance, and each branch draws from ``self.rng`` in an order the recordings depend on
        (splitting it would invite reordering the draws, which changes every simulated file)."""
        rng, sp = self.rng, self.sport
        if kind == _INFO:
            last = self.history[-1]
            r = rng.random()
            mu = last.mu + (rng.gauss(0.0, INFO_SIZE * sp.margin_sd) if r < 0.55 else 0.0)
            total = last.total + (rng.gauss(0.0, INFO_SIZE * sp.total_sd) if r >= 0.45 else 0.0)
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
        elif kind == _OWN_LINE:  # a soft book moves one of its lines half a point on its own, or back
            book = rng.choice(self.soft)
            m = 1 if sp.fixed_spread is not None else rng.randrange(2)
            book.shade[m] = rng.choice([x for x in (-0.5, 0.0, 0.5) if x != book.shade[m]])
            if not book.suspended and not book.inplay and not book.closed:
                book.spread, book.total = (None, book.total) if m == 0 else (book.spread, None)
                self._requote(book, book.as_of, t)
            self._schedule_poisson(t, _OWN_LINE)
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
                self._push(self.commence + rng.randrange(1 * MINUTE_MS, 5 * MINUTE_MS), _INPLAY_OPEN, book.index)
            else:
                book.closed = True
        elif kind == _START_PLAY:
            self._snap(t, inplay=True, diff=0, points=0)
            self._push(t + TICK_MS, _TICK)
            self._schedule_score(t)
            for book in self.books:
                self._push(self.game_end + rng.randrange(0, MINUTE_MS), _END, book.index)
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
                self._push(t + TICK_MS, _TICK)
        elif kind == _SCORE:
            self._score(t)
        elif kind == _END:
            book = self.books[payload[0]]
            self._suspend(book, t, self.window_end)
            book.closed = True

    def _interval(self, book: _Book) -> int:
        mean = self.cfg.inplay_interval_s / (3.0 if book.profile.sharp else 1.0)
        return max(1000, round(mean * self.rng.uniform(0.5, 1.5) * 1000))

    def _check(self, book: _Book, snap: Snap, t: int) -> None:
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

