"""Conformance, part 1: every in-memory detection path gives the same alerts and counters.

For every option that matters (threshold in cents or probability points, fractional and
exactly at the size of a move; direction; reference ``last``/``anchor``; re-priming;
attribute filters) and the streams of :mod:`tests.strategies`:

- ``DropEngine`` alerts and counters == ``batch.detect_counted`` alerts and counters, alert
  for alert and byte for byte (the JSON of each alert, so ``-110`` vs ``-110.0`` differs);
- ``DropEngine`` is independent of how the input is chunked and of how keys interleave
  (SPEC 3, last paragraph);
- direction and the attribute filters are pure post-filters (SPEC 3 rule 6): an engine with
  them gives exactly the alerts of an engine without them, filtered;
- the reference server's way of detecting (SPEC 7: one engine at 1 cent, ``direction=both``,
  then each connection's subscription filter at its threshold and direction) gives exactly
  the alerts of an engine at that threshold and direction -- for ``reference=last`` with
  re-priming (the server's engine settings), where SPEC makes it an identity: with the last
  observed price as reference, the state after each quote does not depend on the
  threshold, and an alert at threshold T is exactly a move with ``|delta| >= T``.
  With ``reference=anchor`` it is not an identity (the anchor moves only when an alert
  fires, so the state depends on the threshold; an engine at 1 cent re-anchors on every
  1-cent move and never sees a creeping move accumulate), nor without re-priming (the server
  re-primes); there the test checks what does hold: the server's filter at threshold 1 over
  an anchor engine at T passes exactly that engine's alerts that its direction and
  attributes allow. With ``unit=prob`` the server does not apply (its threshold is in
  cents, SPEC 7); the post-filter test covers probability thresholds.

Every alert type (issue 12, SPEC 10-12), on the streams with line moves
(``quote_streams(lines=True)``: moving lines, line-only observations, several books on one
outcome) and every signal option (types, line threshold, steam books/window/threshold/groups,
cooldown, key numbers):

- ``DropEngine`` == ``batch.detect_counted`` (``BatchResult.alert_values()``), alert for alert,
  byte for byte, and every counter (the batch engine's own parity tests, tests/test_h12_batch_*,
  are the batch helper's; this is the suite's cross-check);
- the reference server's way (SPEC 7: ONE engine with every type at 1 cent and 0.25 points and
  the server's steam settings, then each connection's ``AlertFilter`` with its ``types``,
  ``threshold``, ``line_threshold``, direction and attributes) == an engine at the connection's
  settings: price drops and line moves always; steams too when the connection's engine counts
  the same moves for steam as the server (its threshold at most the server's steam threshold,
  its line threshold at most 0.5), since steam runs once, with the server's settings.

The files and replays of the same streams: tests/test_conformance_replay.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.analysis.batch import PRICE_INT_COLUMN, detect_counted
from dropengine.core.alerts import Alert, Steam
from dropengine.core.filters import AlertFilter
from dropengine.core.options import DetectOptions
from dropengine.formats.tables import LINE_ONLY_COLUMN, QUOTE_COLUMNS
from dropengine.server.ingest import ServeConfig

from .conftest import require_fast
from .strategies import (
    LINE_THRESHOLDS,
    STEAM_WINDOWS,
    detect_options,
    server_options,
    signal_options,
    signal_streams_with_options,
    streams_with_options,
)

_ENC = msgspec.json.Encoder()
_FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: The batch engine's paths (issue 14): polars, and the compiled kernel (numba; skipped without
#: it unless DROPENGINE_REQUIRE_FAST=1). Every batch call of the suite runs on both.
ACCELS = ("pure", "fast")


def use_accel(accel: str) -> str:
    """``accel`` for a batch call; the compiled path needs numba (require_fast)."""
    if accel == "fast":
        require_fast()
    return accel


# --------------------------------------------------------------------------------------
# shared helpers (tests/test_conformance_replay.py imports them)
# --------------------------------------------------------------------------------------

def wire(drops: Sequence[Alert]) -> list[bytes]:
    """Each alert's JSON bytes (SPEC 4: integers stay integers)."""
    return [d.to_json() for d in drops]


