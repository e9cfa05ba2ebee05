"""cluster.shard.open_client's local cluster: its scheduler's HTTP server (started whatever the
dashboard setting) on a free loopback port. With ``dashboard_address=None`` it took port 8787 and,
while another process held 8787 (another cluster, a test fixture), every ``--workers`` run printed
distributed's "Port 8787 is already in use" warning on stderr (ctrl17's finding, session 17)."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

pytest.importorskip("distributed")


@pytest.fixture
def port_8787_held() -> Iterator[None]:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 8787))
        s.listen()
    except OSError:
        pass  # (held already by another process: the case itself)
    try:
        yield
    finally:
        s.close()


def test_a_local_cluster_serves_on_a_free_loopback_port_without_a_warning(port_8787_held: None) -> None:
    from dropengine.cluster.shard import open_client

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with open_client(workers=1) as client:
            assert client.submit(sum, [1, 2]).result() == 3
            link = urlsplit(client.dashboard_link)
            assert link.hostname == "127.0.0.1"
            assert link.port != 8787
    assert not [w for w in seen if "already in use" in str(w.message)]
