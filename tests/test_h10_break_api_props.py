"""Issue 10 (api-breaker): batch == stream where the existing property does not look.

``tests/test_batch.py::test_batch_equals_stream`` draws times a few minutes apart near one
instant and a Float64 price column; here: times spread over the whole Int64 range (the batch
stale rule switches to its general form past 2**40 ms), integer price columns, per-row arrival
times (``timestamp_column`` against ``now_ms``, nulls included) and extreme thresholds.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.analysis.batch import detect_counted

from .strategies import quote_streams as streams
from .test_batch import frame, norm
from .test_properties import configs, focused


def stream(quotes: list[Quote], stamps: list[int | None] | None = None, **cfg: Any) -> tuple[list[Any], Any]:
    eng = DropEngine(**cfg)
    out: list[Any] = []
    for i, q in enumerate(quotes):
        out += [d.to_dict() for d in eng.observe(q, now_ms=None if stamps is None else stamps[i])]
    return out, eng.counters


def respaced(quotes: list[Quote], scale: int, offset: int) -> list[Quote]:
    """The same stream with its times stretched (order, ties and staleness kept)."""
    if not quotes:
        return quotes
    t0 = min(q.last_update for q in quotes)
    out = []
    for q in quotes:
        t = offset + (q.last_update - t0) * scale
        out.append(Quote(q.sport_key, q.event_id, q.bookmaker, q.side, q.price, min(t, 2**63 - 1),
                         q.kind, q.market_key, q.market, q.player, q.line, q.home_team, q.away_team, q.commence_time))
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(focused(), st.sampled_from([1, 10**6, 10**9, 10**12]), st.sampled_from([0, 1, 2**40, 2**62]))
def test_batch_equals_stream_over_wide_time_spans(case: tuple[list[Quote], dict[str, Any]], scale: int,
                                                  offset: int) -> None:
    quotes, cfg = case
    quotes = respaced(quotes, scale, offset)
    want, counters = stream(quotes, **cfg)
    result = detect_counted(frame(quotes), **cfg)
    assert norm(result.alerts.to_dicts()) == norm(want)
    assert result.counters == counters


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(max_keys=6, max_len=60), configs(), st.data())
def test_batch_timestamp_column_equals_stream_now_ms(quotes: list[Quote], cfg: dict[str, Any],
                                                     data: st.DataObject) -> None:
    stamps = data.draw(st.lists(st.one_of(st.none(), st.integers(0, 2**62)), min_size=len(quotes),
                                max_size=len(quotes)))
    want, counters = stream(quotes, stamps, **cfg)
    df = frame(quotes).with_columns(pl.Series("arrived", stamps, dtype=pl.Int64))
    result = detect_counted(df, timestamp_column="arrived", **cfg)
    assert norm(result.alerts.to_dicts()) == norm(want)
    assert result.counters == counters


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(max_keys=6, max_len=60), st.sampled_from([1e-300, 5e-324, 1e-9, 1e308, 2**53 + 1, 100_000, 199_800]),
       st.sampled_from(["last", "anchor"]))
def test_batch_equals_stream_at_extreme_cent_thresholds(quotes: list[Quote], threshold: float, reference: str) -> None:
    want, counters = stream(quotes, threshold=threshold, reference=reference)
    result = detect_counted(frame(quotes), threshold=threshold, reference=reference)
    assert norm(result.alerts.to_dicts()) == norm(want)
    assert result.counters == counters


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(max_keys=6, max_len=60, fractional=False), configs())
def test_batch_equals_stream_with_an_integer_price_column(quotes: list[Quote], cfg: dict[str, Any]) -> None:
    # integer prices only (fractional=False); invalid ones that are floats (NaN, 99.5) or that no
    # Int64 column holds (10**30) dropped
    quotes = [q for q in quotes if q.price is None or (type(q.price) is int and abs(q.price) < 2**63)]
    want, counters = stream(quotes, **cfg)
    df = frame(quotes).with_columns(pl.col("price").cast(pl.Int64))
    result = detect_counted(df, **cfg)
    assert norm(result.alerts.to_dicts()) == norm(want)
    assert result.counters == counters
