"""The pure drop-detection state machine (SPEC section 3).

One :class:`DropEngine` holds, per key ``(event_id, bookmaker, side)``, the last price, when
that price was first seen, the newest accepted ``last_update`` and, for ``reference="anchor"``,
the anchor price. It performs no I/O and never reads a clock: source time arrives in
``Quote.last_update`` and the alert ``timestamp`` arrives as ``now_ms`` (or defaults to the
quote's ``last_update``), so replays are deterministic.

Rules, in the order the code applies them to each quote:
1. invalid price -> counted ``invalid``, key untouched;
2. ``last_update`` older than the key's newest -> counted ``stale``, ignored (equal is fine);
3. null price -> counted ``suspended``, key marked suspended;
4. first valid price of a key (or first after a suspension, by default) -> counted ``primed``;
5. same price as the stored one (``+100`` equals ``-100``) -> counted ``repeated``, only the
   key's newest time moves;
6. otherwise the move against the reference price (``last`` or ``anchor``) is measured in
   cents or implied-probability points; ``|move| >= threshold`` is a detection, and the
   direction and attribute filters decide whether it becomes an alert.

Every constant and decision is :mod:`.rules`' (validity, repeat, the written cents delta, the
probability move, the threshold with its tolerance, direction); the hot loop inlines their
formulas, each marked with the function it is, and a test holds it equal to a model written
with those functions. The settings are one :class:`~.options.DetectOptions`.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Annotated, Any, Final, Unpack

import msgspec

from .alerts import Alert, Drop, LineMove, SteamBook
from .errors import ConfigError, SnapshotError, short_repr
from .filters import DirectionChoice
from .keystate import (
    _ALINE,
    _ALSINCE,
    _ANCP,
    _CURP,
    _LINE,
    _LINE_CODEC,
    _LNEWEST,
    _LSINCE,
    _LSUSP,
    _PRICE,
    _PRICE_CODEC,
    _SUSP,
    _Keys,
)
from .options import DetectOptions, FilterKeywords, Reference, Unit, leading, resolve
from .quote import MAX_MS, Quote, QuoteInfo, commence_ms
from .rules import (
    DELTA_DECIMALS,
    EXACT_STEPS,
    MAX_ABS_LINE,
    MAX_ABS_PRICE,
    MIN_ABS_PRICE,
    ROUNDING_MARGIN,
    crosses,
    is_valid_price,
    key_numbers_crossed,
    line_direction,
    line_points,
    line_side_of,
    series_line,
    threshold_floor,
    written_line,
)
from .steam import LINE_TAG, PRICE_TAG, Cooldown, SignalRouter, SteamTracker

__all__ = ["DropEngine", "EngineConfig", "EngineCounters"]

_SNAPSHOT_MAGIC: Final = b"DROPENG\x00"
_SNAPSHOT_VERSION: Final = 1
#: How many counters an engine keeps (EngineCounters' fields; 8 before issue 12).
_NCOUNTERS: Final = 16
# One int object per valid int price the fused path's observations store in a key's state (_detect):
# a repeated price, its common observation, compares with its key's stored price, which is then one of
# a few hundred shared objects (hot in the cache) instead of the int its decoder made when the price
# last moved (cold). Bounded by the valid prices (SPEC 3 rule 2: 100 <= |price| <= 100000, ~200k at
# most; a recording holds hundreds). Not for quotes (observe_many): +8.5% instructions on a stream
# of 200k keys moving at 40% of its quotes (state.py --callgrind wide), for none of them repeated.
_SHARED_PRICES: Final[dict[int, int]] = {}
_HEADER = struct.Struct(">8sH32s")

# The snapshot payload as the decoder checks it (in C, before any Python loop over the rows).
# Times fit msgpack and polars (non-negative Int64); the price rules are checked per row after.
_Time = Annotated[int, msgspec.Meta(ge=0, le=MAX_MS)]
_Name = Annotated[str, msgspec.Meta(min_length=1)]
_Price = int | float | None
_Row = tuple[_Name, _Name, _Name, _Price, _Time, _Time, bool, _Price, _Time]
_Line = int | float | None
# a line series: key, line, since, newest, suspended, anchor line, anchor since, price at the
# current line, price at the anchor line
_LineRow = tuple[_Name, _Name, _Name, _Line, _Time, _Time, bool, _Line, _Time, _Price, _Price]
_STEAM_BOOK = tuple[_Name, int, _Time, SteamBook]
#: One price of the fused frames path (:meth:`DropEngine._observe_prices`): key, price,
#: last_update, market_key, line, and the row's other fields; the path's own add its row
#: identity's state record and the key's entry in it (:data:`HeldObservation`, ``_Keys.hold``).
PriceObservation = tuple[tuple[str, str, str], int | float | None, int, str, float | None, QuoteInfo]
HeldObservation = tuple[tuple[str, str, str], int | float | None, int, str, float | None, QuoteInfo, list[Any], int]


class _NoItem:
    """No item is of this type: ``_detect``'s observation test when its items are not trusted."""


class _Payload(msgspec.Struct):
    config: dict[str, Any]
    counters: Annotated[list[_Time], msgspec.Meta(min_length=8, max_length=_NCOUNTERS)]
    state: list[_Row]
    # added in issue 10 without a version bump (optional: older snapshots have none)
    events: list[tuple[str, Annotated[int, msgspec.Meta(ge=-MAX_MS - 1, le=MAX_MS)] | None]] = []
    # added in issue 12 (optional: older snapshots hold no line series, cooldowns or steam)
    lines: list[_LineRow] = []
    cool: list[tuple[str, _Name, _Name, _Name, _Time]] = []
    steam: tuple[int, list[tuple[_Name, _Name, str, _Time | None, int, list[_STEAM_BOOK]]]] = (0, [])

