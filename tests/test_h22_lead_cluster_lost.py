"""A sharded run on a local Dask cluster whose workers all end (killed, or interrupted by a Ctrl-C
the main process ignores, e.g. a script's background job: break22's B22-1) fails with a
ClusterError naming what happened, instead of waiting for ever for tasks no worker will run
(cluster.shard._gather). A run whose workers live is unchanged (the cluster suites)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import warnings
from typing import Any

import pytest

pytest.importorskip("distributed")

from dropengine.cluster import shard
from dropengine.core.errors import ClusterError


def _slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_a_local_cluster_that_lost_every_worker_is_an_error_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard, "NO_WORKER_S", 3.0)
    got: list[BaseException | list[Any]] = []
    with shard.open_client(workers=1) as client:
        futures = [client.submit(_slow, 300, pure=False)]
        pids = client.run(os.getpid)  # each worker process (its nanny lives in this process)
        waiter = threading.Thread(target=lambda: got.append(_run(client, futures)), daemon=True)
        waiter.start()
        time.sleep(1.0)  # (the gather is waiting when the workers go)
        for pid in pids.values():
            # a Ctrl-C reaching the workers only (this process ignoring it): each closes, and its
            # nanny does not start another (a worker that closes is not restarted)
            os.kill(pid, signal.SIGINT)
        _pressed_again(client, pids)
        waiter.join(timeout=120)  # a bound, not a timing assertion: a hang fails here, not in CI's limit
        assert not waiter.is_alive(), "_gather still waiting 120 s after every worker was killed"
    assert len(got) == 1 and isinstance(got[0], ClusterError), got
    assert "every worker of the local Dask cluster has ended" in str(got[0])
    assert "1 of 1 shards unfinished" in str(got[0])


def _pressed_again(client: Any, pids: dict[str, int]) -> None:
    """A Ctrl-C pressed again when the first has not made a worker leave the scheduler within 30 s
    (a bound on a wait, not a timing assertion). Once in CI (session 17, clean clone at e24b8b9,
    2 xdist workers on a loaded machine) the worker did not close on the first SIGINT: no "closing
    gracefully" from its nanny, the scheduler kept it for 120 s, so the test's precondition, every
    worker ended, was never met and _gather rightly waited for the living one (its 300 s task).
    Not reproduced in 48 runs here (alone, two at once, signals 0-2 s apart, the parent's SIGINT
    ignored); a second SIGINT ends the worker without a restart (asyncio.Runner raises on it). What
    is tested stays _gather's end once every worker is gone; a second press is reported."""
    deadline = time.monotonic() + 30
    while client.scheduler_info()["workers"] and time.monotonic() < deadline:
        time.sleep(0.1)
    if client.scheduler_info()["workers"]:
        warnings.warn("a worker still registered 30 s after its SIGINT: sent a second", stacklevel=2)
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)


def test_a_living_cluster_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks slower than the no-worker bound finish normally while a worker lives."""
    monkeypatch.setattr(shard, "NO_WORKER_S", 0.5)
    monkeypatch.setattr(shard, "_POLL_S", 0.2)
    with shard.open_client(workers=1) as client:
        futures = [client.submit(_part, k, pure=False) for k in range(3)]
        parts = shard._gather(client, futures, None)
    assert [p.shard for p in parts] == [0, 1, 2]


class _Part:
    def __init__(self, k: int) -> None:
        self.shard = k


def _part(k: int) -> _Part:
    time.sleep(1.5)
    return _Part(k)


def _run(client: Any, futures: list[Any]) -> BaseException | list[Any]:
    try:
        return shard._gather(client, futures, None)
    except BaseException as exc:  # the thread hands back what _gather raised
        return exc


@pytest.mark.parametrize("command", ["replay", "backtest"])
def test_a_cluster_failing_the_run_is_one_line_and_exit_1(
    command: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """break22 (B22-1's rest): the ClusterError of a sharded run that lost its workers (or a task)
    is ``Error: <message>``, exit 1, not a traceback."""
    import polars as pl
    from click.testing import CliRunner

    import dropengine.cluster as cluster
    from dropengine import Quote
    from dropengine.cli.group import main
    from dropengine.formats.tables import QUOTE_COLUMNS, table_row

    rows = [
        table_row(Quote("nba", "e1", "pin", "h2h_home", p, 1_700_000_000_000 + i)) for i, p in enumerate((-110, -130))
    ]
    src = tmp_path / "q.parquet"
    pl.DataFrame({c: [r.get(c) for r in rows] for c in QUOTE_COLUMNS}, strict=False).write_parquet(src)

    def lost(*args: Any, **kwargs: Any) -> Any:
        raise ClusterError("workers: every worker of the local Dask cluster has ended (test)")

    monkeypatch.setattr(cluster, "detect_sharded" if command == "replay" else "backtest_sharded", lost)
    args = ["replay", "--engine", "batch"] if command == "replay" else ["backtest"]
    result = CliRunner().invoke(main, [*args, "-q", "--workers", "1", str(src)])
    assert result.exit_code == 1, result.output
    assert "Error: workers: every worker of the local Dask cluster has ended (test)" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
