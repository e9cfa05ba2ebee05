"""The detection options, one type for every entry point (SPEC section 3).

:class:`DetectOptions` is what :class:`~dropengine.core.engine.DropEngine`,
:func:`dropengine.analysis.batch.detect` / ``detect_counted`` and every CLI command take:
the detection settings (threshold, reference, unit, re-priming) and the alert filter
(direction and the attribute filters). Frozen and validated on construction; every error is a
:class:`~dropengine.core.errors.ConfigError` naming the field and the value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from .errors import ConfigError
from .filters import AlertFilter, check_threshold
from .rules import DirectionChoice

__all__ = ["REFERENCES", "UNITS", "DetectOptions", "Reference", "Unit"]

Reference = Literal["last", "anchor"]
Unit = Literal["cents", "prob"]
#: The reference prices (SPEC 3 rule 5), the default first.
REFERENCES: tuple[Reference, ...] = ("last", "anchor")
#: The threshold units (SPEC 3 rule 4), the default first.
UNITS: tuple[Unit, ...] = ("cents", "prob")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


#: The filter that lets every alert through (immutable, so one instance serves as the default).
_OPEN: Final = AlertFilter()


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectOptions:
    """How to detect and which alerts to keep. Keyword-only; use :meth:`build` to pass the
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
            raise ConfigError(f"unit: {_short(self.unit)} must be 'cents' or 'prob'")
        if self.unit == "prob" and t > 100:
            raise ConfigError(f"threshold: {t!r} probability points must be at most 100")
        if self.reference not in REFERENCES:
            raise ConfigError(f"reference: {_short(self.reference)} must be 'last' or 'anchor'")
        if not isinstance(self.reprime_after_suspension, bool):
            raise ConfigError(
                f"reprime_after_suspension: {_short(self.reprime_after_suspension)} must be True or False"
            )
        if not isinstance(self.filter, AlertFilter):
            raise ConfigError(f"filter: {_short(self.filter)} is not an AlertFilter")
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
        *,
        sports: str | Iterable[str] | None = None,
        event_id: str | Iterable[str] | None = None,
        bookmakers: str | Iterable[str] | None = None,
        markets: str | Iterable[str] | None = None,
        kinds: str | Iterable[str] | None = None,
        reprime_after_suspension: bool = True,
    ) -> DetectOptions:
        """Options from the arguments of :class:`DropEngine` (same names, same order)."""
        flt = AlertFilter.build(direction, sports, event_id, bookmakers, markets, kinds)
        return cls(
            threshold=threshold,
            reference=reference,  # type: ignore[arg-type]  # checked in __post_init__
            unit=unit,  # type: ignore[arg-type]
            reprime_after_suspension=reprime_after_suspension,
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
        known = ("threshold", "direction", "reference", "unit", "reprime_after_suspension", "sports", "event_id",
                 "bookmakers", "markets", "kinds")
        unknown = sorted(set(doc) - {*known, "filter_threshold", "since"})
        if unknown:
            raise ConfigError(f"options: unknown field(s) {', '.join(map(_short, unknown))}")
        opts = cls.build(**{k: doc[k] for k in known if k in doc})
        if doc.get("filter_threshold") is not None or doc.get("since") is not None:
            flt = replace(opts.filter, threshold=doc.get("filter_threshold"), since=doc.get("since"))
            opts = replace(opts, filter=flt)
        return opts
