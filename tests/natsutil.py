"""Real nats-server processes for the bus tests: one node or a 3-node JetStream cluster,
on free loopback ports, storage in a temporary directory, killed (SIGKILL) and restarted at
will. Every wait is bounded; every process is killed in the fixtures' finalizers.

Usage::

    def test_x(nats_server):            # one node, JetStream, in tmp_path
        cfg = BusConfig((nats_server.url,))

    def test_y(nats_cluster3):          # three nodes n1..n3, routes on loopback
        cfg = BusConfig(nats_cluster3.urls, replicas=3)
        leader = await nats_cluster3.leader_of(cfg.alert_stream)   # -> NatsServer
        leader.kill()                                              # kill -9
        leader.restart()                                           # same port, same store

Module-scoped variants (one server for a whole test module): ``nats_server_module``,
``nats_cluster3_module``. A test that kills a server should use the function-scoped ones.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from .conftest import require_nats_server

__all__ = [
    "NatsCluster", "NatsServer", "free_port", "nats_cluster", "nats_cluster3", "nats_cluster3_module",
    "nats_server", "nats_server_module", "wait_until",
]

READY_TIMEOUT_S = 15.0


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate()`` until true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():  # type: ignore[operator]
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class NatsServer:
    """One nats-server process with JetStream (``-js -sd``) on 127.0.0.1.

    ``name`` is its server name (JetStream reports leaders by it); ``cluster_port`` and
    ``routes`` make it a cluster member. :meth:`restart` keeps the port and the store."""

    def __init__(
        self, store: Path, *, name: str = "n1", port: int | None = None, cluster_port: int | None = None,
        routes: Sequence[int] = (), cluster_name: str = "dropengine-test", binary: str | None = None,
    ) -> None:
        self.binary = binary or require_nats_server()
        self.store = Path(store)
        self.store.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = port or free_port()
        self.http_port = free_port()
        self.cluster_port = cluster_port
        self.routes = tuple(routes)
        self.cluster_name = cluster_name
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.store / f"{name}.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _args(self) -> list[str]:
        args = [self.binary, "-js", "-sd", str(self.store / "js"), "-a", "127.0.0.1", "-p", str(self.port),
                "-m", str(self.http_port), "-n", self.name]
        if self.cluster_port is not None:
            args += ["--cluster_name", self.cluster_name, "--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
            if self.routes:
                args += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        return args

    def start(self, *, wait: bool = True) -> NatsServer:
        """Start the process (and, with ``wait``, wait until it accepts clients)."""
        if self.running:
            return self
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child inherits it; ours is closed below
        try:
            self.proc = subprocess.Popen(self._args(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        if wait:
            self.wait_ready()
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _healthz(self, query: str = "") -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz{query}", timeout=0.5) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, *, jetstream: bool = True) -> None:
        """Until ``/healthz`` answers ok (with ``jetstream``: JetStream is up too)."""
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"nats-server {self.name} exited with {self.proc.returncode}: {self.tail()}")
            return self._healthz("" if jetstream else "?js-server-only=true")

        wait_until(ready, timeout, f"nats-server {self.name} on port {self.port} to be ready")

    def varz(self, what: str = "varz") -> dict[str, object]:
        """A monitoring endpoint's JSON (``varz``, ``jsz``, ``routez`` ...)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/{what}", timeout=2.0) as r:
            out: dict[str, object] = json.loads(r.read())
            return out

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self) -> None:
        """``kill -9``: no shutdown, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 5.0) -> None:
        """A clean shutdown (SIGTERM), SIGKILL if it does not exit within ``timeout``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, *, wait: bool = True) -> NatsServer:
        """Start again on the same port with the same store (kill it first if running)."""
        self.kill()
        self.proc = None
        return self.start(wait=wait)


class NatsCluster:
    """``n`` nodes ``n1..n{n}`` with routes to each other, JetStream on each."""

    def __init__(self, root: Path, n: int = 3, binary: str | None = None) -> None:
        binary = binary or require_nats_server()
        cports = [free_port() for _ in range(n)]
        self.nodes = [
            NatsServer(Path(root) / f"n{i + 1}", name=f"n{i + 1}", cluster_port=cports[i],
                       routes=[p for j, p in enumerate(cports) if j != i], binary=binary)
            for i in range(n)
        ]

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(s.url for s in self.nodes)

    def start(self) -> NatsCluster:
        for s in self.nodes:
            s.start(wait=False)
        deadline = time.monotonic() + READY_TIMEOUT_S
        for s in self.nodes:
            s.wait_ready(max(0.5, deadline - time.monotonic()))
        return self

    def node(self, name: str) -> NatsServer:
        for s in self.nodes:
            if s.name == name:
                return s
        raise KeyError(name)

    async def leader_of(self, stream: str, timeout: float = 10.0) -> NatsServer:
        """The node that leads ``stream`` now (asks JetStream, through any live node)."""
        import asyncio

        import nats

        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            urls = [s.url for s in self.nodes if s.running]
            try:
                nc = await nats.connect(servers=urls, connect_timeout=1, max_reconnect_attempts=1,
                                        allow_reconnect=False)
            except Exception as exc:  # retried until the deadline
                last = exc
                await asyncio.sleep(0.1)
                continue
            try:
                info = await nc.jetstream(timeout=1.0).stream_info(stream)
                if info.cluster is not None and info.cluster.leader:
                    return self.node(info.cluster.leader)
                last = "no leader yet"
            except Exception as exc:  # retried until the deadline
                last = exc
            finally:
                await nc.close()
            await asyncio.sleep(0.1)
        raise AssertionError(f"no leader for stream {stream} within {timeout:g} s ({last!r})")

    def stop(self) -> None:
        for s in self.nodes:
            s.kill()


@contextlib.contextmanager
def nats_cluster(n: int = 3, tmp: Path | None = None) -> Iterator[NatsCluster]:
    """A started cluster of ``n`` nodes in ``tmp`` (a new temporary directory when None);
    every node killed on exit."""
    root = Path(tmp) if tmp is not None else Path(tempfile.mkdtemp(prefix="nats-cluster-"))
    cluster = NatsCluster(root, n)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        if tmp is None:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _single(root: Path) -> Iterator[NatsServer]:
    server = NatsServer(root)
    try:
        yield server.start()
    finally:
        server.kill()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """One JetStream node for this test (may be killed/restarted by it)."""
    with _single(tmp_path / "nats") as server:
        yield server


@pytest.fixture(scope="module")
def nats_server_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One JetStream node for the whole module (do not kill it; use a fresh prefix per test)."""
    with _single(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
def nats_cluster3(tmp_path: Path) -> Iterator[NatsCluster]:
    """A 3-node JetStream cluster for this test."""
    with nats_cluster(3, tmp_path / "cluster") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def nats_cluster3_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """A 3-node JetStream cluster for the whole module."""
    with nats_cluster(3, tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster

