"""Ctrl-C and SIGTERM while ``serve``, ``ingest`` and ``detect`` start (session 17, start17).

Before: click's "Aborted!" with exit 1 after a Ctrl-C, death by the signal (-15) after a SIGTERM,
anywhere before uvicorn (``serve``) or the event loop (``ingest``, ``detect``) set their own
handlers: the server extra's import (~0.3 s), the bus extra's, the port, the state's lock and
restore. Now the start policy of every command (cli/interrupt.py): exit 130 (143 after SIGTERM),
one line on stderr naming the signal and what was not done, no traceback, no "Aborted!", the
state file as it was. Each test interrupts a real child inside a slowed import (ctrlc_util).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from .ctrlc_util import ctrl_c_in_import

pytest.importorskip("uvicorn")
pytest.importorskip("nats")

_ROOT = Path(__file__).resolve().parents[1]
_DEMO = _ROOT / "fixtures" / "demo_nba_frames.ndjson"
_SIGNALS = [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "terminated (SIGTERM)")]
# a port nothing listens on: an interrupted start never connects (the import comes first)
_NO_BUS = "nats://127.0.0.1:9"


def _one_line(err: str, expected: str) -> None:
    assert "Traceback" not in err and "Aborted" not in err, err
    assert err.splitlines() == [expected], err


@pytest.mark.parametrize(("signum", "status", "said"), _SIGNALS)
@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("dropengine.server.app", []),  # the server extra's import, before the port is bound
        ("dropengine.server.delivery", ["--sink", "ndjson:{tmp}/sink.ndjson"]),  # after the bind and the lock
    ],
)
def test_serve_interrupted_while_it_starts_ends_with_one_line_and_keeps_the_state(
    tmp_path: Path, signum: int, status: int, said: str, module: str, extra: list[str]
) -> None:
    state = tmp_path / "serve.state"
    before = b"a previous state file: never read, written or truncated by an interrupted start\n"
    state.write_bytes(before)
    args = ["serve", "--source", f"replay:{_DEMO}", "--port", "0", "--state", str(state)]
    rc, err = ctrl_c_in_import([*args, *(a.format(tmp=tmp_path) for a in extra)], module, signum=signum)
    assert rc == status, err
    _one_line(err, f"{said} while starting: nothing served, --state {state} as it was")
    assert state.read_bytes() == before
    assert not (tmp_path / "sink.ndjson").exists()  # (the sink is opened by the server's lifespan only)


@pytest.mark.parametrize(("signum", "status", "said"), _SIGNALS)
def test_serve_interrupted_in_run_foreground_before_its_handlers_saves_nothing(
    tmp_path: Path, signum: int, status: int, said: str
) -> None:
    """uvicorn's Config (h11's import) is built after the ready line and before run_foreground sets
    its handlers. Handed over before run_foreground, a signal there was click's "Aborted!" (or
    death), and server.finish() in serve's ``finally`` first saved a state over the file: the start
    guard now stays until run_foreground's handlers replace it, and an interrupted start saves nothing."""
    state = tmp_path / "serve.state"
    before = b"not a state: a final save would replace it\n"
    state.write_bytes(before)
    args = ["serve", "--source", f"replay:{_DEMO}", "--port", "0", "--state", str(state)]
    rc, err = ctrl_c_in_import(args, "uvicorn.protocols.http.h11_impl", signum=signum)
    assert rc == status, err
    assert "Traceback" not in err and "Aborted" not in err, err
    *ready, last = err.splitlines()
    assert last == f"{said} while starting: nothing served, --state {state} as it was", err
    assert ready and all(line.startswith("dropengine serve: ") for line in ready), err  # (printed before the signal)
    assert state.read_bytes() == before


@pytest.mark.parametrize(("signum", "status", "said"), _SIGNALS)
def test_serve_bus_interrupted_while_it_imports_the_bus_extra(signum: int, status: int, said: str) -> None:
    rc, err = ctrl_c_in_import(["serve", "--bus", _NO_BUS, "--port", "0"], "nats", signum=signum)
    assert rc == status, err
    _one_line(err, f"{said} while starting: nothing served")


@pytest.mark.parametrize(("signum", "status", "said"), _SIGNALS)
@pytest.mark.parametrize(
    ("args", "module"),
    [
        (["detect", "--bus", _NO_BUS, "--partition", "0/1"], "nats"),
        # the detector's modules: imported inside the event loop before (a signal there was taken
        # for a stop, and the process went on to connect)
        (["detect", "--bus", _NO_BUS, "--partition", "0/1"], "dropengine.bus.detector"),
        (["ingest", "--source", f"replay:{_DEMO}", "--bus", _NO_BUS, "--partitions", "1"], "nats"),
        (["ingest", "--source", f"replay:{_DEMO}", "--bus", _NO_BUS, "--partitions", "1"], "dropengine.bus.ingest"),
    ],
)
def test_ingest_and_detect_interrupted_while_they_start_end_with_one_line(
    signum: int, status: int, said: str, args: list[str], module: str
) -> None:
    rc, err = ctrl_c_in_import(args, module, signum=signum)
    assert rc == status, err
    _one_line(err, f"{said} while starting: not connected to the bus, nothing published")
