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

from .errors import ConfigError, short_repr
from .filters import AlertFilter, check_threshold
from .rules import DirectionChoice

__all__ = ["REFERENCES", "UNITS", "DetectKeywords", "DetectOptions", "FilterKeywords", "Reference", "Unit", "resolve"]

Reference = Literal["last", "anchor"]
Unit = Literal["cents", "prob"]
#: The reference prices (SPEC 3 rule 5), the default first.
REFERENCES: tuple[Reference, ...] = ("last", "anchor")
#: The threshold units (SPEC 3 rule 4), the default first.
UNITS: tuple[Unit, ...] = ("cents", "prob")


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
    """

    threshold: int | float = 10
    reference: Reference = "last"
    unit: Unit = "cents"
    reprime_after_suspension: bool = True
    filter: AlertFilter = _OPEN

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
        return cls(
            threshold=threshold,
            reference=reference,  # type: ignore[arg-type]  # checked in __post_init__
            unit=unit,  # type: ignore[arg-type]
            reprime_after_suspension=keywords.get("reprime_after_suspension", True),
            filter=flt,
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
