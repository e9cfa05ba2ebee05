"""Betfair Exchange stream messages (``op: mcm``) to quotes: a sans-IO decoder with market state.

Betfair's stream (and the official historic BASIC/PRO files and flumine's recordings, which
are that stream as NDJSON) sends *changes*: a ``marketDefinition`` when the market's
definition changes (status, in-play, runners and their status, starting prices) and ``rc``
runner changes (``ltp`` last traded price, ``atb``/``batb``/``bdatb`` back ladders; the lay
ladders, ``trd`` traded volume, ``tv``, ``spn``/``spf`` are not used and not read). ``img: true``
replaces the market's prices with a full image. The quote
of a runner is a *state*, so :class:`BetfairDecoder` keeps each market and turns every
message into the quotes whose state it changed.

Mapping (SPEC 2): ``event_id`` = market id (``1.132153978``), ``bookmaker`` = ``betfair``,
``side`` = ``{market_key}:{selection_id}`` (a runner side: market key = the market type
lowercased, ``win:12115648``), kind ``game``, ``sport_key`` from the event type
(:data:`SPORT_KEYS`; an unknown one is ``betfair_{id}``, none at all ``betfair``), ``commence_time`` = ``marketTime``,
``last_update`` = the message's publish time ``pt``. Prices are decimal and become American
through :func:`dropengine.core.odds.decimal_to_american` (fractional Americans are valid).

Which price is the quote (``price``): ``ltp``, the last traded price (every file has it), or
``back``, the best price available to back (from the full ``atb`` ladder once a runner has
one, else the level-0 ``batb``, else ``bdatb``; BASIC files carry no ladder, so they give no ``back`` quotes). The
back ladders are read (and checked) only with ``back``: a PRO message carries hundreds of ladder
entries, and with ``ltp`` nothing depends on them.

Availability (a runner is quoted only while its market is ``OPEN`` and it is ``ACTIVE``):
- market ``SUSPENDED`` or ``CLOSED``: a null-price quote for each runner that was available
  (SPEC 3 suspension); after reopening a runner is quoted again at its first *new* price (never
  at the price it had before the suspension: a reduction factor's jump re-primes silently).
  Betfair sends ``ltp`` only when it changes, so with ``ltp`` a runner that trades again only at
  its old price stays unquoted until its price moves;
- runner ``REMOVED`` (a non-runner), ``WINNER``, ``LOSER``...: a null-price quote, then silence;
- in-play (``inPlay`` turns true): a boundary like a suspension. Each available runner gets a
  null-price quote, and is quoted again at its first in-play price, so the jump from the last
  pre-off price to the first in-play one is re-primed and never an alert; in-play prices then go
  on as quotes. ``backtest`` closes at the off (the starting price, struck there; or the last
  price before it: the off bounds a last-before-commence close), so they count as after the close.
A quote is emitted only when a runner's quoted state changes (a new price, or a change of
availability), never for a repeated price.

Bad input never raises: a message, market change, runner change or field that is not what
Betfair sends is recorded in the :class:`~dropengine.core.skips.SkipLog` with its position
(``file:line mc[0].rc[3].ltp``) and the rest of the message goes on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from ..core.errors import ConfigError, FeedError, short_repr
from ..core.odds import MAX_ABS_PRICE, american_to_decimal, decimal_to_american
from ..core.quote import MAX_MS, Quote, commence_ms
from ..core.sides import runner_side
from ..core.skips import SkipLog

__all__ = [
    "BETFAIR_BOOKMAKER",
    "PRICE_FIELDS",
    "SPORT_KEYS",
    "BetfairDecoder",
    "MarketView",
    "RunnerView",
    "StartingPrice",
    "market_key_of_type",
    "sport_key_of",
]

Price = Literal["ltp", "back"]
#: which runner price becomes the quote (``InputOptions.betfair_price``)
PRICE_FIELDS: Final[tuple[Price, ...]] = ("ltp", "back")
#: the bookmaker of every Betfair quote
BETFAIR_BOOKMAKER: Final = "betfair"
#: Betfair event type id -> sport key (an id not listed maps to ``betfair_{id}``)
SPORT_KEYS: Final[Mapping[str, str]] = {
    "1": "soccer",
    "2": "tennis",
    "3": "golf",
    "4": "cricket",
    "5": "rugby_union",
    "6": "boxing",
    "7": "horse_racing",
    "8": "motor_sport",
    "1477": "rugby_league",
    "3503": "darts",
    "4339": "greyhound_racing",
    "6422": "snooker",
    "6423": "american_football",
    "7511": "baseball",
    "7522": "basketball",
    "7524": "ice_hockey",
    "61420": "australian_rules",
    "2378961": "politics",
    "26420387": "mixed_martial_arts",
}
#: Stream operations that carry no market data: read and ignored (a recording may hold them)
_QUIET_OPS: Final = frozenset({"connection", "status", "heartbeat", "marketSubscription", "ocm"})
_INF: Final = math.inf
#: the decimal prices that are valid American prices (SPEC 1: |A| <= 100000): 1.001 to 1001
_MIN_DECIMAL: Final = american_to_decimal(-MAX_ABS_PRICE)
_MAX_DECIMAL: Final = american_to_decimal(MAX_ABS_PRICE)
_NEVER: Final = -1.0  # "no quote emitted yet" (a decimal price is always > 1, a null is None)


_T = TypeVar("_T")

def _typed(d: dict[str, Any], name: str, kind: type[_T], what: str, where: str, skips: SkipLog) -> _T | None:
    """``d[name]`` when it is a ``kind``; absent, None; anything else a ``bad field`` skip naming it."""
    value = d.get(name)
    if value is None or isinstance(value, kind):
        return value
    skips.add(f"{where}.{name}", "bad field", f"{name}: {short_repr(value)} is not {what}")
    return None


def sport_key_of(event_type_id: object) -> str:
    """The sport key of a Betfair event type id (``"7"`` -> ``horse_racing``)."""
    text = str(event_type_id)
    return SPORT_KEYS.get(text, f"betfair_{text}")


def market_key_of_type(market_type: str) -> str:
    """The market key of a Betfair market type (``WIN`` -> ``win``); raises FeedError when
    it cannot be one (empty, ``:``/``@``/spaces, or a game market's key such as ``totals``)."""
    key = market_type.lower()
    try:
        runner_side(key, 0)  # the runner side grammar (core.sides) decides what a market key may be
    except ConfigError as exc:
        raise FeedError(f"marketType: {short_repr(market_type)} cannot be a market key ({exc})", "bad field") from None
    return key


@dataclass(frozen=True, slots=True)
class RunnerView:
    """A runner's state after a message (decimal prices, as Betfair sends them; ``best_back``
    only when the decoder quotes ``back``)."""

    selection_id: int
    status: str | None
    ltp: float | None
    best_back: float | None
    bsp: float | None
    removal_date: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class MarketView:
    """A market's state after a message: definition fields and its runners in definition order."""

    market_id: str
    status: str | None
    in_play: bool
    market_type: str | None
    event_type_id: str | None
    market_time: str | None
    bsp_reconciled: bool
    version: int | None
    #: when pre-off trading last ended (suspended, in play or closed), unix ms: the off
    off_ms: int | None
    runners: tuple[RunnerView, ...]


@dataclass(frozen=True, slots=True)
class StartingPrice:
    """A runner's Betfair starting price (decimal) from the latest definition carrying it, and
    when it was struck: the off (``off_ms``, unix ms; None when the recording never left pre-off
    trading)."""

    sport_key: str
    event_id: str
    side: str
    bsp: float
    off_ms: int | None = None


@dataclass(slots=True)
class _Runner:
    selection_id: int
    status: str | None = None
    name: str | None = None
    removal_date: str | None = None
    ltp: float | None = None
    bsp: float | None = None
    atb: dict[float, float] = field(default_factory=dict)
    batb: dict[int, tuple[float, float]] = field(default_factory=dict)
    bdatb: dict[int, tuple[float, float]] = field(default_factory=dict)
    full_ladder: bool = False  # the runner has had an ``atb`` (full ladder): its best back comes from it
    stale: bool = False  # its prices are from before the off: no quote until an in-play price comes
    emitted: float | None = _NEVER  # the decimal price last quoted; None: a null quote

    def best_back(self) -> float | None:
        """Best price available to back: the full ladder once the runner has one, else level 0
        of the depth ladder, else of the display ladder."""
        if self.full_ladder:
            return max(self.atb) if self.atb else None
        for levels in (self.batb, self.bdatb):
            if 0 in levels:
                return levels[0][0]
        return None

    def clear_prices(self) -> None:
        self.ltp = None
        self.atb.clear()
        self.batb.clear()
        self.bdatb.clear()
        self.full_ladder = False

    def view(self) -> RunnerView:
        return RunnerView(self.selection_id, self.status, self.ltp, self.best_back(), self.bsp,
                          self.removal_date, self.name)


@dataclass(slots=True)
class _Market:
    market_id: str
    status: str | None = None
    in_play: bool = False
    market_type: str | None = None
    market_key: str | None = None
    event_type_id: str | None = None
    sport_key: str = BETFAIR_BOOKMAKER
    market_time: str | None = None
    bsp_reconciled: bool = False
    version: int | None = None
    #: ``pt`` of the latest message that ended the market's pre-off trading (OPEN, not in play):
    #: after the last such end, the off (a pre-race suspension that reopens is overwritten later)
    off_ms: int | None = None
    runners: dict[int, _Runner] = field(default_factory=dict)

    @property
    def pre_off(self) -> bool:
        return self.status == "OPEN" and not self.in_play

    def runner(self, selection_id: int) -> _Runner:
        r = self.runners.get(selection_id)
        if r is None:
            r = self.runners[selection_id] = _Runner(selection_id)
        return r

    def view(self) -> MarketView:
        return MarketView(self.market_id, self.status, self.in_play, self.market_type, self.event_type_id,
                          self.market_time, self.bsp_reconciled, self.version, self.off_ms,
                          tuple(r.view() for r in self.runners.values()))


def _decimal(value: object, field_name: str) -> float:
    """A Betfair decimal price that is a valid American price (SPEC 1, through
    :func:`decimal_to_american`: 1.001 to 1001), or FeedError: the runner keeps its price."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FeedError(f"{field_name}: {short_repr(value)} is not a number", "invalid price")
    d = float(value)
    try:
        decimal_to_american(d)
    except ConfigError:
        raise FeedError(f"{field_name}: {short_repr(value)} is not a decimal price of a valid American price "
                        f"({_MIN_DECIMAL:g} to {_MAX_DECIMAL:g})", "invalid price") from None
    return d


def _size(value: object, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise FeedError(f"{field_name}: {short_repr(value)} is not a non-negative size", "bad field")
    return float(value)


def _selection(value: object, field_name: str) -> int:
    if type(value) is not int or value < 0:
        raise FeedError(f"{field_name}: {short_repr(value)} is not a selection id (a non-negative integer)",
                        "bad field")
    return value


def _runner_id(obj: dict[str, Any]) -> int:
    """The selection id of a runner definition or change; FeedError for a bad one or a
    handicap runner (``hc`` other than 0: one selection, several sides, not read)."""
    sid = _selection(obj.get("id"), "id")
    hc = obj.get("hc")
    if hc not in (None, 0, 0.0):
        raise FeedError(f"hc: {short_repr(hc)}: handicap runners are not read (one side per selection)",
                        "unsupported runner")
    return sid


class BetfairDecoder:
    """Per-market state of a Betfair stream; :meth:`feed` one decoded message at a time.

    ``price`` picks the quote: ``ltp`` (last traded) or ``back`` (best back). One decoder
    per stream (a recording file): market state is kept across its messages.
    """

    __slots__ = ("_markets", "ladders", "price")

    def __init__(self, price: str = "ltp") -> None:
        if price not in PRICE_FIELDS:
            raise ConfigError(f"price: {price!r} must be one of {', '.join(PRICE_FIELDS)}")
        self.price: Price = "ltp" if price == "ltp" else "back"
        self._markets: dict[str, _Market] = {}
        #: whether any back ladder (atb, batb, bdatb) was read: with ``back`` and none, the
        #: stream has no back prices at all (a BASIC file), which the reader says
        self.ladders = False

    # -- reading the state -------------------------------------------------------------

    def market_ids(self) -> tuple[str, ...]:
        """The markets seen, in order of first appearance."""
        return tuple(self._markets)

    def market(self, market_id: str) -> MarketView | None:
        """A snapshot of one market's state, or None when it has not been seen."""
        m = self._markets.get(market_id)
        return None if m is None else m.view()

    def starting_prices(self) -> list[StartingPrice]:
        """Each runner's starting price (``bsp``) as the latest definition gave it; runners
        without one (removed, or a market not reconciled yet) are not listed."""
        out: list[StartingPrice] = []
        for m in self._markets.values():
            if m.market_key is None:
                continue
            for r in m.runners.values():
                if r.bsp is not None:
                    out.append(StartingPrice(m.sport_key, m.market_id, runner_side(m.market_key, r.selection_id),
                                             r.bsp, m.off_ms))
        return out

    # -- feeding it ----------------------------------------------------------------------

    def feed(self, msg: Any, where: str, skips: SkipLog) -> list[Quote]:
        """Apply one decoded stream message; return the quotes whose state it changed.

        Never raises on bad data: what cannot be used is recorded in ``skips`` at ``where``
        (the message's position, e.g. ``file:12``) plus the path inside the message.
        """
        if not isinstance(msg, dict):
            skips.add(where, "bad message", f"a stream message is a JSON object, not {type(msg).__name__}")
            return []
        op = msg.get("op")
        if op != "mcm":
            if op not in _QUIET_OPS:
                skips.add(where, "bad message", f"op: {short_repr(op)} is not a Betfair stream operation (mcm)")
            return []
        pt = msg.get("pt")
        if type(pt) is not int or not 0 <= pt <= MAX_MS:
            skips.add(where, "bad time", f"pt: {short_repr(pt)} is not a publish time (unix ms)")
            return []
        changes = msg.get("mc")
        if changes is None:
            return []  # a heartbeat (ct: HEARTBEAT) or an empty change
        if not isinstance(changes, list):
            skips.add(where, "bad message", f"mc: {type(changes).__name__} is not a list of market changes")
            return []
        out: list[Quote] = []
        for i, mc in enumerate(changes):
            self._market_change(mc, f"{where} mc[{i}]", pt, skips, out)
        return out

    def _market_change(self, mc: Any, where: str, pt: int, skips: SkipLog, out: list[Quote]) -> None:
        if not isinstance(mc, dict):
            skips.add(where, "bad market", f"a market change is a JSON object, not {type(mc).__name__}")
            return
        market_id = mc.get("id")
        if type(market_id) is not str or not market_id:
            skips.add(where, "bad market", f"id: {short_repr(market_id)} is not a market id")
            return
        m = self._markets.get(market_id)
        if m is None:
            m = self._markets[market_id] = _Market(market_id)
        definition = mc.get("marketDefinition")
        image = mc.get("img") is True
        # Only a definition changes availability; without one (most messages) only the runners
        # the message changes can have a new quote, so only they are looked at.
        before = {sid: self._available(m, r) for sid, r in m.runners.items()} \
            if definition is not None or image else None
        touched: set[int] = set()
        was_in_play = m.in_play
        was_pre_off = m.pre_off
        if image:  # a full image: prices restart from what it carries
            for r in m.runners.values():
                r.clear_prices()
        if definition is not None:
            self._definition(m, definition, f"{where}.marketDefinition", skips)
            # SPEC 3: the first price after a suspension re-primes. A runner withdrawn now (the
            # market suspended, the runner no longer active) or the whole field at the off is
            # quoted again at its next price, never at the price it had before.
            went_off = m.in_play and not was_in_play
            assert before is not None
            for selection, r in m.runners.items():
                if went_off or (before.get(selection, False) and not self._available(m, r)):
                    r.stale = True
        rcs = mc.get("rc")
        if rcs is not None:
            if not isinstance(rcs, list):
                skips.add(f"{where}.rc", "bad market", f"rc: {type(rcs).__name__} is not a list of runner changes")
            else:
                for j, rc in enumerate(rcs):
                    sid = self._runner_change(m, rc, f"{where}.rc[{j}]", skips)
                    if sid is not None:
                        touched.add(sid)
        if was_pre_off and not m.pre_off:
            m.off_ms = pt
        self._emit(m, before, touched, m.in_play and not was_in_play, pt, out)

    def _definition(self, m: _Market, d: Any, where: str, skips: SkipLog) -> None:
        if not isinstance(d, dict):
            skips.add(where, "bad market", f"marketDefinition: {type(d).__name__} is not an object")
            return
        status = _typed(d, "status", str, "a market status", where, skips)
        if status is not None:
            m.status = status
        in_play = _typed(d, "inPlay", bool, "true or false", where, skips)
        if in_play is not None:
            m.in_play = in_play
        market_type = d.get("marketType")
        if isinstance(market_type, str):
            try:
                m.market_key = market_key_of_type(market_type)
                m.market_type = market_type
            except FeedError as exc:
                skips.add(f"{where}.marketType", exc.reason, str(exc))
        elif market_type is not None:
            skips.add(f"{where}.marketType", "bad field", f"marketType: {short_repr(market_type)} is not a market type")
        event_type = d.get("eventTypeId")
        if isinstance(event_type, (str, int)) and not isinstance(event_type, bool) and str(event_type):
            m.event_type_id = str(event_type)
            m.sport_key = sport_key_of(event_type)
        elif event_type is not None:
            skips.add(f"{where}.eventTypeId", "bad field",
                      f"eventTypeId: {short_repr(event_type)} is not an event type id")
        market_time = d.get("marketTime")
        if market_time is not None:
            try:
                ok = isinstance(market_time, str) and commence_ms(market_time) is not None
            except (ValueError, OverflowError):
                ok = False
            if ok:
                m.market_time = market_time
            else:
                skips.add(f"{where}.marketTime", "bad time",
                          f"marketTime: {short_repr(market_time)} is not an ISO-8601 time")
        reconciled = d.get("bspReconciled")
        if isinstance(reconciled, bool):
            m.bsp_reconciled = reconciled
        version = d.get("version")
        if type(version) is int:
            m.version = version
        runners = d.get("runners")
        if runners is None:
            return
        if not isinstance(runners, list):
            skips.add(f"{where}.runners", "bad market", f"runners: {type(runners).__name__} is not a list")
            return
        for k, rd in enumerate(runners):
            self._runner_definition(m, rd, f"{where}.runners[{k}]", skips)

    def _runner_definition(self, m: _Market, rd: Any, where: str, skips: SkipLog) -> None:
        if not isinstance(rd, dict):
            skips.add(where, "bad runner", f"a runner definition is an object, not {type(rd).__name__}")
            return
        try:
            sid = _runner_id(rd)
        except FeedError as exc:
            skips.add(where, exc.reason, str(exc))
            return
        r = m.runner(sid)
        status = _typed(rd, "status", str, "a runner status", where, skips)
        if status is not None:
            r.status = status
        name = rd.get("name")
        if isinstance(name, str):
            r.name = name
        removal = rd.get("removalDate")
        if isinstance(removal, str):
            r.removal_date = removal
        bsp = rd.get("bsp")
        if bsp is not None:
            try:
                r.bsp = _decimal(bsp, "bsp")
            except FeedError as exc:
                skips.add(f"{where}.bsp", exc.reason, str(exc))

    def _runner_change(self, m: _Market, rc: Any, where: str, skips: SkipLog) -> int | None:
        """Apply one runner change; the runner's selection id, or None when it was skipped."""
        if not isinstance(rc, dict):
            skips.add(where, "bad runner", f"a runner change is an object, not {type(rc).__name__}")
            return None
        try:
            sid = _runner_id(rc)
        except FeedError as exc:
            skips.add(where, exc.reason, str(exc))
            return None
        r = m.runner(sid)
        if rc.get("img") is True:
            r.clear_prices()
        if "ltp" in rc:
            try:
                r.ltp = _decimal(rc["ltp"], "ltp")
                if self.price == "ltp":
                    r.stale = False
            except FeedError as exc:
                skips.add(f"{where}.ltp", exc.reason, str(exc))
        if self.price == "back":  # the ladders are read (and checked) only when they are the quote
            if "atb" in rc or "batb" in rc or "bdatb" in rc:
                r.stale = False
                self.ladders = True
            if "atb" in rc:
                r.full_ladder = True
                self._ladder(rc, "atb", r.atb, where, skips)
            if not r.full_ladder:  # a runner with the full ladder is quoted from it alone
                self._levels(rc, "batb", r.batb, where, skips)
                self._levels(rc, "bdatb", r.bdatb, where, skips)
        return sid

    @staticmethod
    def _ladder(rc: dict[str, Any], key: str, ladder: dict[float, float], where: str, skips: SkipLog) -> None:
        """``[[price, size], ...]`` deltas: a size of 0 removes the price."""
        entries = rc.get(key)
        if entries is None:
            return
        if not isinstance(entries, list):
            skips.add(f"{where}.{key}", "bad field", f"{key}: {type(entries).__name__} is not a list of [price, size]")
            return
        for n, entry in enumerate(entries):
            # the plain case inline (a PRO file carries a few hundred entries per message) ...
            if type(entry) is list and len(entry) == 2:
                p, z = entry
                if (type(p) is float or type(p) is int) and _MIN_DECIMAL <= p <= _MAX_DECIMAL and (
                        type(z) is float or type(z) is int) and 0 <= z < _INF:
                    if z == 0:
                        ladder.pop(float(p), None)
                    else:
                        ladder[float(p)] = float(z)
                    continue
            # ... anything else is a skip saying what is wrong
            try:
                if not isinstance(entry, list) or len(entry) != 2:
                    raise FeedError(f"{key}: {short_repr(entry)} is not [price, size]", "bad field")
                _decimal(entry[0], f"{key} price")
                _size(entry[1], f"{key} size")
            except FeedError as exc:
                skips.add(f"{where}.{key}[{n}]", exc.reason, str(exc))

    @staticmethod
    def _levels(rc: dict[str, Any], key: str, levels: dict[int, tuple[float, float]], where: str,
                skips: SkipLog) -> None:
        """``[[level, price, size], ...]`` deltas: a size of 0 empties the level."""
        entries = rc.get(key)
        if entries is None:
            return
        if not isinstance(entries, list):
            skips.add(f"{where}.{key}", "bad field", f"{key}: {type(entries).__name__} is not a list of levels")
            return
        for n, entry in enumerate(entries):
            if type(entry) is list and len(entry) == 3:  # the plain case inline, as in _ladder
                lv, p, z = entry
                if type(lv) is int and lv >= 0 and (type(p) is float or type(p) is int) and (
                        _MIN_DECIMAL <= p <= _MAX_DECIMAL) and (
                        type(z) is float or type(z) is int) and 0 <= z < _INF:
                    if z == 0:
                        levels.pop(lv, None)
                    else:
                        levels[lv] = (float(p), float(z))
                    continue
            try:
                if not isinstance(entry, list) or len(entry) != 3 or type(entry[0]) is not int or entry[0] < 0:
                    raise FeedError(f"{key}: {short_repr(entry)} is not [level, price, size]", "bad field")
                size = _size(entry[2], f"{key} size")
                if size == 0:
                    levels.pop(entry[0], None)
                    continue
                levels[entry[0]] = (_decimal(entry[1], f"{key} price"), size)
            except FeedError as exc:
                skips.add(f"{where}.{key}[{n}]", exc.reason, str(exc))

    # -- quotes ----------------------------------------------------------------------------

    @staticmethod
    def _available(m: _Market, r: _Runner) -> bool:
        return m.status == "OPEN" and r.status == "ACTIVE" and m.market_key is not None

    def _emit(self, m: _Market, before: dict[int, bool] | None, touched: set[int], went_in_play: bool, pt: int,
              out: list[Quote]) -> None:
        """The quotes of the runners whose quoted state this change moved (see the module doc):
        every runner after a definition or an image (``before``: who was available), else the
        ``touched`` ones, in definition order either way."""
        if m.market_key is None:
            return  # no definition yet: prices are kept, quoted once the definition comes
        for sid, r in m.runners.items():
            if before is None and sid not in touched:
                continue
            available = self._available(m, r)
            price = (r.ltp if self.price == "ltp" else r.best_back()) if available and not r.stale else None
            if went_in_play and available and isinstance(r.emitted, float) and r.emitted != _NEVER:
                out.append(self._quote(m, r, None, pt))  # the off: a boundary, re-primed below
                r.emitted = None
            if price == r.emitted:
                continue
            was = available if before is None else before.get(sid, False)
            if price is None and r.emitted == _NEVER and (available or not was):
                continue  # no price yet, or never quoted and not withdrawn now: nothing to say
            # every stored price passed _decimal (or the ladders' inline check of the same range)
            out.append(self._quote(m, r, None if price is None else decimal_to_american(price), pt))
            r.emitted = price

    @staticmethod
    def _quote(m: _Market, r: _Runner, price: float | None, pt: int) -> Quote:
        assert m.market_key is not None
        return Quote(m.sport_key, m.market_id, BETFAIR_BOOKMAKER, runner_side(m.market_key, r.selection_id), price,
                     pt, "game", m.market_key, commence_time=m.market_time)