def wire_rows(frame: pl.DataFrame) -> list[bytes]:
    """Each row of an alerts frame as the CLI writes it (unknown optional fields left out)."""
    return [_ENC.encode({k: v for k, v in r.items() if v is not None}) for r in frame.iter_rows(named=True)]


def batch_wire(res: Any) -> list[bytes]:
    """A batch result's alerts as JSON: through ``BatchResult.alert_values()`` (every type, each
    price with the type it arrived with) where the batch engine has it, else the rows of its
    alerts frame."""
    values = getattr(res, "alert_values", None)
    return wire(values()) if callable(values) else wire_rows(res.alerts)


def all_int(quotes: list[Quote]) -> bool:
    """Whether an Int64 column holds every price (integers within 64 bits, or null)."""
    return all(q.price is None or (type(q.price) is int and -(2**63) <= q.price < 2**63) for q in quotes)


def as_float(quotes: list[Quote]) -> list[Quote]:
    """The quotes as a Float64 price column carries them: every price a float."""
    return [q if q.price is None or type(q.price) is float else msgspec.structs.replace(q, price=float(q.price))
            for q in quotes]


def frame_of(quotes: list[Quote]) -> tuple[pl.DataFrame, list[Quote]]:
    """A SPEC 2 quote table of ``quotes`` and the quotes as it carries them (one price dtype
    per column: Int64 when every price is an integer, else Float64 and every price a float).
    Line-only observations (SPEC 10) are marked in the optional ``line_only`` column."""
    ints = all_int(quotes)
    cols: dict[str, list[Any]] = {c: [getattr(q, c) for q in quotes] for c in QUOTE_COLUMNS}
    schema: dict[str, Any] = {c: pl.String for c in QUOTE_COLUMNS}
    schema.update(price=pl.Int64 if ints else pl.Float64, last_update=pl.Int64, line=pl.Float64)
    if not ints:
        cols["price"] = [None if p is None else float(p) for p in cols["price"]]
    if any(q.line_only for q in quotes):
        cols[LINE_ONLY_COLUMN] = [q.line_only for q in quotes]
        schema[LINE_ONLY_COLUMN] = pl.Boolean
    return pl.DataFrame(cols, schema=schema), (quotes if ints else as_float(quotes))


def engine_opts(opts: dict[str, Any]) -> dict[str, Any]:
    """``detect_options`` as ``DropEngine`` keywords (filter sets as comma-separated text)."""
    return {k: (",".join(sorted(v)) if isinstance(v, frozenset) else v) for k, v in opts.items()}


def run_engine(quotes: list[Quote], opts: dict[str, Any]) -> tuple[list[Alert], DropEngine]:
    eng = DropEngine(**engine_opts(opts))
    return eng.observe_many(quotes), eng


# --------------------------------------------------------------------------------------
# DropEngine == batch.detect_counted
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("accel", ACCELS)
@given(streams_with_options(detect_options()), st.data())
@settings(_FAST, max_examples=100)
def test_engine_equals_batch_and_engine_properties(accel: str, case: tuple[list[Quote], dict[str, Any]],
                                                   data: st.DataObject) -> None:
    """The ``check_*`` of this section and the next on the same drawn (stream, options):
    drawing the stream is most of an example, and three tests drew 220 streams from this one
    strategy; each check now sees 100 (chunking/interleaving and the post-filters had 60).
    A failure's traceback names the ``check_*`` that failed."""
    quotes, opts = case
    check_engine_equals_batch(quotes, opts, use_accel(accel))
    if accel == "pure":  # the stream engine's own checks need no second run
        check_engine_chunking_and_interleaving(quotes, opts, data)
        check_direction_and_attributes_are_post_filters(quotes, opts)