# The key state (hot lists, packed cold keys) and the state lists' indexes: .keystate.



#: The engine's settings are the detection options (one type): the name stays for callers.
EngineConfig = DetectOptions


@dataclass(frozen=True, slots=True)
class EngineCounters:
    """What the engine has done with its input since it was created (or restored).

    ``seen`` counts every quote; ``primed`` ... ``detected`` are the price series' (SPEC 3),
    ``line_*`` the line series' (SPEC 10; a quote with a line is seen by both), ``cooled`` the
    alerts a cooldown suppressed (SPEC 12), ``steam`` the steams fired (SPEC 11), and
    ``alerts`` the alerts returned, of every type, after the filters.
    """

    seen: int = 0
    primed: int = 0
    stale: int = 0
    invalid: int = 0
    suspended: int = 0
    repeated: int = 0
    detected: int = 0
    alerts: int = 0
    # the signals of SPEC 10-12 (zero unless they are on)
    line_seen: int = 0
    line_primed: int = 0
    line_stale: int = 0
    line_suspended: int = 0
    line_repeated: int = 0
    line_detected: int = 0
    cooled: int = 0
    steam: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check_steam_entry(book: str, last_update: int, entry: SteamBook) -> None:
    """Raise unless a restored steam group's counted move is one the engine could have written:
    its own book and time, and the fields of its type, each a valid price or line."""
    if entry.bookmaker != book or entry.last_update != last_update:
        raise ValueError(
            f"steam entry of {short_repr(book)}: names {short_repr(entry.bookmaker)} at {entry.last_update}"
        )
    if entry.type == "odds_drop":
        delta = entry.delta
        ok = (is_valid_price(entry.prev) and is_valid_price(entry.new) and delta is not None
              and type(delta) in (int, float) and math.isfinite(delta) and entry.prev_line is None
              and entry.new_line is None and entry.points is None)
    else:
        ok = (entry.prev is None and entry.new is None and entry.delta is None
              and all(type(v) in (int, float) and abs(v) <= 2 * MAX_ABS_LINE  # type: ignore[arg-type]
                      for v in (entry.prev_line, entry.new_line, entry.points)))
    if not ok:
        raise ValueError(f"steam entry of {short_repr(book)}: not the fields of a {entry.type}")


