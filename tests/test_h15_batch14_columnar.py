"""Issue 14 (aim 1, signals): the compiled batch path writes line moves and steams column by column
and builds Python alert values only when a caller asks for them.

Invariants, on adversarial signal streams (tests/strategies.py) and on streams made for steam
(test_h14_steam_batch's):

- while ``detect_counted(accel="fast")`` runs, and while a caller reads its table, its counters and
  :meth:`BatchResult.number_types`, no alert value is built (the value builders are replaced by
  ones that fail);
- the table is exactly the pure path's, and exactly the rows :func:`alert_row` writes of the values
  (by value: a typed column holds an int as a float);
- the values, built afterwards on demand, are the pure path's and the stream engine's, byte for byte;
- :meth:`BatchResult.number_types` names the Python types of each number field among the values,
  as a table writer (``io.sinks``) would find them walking the values;
- ``AlertWriter.write_batch`` writes the same CSV and Parquet bytes from either path's result.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from polars.testing import assert_frame_equal

from dropengine import DropEngine, Quote
from dropengine.analysis import batch
from dropengine.analysis.batch import BatchResult, detect_counted
from dropengine.core import steam as core_steam
from dropengine.core.alerts import NUMBER_FIELDS, Alert, alert_row
from dropengine.core.options import DetectOptions
from dropengine.fast import signals
from dropengine.io.sinks import AlertWriter

from .conftest import require_fast
from .strategies import signal_options, signal_streams_with_options
from .test_h12_batch_equivalence import frame_of
from .test_h14_steam_batch import _by_hand, steam_options, steam_streams

_ENC = msgspec.json.Encoder()
_SETTINGS = settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def wire(alerts: list[Alert]) -> list[bytes]:
    return [_ENC.encode(a) for a in alerts]


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("an alert value was built on the table path")


def table_only(frame: pl.DataFrame, opts: dict[str, Any]) -> tuple[BatchResult, pl.DataFrame, dict[str, set[type]]]:
    """``detect_counted(accel="fast")`` and what a table writer reads of it (the table, the
    counters, the number types) with every alert value builder failing."""
    with pytest.MonkeyPatch.context() as mp:
        for owner, name in ((batch, "_line_values"), (batch, "_drop_values"), (signals, "steam_alerts"),
                            (core_steam, "steam_alert"), (core_steam, "book_of")):
            mp.setattr(owner, name, _boom)
        res = detect_counted(frame, accel="fast", **opts)
        alerts = res.alerts
        _ = res.counters, res.rows, res.signals
        numbers = res.number_types([c for c in alerts.columns if c in NUMBER_FIELDS])
    return res, alerts, numbers


def _by_value(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows by value (a typed column makes the ints of a float column floats)."""
    return [{k: (float(v) if type(v) is int else v) for k, v in r.items()} for r in rows]


def check(quotes: list[Quote], opts: dict[str, Any]) -> BatchResult:
    require_fast()
    frame = frame_of(quotes)
    res, alerts, numbers = table_only(frame, opts)
    pure = detect_counted(frame, accel="pure", **opts)
    assert_frame_equal(alerts, pure.alerts, check_exact=True, check_dtypes=True)
    assert res.counters == pure.counters
    assert res.rows.to_list() == pure.rows.to_list()
    values = res.alert_values()  # built now, on demand
    eng = DropEngine(**opts)
    assert wire(values) == wire(pure.alert_values()) == wire(eng.observe_many(quotes))
    assert res.counters == eng.counters
    columns = tuple(alerts.columns)
    assert _by_value(alerts.with_columns(pl.col(pl.Categorical).cast(pl.String)).to_dicts()) == _by_value(
        [alert_row(a, columns) for a in values])
    walked = {c: {type(v) for a in values if (v := getattr(a, c, None)) is not None} for c in numbers}
    assert numbers == walked
    assert pure.number_types(list(numbers)) == walked
    return res


@_SETTINGS
@given(signal_streams_with_options(signal_options()))
def test_columnar_signals_build_no_value_and_equal_the_values(case: tuple[list[Quote], dict[str, Any]]) -> None:
    quotes, opts = case
    check(quotes, opts)


@_SETTINGS
@given(steam_streams(), steam_options())
def test_columnar_steams_build_no_value_and_equal_the_values(quotes: list[Quote], opts: dict[str, Any]) -> None:
    check(quotes, opts)


@pytest.mark.parametrize("extra", [{}, {"direction": "toward_dog"}, {"types": "steam"}, {"bookmakers": "nobody"},
                                   {"bookmakers": "pinnacle"}, {"bookmakers": "draftkings"}, {"bookmakers": "fanduel"}])
def test_steams_by_hand_and_their_filter(extra: dict[str, Any]) -> None:
    """Steams fire here; a steam passes a bookmakers filter when any of its books is listed
    (SPEC 11 books; AlertFilter.accepts): exactly the unfiltered steams holding that book."""
    opts: dict[str, Any] = {"types": "odds_drop,line_move,steam", "cooldown_ms": 60_000, "steam_books": 2}
    res = check(_by_hand(), {**opts, **extra})
    assert res.counters.steam > 0
    book = extra.get("bookmakers")
    if book is not None:
        every = detect_counted(frame_of(_by_hand()), accel="fast", **opts).alerts.filter(pl.col("type") == "steam")
        holding = every.filter(pl.col("books").str.contains(f'"bookmaker":"{book}"', literal=True))
        assert_frame_equal(res.alerts.filter(pl.col("type") == "steam"), holding)


def test_write_batch_same_bytes_either_path(tmp_path: Path) -> None:
    """A CSV and a Parquet file written from the compiled result hold the pure result's bytes."""
    require_fast()
    quotes = _by_hand()
    opts: dict[str, Any] = {"types": "odds_drop,line_move,steam", "steam_books": 2}
    frame = frame_of(quotes)
    for suffix in (".csv", ".parquet"):
        files = []
        for accel in ("pure", "fast"):
            path = tmp_path / f"{accel}{suffix}"
            with AlertWriter(path, types=DetectOptions.build(**opts).types) as writer:
                writer.write_batch(detect_counted(frame, accel=accel, **opts))
            files.append(path.read_bytes())
        assert files[0] == files[1]


@pytest.mark.parametrize("sizes", [[1], [3, 1, 2], [40, *([1] * 5)], [2] * 700, [1] * 2000 + [600]])
def test_joined_groups_either_way(sizes: list[int]) -> None:
    """The steam ``books`` join (padded array, or grouped when one steam is far wider) is each
    group's texts joined by commas, in order."""
    import numpy as np

    texts = [f'{{"n":{i}}}' for i in range(sum(sizes))]
    start = np.concatenate(([0], np.cumsum(sizes)))
    got = batch._joined(pl.Series(texts, dtype=pl.String), start).to_list()
    assert got == [",".join(texts[a:b]) for a, b in itertools.pairwise(start.tolist())]