def check_engine_equals_batch(quotes: list[Quote], opts: dict[str, Any], accel: str = "auto") -> None:
    """Alerts (bytes) and all eight counters agree, for every option (the table carries the
    prices as one dtype: the engine is fed them as the table holds them)."""
    frame, carried = frame_of(quotes)
    drops, eng = run_engine(carried, opts)
    res = detect_counted(frame, accel=accel, **engine_opts(opts))
    assert res.counters == eng.counters
    assert batch_wire(res) == wire(drops)
    assert res.skipped == {}
    # the options route, with each price's type said by PRICE_INT_COLUMN: the original types
    # come back (SPEC 4) although the column is Float64
    options = DetectOptions.build(**engine_opts(opts))
    flags = pl.Series(PRICE_INT_COLUMN, [None if q.price is None else type(q.price) is int for q in quotes],
                      dtype=pl.Boolean)
    typed = detect_counted(frame.with_columns(flags), options=options, accel=accel)
    want = DropEngine.from_options(options)
    assert batch_wire(typed) == wire(want.observe_many(quotes))
    assert typed.counters == want.counters == eng.counters


# --------------------------------------------------------------------------------------
# DropEngine alone: chunking, interleaving, post-filters
# --------------------------------------------------------------------------------------

def check_engine_chunking_and_interleaving(quotes: list[Quote], opts: dict[str, Any], data: st.DataObject) -> None:
    """One quote at a time == all at once; any interleaving of the keys that keeps each key's
    order gives the same alerts (as a multiset) and counters."""
    drops, eng = run_engine(quotes, opts)
    one = DropEngine(**engine_opts(opts))
    singles = [d for q in quotes for d in one.observe(q)]
    assert wire(singles) == wire(drops)
    assert one.counters == eng.counters
    # re-interleave: a random key order, each key's quotes kept in order
    by_key: dict[tuple[str, str, str], list[Quote]] = {}
    for q in quotes:
        by_key.setdefault(q.key, []).append(q)
    order = data.draw(st.permutations(list(by_key)), label="key order")
    moved, eng2 = run_engine([q for k in order for q in by_key[k]], opts)
    assert sorted(wire(moved)) == sorted(wire(drops))
    assert eng2.counters == eng.counters


def check_direction_and_attributes_are_post_filters(quotes: list[Quote], opts: dict[str, Any]) -> None:
    """SPEC 3 rule 6: direction never changes state, and the attribute filters are pure
    predicates: the engine with them == the engine without them, then the filter."""
    drops, eng = run_engine(quotes, opts)
    bare = {k: v for k, v in opts.items() if k in ("threshold", "reference", "unit", "reprime_after_suspension")}
    everything, eng_all = run_engine(quotes, bare)
    flt = AlertFilter.build(**{k: v for k, v in engine_opts(opts).items() if k not in bare})
    assert wire([d for d in everything if flt.accepts(d)]) == wire(drops)
    both = {**opts, "direction": "both"}
    union, _ = run_engine(quotes, both)
    fav, _ = run_engine(quotes, {**both, "direction": "toward_favorite"})
    dog, _ = run_engine(quotes, {**both, "direction": "toward_dog"})
    assert sorted(wire(fav) + wire(dog)) == sorted(wire(union))  # both is exactly the union
    c, c_all = eng.counters, eng_all.counters
    assert (c.seen, c.primed, c.stale, c.invalid, c.suspended, c.repeated, c.detected) == (
        c_all.seen, c_all.primed, c_all.stale, c_all.invalid, c_all.suspended, c_all.repeated, c_all.detected)


# --------------------------------------------------------------------------------------
# the server's way: one engine at 1 cent, then each subscription's filter
# --------------------------------------------------------------------------------------

def server_filter(opts: dict[str, Any], threshold: int) -> Any:
    """The server's per-connection filter for ``opts`` (SPEC 7 parameters)."""
    from dropengine.core.filters import AlertFilter

    event_ids = opts.get("event_id")
    return AlertFilter.build(
        threshold=threshold,
        direction=opts["direction"],
        sports=opts.get("sports"),
        event_id=None if event_ids is None else next(iter(event_ids)),
        bookmakers=opts.get("bookmakers"),
        markets=opts.get("markets"),
        kinds=opts.get("kinds"),
    )