class DropEngine:
    """Streaming drop detector. Feed quotes in arrival order; get alerts back.

    >>> from dropengine import DropEngine, Quote
    >>> eng = DropEngine(threshold=10)
    >>> eng.observe(Quote("nba", "e1", "pinnacle", "h2h_home", -110, 1000))
    []
    >>> [d.delta for d in eng.observe(Quote("nba", "e1", "pinnacle", "h2h_home", -120, 2000))]
    [-10]
    """

    __slots__ = (
        "_cool", "_events", "_lines", "_n", "_nkeys", "_router", "_signals", "_state", "_steam", "config", "filter",
    )

    def __init__(
        self,
        threshold: float = 10,
        direction: DirectionChoice = "both",
        reference: Reference = "last",
        unit: Unit = "cents",
        *,
        options: DetectOptions | None = None,
        **keywords: Unpack[FilterKeywords],
    ) -> None:
        options = resolve(options, {**leading(threshold, direction, reference, unit), **keywords})
        #: The detection options (threshold, reference, unit, re-priming, and the filter).
        self.config: DetectOptions = options
        self.filter = options.filter
        # every price key's state (SPEC 3): see _Keys (hot ones as lists, the rest packed)
        self._state = _Keys(_PRICE_CODEC)
        # event_id -> commence time (unix ms, None when unparseable), from the first quote of
        # a new key that carried one; read only by evict(started_before_ms=...).
        self._events: dict[str, int | None] = {}
        # event_id -> how many keys of it are held: eviction forgets an event's start when its
        # last key goes without scanning every key (kept on key creation and deletion only)
        self._nkeys: dict[str, int] = {}
        # seen, primed, stale, invalid, suspended, repeated, detected, alerts, then the
        # signals' (EngineCounters' order)
        self._n = [0] * _NCOUNTERS
        # SPEC 10-12: line series (line_side keys), cooldowns, steam groups; used only when
        # the options ask for more than price drops (the default loop never looks at them)
        self._signals = options.signals
        self._lines = _Keys(_LINE_CODEC)
        self._cool = Cooldown(options.cooldown_ms)
        self._steam = SteamTracker(options.steam_books, options.steam_window_ms, options.steam_groups)
        self._router = SignalRouter(options, self._cool, self._steam)

    @classmethod
    def from_options(cls, options: DetectOptions) -> DropEngine:
        """An engine detecting with ``options`` (the one options type every entry point takes)."""
        return cls(options=options)

    @property
    def options(self) -> DetectOptions:
        """The detection options (the same object as :attr:`config`)."""
        return self.config

    # -- introspection -------------------------------------------------------------------
    @property
    def counters(self) -> EngineCounters:
        """A frozen copy of the counters."""
        return EngineCounters(*self._n)

    @property
    def keys_held(self) -> int:
        """How many ``(event_id, bookmaker, side)`` keys the engine holds state for."""
        return len(self._state)

    def __len__(self) -> int:
        return len(self._state)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"DropEngine(threshold={c.threshold!r}, direction={self.filter.direction!r}, "
            f"reference={c.reference!r}, unit={c.unit!r}, keys={len(self._state)})"
        )

    def price_of(self, event_id: str, bookmaker: str, side: str) -> int | float | None:
        """The stored price of a key (``None`` when unknown or suspended)."""
        st = self._state.peek((event_id, bookmaker, side))
        if st is None or st[_SUSP]:
            return None
        price: int | float | None = st[_PRICE]
        return price

    # -- detection -----------------------------------------------------------------------
    def observe(self, quote: Quote, now_ms: int | None = None) -> list[Alert]:
        """Apply one quote; return the alerts it raises (with the default options zero or one
        :class:`Drop`; with the signals on, in detection order: see :meth:`observe_many`)."""
        if type(quote) is not Quote and not isinstance(quote, Quote):
            raise ConfigError(f"quote: {short_repr(quote)} is not a Quote (build one with Quote(...))")
        if now_ms is not None and (type(now_ms) is not int or now_ms < 0):
            raise ConfigError(f"now_ms: {short_repr(now_ms)} must be a non-negative integer (unix ms) or None")
        return self._apply((quote,), now_ms)

    def observe_many(self, quotes: Iterable[Quote], now_ms: int | None = None) -> list[Alert]:
        """Apply quotes in order; return their alerts in detection order (for one quote: its
        price drop, a steam that completes, its line move, a steam that completes).

        ``now_ms`` stamps the alerts' ``timestamp`` (the time they were produced); without
        it each alert is stamped with its quote's ``last_update``.

        Anything in ``quotes`` that is not a :class:`Quote` raises :class:`ConfigError` naming
        its position; the quotes before it have been applied (and counted), those after not.
        """
        if now_ms is not None and (type(now_ms) is not int or now_ms < 0):
            raise ConfigError(f"now_ms: {short_repr(now_ms)} must be a non-negative integer (unix ms) or None")
        try:
            items = iter(quotes)
        except TypeError:
            raise ConfigError(f"quotes: {short_repr(quotes)} is not an iterable of Quote") from None
        return self._apply(items, now_ms)

    def _apply(self, items: Iterable[Quote], now_ms: int | None) -> list[Alert]:
        """Detection; the public methods have checked their arguments once per call."""
        if self._signals:
            return self._apply_signals(items, now_ms)
        return self._detect(items, now_ms, None)  # type: ignore[return-value]  # list is invariant

    def _observe_prices(
        self, items: Iterable[Quote | PriceObservation | HeldObservation], now_ms: int | None = None
    ) -> list[Drop]:
        """Apply the price observations of the fused frames path (:mod:`dropengine.formats`) in
        order: each a :class:`Quote` or a tuple ``(key, price, last_update, market_key, line, info)``
        standing for ``Quote(info.sport_key, *key, price, last_update, info.kind, market_key,
        info.market, info.player, line, info.home_team, info.away_team, info.commence_time)``
        (``info`` a :class:`~.quote.QuoteInfo`). It does exactly what :meth:`observe_many` does with
        those quotes, through the same detection loop, without building them.

        A tuple may end with a state record and an index, ``(..., info, rec, at)`` (the fused path's:
        its row identity's record and the key's entry, after the key): the loop keeps the key's hot
        state list at ``rec[at]`` and finds it there without a lookup while the record holds this engine's token
        (``_Keys.hold``), which costs a repeated price fewer cache misses; the list is kept there when
        the key is primed or warmed, so even a key's second price makes no lookup. It never changes
        what is detected.

        The tuples are trusted (their decoder built them from checked values): this is not a
        public way in. Only for an engine without signals (``options.signals`` false).
        """
        if self._signals:
            raise ConfigError("_observe_prices: only for an engine detecting price drops alone (no signals)")
        if now_ms is not None and (type(now_ms) is not int or now_ms < 0):
            raise ConfigError(f"now_ms: {short_repr(now_ms)} must be a non-negative integer (unix ms) or None")
        return self._detect(items, now_ms, None, True)

    def _detect(
        self,
        items: Iterable[Quote | PriceObservation | HeldObservation],
        now_ms: int | None,
        raw: list[tuple[int, Drop]] | None,
        trusted: bool = False,
    ) -> list[Drop]:
        """The price detection loop (SPEC 3), the one implementation of it. With ``raw`` (the
        signals' loop), every detection goes to ``raw`` with its quote's position, before the
        filter, and nothing is returned or counted as an alert. With ``trusted``
        (:meth:`_observe_prices`) an item may also be an observation tuple."""
        # Every constant and decision comes from .rules; the formulas are inlined (no call per
        # quote), each marked with the rules function it is. test_h11_rules_engine checks them.
        cfg = self.config
        threshold = threshold_floor(cfg.threshold)
        neg_threshold = -threshold
        # The bounds compared with an int move are ints (a specialised int comparison, no float
        # conversion per quote): for an int d, ``d >= threshold`` is ``d >= ceil(threshold)``, and
        # ``floor(near)`` only widens the test for rounding (a move between it and ``near`` is
        # decided exactly below, as every move past ``near`` is).
        near = math.floor(threshold - ROUNDING_MARGIN)  # within it, rules.round_delta could decide the crossing
        neg_near = -near
        int_threshold = math.ceil(threshold)
        neg_int_threshold = -int_threshold
        lo_price, hi_price = MIN_ABS_PRICE, MAX_ABS_PRICE
        neg_lo_price, neg_hi_price = -lo_price, -hi_price
        decimals, steps = DELTA_DECIMALS, EXACT_STEPS
        anchor = cfg.reference == "anchor"
        prob = cfg.unit == "prob"
        reprime = cfg.reprime_after_suspension
        flt = self.filter
        open_filter = flt.passes_all
        keys = self._state
        hot = keys.hot
        get = hot.get  # the hot keys' lists; the rest are warmed on their first quote
        warm = keys.warm
        hold = keys.hold
        token = keys.token
        share: Any = _SHARED_PRICES.setdefault  # (a price tested an int before each call)
        # the hot set's limit as a bound on n_primed: ``n_primed > full_at`` when ``len(hot) >
        # keys.cap`` (an int compare per new key, not a len() that makes an int). A key warmed
        # takes a place (``full_at -= 1``); a spill inside warm only makes room and a re-prime
        # counts in n_primed without a place, so n_primed may pass full_at early, never late:
        # past it the loop looks at the hot set itself, then computes full_at again (a spill is
        # decided by ``len(hot) > keys.cap`` alone, as _Keys.add decides it)
        full_at = keys.cap - len(hot)
        events = self._events
        nkeys = self._nkeys
        nkeys_get = nkeys.get
        n_seen = n_primed = n_stale = n_invalid = n_susp = n_rep = n_det = 0
        n_same = 0  # the observations' short path: each one seen and repeated (added to both at the end)
        q: Any  # a Quote, an observation tuple, then its QuoteInfo
        mk: str | None
        line: float | None
        out: list[Drop] = []
        append = out.append
        quote_type = Quote
        info_type = QuoteInfo
        # an observation tuple's type when trusted; otherwise a type no item has (one test per item)
        obs_type: Any = tuple if trusted else _NoItem
        try:
            for q in items:
                # A Quote is the common item and costs one type test, as before _observe_prices.
                # An observation's QuoteInfo takes the place of its quote (``q``: where an alert's
                # row fields come from), ``mk``/``line`` are the rest of it.
                if type(q) is quote_type:
                    price = q.price
                    lu = q.last_update
                    key = (q.event_id, q.bookmaker, q.side)
                    st = get(key)
                    rec = None
                elif type(q) is obs_type:
                    # With a state record (the fused path's row identity), the key's hot list is
                    # kept at rec[at], after the key, while the record has this state's token
                    # (_Keys.hold). A 6-tuple has none: told by its unpacking failing (a try costs
                    # nothing in the common case; a len() test cost ~12 ns per observation)
                    try:
                        key, price, lu, mk, line, q, rec, at = q
                    except ValueError:
                        key, price, lu, mk, line, q = q
                        st = get(key)
                        rec = None
                    else:
                        st = rec[at] if rec[0] is token and rec[at - 1] is key else None
                        if st is None:
                            st = get(key)
                            if st is not None:
                                hold(rec, at, key, st)
                    # The common observation of the fused path (a vendor row repeats its prices
                    # that did not move): rules.same_price (price == old) on a known key that is
                    # not suspended and not stale. Rules 1-4 cannot apply: a price equal to the
                    # key's valid one is valid, and the key is primed. So it is rule 5, as below.
                    if st is not None and price == st[0] and lu >= st[2] and not st[3]:
                        n_same += 1
                        st[2] = lu
                        continue
                elif isinstance(q, quote_type):
                    price = q.price
                    lu = q.last_update
                    key = (q.event_id, q.bookmaker, q.side)
                    st = get(key)
                    rec = None
                else:
                    raise ConfigError(
                        f"quotes[{n_seen + n_same}]: {short_repr(q)} is not a Quote"
                        f" (the {n_seen + n_same} quote(s) before it were applied)"
                    )
                n_seen += 1
                # rules.is_valid_price: its type first (a price is an int or a float far more often
                # than None: one test fewer per price), then |price| by sign (abs made a new int
                # per negative price)
                tp = type(price)
                if tp is int or tp is float:
                    if not (
                        (price >= lo_price and price <= hi_price) or (price <= neg_lo_price and price >= neg_hi_price)  # type: ignore[operator]  # an int or float here
                    ):
                        n_invalid += 1
                        continue
                elif price is not None:
                    n_invalid += 1
                    continue
                elif type(q) is not info_type and q.line_only:  # SPEC 10: no price published (line series only)
                    continue
                # a key that is not hot: warmed when it is cold (only while some key is; else it is
                # new without a look at the tree), or, when it is new, made hot at the state its
                # first quote makes (rule 4: primed at its price; rule 3: a null price, suspended),
                # as _Keys.add would: one store in the hot dict, a spill past the hot set's limit.
                if st is None:  # (one test for a hot key; the rest of this block only for the others)
                    if keys.ncold:
                        st = warm(key)
                        if st is not None:
                            full_at -= 1  # one more hot key
                            if rec is not None:  # kept in the record at once (warm never cools the key it warms)
                                hold(rec, at, key, st)
                    if st is None:
                        # a new key: count it, learn its event's start once (never on the per-update path)
                        eid = key[0]
                        nkeys[eid] = nkeys_get(eid, 0) + 1
                        if eid not in events and q.commence_time is not None:
                            events[eid] = commence_ms(q.commence_time)
                        if price is None:
                            n_susp += 1
                            full_at -= 1  # a key n_primed does not count takes a place
                            hot[key] = st = [None, lu, lu, True, None, lu]
                        else:
                            n_primed += 1
                            if trusted and tp is int:
                                price = share(price, price)
                            hot[key] = st = [price, lu, lu, False, price, lu]
                        if n_primed > full_at:  # len(hot) > keys.cap, or full_at fell behind a spill in warm
                            if len(hot) > keys.cap:
                                keys.spill()
                            full_at = n_primed + keys.cap - len(hot)
                        # kept in the observation's record now (a spill never cools the newest key), so
                        # the key's next price finds its list there, with no lookup in the hot dict
                        if rec is not None:
                            hold(rec, at, key, st)
                        continue
                if lu < st[2]:
                    n_stale += 1
                    continue
                st[2] = lu
                if price is None:
                    n_susp += 1
                    st[3] = True
                    continue
                old = st[0]
                if st[3]:
                    st[3] = False
                    if reprime or old is None:
                        n_primed += 1
                        if trusted and tp is int:
                            price = share(price, price)
                        st[0] = st[4] = price
                        st[1] = st[5] = lu
                        continue
                # rules.same_price
                # (its even-money test first: a move is not, and no sum is made)
                if price == old or ((price == 100 or price == -100) and price + old == 0):
                    n_rep += 1
                    continue
                if anchor:
                    ref = st[4]
                    ref_since = st[5]
                else:
                    ref = old
                    ref_since = st[1]
                if trusted and tp is int:
                    price = share(price, price)
                st[0] = price
                st[1] = lu
                if prob:
                    move = (  # rules.prob_move
                        (100.0 / (price + 100.0) if price > 0 else -price / (100.0 - price))
                        - (100.0 / (ref + 100.0) if ref > 0 else -ref / (100.0 - ref))
                    ) * -100.0
                    # rules.crosses: a move that does not cross goes on to the next item (each test
                    # below is ``not crosses`` as ``x < t and x > -t``: valid prices are finite, so
                    # no move is NaN); what follows the tests is the detection
                    if move < threshold and move > neg_threshold:
                        continue
                    # the alert's delta: rules.cents_move, written by rules.round_delta
                    d_cents = (price - 100 if price > 0 else price + 100) - (ref - 100 if ref > 0 else ref + 100)
                    if d_cents.__class__ is float and not (d_cents * steps).is_integer():
                        d_cents = round(d_cents, decimals)
                else:
                    # rules.cents_move: to_cents(new) - to_cents(prev), written by rules.round_delta
                    d_cents = (price - 100 if price > 0 else price + 100) - (ref - 100 if ref > 0 else ref + 100)
                    # rules.crosses on the written (rounded) delta; rounding moves it by less than
                    # the margin, so a move inside (-near, near) never fires and is not rounded
                    if d_cents < near and d_cents > neg_near:
                        continue
                    if type(d_cents) is float:
                        if not (d_cents * steps).is_integer():
                            d_cents = round(d_cents, decimals)
                        if d_cents < threshold and d_cents > neg_threshold:
                            continue
                    elif d_cents < int_threshold and d_cents > neg_int_threshold:
                        continue  # an int move (int prices): the same test on int bounds
                n_det += 1
                if anchor:
                    st[4] = price
                    st[5] = lu
                drop = Drop(
                    q.sport_key,
                    key[0],
                    key[1],
                    key[2],
                    q.kind,  # always set by Quote.__post_init__
                    # an observation's market key and line are its own (its ``q`` is its row's
                    # QuoteInfo): tested per alert, after the flag that is false for quotes alone
                    mk if trusted and type(q) is info_type else q.market_key,  # type: ignore[arg-type]
                    ref,
                    price,
                    d_cents,
                    "toward_favorite" if d_cents < 0 else "toward_dog",  # rules.direction_of
                    lu,
                    lu if now_ms is None else now_ms,
                    lu - ref_since,
                    q.home_team,
                    q.away_team,
                    q.commence_time,
                    q.player,
                    q.market,
                    line if trusted and type(q) is info_type else q.line,
                )
                if raw is not None:
                    raw.append((n_seen + n_same - 1, drop))
                elif open_filter or flt.accepts(drop):
                    append(drop)
        finally:  # counted also when a bad item stops the batch: counters match the state
            n = self._n
            n[0] += n_seen + n_same
            n[1] += n_primed
            n[2] += n_stale
            n[3] += n_invalid
            n[4] += n_susp
            n[5] += n_rep + n_same
            n[6] += n_det
            n[7] += len(out)
        return out

    def _apply_signals(self, items: Iterable[Quote], now_ms: int | None) -> list[Alert]:
        """Detection with the signals of SPEC 10-12. The price loop (the one implementation of
        SPEC 3) runs over the whole batch first and lists its detections, before the filter, by
        position: price state never depends on the rest, so this is the per-quote order. Then,
        quote by quote, the line series step, the cooldown and steam act on the moves; the filter
        and ``types`` decide what is returned."""
        quotes = items if isinstance(items, (list, tuple)) else list(items)
        quote_type = Quote
        # the first item that is not a Quote stops the batch after the quotes before it (as the
        # price loop alone would); found first, so both passes apply the same quotes
        limit = len(quotes)
        for i, q in enumerate(quotes):
            if type(q) is not quote_type and not isinstance(q, quote_type):
                limit = i
                break
        raw: list[tuple[int, Drop]] = []
        self._detect(quotes[:limit] if limit < len(quotes) else quotes, now_ms, raw)
        lines_on = self.config.detects_lines
        router = self._router
        cooled, steams = router.cooled, router.steams
        route = router.route
        out: list[Alert] = []
        line_step = self._line_step
        lo_price, hi_price = MIN_ABS_PRICE, MAX_ABS_PRICE
        raw.append((limit, None))  # type: ignore[arg-type]  # a sentinel past the last quote
        r = 0
        next_at, next_drop = raw[0]
        try:
            for i in range(limit):
                q = quotes[i]
                line = series_line(q.side) if lines_on else None
                if next_at == i:
                    drop = next_drop
                    r += 1
                    next_at, next_drop = raw[r]
                elif line is None:
                    continue  # nothing detected and no line series: the common quote
                else:
                    drop = None
                price = q.price
                if price is not None and not (lo_price <= abs(price) <= hi_price):  # rules.is_valid_price
                    continue  # SPEC 10: an invalid price is skipped whole (counted by the price loop)
                # SPEC 11: a quote's price move, then its line move, each routed before the next
                if drop is not None:
                    route(drop, out)
                if line is not None:
                    move = line_step(q, line, q.last_update if now_ms is None else now_ms)
                    if move is not None:
                        route(move, out)
        finally:
            n = self._n
            n[7] += len(out)
            n[14] += router.cooled - cooled
            n[15] += router.steams - steams
        if limit < len(quotes):
            raise ConfigError(
                f"quotes[{limit}]: {short_repr(quotes[limit])} is not a Quote"
                f" (the {limit} quote(s) before it were applied)"
            )
        return out

    def _line_step(self, q: Quote, line: float, ts: int) -> LineMove | None:
        """SPEC 10: the rules of section 3 on the quote's line series, ``line`` (its side's,
        :func:`.rules.series_line`) as the value; the detected :class:`LineMove` (before
        cooldown and filters), or ``None``."""
        cfg = self.config
        n = self._n
        n[8] += 1
        price = q.price
        suspended = price is None and not q.line_only
        line_side = line_side_of(q.side)
        key = (q.event_id, q.bookmaker, line_side)
        lu = q.last_update
        lines = self._lines
        st = lines.hot.get(key)
        if st is None and (st := lines.warm(key)) is None:
            eid = q.event_id
            self._nkeys[eid] = self._nkeys.get(eid, 0) + 1
            if eid not in self._events and q.commence_time is not None:
                self._events[eid] = commence_ms(q.commence_time)
            if suspended:
                n[11] += 1
                lines.add(key, [None, lu, lu, True, None, lu, None, None])
            else:
                n[9] += 1
                lines.add(key, [line, lu, lu, False, line, lu, price, price])
            return None
        if lu < st[_LNEWEST]:
            n[10] += 1
            return None
        st[_LNEWEST] = lu
        if suspended:
            n[11] += 1
            st[_LSUSP] = True
            # SPEC 10: a suspension at a line is that line's most recent observation, with no
            # price (what a prev_price at it reports when the series does not re-prime)
            if line == st[_LINE]:
                st[_CURP] = None
            if line == st[_ALINE]:
                st[_ANCP] = None
            return None
        old = st[_LINE]
        if st[_LSUSP]:
            st[_LSUSP] = False
            if cfg.reprime_after_suspension or old is None:
                n[9] += 1
                st[:] = [line, lu, lu, False, line, lu, price, price]
                return None
        anchor = cfg.reference == "anchor"
        if line == old:  # a repeat refreshes, and updates the price riding on the line
            n[12] += 1
            st[_CURP] = price
            if line == st[_ALINE]:
                st[_ANCP] = price
            return None
        if anchor:
            ref, ref_since, ref_price = st[_ALINE], st[_ALSINCE], st[_ANCP]
        else:
            ref, ref_since, ref_price = old, st[_LSINCE], st[_CURP]
        st[_LINE] = line
        st[_LSINCE] = lu
        st[_CURP] = price
        if line == st[_ALINE]:
            st[_ANCP] = price
        points = line_points(ref, line)
        if not crosses(points, cfg.line_threshold):
            return None
        n[13] += 1
        if anchor:  # as the price loop: the anchor moves on an alert (under last it is unused)
            st[_ALINE] = line
            st[_ALSINCE] = lu
            st[_ANCP] = price
        direction = line_direction(line_side, points)
        assert direction is not None
        return LineMove(
            q.sport_key, q.event_id, q.bookmaker, line_side,
            q.kind,  # type: ignore[arg-type]  # always set by Quote.__post_init__
            q.market_key,  # type: ignore[arg-type]
            written_line(ref), written_line(line), points, ref_price, price, direction,
            key_numbers_crossed(ref, line, cfg.keys.lookup(q.sport_key, q.market_key or "")),
            lu, ts, lu - ref_since, q.home_team, q.away_team, q.commence_time, q.player, q.market,
        )

    # -- memory bounds -------------------------------------------------------------------
    def evict(self, before_ms: int, *, started_before_ms: int | None = None) -> int:
        """Forget keys whose newest accepted ``last_update`` is older than ``before_ms`` and,
        when ``started_before_ms`` is given, every key of an event whose ``commence_time`` is
        older than it. Returns how many keys were dropped.

        An event's start is the first ``commence_time`` that parsed (ISO 8601 with an offset)
        among its keys' first quotes; events with no known start are evicted by age only. A
        forgotten key primes again on its next quote; keys that stay are not affected.
        """
        self._check_evict_args(before_ms, started_before_ms, 1)
        return max(self._evict_steps(None, before_ms, started_before_ms, 1))

    def evict_iter(
        self, before_ms: int, *, started_before_ms: int | None = None, chunk: int = 50_000
    ) -> Iterator[int]:
        """:meth:`evict` in steps of ``chunk`` keys, for a caller that must not stop for a scan of
        millions of keys: yields the running count of dropped keys after each step.

        The key list is copied once, at the call; each key is judged when its step runs, so
        ``observe``/``observe_many`` may run between steps (in the same thread, or under the
        caller's lock): a key updated since the copy is kept if it is now recent, and
        a key created since the copy is not looked at. Exhausted without interleaved quotes, it
        drops exactly what :meth:`evict` would. Abandoning it part way leaves a consistent
        engine (the steps done are done). Arguments are checked at the call, not at the first step.
        """
        self._check_evict_args(before_ms, started_before_ms, chunk)
        return self._evict_steps(list(self._state), before_ms, started_before_ms, chunk)

    @staticmethod
    def _check_evict_args(before_ms: object, started_before_ms: object, chunk: object) -> None:
        if isinstance(before_ms, bool) or not isinstance(before_ms, int):
            raise ConfigError(f"before_ms: {short_repr(before_ms)} must be an integer (unix ms)")
        if started_before_ms is not None and (
            isinstance(started_before_ms, bool) or not isinstance(started_before_ms, int)
        ):
            raise ConfigError(
                f"started_before_ms: {short_repr(started_before_ms)} must be an integer (unix ms) or None"
            )
        if type(chunk) is not int or chunk < 1:
            raise ConfigError(f"chunk: {short_repr(chunk)} must be a positive integer (keys per step)")

    def _evict_steps(
        self, keys: list[tuple[str, str, str]] | None, before_ms: int, started_before_ms: int | None, chunk: int
    ) -> Iterator[int]:
        """The one eviction rule (see :meth:`evict_iter`), applied to ``keys`` as they are now;
        ``keys=None`` is one step over every key held (:meth:`evict`: no copy, no lookups)."""
        state = self._state
        events = self._events
        newest_of = state.newest_of
        # the events started before the bound, as known at the first step: a key in ``keys``
        # belongs to an event whose start was learnt before the copy (with its first key)
        started = (
            frozenset() if started_before_ms is None
            else {e for e, ms in events.items() if ms is not None and ms < started_before_ms}
        )
        dropped = 0
        parts: Iterable[list[tuple[str, str, str]] | None] = (
            [None] if keys is None
            else (keys[lo : lo + chunk] for lo in range(0, len(keys), chunk)) if keys
            else [[]]
        )
        for part in parts:
            # the rule: not updated since before_ms, or of an event started before started_before_ms
            if part is None:
                old = [k for k, newest in state.newest_items() if newest < before_ms or k[0] in started]
            else:
                old = [
                    k for k in part
                    if (newest := newest_of(k)) is not None and (newest < before_ms or k[0] in started)
                ]
            state.remove(old)
            if len(self._cool):
                for k in old:
                    self._cool.forget((PRICE_TAG, *k))
            self._forget_keys(old)
            dropped += len(old)
            yield dropped
        if self._lines or len(self._steam):
            # the signals' state (SPEC 10-11) goes by the same rule, in one last step
            lines = self._lines
            gone = [k for k, newest in lines.newest_items() if newest < before_ms or k[0] in started]
            lines.remove(gone)
            for k in gone:
                self._cool.forget((LINE_TAG, *k))
            self._forget_keys(gone)
            self._steam.evict(before_ms, started)
            dropped += len(gone)
            yield dropped

    def _forget_keys(self, gone: list[tuple[str, str, str]]) -> None:
        """Count ``gone`` keys (price keys or line series) off their events; an event none of
        whose keys is left forgets its start."""
        nkeys = self._nkeys
        for e, n in Counter(k[0] for k in gone).items():
            left = nkeys[e] - n
            if left:
                nkeys[e] = left
            else:
                del nkeys[e]
                self._events.pop(e, None)

    # -- new settings --------------------------------------------------------------------
    def with_options(self, options: DetectOptions) -> tuple[DropEngine, tuple[str, ...]]:
        """A new engine detecting with ``options`` that keeps the state whose rules did not change
        (for a restart with other settings, e.g. the server's new ``--steam-*`` flags); returns it
        and the names of what it kept (``prices``, ``lines``, ``steam``, ``cooldowns``).

        A key's state depends on the reference, the re-priming and, under ``anchor``, the
        threshold and unit (the anchor moves on an alert); filters and ``types`` never change it.
        So price keys are kept when those are equal; line series likewise with the line
        threshold, when both engines detect lines; steam groups when, besides, every setting that
        decides which moves count is equal; cooldowns with equal price and line state and
        ``cooldown_ms``. Whatever is not kept primes again, as in a new engine. Counters go on.
        """
        if not isinstance(options, DetectOptions):
            raise ConfigError(f"options: {short_repr(options)} is not a DetectOptions")
        old = self.config
        new = DropEngine(options=options)
        new._n = list(self._n)
        same_base = old.reference == options.reference
        same_base = same_base and old.reprime_after_suspension == options.reprime_after_suspension
        anchor = old.reference == "anchor"
        prices = same_base and (not anchor or (old.threshold, old.unit) == (options.threshold, options.unit))
        lines = (same_base and old.detects_lines and options.detects_lines
                 and (not anchor or old.line_threshold == options.line_threshold))
        steam = (prices and lines and "steam" in old.types and "steam" in options.types
                 and all(getattr(old, f) == getattr(options, f) for f in (
                     "threshold", "unit", "line_threshold", "steam_books", "steam_window_ms", "steam_threshold",
                     "steam_line_threshold", "steam_groups")))
        # a cooldown runs from a key's last alert, so it carries over only when the alerts would
        # have been the same: every setting that decides detection equal
        cool = (prices and (lines or not options.detects_lines) and old.cooldown_ms == options.cooldown_ms > 0
                and (old.threshold, old.unit, old.line_threshold) == (options.threshold, options.unit,
                                                                       options.line_threshold))
        kept: list[str] = []
        if prices and self._state:
            new._state = self._state.copy()
            kept.append("prices")
        if lines and self._lines:
            new._lines = self._lines.copy()
            kept.append("lines")
        for k in (*new._state, *new._lines):
            new._nkeys[k[0]] = new._nkeys.get(k[0], 0) + 1
        new._events = {e: ms for e, ms in self._events.items() if e in new._nkeys}
        if steam and len(self._steam):
            new._steam.load(self._steam.rows())
            kept.append("steam")
        elif "steam" in options.types and len(self._steam):
            # the windows counted moves under other settings and start again, but a group that
            # fired keeps its cooldown of one window (SPEC 11: never two steams of a group in one)
            new._steam.load_firings(self._steam)
        if cool and len(self._cool):
            new._cool.load(self._cool.rows())
            kept.append("cooldowns")
        return new, tuple(kept)

    # -- persistence ---------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Serialise configuration, counters and every key's state to versioned bytes.

        Layout: 8-byte magic, 2-byte version, SHA-256 of the payload, msgpack payload.
        """
        payload: dict[str, Any] = {
            "config": self.config.as_dict(),
            # the signals' counters only when they are on: a default engine writes what 0.1 did
            "counters": list(self._n) if self._signals else self._n[:8],
            "state": [[*k, *st] for k, st in self._state.items()],
            # added in issue 10 without a version bump: older builds ignore it, and a
            # snapshot without it restores with no event starts known
            "events": [[e, ms] for e, ms in self._events.items()],
        }
        if self._signals:  # issue 12, also without a version bump (optional fields)
            payload["lines"] = [[*k, *st] for k, st in self._lines.items()]
            payload["cool"] = self._cool.rows()
            payload["steam"] = self._steam.rows()
        body = msgspec.msgpack.encode(payload)
        return _HEADER.pack(_SNAPSHOT_MAGIC, _SNAPSHOT_VERSION, hashlib.sha256(body).digest()) + body

    @classmethod
    def restore(cls, data: bytes) -> DropEngine:
        """Rebuild an engine from :meth:`snapshot` bytes; it continues without re-priming.

        Raises :class:`SnapshotError` for foreign, truncated, corrupt or newer-version data.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise SnapshotError(f"snapshot: expected bytes, got {type(data).__name__}")
        raw = bytes(data)
        if len(raw) < _HEADER.size:
            raise SnapshotError(f"snapshot: {len(raw)} bytes is too short to be a dropengine snapshot")
        magic, version, digest = _HEADER.unpack_from(raw)
        if magic != _SNAPSHOT_MAGIC:
            raise SnapshotError("snapshot: not a dropengine snapshot (bad magic bytes)")
        if version != _SNAPSHOT_VERSION:
            raise SnapshotError(
                f"snapshot: version {version} is not supported (this build reads version {_SNAPSHOT_VERSION})"
            )
        body = raw[_HEADER.size :]
        if hashlib.sha256(body).digest() != digest:
            raise SnapshotError("snapshot: checksum mismatch (the data is corrupt or truncated)")
        try:
            return cls._from_payload(msgspec.msgpack.decode(body, type=_Payload))
        except SnapshotError:
            raise
        except Exception as exc:
            # whatever a crafted payload triggers (RecursionError on deep nesting, ConfigError on
            # a bad setting, ...) is a snapshot that cannot be restored
            raise SnapshotError(f"snapshot: payload is malformed ({type(exc).__name__}: {short_repr(exc)})") from None

    @classmethod
    def _from_payload(cls, payload: _Payload) -> DropEngine:
        """The engine a payload describes (types and ranges already checked by the decoder);
        raises on anything an engine could not run on (the price invariants :meth:`_apply`
        relies on: a key holds a valid price and anchor, or is suspended with neither)."""
        eng = cls(options=DetectOptions.from_dict(payload.config))
        eng._n = [*payload.counters, *[0] * (_NCOUNTERS - len(payload.counters))]
        state = eng._state
        nkeys = eng._nkeys
        # each row packed as it is checked (a restored key is cold until quoted: no list per key)
        for e, b, s, price, since, newest, susp, aprice, asince in payload.state:
            if price is None:
                if not susp or aprice is not None:
                    raise ValueError(f"state of {short_repr((e, b, s))}: no price and not suspended")
            elif aprice is None or not (is_valid_price(price) and is_valid_price(aprice)):
                raise ValueError(f"state of {short_repr((e, b, s))}: not a valid price")
            if state.load((e, b, s), [price, since, newest, susp, aprice, asince]):
                nkeys[e] = nkeys.get(e, 0) + 1
        lines = eng._lines
        for e, b, s, line, since, newest, susp, aline, asince, curp, ancp in payload.lines:
            if line is None:
                if not susp or aline is not None:
                    raise ValueError(f"line series {short_repr((e, b, s))}: no line and not suspended")
            elif aline is None or not all(math.isfinite(v) for v in (line, aline)):
                raise ValueError(f"line series {short_repr((e, b, s))}: not a finite line")
            if not all(p is None or is_valid_price(p) for p in (curp, ancp)):
                raise ValueError(f"line series {short_repr((e, b, s))}: not a valid price")
            if lines.load((e, b, s), [line, since, newest, susp, aline, asince, curp, ancp]):
                nkeys[e] = nkeys.get(e, 0) + 1
        eng._cool.load([list(r) for r in payload.cool])
        for *_, direction, _f, _n, counted in payload.steam[1]:
            if direction not in ("toward_favorite", "toward_dog"):
                raise ValueError(f"steam group: direction {short_repr(direction)} is not a direction")
            for book, _seq, lu, entry in counted:
                _check_steam_entry(book, lu, entry)
        eng._steam.load([payload.steam[0], [list(g) for g in payload.steam[1]]])
        events = eng._events
        for e, ms in payload.events:
            if e in nkeys:  # an event none of whose keys is held has no use for its start
                events[e] = ms
        return eng
