"""Issue 10 (api-breaker): ``backtest --out`` into directories that are not empty or not ours.

The report writer removes a previous run's charts when a run draws none (so a directory never
mixes runs): it must remove only charts it drew, never a user's file of the same name, and a
path it cannot write is one error line naming ``out``, not a traceback. matplotlib is needed only
to draw: a run with nothing to chart writes its tables without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropengine import ConfigError
from dropengine.analysis.backtest import BacktestConfig, run_backtest
from dropengine.cli.group import main
from dropengine.io.report import CHARTS, write_report

from .test_h10_break_api_backtest import rows

pytest.importorskip("matplotlib")


def with_closes():  # type: ignore[no-untyped-def]
    return run_backtest(rows())


def without_closes():  # type: ignore[no-untyped-def]
    return run_backtest(rows(), BacktestConfig(close="last-before-commence", sharp="nobody"))


def test_a_users_file_named_like_a_chart_is_not_removed(tmp_path: Path) -> None:
    # before: any clv_distribution.png in DIR was deleted by a run that drew no chart
    mine = tmp_path / "clv_distribution.png"
    mine.write_bytes(b"\x89PNG\r\n\x1a\n my own chart")
    write_report(without_closes(), tmp_path)
    assert mine.read_bytes().endswith(b"my own chart")


def test_our_previous_charts_are_removed_by_a_run_without_charts(tmp_path: Path) -> None:
    written = write_report(with_closes(), tmp_path)
    assert {p.name for p in written} >= set(CHARTS)
    write_report(without_closes(), tmp_path)
    assert not any((tmp_path / c).exists() for c in CHARTS)


def test_a_chart_path_that_is_a_directory_is_left_alone(tmp_path: Path) -> None:
    # before: IsADirectoryError from unlink
    (tmp_path / "cumulative_clv.png").mkdir()
    write_report(without_closes(), tmp_path)
    assert (tmp_path / "cumulative_clv.png").is_dir()


def test_an_output_that_cannot_be_written_is_a_config_error_naming_out(tmp_path: Path) -> None:
    # before: IsADirectoryError traceback from write_csv
    (tmp_path / "alerts.csv").mkdir()
    with pytest.raises(ConfigError, match="out: cannot write"):
        write_report(with_closes(), tmp_path)


def test_no_matplotlib_needed_when_there_is_nothing_to_draw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # before: ConfigError "charts need matplotlib" although no chart was to be drawn
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    written = write_report(without_closes(), tmp_path / "a")
    assert {p.name for p in written} == {"alerts.parquet", "alerts.csv", "summary.csv", "report.md"}
    with pytest.raises(ConfigError, match="matplotlib"):
        write_report(with_closes(), tmp_path / "b")
    assert not (tmp_path / "b").exists()  # refused before writing anything


def test_cli_out_without_closes_needs_no_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "q.csv"
    rows().write_csv(src)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    res = CliRunner().invoke(main, ["backtest", "-q", str(src), "--sharp", "nobody", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "no alert has a close, so no charts" in res.output
