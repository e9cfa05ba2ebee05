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
import struct
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Annotated, Any, Final, Unpack

import msgspec

from .alerts import Drop
from .errors import ConfigError, SnapshotError, short_repr
from .filters import DirectionChoice
from .options import DetectOptions, FilterKeywords, Reference, Unit, leading, resolve
from .quote import MAX_MS, Quote, commence_ms
from .rules import (
    DELTA_DECIMALS,
    EXACT_STEPS,
    MAX_ABS_PRICE,
    MIN_ABS_PRICE,
    ROUNDING_MARGIN,
    is_valid_price,
    threshold_floor,
)

__all__ = ["DropEngine", "EngineConfig", "EngineCounters"]

_SNAPSHOT_MAGIC: Final = b"DROPENG\x00"
_SNAPSHOT_VERSION: Final = 1
_HEADER = struct.Struct(">8sH32s")

# The snapshot payload as the decoder checks it (in C, before any Python loop over the rows).
# Times fit msgpack and polars (non-negative Int64); the price rules are checked per row after.
_Time = Annotated[int, msgspec.Meta(ge=0, le=MAX_MS)]
_Name = Annotated[str, msgspec.Meta(min_length=1)]
_Price = int | float | None
_Row = tuple[_Name, _Name, _Name, _Price, _Time, _Time, bool, _Price, _Time]


class _Payload(msgspec.Struct):
    config: dict[str, Any]
    counters: Annotated[list[_Time], msgspec.Meta(min_length=8, max_length=8)]
    state: list[_Row]
    # added in issue 10 without a version bump (optional: older snapshots have none)
    events: list[tuple[str, Annotated[int, msgspec.Meta(ge=-MAX_MS - 1, le=MAX_MS)] | None]] = []

# Indexes into a key's state list. A list (not an object) keeps the hot loop cheap.
_PRICE, _SINCE, _NEWEST, _SUSP, _APRICE, _ASINCE = range(6)


#: The engine's settings are the detection options (one type): the name stays for callers.
EngineConfig = DetectOptions


@dataclass(frozen=True, slots=True)
class EngineCounters:
    """What the engine has done with its input since it was created (or restored)."""

    seen: int = 0
    primed: int = 0
    stale: int = 0
    invalid: int = 0
    suspended: int = 0
    repeated: int = 0
    detected: int = 0
    alerts: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class DropEngine:
    """Streaming drop detector. Feed quotes in arrival order; get alerts back.

    >>> from dropengine import DropEngine, Quote
    >>> eng = DropEngine(threshold=10)
    >>> eng.observe(Quote("nba", "e1", "pinnacle", "h2h_home", -110, 1000))
    []
    >>> [d.delta for d in eng.observe(Quote("nba", "e1", "pinnacle", "h2h_home", -120, 2000))]
    [-10]
    """

    __slots__ = ("_events", "_n", "_nkeys", "_state", "config", "filter")

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
        self._state: dict[tuple[str, str, str], list[Any]] = {}
        # event_id -> commence time (unix ms, None when unparseable), from the first quote of
        # a new key that carried one; read only by evict(started_before_ms=...).
        self._events: dict[str, int | None] = {}
        # event_id -> how many keys of it are held: eviction forgets an event's start when its
        # last key goes without scanning every key (kept on key creation and deletion only)
        self._nkeys: dict[str, int] = {}
        # seen, primed, stale, invalid, suspended, repeated, detected, alerts
        self._n = [0] * 8

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
        st = self._state.get((event_id, bookmaker, side))
        if st is None or st[_SUSP]:
            return None
        price: int | float | None = st[_PRICE]
        return price

    # -- detection -----------------------------------------------------------------------
    def observe(self, quote: Quote, now_ms: int | None = None) -> list[Drop]:
        """Apply one quote; return the alerts it raises (zero or one)."""
        if type(quote) is not Quote and not isinstance(quote, Quote):
            raise ConfigError(f"quote: {short_repr(quote)} is not a Quote (build one with Quote(...))")
        if now_ms is not None and (type(now_ms) is not int or now_ms < 0):
            raise ConfigError(f"now_ms: {short_repr(now_ms)} must be a non-negative integer (unix ms) or None")
        return self._apply((quote,), now_ms)

    def observe_many(self, quotes: Iterable[Quote], now_ms: int | None = None) -> list[Drop]:
        """Apply quotes in order; return their alerts in detection order.

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

    def _apply(self, items: Iterable[Quote], now_ms: int | None) -> list[Drop]:
        """The detection loop; the public methods have checked their arguments once per call."""
        # Every constant and decision comes from .rules; the formulas are inlined (no call per
        # quote), each marked with the rules function it is. test_h11_rules_engine checks them.
        cfg = self.config
        threshold = threshold_floor(cfg.threshold)
        near = threshold - ROUNDING_MARGIN  # within it, rules.round_delta could decide the crossing
        lo_price, hi_price = MIN_ABS_PRICE, MAX_ABS_PRICE
        decimals, steps = DELTA_DECIMALS, EXACT_STEPS
        anchor = cfg.reference == "anchor"
        prob = cfg.unit == "prob"
        reprime = cfg.reprime_after_suspension
        flt = self.filter
        open_filter = flt.passes_all
        state = self._state
        get = state.get
        events = self._events
        nkeys = self._nkeys
        nkeys_get = nkeys.get
        n_seen = n_primed = n_stale = n_invalid = n_susp = n_rep = n_det = 0
        out: list[Drop] = []
        append = out.append
        quote_type = Quote
        try:
            for q in items:
                if type(q) is not quote_type and not isinstance(q, quote_type):
                    raise ConfigError(
                        f"quotes[{n_seen}]: {short_repr(q)} is not a Quote"
                        f" (the {n_seen} quote(s) before it were applied)"
                    )
                n_seen += 1
                price = q.price
                lu = q.last_update
                key = (q.event_id, q.bookmaker, q.side)
                st = get(key)
                if price is not None:
                    tp = type(price)
                    # rules.is_valid_price
                    if (tp is not int and tp is not float) or not (lo_price <= abs(price) <= hi_price):
                        n_invalid += 1
                        continue
                if st is None:
                    # a new key: count it, learn its event's start once (never on the per-update path)
                    eid = q.event_id
                    nkeys[eid] = nkeys_get(eid, 0) + 1
                    if eid not in events and q.commence_time is not None:
                        events[eid] = commence_ms(q.commence_time)
                    if price is None:
                        n_susp += 1
                        state[key] = [None, lu, lu, True, None, lu]
                    else:
                        n_primed += 1
                        state[key] = [price, lu, lu, False, price, lu]
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
                        st[0] = st[4] = price
                        st[1] = st[5] = lu
                        continue
                # rules.same_price
                if price == old or (price + old == 0 and (price == 100 or price == -100)):
                    n_rep += 1
                    continue
                if anchor:
                    ref = st[4]
                    ref_since = st[5]
                else:
                    ref = old
                    ref_since = st[1]
                st[0] = price
                st[1] = lu
                if prob:
                    move = (  # rules.prob_move
                        (100.0 / (price + 100.0) if price > 0 else -price / (100.0 - price))
                        - (100.0 / (ref + 100.0) if ref > 0 else -ref / (100.0 - ref))
                    ) * -100.0
                    fired = move >= threshold or -move >= threshold  # rules.crosses
                    if fired:  # the alert's delta: rules.cents_move, written by rules.round_delta
                        d_cents = (price - 100 if price > 0 else price + 100) - (ref - 100 if ref > 0 else ref + 100)
                        if d_cents.__class__ is float and not (d_cents * steps).is_integer():
                            d_cents = round(d_cents, decimals)
                else:
                    # rules.cents_move: to_cents(new) - to_cents(prev), written by rules.round_delta
                    d_cents = (price - 100 if price > 0 else price + 100) - (ref - 100 if ref > 0 else ref + 100)
                    if d_cents >= near or -d_cents >= near:
                        # rules.crosses on the written (rounded) delta; rounding moves it by less than
                        # the margin, so a move outside [near, ...) never fires and is not rounded
                        if d_cents.__class__ is float and not (d_cents * steps).is_integer():
                            d_cents = round(d_cents, decimals)
                        fired = d_cents >= threshold or -d_cents >= threshold
                    else:
                        fired = False
                if fired:
                    n_det += 1
                    if anchor:
                        st[4] = price
                        st[5] = lu
                    drop = Drop(
                        q.sport_key,
                        q.event_id,
                        q.bookmaker,
                        q.side,
                        q.kind,  # type: ignore[arg-type]  # always set by Quote.__post_init__
                        q.market_key,  # type: ignore[arg-type]
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
                        q.line,
                    )
                    if open_filter or flt.accepts(drop):
                        append(drop)
        finally:  # counted also when a bad item stops the batch: counters match the state
            n = self._n
            n[0] += n_seen
            n[1] += n_primed
            n[2] += n_stale
            n[3] += n_invalid
            n[4] += n_susp
            n[5] += n_rep
            n[6] += n_det
            n[7] += len(out)
        return out

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
        nkeys = self._nkeys
        get = state.get
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
                old = [k for k, st in state.items() if st[_NEWEST] < before_ms or k[0] in started]
            else:
                old = [
                    k for k in part
                    if (st := get(k)) is not None and (st[_NEWEST] < before_ms or k[0] in started)
                ]
            for k in old:
                del state[k]
            for e, n in Counter(k[0] for k in old).items():
                left = nkeys[e] - n
                if left:
                    nkeys[e] = left
                else:
                    del nkeys[e]
                    events.pop(e, None)
            dropped += len(old)
            yield dropped

    # -- persistence ---------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Serialise configuration, counters and every key's state to versioned bytes.

        Layout: 8-byte magic, 2-byte version, SHA-256 of the payload, msgpack payload.
        """
        payload = {
            "config": self.config.as_dict(),
            "counters": list(self._n),
            "state": [[*k, *st] for k, st in self._state.items()],
            # added in issue 10 without a version bump: older builds ignore it, and a
            # snapshot without it restores with no event starts known
            "events": [[e, ms] for e, ms in self._events.items()],
        }
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
        eng._n = list(payload.counters)
        state = eng._state
        nkeys = eng._nkeys
        for e, b, s, price, since, newest, susp, aprice, asince in payload.state:
            if price is None:
                if not susp or aprice is not None:
                    raise ValueError(f"state of {short_repr((e, b, s))}: no price and not suspended")
            elif aprice is None or not (is_valid_price(price) and is_valid_price(aprice)):
                raise ValueError(f"state of {short_repr((e, b, s))}: not a valid price")
            key = (e, b, s)
            if key not in state:
                nkeys[e] = nkeys.get(e, 0) + 1
            state[key] = [price, since, newest, susp, aprice, asince]
        events = eng._events
        for e, ms in payload.events:
            if e in nkeys:  # an event none of whose keys is held has no use for its start
                events[e] = ms
        return eng
