"""The detection options, one type for every entry point (SPEC section 3).

:class:`DetectOptions` is what :class:`~dropengine.core.engine.DropEngine`,
:func:`dropengine.analysis.batch.detect` / ``detect_counted`` and every CLI command take:
the detection settings (threshold, reference, unit, re-priming) and the alert filter
(direction and the attribute filters). Frozen and validated on construction; every error is a
:class:`~dropengine.core.errors.ConfigError` naming the field and the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, TypedDict, Unpack

from .alerts import SIGNALS, Signal, by_signal_order
from .errors import ConfigError, short_repr
from .filters import AlertFilter, check_threshold, parse_csv
from .quote import MAX_MS
from .rules import MAX_ABS_LINE, DirectionChoice, number_from_text

__all__ = [
    "DEFAULT_KEY_NUMBERS",
    "REFERENCES",
    "UNITS",
    "DetectKeywords",
    "DetectOptions",
    "FilterKeywords",
    "KeyNumbers",
    "Reference",
    "Unit",
    "parse_steam_groups",
    "parse_types",
    "resolve",
]

Reference = Literal["last", "anchor"]
Unit = Literal["cents", "prob"]
#: The reference prices (SPEC 3 rule 5), the default first.
REFERENCES: tuple[Reference, ...] = ("last", "anchor")
#: The threshold units (SPEC 3 rule 4), the default first.
UNITS: tuple[Unit, ...] = ("cents", "prob")


_DEFAULT_TYPES: Final[frozenset[Signal]] = frozenset({"odds_drop"})


def parse_types(value: str | Iterable[str] | None) -> frozenset[Signal]:
    """The alert types to detect (``"odds_drop,line_move"`` or an iterable); ``None`` is the
    default, price drops only. Unknown names are a ConfigError naming them."""
    if value is None:
        return _DEFAULT_TYPES
    names = parse_csv(value, "types")
    assert names is not None
    unknown = sorted(names - set(SIGNALS))
    if unknown:
        raise ConfigError(f"types: {short_repr(unknown[0])} is not an alert type (use {', '.join(SIGNALS)})")
    return frozenset(n for n in SIGNALS if n in names)


def parse_steam_groups(value: str | Iterable[Iterable[str]] | None) -> tuple[frozenset[str], ...]:
    """Book groups for steam (SPEC 11: books that copy one feed count once): text
    ``"a+b,c+d"`` or an iterable of iterables of bookmaker keys. A book may be in one group."""
    if value is None:
        return ()
    if isinstance(value, str):
        raw: list[Iterable[str]] = [g.split("+") for g in value.split(",")]
    else:
        try:
            raw = [[g] if isinstance(g, str) else list(g) for g in value]
        except TypeError:
            raise ConfigError(
                f"steam_groups: {short_repr(value)} must be text like 'a+b,c+d' or a list of lists"
            ) from None
    groups: list[frozenset[str]] = []
    seen: set[str] = set()
    for g in raw:
        books = frozenset(b.strip() if isinstance(b, str) else b for b in g)
        if not books or not all(isinstance(b, str) and b for b in books):
            raise ConfigError(f"steam_groups: {short_repr(value)} has an empty group or book")
        twice = sorted(books & seen)
        if twice:
            raise ConfigError(f"steam_groups: book {twice[0]!r} is in two groups")
        seen |= books
        groups.append(books)
    return tuple(groups)


@dataclass(frozen=True, slots=True)
class KeyNumbers:
    """Key numbers per sport and market (SPEC 10): ``entries`` are ``(sport, market_key,
    numbers)``, ``sport`` an exact sport key or a prefix ending in ``*``. A lookup takes the
    most specific entry (exact, then the longest prefix); entries given by a caller are
    consulted before the SPEC default (spreads of ``americanfootball_*``: 3, 4, 6, 7, 10, 14),
    so ``americanfootball_nfl:spreads=3,7`` replaces it for the NFL only, and an empty list
    (``americanfootball_*:spreads=``) turns it off."""

    entries: tuple[tuple[str, str, tuple[float, ...]], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.entries, tuple):
            raise ConfigError(f"key_numbers: {short_repr(self.entries)} must be a tuple of (sport, market, numbers)")
        for e in self.entries:
            if (not isinstance(e, tuple) or len(e) != 3 or not isinstance(e[0], str) or not e[0]
                    or not isinstance(e[1], str) or not e[1] or not isinstance(e[2], tuple)
                    or not all(type(k) in (int, float) and 0 < k <= MAX_ABS_LINE for k in e[2])):
                raise ConfigError(
                    f"key_numbers: {short_repr(e)} must be (sport, market_key, numbers in (0, {MAX_ABS_LINE:,}])"
                )
            sport, market = e[0], e[1]
            if "*" in sport[:-1] or ":" in sport or ":" in market or "*" in market:
                raise ConfigError(
                    f"key_numbers: {sport}:{market} must be SPORT:MARKET, SPORT a sport key or a prefix ending"
                    " in '*' (the only '*'), MARKET a market key"
                )
        seen = [(s, m) for s, m, _ in self.entries]
        twice = sorted({f"{s}:{m}" for s, m in seen if seen.count((s, m)) > 1})
        if twice:
            raise ConfigError(f"key_numbers: {twice[0]} is given twice (give each SPORT:MARKET once)")

    @classmethod
    def parse(cls, text: str) -> KeyNumbers:
        """``"americanfootball_nfl:spreads=3,7,10;basketball_*:spreads=5"`` (entries split by
        ``;``); errors name the entry."""
        if not isinstance(text, str):
            raise ConfigError(f"key_numbers: {short_repr(text)} must be text like 'americanfootball_nfl:spreads=3,7'")
        entries: list[tuple[str, str, tuple[float, ...]]] = []
        for part in text.split(";"):
            part = part.strip()
            where, eq, nums = part.partition("=")
            sport, colon, market = where.strip().partition(":")
            if not eq or not colon or not sport.strip() or not market.strip():
                raise ConfigError(
                    f"key_numbers: {part!r} must be SPORT:MARKET=N,N,... (e.g. americanfootball_nfl:spreads=3,7)"
                )
            numbers: list[float] = []
            for n in (x.strip() for x in nums.split(",")) if nums.strip() else ():
                value = number_from_text(n)
                if value is None or not 0 < value <= MAX_ABS_LINE:
                    raise ConfigError(f"key_numbers: {n!r} in {part!r} is not a number in (0, {MAX_ABS_LINE:,}]")
                numbers.append(value)
            entries.append((sport.strip(), market.strip(), tuple(sorted(set(numbers)))))
        return cls(tuple(entries))

    def lookup(self, sport_key: str, market_key: str) -> tuple[float, ...]:
        """The key numbers of ``market_key`` in ``sport_key`` (empty when none apply)."""
        for entries in (self.entries, DEFAULT_KEY_NUMBERS.entries):
            best: tuple[float, ...] | None = None
            best_len = -1
            for sport, market, numbers in entries:
                if market != market_key:
                    continue
                if sport == sport_key:
                    return numbers
                if sport.endswith("*") and sport_key.startswith(sport[:-1]) and len(sport) > best_len:
                    best, best_len = numbers, len(sport)
            if best is not None:
                return best
        return ()

    def as_text(self) -> str:
        """The :meth:`parse` text of these entries."""
        # every digit kept (repr), so a snapshot restores the same numbers; integral ones as ints
        return ";".join(f"{s}:{m}=" + ",".join(_exact(k) for k in n) for s, m, n in self.entries)


def _exact(k: float) -> str:
    return str(k) if type(k) is int else str(int(k)) if k.is_integer() else repr(k)


#: SPEC 10's default: spread sides of American football, 3, 4, 6, 7, 10, 14; none otherwise.
DEFAULT_KEY_NUMBERS: Final = KeyNumbers((("americanfootball_*", "spreads", (3, 4, 6, 7, 10, 14)),))


class FilterKeywords(TypedDict, total=False):
    """The keyword settings that :class:`~dropengine.core.engine.DropEngine` and
    :meth:`DetectOptions.build` take after the first four: the one list of their names.
    The filters take comma-separated text or iterables (see :meth:`AlertFilter.build`)."""

    sports: str | Iterable[str] | None
    event_id: str | Iterable[str] | None
    bookmakers: str | Iterable[str] | None
    markets: str | Iterable[str] | None
    kinds: str | Iterable[str] | None
    reprime_after_suspension: bool
    # the signals of SPEC 10-12 (issue 12); see DetectOptions
    types: str | Iterable[str] | None
    line_threshold: float
    steam_books: int
    steam_window_ms: int
    steam_threshold: float | None
    steam_line_threshold: float | None
    steam_groups: str | Iterable[Iterable[str]] | None
    cooldown_ms: int
    key_numbers: KeyNumbers | str | None


class DetectKeywords(FilterKeywords, total=False):
    """Every detection setting as a keyword (what the batch functions take)."""

    threshold: float
    direction: DirectionChoice
    reference: Reference
    unit: Unit


_DEFAULTS: Final[dict[str, object]] = {"threshold": 10, "direction": "both", "reference": "last", "unit": "cents"}


def _check_names(keywords: Mapping[str, object], known: frozenset[str]) -> None:
    # **keywords accepts any name at run time; a misspelt setting must not pass silently.
    unknown = sorted(set(keywords) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: not a detection setting (the settings: {', '.join(sorted(known))})")


def leading(threshold: float, direction: str, reference: str, unit: str) -> dict[str, Any]:
    """The first four settings as keywords, those left at their defaults left out (for
    :func:`resolve`: an entry point with explicit parameters cannot tell "not given" apart, so
    ``DropEngine(options=o, direction="both")`` keeps ``o``'s direction: a value equal to its
    default next to ``options=`` is not seen)."""
    if isinstance(threshold, DetectOptions):
        raise ConfigError("threshold: got a DetectOptions; pass it as options=")
    given = {"threshold": threshold, "direction": direction, "reference": reference, "unit": unit}
    return {k: v for k, v in given.items() if type(v) is bool or v != _DEFAULTS[k]}


def resolve(options: DetectOptions | None, keywords: Mapping[str, Any]) -> DetectOptions:
    """The options of an entry point called with ``options=`` or with separate settings.

    ``keywords`` are the settings the caller passed (only those: defaults left out). Giving
    both, or an ``options`` that is not a :class:`DetectOptions`, is a
    :class:`~dropengine.core.errors.ConfigError`.
    """
    _check_names(keywords, DetectKeywords.__optional_keys__)
    if options is None:
        return DetectOptions.build(**keywords)
    if not isinstance(options, DetectOptions):
        hint = f" (a threshold is a keyword: threshold={options!r})" if type(options) in (int, float) else ""
        raise ConfigError(f"options: {short_repr(options)} is not a DetectOptions{hint}")
    if keywords:
        raise ConfigError(f"options: give either options= or the separate settings ({', '.join(sorted(keywords))}), "
                          "not both")
    return options


#: The filter that lets every alert through (immutable, so one instance serves as the default).
_OPEN: Final = AlertFilter()


@dataclass(frozen=True, slots=True)
class DetectOptions:
    """How to detect and which alerts to keep. The fields come in the order of 0.1's
    ``EngineConfig`` (``threshold, reference, unit, reprime_after_suspension``), then the filter,
    so ``EngineConfig(10, "anchor")`` still works; use :meth:`build` to pass the
    filters as comma-separated text or iterables (it normalises them as :meth:`AlertFilter.build`).

    - ``threshold``: minimum ``|move|``, in cents or (``unit="prob"``) implied-probability
      points (at most 100); positive and finite;
    - ``reference``: ``last`` (default) or ``anchor``;
    - ``unit``: ``cents`` (default) or ``prob``;
    - ``reprime_after_suspension``: the first price after a suspension primes silently (default);
    - ``filter``: the :class:`AlertFilter` applied after detection (direction, sports, event
      ids, bookmakers, markets, kinds; its own ``threshold``/``since`` post-filters too).

    The signals of SPEC 10-12 (all off by default, so the default is 0.1's engine):

    - ``types``: the alert types returned (``odds_drop``, ``line_move``, ``steam``); line
      series run when ``line_move`` or ``steam`` is asked (steam counts line moves too);
    - ``line_threshold``: minimum ``|points|`` of a line move (default 0.5);
    - ``steam_books`` (default 3), ``steam_window_ms`` (default 300,000), ``steam_groups``;
    - ``steam_threshold`` / ``steam_line_threshold``: the move a price / line move needs to
      count for steam (default: ``threshold`` / ``line_threshold``; at least those, since only
      detected moves can count; the price one in cents only);
    - ``cooldown_ms``: SPEC 12, per price key and line series (0 = off);
    - ``key_numbers``: a :class:`KeyNumbers` (``None``: SPEC 10's default).
    """

    threshold: int | float = 10
    reference: Reference = "last"
    unit: Unit = "cents"
    reprime_after_suspension: bool = True
    filter: AlertFilter = _OPEN
    types: frozenset[Signal] = _DEFAULT_TYPES
    line_threshold: int | float = 0.5
    steam_books: int = 3
    steam_window_ms: int = 300_000
    steam_threshold: int | float | None = None
    steam_line_threshold: int | float | None = None
    steam_groups: tuple[frozenset[str], ...] = ()
    cooldown_ms: int = 0
    key_numbers: KeyNumbers | None = None

    def __post_init__(self) -> None:
        t = check_threshold(self.threshold)
        if self.unit not in UNITS:
            raise ConfigError(f"unit: {short_repr(self.unit)} must be 'cents' or 'prob'")
        if self.unit == "prob" and t > 100:
            raise ConfigError(f"threshold: {t!r} probability points must be at most 100")
        if self.reference not in REFERENCES:
            raise ConfigError(f"reference: {short_repr(self.reference)} must be 'last' or 'anchor'")
        if not isinstance(self.reprime_after_suspension, bool):
            raise ConfigError(
                f"reprime_after_suspension: {short_repr(self.reprime_after_suspension)} must be True or False"
            )
        if not isinstance(self.filter, AlertFilter):
            raise ConfigError(f"filter: {short_repr(self.filter)} is not an AlertFilter")
        # Subclasses (numpy.float64, a str enum) are stored as the plain values they stand for:
        # a snapshot can encode those, and the detection loops compare plain values.
        object.__setattr__(self, "threshold", t)
        object.__setattr__(self, "unit", UNITS[UNITS.index(self.unit)])
        object.__setattr__(self, "reference", REFERENCES[REFERENCES.index(self.reference)])
        self._check_signals()

    def _check_signals(self) -> None:
        types = self.types
        if type(types) is not frozenset or not types or not types <= set(SIGNALS):
            object.__setattr__(self, "types", parse_types(types if not isinstance(types, frozenset) else sorted(types)))
        object.__setattr__(self, "line_threshold", check_threshold(self.line_threshold, "line_threshold"))
        for name in ("steam_books", "steam_window_ms", "cooldown_ms"):
            value = getattr(self, name)
            low = 1 if name == "steam_books" else 0
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_MS:
                raise ConfigError(f"{name}: {short_repr(value)} must be an integer >= {low}")
            object.__setattr__(self, name, int(value))
        for name, base in (("steam_threshold", self.threshold), ("steam_line_threshold", self.line_threshold)):
            value = getattr(self, name)
            if value is None:
                continue
            v = check_threshold(value, name)
            if v < base:
                raise ConfigError(
                    f"{name}: {v!r} is below the detection threshold {base!r} (only detected moves count)"
                )
            object.__setattr__(self, name, v)
        if self.steam_threshold is not None and self.unit != "cents":
            raise ConfigError("steam_threshold: is in cents; it cannot be set with unit='prob'")
        groups = self.steam_groups
        if not (isinstance(groups, tuple) and all(type(g) is frozenset for g in groups)):
            object.__setattr__(self, "steam_groups", parse_steam_groups(groups))
        else:
            parse_steam_groups([sorted(g) for g in groups])  # the checks
        kn = self.key_numbers
        if kn is not None and not isinstance(kn, KeyNumbers):
            if isinstance(kn, str):
                object.__setattr__(self, "key_numbers", KeyNumbers.parse(kn))
            else:
                raise ConfigError(f"key_numbers: {short_repr(kn)} must be a KeyNumbers, text or None")

    @property
    def detects_lines(self) -> bool:
        """Whether line series run (SPEC 10): line moves asked, or steam (which counts them)."""
        return "line_move" in self.types or "steam" in self.types

    @property
    def signals(self) -> bool:
        """Whether anything beyond 0.1's price drops is on (another type, or a cooldown)."""
        return self.types != _DEFAULT_TYPES or self.cooldown_ms > 0

    @property
    def keys(self) -> KeyNumbers:
        """The key numbers in effect (the SPEC default when none were given)."""
        return self.key_numbers if self.key_numbers is not None else DEFAULT_KEY_NUMBERS

    @classmethod
    def build(
        cls,
        threshold: float = 10,
        direction: DirectionChoice | str = "both",
        reference: Reference | str = "last",
        unit: Unit | str = "cents",
        **keywords: Unpack[FilterKeywords],
    ) -> DetectOptions:
        """Options from the arguments of :class:`DropEngine` (same names, same order)."""
        _check_names(keywords, FilterKeywords.__optional_keys__)
        flt = AlertFilter.build(direction, keywords.get("sports"), keywords.get("event_id"),
                                keywords.get("bookmakers"), keywords.get("markets"), keywords.get("kinds"))
        kn = keywords.get("key_numbers")
        return cls(
            threshold=threshold,
            reference=reference,  # type: ignore[arg-type]  # checked in __post_init__
            unit=unit,  # type: ignore[arg-type]
            reprime_after_suspension=keywords.get("reprime_after_suspension", True),
            filter=flt,
            types=parse_types(keywords.get("types")),
            line_threshold=keywords.get("line_threshold", 0.5),
            steam_books=keywords.get("steam_books", 3),
            steam_window_ms=keywords.get("steam_window_ms", 300_000),
            steam_threshold=keywords.get("steam_threshold"),
            steam_line_threshold=keywords.get("steam_line_threshold"),
            steam_groups=parse_steam_groups(keywords.get("steam_groups")),
            cooldown_ms=keywords.get("cooldown_ms", 0),
            key_numbers=KeyNumbers.parse(kn) if isinstance(kn, str) else kn,
        )

    @property
    def direction(self) -> DirectionChoice:
        """The filter's direction choice (a shortcut)."""
        return self.filter.direction

    def replace(self, **changes: Any) -> DetectOptions:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The options as plain data, in :meth:`build`'s argument names (filters as sorted lists)."""
        f = self.filter

        def opt(s: frozenset[str] | None) -> list[str] | None:
            return None if s is None else sorted(s)

        out: dict[str, Any] = {
            "threshold": self.threshold,
            "direction": f.direction,
            "reference": self.reference,
            "unit": self.unit,
            "reprime_after_suspension": self.reprime_after_suspension,
            "sports": opt(f.sports),
            "event_id": opt(f.event_ids),
            "bookmakers": opt(f.bookmakers),
            "markets": opt(f.markets),
            "kinds": opt(f.kinds),
        }
        # the signals, only when not at their defaults: default options write what 0.1 wrote
        if self.types != _DEFAULT_TYPES:
            out["types"] = list(by_signal_order(self.types))
        for name, default in (("line_threshold", 0.5), ("steam_books", 3), ("steam_window_ms", 300_000),
                              ("steam_threshold", None), ("steam_line_threshold", None), ("cooldown_ms", 0)):
            value = getattr(self, name)
            if value != default or type(value) is not type(default):
                out[name] = value
        if self.steam_groups:
            out["steam_groups"] = [sorted(g) for g in self.steam_groups]
        if self.key_numbers is not None:
            out["key_numbers"] = self.key_numbers.as_text()
        # the filter's post-filters, only when set (older snapshots and readers never had them)
        if f.threshold is not None:
            out["filter_threshold"] = f.threshold
        if f.since is not None:
            out["since"] = f.since
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> DetectOptions:
        """The options :meth:`as_dict` wrote (missing keys take their defaults)."""
        known = DetectKeywords.__optional_keys__  # the one list of the settings' names
        unknown = sorted(set(doc) - {*known, "filter_threshold", "since"})
        if unknown:
            raise ConfigError(f"options: unknown field(s) {', '.join(map(short_repr, unknown))}")
        opts = cls.build(**{k: doc[k] for k in known if k in doc})
        if doc.get("filter_threshold") is not None or doc.get("since") is not None:
            flt = replace(opts.filter, threshold=doc.get("filter_threshold"), since=doc.get("since"))
            opts = replace(opts, filter=flt)
        return opts
