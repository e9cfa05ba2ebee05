"""A stream or bucket placed while a cluster node is offline (JetStream 10005 "no suitable peers
for placement, peer offline": a node restarting, or a cluster that has just started and not yet
formed) is transient: `dropengine detect` waits it out as it waits out a missing leader, instead
of exiting (a clean-clone CI run saw a detector exit at its start on a new 3-node cluster). The
same code for another reason (more replicas than nodes) stays a definite error."""

from __future__ import annotations

import pytest

from dropengine.bus.connect import transient

nats_errors = pytest.importorskip("nats.js.errors")


@pytest.mark.parametrize(
    ("err_code", "description", "expected"),
    [
        (10005, "no suitable peers for placement, peer offline", True),
        (10005, "no suitable peers for placement, peer offline, insufficient resources", True),
        (10005, "no suitable peers for placement, insufficient resources", False),
        (10005, "replicas > 1 not supported in non-clustered mode", False),
        (10005, None, False),
        (10008, "JetStream system temporarily unavailable", True),
        (10058, "stream name already in use", False),
    ],
)
def test_a_placement_with_a_peer_offline_is_waited_out(err_code: int, description: str | None, expected: bool) -> None:
    exc = nats_errors.BadRequestError(code=400, err_code=err_code, description=description)
    assert transient(exc) is expected
