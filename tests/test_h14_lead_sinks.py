"""AlertWriter after issue 14's column-wise batch writer (review14 F1, F2): a second close keeps the
file the first one wrote; alerts written after a whole batch run in the same CSV/Parquet file are
refused with a ConfigError naming the file, never dropped while counted."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dropengine import Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.errors import ConfigError
from dropengine.formats.tables import QUOTE_COLUMNS, table_row
from dropengine.io.sinks import AlertWriter

QUOTES = [Quote("nba", "e1", "pin", "h2h_home", -110, 1000), Quote("nba", "e1", "pin", "h2h_home", -130, 2000),
          Quote("nba", "e2", "pin", "h2h_home", -110, 1000), Quote("nba", "e2", "pin", "h2h_home", -140, 3000)]


def _frame() -> pl.DataFrame:
    rows = [table_row(q) for q in QUOTES]
    return pl.DataFrame({c: [r.get(c) for r in rows] for c in QUOTE_COLUMNS})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_second_close_keeps_the_file(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"a{suffix}"
    result = detect_counted(_frame())
    with AlertWriter(out) as w:
        w.write_batch(result)
        w.close()
    read = pl.read_csv(out) if suffix == ".csv" else pl.read_parquet(out)
    assert read.height == 2 == w.count


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_second_close_after_rows_keeps_the_file(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"a{suffix}"
    alerts = detect_counted(_frame()).alert_values()
    with AlertWriter(out) as w:
        w.write(alerts)
        w.close()
    read = pl.read_csv(out) if suffix == ".csv" else pl.read_parquet(out)
    assert read.height == 2


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_alerts_after_a_batch_run_are_refused_not_lost(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"a{suffix}"
    result = detect_counted(_frame())
    w = AlertWriter(out)
    w.write_batch(result)
    with pytest.raises(ConfigError, match="already holds a whole batch run"):
        w.write(result.alert_values()[:1])
    w.close()
    read = pl.read_csv(out) if suffix == ".csv" else pl.read_parquet(out)
    assert read.height == w.count == 2


def test_a_command_module_raising_keyerror_is_no_unknown_command(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """review14 F9: a lazily loaded command whose module raises KeyError on import was reported as
    'No such command' (Mapping.get swallows the KeyError); now the failure itself shows."""
    from dropengine.cli.group import _LazyCommands

    (tmp_path / "h14_boom_cmd.py").write_text("raise KeyError('inside the module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    commands = _LazyCommands({"boom": "h14_boom_cmd:boom"})
    with pytest.raises(RuntimeError, match="loading the 'boom' command"):
        commands.get("boom")
    assert commands.get("nope") is None  # an unknown name is still no command
