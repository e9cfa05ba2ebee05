"""The ``replay`` command's collector policy covers its batch engine too (session 20): while
``--engine batch`` reads and detects, what survives a collection of the older generations is
frozen (its imports, polars and numba loaded meanwhile, are not walked by every full collection:
two gen-2 collections, ~0.5 s of CPU at 10M quotes), and the collector is as it was afterwards."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropengine.cli import main
from dropengine.cli import replay as cli_replay

QUOTES = (
    "sport_key,event_id,bookmaker,side,price,last_update\n"
    "nfl,e1,pin,h2h_home,-110,1000\nnfl,e1,pin,h2h_home,-130,2000\nnfl,e1,pin,h2h_home,-150,3000\n"
)


@pytest.mark.parametrize("engine", ["batch", "stream"])
def test_the_command_runs_each_engine_under_the_policy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine: str
) -> None:
    entered: list[int] = []
    real = cli_replay._long_lived_frozen

    def spy(guard: object) -> object:
        entered.append((gc.get_freeze_count(), guard is not None))  # (the command hands its guard: RR21-6)
        return real(guard)  # type: ignore[arg-type]

    gc.unfreeze()
    monkeypatch.setattr(cli_replay, "_long_lived_frozen", spy)
    quotes = tmp_path / "q.csv"
    quotes.write_text(QUOTES)
    out = tmp_path / "a.csv"
    got = CliRunner().invoke(main, ["replay", "--engine", engine, "-q", str(quotes), "-o", str(out)])
    assert got.exit_code == 0, got.output
    assert entered == [(0, True)]
    assert len(out.read_text().splitlines()) == 3  # (a header and the two drops)
    assert gc.get_freeze_count() == 0  # the collector as it was