def server_alerts(quotes: list[Quote], opts: dict[str, Any]) -> list[Alert]:
    """What one connection with ``opts`` receives: the server's engine (1 cent, both, last,
    re-priming: ``DropEngine(threshold=1)`` as server/app.py builds it), then its filter."""
    detector = DropEngine(threshold=1)
    flt = server_filter(opts, opts["threshold"])
    return [d for d in detector.observe_many(quotes) if flt.accepts(d)]


@given(streams_with_options(server_options()))
@settings(_FAST, max_examples=120)
def test_server_filter_against_engines(case: tuple[list[Quote], dict[str, Any]]) -> None:
    """Both ``check_*`` below on the same drawn (stream, server options): 120 streams, where
    two tests drew 180 (the anchor check had 60)."""
    quotes, opts = case
    check_server_filter_equals_engine(quotes, opts)
    check_server_filter_over_anchor_engine(quotes, opts)


def check_server_filter_equals_engine(quotes: list[Quote], opts: dict[str, Any]) -> None:
    """reference=last with re-priming: engine at 1 cent + subscription filter at T and
    direction == an engine at T and direction, alert for alert and byte for byte."""
    opts = {**opts, "reference": "last", "reprime_after_suspension": True}
    served = server_alerts(quotes, opts)
    drops, _ = run_engine(quotes, opts)
    assert wire(served) == wire(drops)


def check_server_filter_over_anchor_engine(quotes: list[Quote], opts: dict[str, Any]) -> None:
    """Where the identity does not hold (reference=anchor, or no re-priming: the engine's
    state depends on its threshold), what holds: the subscription filter at threshold 1 over
    an engine at T (direction both, no attribute filter) passes exactly the alerts of the
    engine at T with the subscription's direction and attribute filters."""
    bare = {k: opts[k] for k in ("threshold", "reference", "unit", "reprime_after_suspension")}
    everything, _ = run_engine(quotes, bare)
    flt = server_filter(opts, 1)
    drops, _ = run_engine(quotes, opts)
    assert wire([d for d in everything if flt.accepts(d)]) == wire(drops)


# --------------------------------------------------------------------------------------
# the exact cases of the issue-11 defects (each was an xfail(strict) here until its fix landed)
# --------------------------------------------------------------------------------------

def _q(price: int | float | None, lu: int, side: str = "h2h_home") -> Quote:
    return Quote("basketball_nba", "ev1", "pinnacle", side, price, lu)


def test_defect1_fractional_boundary_engine_equals_server_filter() -> None:
    """Issue 11 defect 1 (fixed in a0635ee): the engine alerted, the server filter dropped it."""
    quotes = [_q(261.9, 1000), _q(251.9, 2000)]
    opts: dict[str, Any] = {"threshold": 10, "direction": "both"}
    drops, _ = run_engine(quotes, opts)
    assert len(drops) == 1  # SPEC 3 rule 4: a move of exactly the threshold is never lost to rounding
    assert wire(server_alerts(quotes, opts)) == wire(drops)


@pytest.mark.parametrize("accel", ACCELS)
def test_defect1_case_engine_equals_batch(accel: str) -> None:
    """The same boundary move through the batch engine: the same alert, byte for byte
    (finding F1: the batch engine wrote ``-9.999999999999972`` where the engine wrote ``-10.0``)."""
    quotes = [_q(261.9, 1000), _q(251.9, 2000)]
    frame, carried = frame_of(quotes)
    drops, eng = run_engine(carried, {"threshold": 10})
    res = detect_counted(frame, threshold=10, accel=use_accel(accel))
    assert len(drops) == 1
    assert batch_wire(res) == wire(drops)
    assert res.counters == eng.counters


# --------------------------------------------------------------------------------------
# every alert type (SPEC 10-12)
# --------------------------------------------------------------------------------------

