"""fix17 (session 17), break23's B23-5: a Ctrl-C while ``replay`` starts, before its output exists
(for ``--workers``, the cluster extra's import of dask and distributed, ~1 s), ends the run as any
other Ctrl-C of the command does: exit 130, one line saying so, no traceback, and a previous output
file left as it was (SIGTERM alike: 143). Before, click's "Aborted!" and exit 1 (the guard was set
after start-up), and a SIGTERM killed the process (-15).

A real import hook in the child slows one module of the extra, so the signal lands in the import
every time (tests/ctrlc_util.py); the cluster never starts.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from dropengine import Quote

from .ctrlc_util import ctrl_c_in_import
from .parquet_util import write_quotes


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("module", "signum", "code", "said"),
    [
        ("dask.base", signal.SIGINT, 130, "interrupted (Ctrl-C)"),
        ("distributed.client", signal.SIGINT, 130, "interrupted (Ctrl-C)"),
        # a service manager's stop: 143 as after start-up (without the handler the process died of it)
        ("distributed.client", signal.SIGTERM, 143, "terminated (SIGTERM)"),
    ],
)
def test_a_signal_while_the_cluster_extra_is_imported_ends_the_run_and_leaves_the_output_as_it_was(
    tmp_path: Path, module: str, signum: int, code: int, said: str
) -> None:
    pytest.importorskip("distributed")
    quotes = [Quote("nba", "e1", "pin", "h2h_home", p, 1_700_000_000_000 + i) for i, p in enumerate((-110, -130, -150))]
    src = write_quotes(tmp_path / "q.parquet", quotes)
    out = tmp_path / "alerts.ndjson"
    out.write_bytes(b'{"a previous run": 1}\n')
    args = ["replay", "--engine", "batch", "--workers", "1", "-o", str(out), str(src)]
    got, err = ctrl_c_in_import(args, module, signum=signum)
    assert "Traceback" not in err, err[-2000:]
    assert "Aborted" not in err, err[-2000:]
    assert got == code, err[-2000:]
    assert err.strip().splitlines() == [f"{said} while starting: no input read, no output written"]
    assert out.read_bytes() == b'{"a previous run": 1}\n'
