"""``serve --bus`` interrupted after its probe of the alert log, before uvicorn's handlers (start17).

The probe's event loop takes the signals while it waits for the bus (a stop there is a clean one,
exit 0, as documented) and gives them back to Python's defaults when it ends; the start guard is set
again after it, until run_foreground sets its own handlers. A signal in between (BusServer, uvicorn's
Config: h11's import) ends the start with exit 130/143 and the start's line, never "Aborted!" or
death by SIGTERM. Needs a nats-server (DROPENGINE_REQUIRE_BUS=1 in CI).
"""

from __future__ import annotations

import asyncio
import itertools
import signal

import pytest

from . import natsutil
from .ctrlc_util import ctrl_c_in_import
from .natsutil import NatsServer

pytestmark = [pytest.mark.bus, pytest.mark.timeout(120)]
pytest.importorskip("nats")
pytest.importorskip("uvicorn")

from dropengine.bus.config import BusConfig  # noqa: E402
from dropengine.bus.connect import connect, ensure_streams  # noqa: E402

nats_server_module = natsutil.nats_server_module
_prefixes = itertools.count()


@pytest.mark.parametrize(
    ("signum", "status", "said"),
    [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
)
def test_serve_bus_interrupted_after_its_probe_before_uvicorn_ends_the_start(
    nats_server_module: NatsServer, signum: int, status: int, said: str
) -> None:
    config = BusConfig((nats_server_module.url,), prefix=f"start17x{next(_prefixes)}")

    async def create_the_log() -> None:
        async with await connect(config, name="test-start17") as bus:
            await ensure_streams(bus)

    asyncio.run(asyncio.wait_for(create_the_log(), 20))
    args = ["serve", "--bus", config.servers[0], "--bus-prefix", config.prefix, "--port", "0"]
    rc, err = ctrl_c_in_import(args, "uvicorn.protocols.http.h11_impl", signum=signum)
    assert rc == status, err
    assert "Traceback" not in err and "Aborted" not in err, err
    *ready, last = err.splitlines()
    assert last == f"{said} while starting: nothing served", err
    # (the ready lines come before uvicorn's Config is built: printed before the signal)
    assert all(line.startswith("dropengine serve: ") for line in ready), err