def _g1_case() -> tuple[list[Quote], dict[str, Any]]:
    """A suspension at a series' line, then (no re-priming) a line move: ``prev_price`` is null
    (SPEC 10, golden finding G1). The batch engine gave the price before the suspension until
    a5108bd; random streams find it about once in a few hundred examples, so it always runs."""
    t0 = 1_747_000_000_000

    def q(book: str, side: str, price: float | None, s: int) -> Quote:
        return Quote("americanfootball_nfl", "ev4", book, side, price, t0 + s * 1000)

    quotes = [q("draftkings", "spread_home@-3", -130.1, 2), q("draftkings", "spread_home@-3", None, 3),
              q("pinnacle", "spread_home@-3", -130.1, 4), q("draftkings", "spread_home@-2.5", -130.1, 7)]
    return quotes, {"threshold": 10, "direction": "both", "reference": "last", "unit": "cents",
                    "reprime_after_suspension": False, "types": frozenset({"line_move"}), "line_threshold": 0.5}


@pytest.mark.parametrize("accel", ACCELS)
@given(signal_streams_with_options(signal_options()))
@example(_g1_case())
@example((_g1_case()[0], {**_g1_case()[1], "reference": "anchor", "types": frozenset({"line_move", "steam"})}))
@settings(_FAST, max_examples=40)
def test_every_type_engine_equals_batch(accel: str, case: tuple[list[Quote], dict[str, Any]]) -> None:
    """Line moves, steams and cooled alerts too: the batch engine's alert values (bytes) and all
    its counters are the stream engine's, for every signal option."""
    quotes, opts = case
    frame, carried = frame_of(quotes)
    alerts, eng = run_engine(carried, opts)
    res = detect_counted(frame, accel=use_accel(accel), **engine_opts(opts))
    assert res.skipped == {}
    assert wire(res.alert_values()) == wire(alerts)
    assert res.counters == eng.counters


@st.composite
def signal_server_options(draw: st.DrawFn) -> dict[str, Any]:
    """A connection's settings (SPEC 7: types, integer threshold, line_threshold 0.25..20,
    direction, attributes) and the server's steam settings (``serve --steam-*``)."""
    opts = draw(server_options())
    opts.update(reference="last", reprime_after_suspension=True)
    opts["types"] = frozenset(draw(st.sets(st.sampled_from(("odds_drop", "line_move", "steam")), min_size=1)))
    opts["line_threshold"] = draw(st.sampled_from((*LINE_THRESHOLDS, 20)))
    opts["server_steam"] = {
        "steam_books": draw(st.sampled_from((3, 2, 1, 4))),
        "steam_window_ms": draw(st.sampled_from(STEAM_WINDOWS)),
        "steam_threshold": draw(st.sampled_from((10, 10, 1, 5, 25))),
    }
    return opts


@given(signal_streams_with_options(signal_server_options()))
@settings(_FAST, max_examples=80)
def test_every_type_server_filter_equals_engine(case: tuple[list[Quote], dict[str, Any]]) -> None:
    """One server engine (``ServeConfig.detect_options()``: every type, 1 cent, 0.25 points, the
    server's steam settings), each connection's ``AlertFilter`` == an engine at the connection's
    types, thresholds, direction and attributes with the server's steam settings."""
    quotes, opts = case
    steam = opts.pop("server_steam")
    server = DropEngine.from_options(ServeConfig(**steam).detect_options())
    event_ids = opts.get("event_id")
    flt = AlertFilter.build(
        threshold=opts["threshold"], line_threshold=opts["line_threshold"], types=opts["types"],
        direction=opts["direction"], sports=opts.get("sports"),
        event_id=None if event_ids is None else next(iter(event_ids)), bookmakers=opts.get("bookmakers"),
        markets=opts.get("markets"), kinds=opts.get("kinds"),
    )
    served = [a for a in server.observe_many(quotes) if flt.accepts(a)]
    # the connection's own engine counts for steam what the server counts, where it can: a
    # steam threshold below the detection threshold is refused (only detected moves count)
    own = {**opts, **steam, "steam_threshold": max(steam["steam_threshold"], opts["threshold"]),
           "steam_line_threshold": max(0.5, opts["line_threshold"])}
    alerts, _ = run_engine(quotes, own)
    assert wire([a for a in served if type(a) is not Steam]) == wire([a for a in alerts if type(a) is not Steam])
    if opts["threshold"] <= steam["steam_threshold"] and opts["line_threshold"] <= 0.5:
        assert wire(served) == wire(alerts)
