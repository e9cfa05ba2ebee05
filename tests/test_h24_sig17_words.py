"""Issue 14 (session 17, sig17): the detector's own words are Categorical in a signals table.

In a table of several alert types (``BatchResult.alerts`` when line moves or steams are asked),
``type``, ``direction``, ``key_numbers`` and ``leader`` are Categorical on every path and for any
input (``analysis.batch._WORD_COLUMNS``: 4 bytes a row instead of a 16-byte String view), with the
stream engine's text in them; the price drops' own table (``ALERT_FIELDS``) is unchanged. Files
written from the table (``AlertWriter.write_batch``) are the files written from the alert values:
CSV and NDJSON byte for byte, Parquet the same frame read back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from polars.testing import assert_frame_equal

from dropengine.analysis.batch import detect_counted
from dropengine.core.alerts import ALERT_FIELDS, alert_fields, alert_row
from dropengine.core.options import DetectOptions
from dropengine.io.sinks import AlertWriter

from .conftest import require_fast
from .strategies import signal_options
from .test_h12_batch_equivalence import frame_of, signal_streams

_WORDS = ("type", "direction", "key_numbers", "leader")
_SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _written(result: Any, types: frozenset[str], suffix: str, directory: Path, batch: bool) -> bytes | pl.DataFrame:
    path = directory / f"{'batch' if batch else 'values'}{suffix}"
    writer = AlertWriter(path, types=types)
    if batch:
        writer.write_batch(result)
    else:
        writer.write(result.alert_values())
    writer.close()
    return pl.read_parquet(path) if suffix == ".parquet" else path.read_bytes()


@_SETTINGS
@given(signal_streams(), signal_options())
def test_words_are_categorical_with_the_stream_text(quotes: list[Any], opts: dict[str, Any]) -> None:
    require_fast()
    options = DetectOptions.build(**opts)
    frame = frame_of(quotes)
    results = {accel: detect_counted(frame, options=options, accel=accel) for accel in ("pure", "fast")}
    columns = alert_fields(options.types)
    for result in results.values():
        alerts = result.alerts
        assert alerts.columns == list(columns)
        for c in _WORDS:
            if c in alerts.columns:
                want = pl.Categorical() if columns != ALERT_FIELDS else pl.String()
                assert alerts.schema[c] == want, (c, alerts.schema[c])
        # the text as the alert values' rows write it
        rows = [alert_row(a, columns) for a in result.alert_values()]
        for c in _WORDS:
            if c in alerts.columns:
                assert alerts.get_column(c).cast(pl.String).to_list() == [r[c] for r in rows]
    as_text = {a: r.alerts.with_columns(pl.col(pl.Categorical).cast(pl.String)) for a, r in results.items()}
    assert_frame_equal(as_text["pure"], as_text["fast"])
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".csv", ".ndjson", ".parquet"):
            for result in results.values():
                got = _written(result, options.types, suffix, Path(tmp), batch=True)
                want_file = _written(result, options.types, suffix, Path(tmp), batch=False)
                if isinstance(got, pl.DataFrame):
                    assert isinstance(want_file, pl.DataFrame)
                    assert_frame_equal(got, want_file)
                else:
                    assert got == want_file
