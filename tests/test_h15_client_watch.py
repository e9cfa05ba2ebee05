"""``dropengine.live.watch.watch`` (re-exported as ``dropengine.watch``) against the project's
real ``mock-upstream`` (uvicorn on loopback): the alerts it yields are those ``replay`` gives for
the same frames (``stamp="data"``), one sport, a list (``/multi``) and ``/all``, also across a
connection the mock cuts; a rejected key is an AuthError. Bounded by ``asyncio.timeout``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from dropengine import DropEngine
from dropengine.cli.group import main
from dropengine.client import AsyncDropClient
from dropengine.core.alerts import Alert, Drop, encode_alerts
from dropengine.core.errors import AuthError, ConfigError
from dropengine.core.keys import KeyTable, Secret
from dropengine.core.options import DetectOptions
from dropengine.core.retry import RetryPolicy
from dropengine.io.replay import replay
from dropengine.live.transport import UpstreamConfig
from dropengine.live.watch import Watch, upstream_query, watch
from dropengine.mock import MockUpstream, load_timeline
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.sources import UpstreamSource

from .test_h12_cli_replay import ALL, nfl_frames

KEY = "CANARY-H15-WATCH-3e7a"
NFL = "americanfootball_nfl"
NCAAF = "americanfootball_ncaaf"
FAST = RetryPolicy().scaled(0.01)


def _write(path: Path, frames: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(f, separators=(",", ":")) + "\n" for f in frames))
    return path


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("h15watch")
    nfl = _write(d / "nfl.ndjson", nfl_frames())
    # the same game as another sport (its own event id): a second stream for /multi and /all
    text = json.dumps(nfl_frames()).replace(NFL, NCAAF).replace("nfl-2026", "ncaaf-2026")
    return nfl, _write(d / "ncaaf.ndjson", json.loads(text))


@pytest.fixture
def upstream(recordings: tuple[Path, Path]) -> Iterator[Any]:
    running: list[BackgroundServer] = []

    def start(*paths: Path, faults: tuple[str, ...] = (), speed: float = 3000.0) -> tuple[str, MockUpstream]:
        mock = MockUpstream(load_timeline(list(paths)), speed=speed, max_gap=0.3, keys=KeyTable.single(KEY),
                            faults=faults)
        bg = BackgroundServer(mock.app, secrets=mock.secrets())
        running.append(bg)
        return bg.start(), mock

    yield start
    for bg in running:
        bg.stop()


async def _take(w: Watch, n: int, timeout: float = 15) -> list[Alert]:
    out: list[Alert] = []
    async with asyncio.timeout(timeout), w:
        async for alert in w:
            out.append(alert)
            if len(out) >= n:
                break
    return out


def _replayed(options: DetectOptions, *paths: Path) -> list[Alert]:
    return list(replay(list(paths), DropEngine.from_options(options)))


def test_watch_yields_what_replay_gives_for_the_same_frames(upstream: Any, recordings: tuple[Path, Path]) -> None:
    nfl, _ = recordings
    url, _ = upstream(nfl)
    expected = _replayed(DetectOptions.build(types=ALL), nfl)
    assert [a.type for a in expected].count("steam") == 2 and len(expected) == 10
    got = asyncio.run(_take(watch(NFL, base_url=url, api_key=KEY, types=ALL.split(","), stamp="data",
                                  policy=FAST), len(expected)))
    assert got == expected
    # and byte for byte what the command prints for the recording
    printed = CliRunner().invoke(main, ["replay", "--types", ALL, str(nfl)])
    assert printed.exit_code == 0 and printed.stdout.encode() == encode_alerts(got)


def test_watch_default_types_and_options(upstream: Any, recordings: tuple[Path, Path]) -> None:
    nfl, _ = recordings
    url, _ = upstream(nfl)
    options = DetectOptions.build(threshold=20, types="odds_drop")
    expected = _replayed(options, nfl)
    assert [(a.bookmaker, a.delta) for a in expected if isinstance(a, Drop)] == [("betmgm", -20)]
    assert len(expected) == 1  # pinnacle's -15 is below 20
    w = watch(NFL, base_url=url, api_key=KEY, options=options, stamp="data", policy=FAST)
    got = asyncio.run(_take(w, 1))
    assert got == expected and w.engine.options == options and w.stats.quotes > 0
    # the default stamp: when the frame arrived (wall clock), not the quote's last_update
    url2, _ = upstream(nfl)
    received = asyncio.run(_take(watch(NFL, base_url=url2, api_key=KEY, options=options, policy=FAST), 1))
    assert received[0].timestamp != received[0].last_update  # the wall clock, not the recording's
    assert msgspec.structs.replace(received[0], timestamp=expected[0].timestamp) == expected[0]


@pytest.mark.parametrize("sports", [[NFL, NCAAF], None], ids=["multi", "all"])
def test_watch_multi_and_all(upstream: Any, recordings: tuple[Path, Path], sports: list[str] | None) -> None:
    # the mock's clock starts with the first stream: each 10 s step waits 0.3 s (speed 30, capped
    # by max_gap), so the second sport's stream connects before the first update (else its
    # snapshot would already hold the moves: no alerts, not a bug of watch)
    url, _ = upstream(*recordings, speed=30.0)
    options = DetectOptions.build(types=ALL)
    expected = _replayed(options, *recordings)
    assert len(expected) == 20
    got = asyncio.run(_take(watch(sports, base_url=url, api_key=KEY, options=options, stamp="data",
                                  policy=FAST), len(expected)))

    def by_sport(alerts: list[Alert]) -> dict[str, list[Alert]]:  # each sport's order is its stream's
        return {s: [a for a in alerts if a.sport_key == s] for s in (NFL, NCAAF)}

    assert by_sport(got) == by_sport(expected)


def test_watch_resumes_across_a_cut_connection(upstream: Any, recordings: tuple[Path, Path]) -> None:
    nfl, _ = recordings
    url, mock = upstream(nfl, faults=("cut,after=4,conn=1",))
    events: list[str] = []
    expected = _replayed(DetectOptions.build(types=ALL), nfl)
    w = watch(NFL, base_url=url, api_key=KEY, types=ALL, stamp="data", policy=FAST, on_event=events.append)
    got = asyncio.run(_take(w, len(expected)))
    assert got == expected  # nothing lost, nothing twice, no re-priming after the reconnect
    assert len(mock.connections_log) >= 2 and w.stats.reconnects >= 1
    assert not any(KEY in e for e in events)


def test_watch_forgets_idle_keys_by_data_time(upstream: Any, recordings: tuple[Path, Path]) -> None:
    nfl, _ = recordings
    url, _ = upstream(nfl)
    expected = _replayed(DetectOptions.build(types=ALL), nfl)
    w = watch(NFL, base_url=url, api_key=KEY, types=ALL, stamp="data", policy=FAST, evict_idle_s=15)
    got = asyncio.run(_take(w, 4))  # pinnacle's and draftkings' line moves (T+10 s, T+20 s)
    assert got == expected[:4]
    # at T+20 s of data time the keys quiet since T (moneylines, totals, fanduel's spread) were
    # older than 15 s: forgotten, so fanduel's move at T+30 s primes again (no line move, no steam)
    assert w.evictor is not None and w.evictor.evicted > 0
    whole = DropEngine.from_options(DetectOptions.build(types=ALL))
    list(replay([nfl], whole))  # no eviction: every key of the recording
    assert 0 < w.engine.keys_held < whole.keys_held


def test_the_chain_mock_upstream_serve_client_gives_the_replayed_alerts(
        upstream: Any, recordings: tuple[Path, Path]) -> None:
    """mock-upstream -> dropengine serve (its live source) -> AsyncDropClient: the client's alerts
    are replay's, field for field but the time they were produced (the server stamps receipt)."""
    nfl, _ = recordings
    url, _ = upstream(nfl)
    expected = _replayed(DetectOptions.build(types=ALL), nfl)
    source = UpstreamSource(UpstreamConfig(url, Secret(KEY), policy=FAST), [NFL])
    server = DropServer(source, ServeConfig())

    async def read(serve_url: str) -> list[Any]:
        await asyncio.to_thread(_wait, lambda: server.hub.counters.produced >= len(expected))
        # since=0: everything the ring holds, produced before this client came
        async with AsyncDropClient(serve_url, api_key="any-key-123", sport=NFL, types=ALL, since=0,
                                   policy=FAST) as client:
            out: list[Any] = []
            async with asyncio.timeout(10):
                async for alert in client.alerts():
                    out.append(alert)
                    if len(out) == len(expected):
                        return out
        return out

    with BackgroundServer(server.app) as serve_url:
        got = asyncio.run(read(serve_url))

    def fields(alerts: list[Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in a.to_dict().items() if k != "timestamp"} for a in alerts]

    assert fields(got) == fields(expected)


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_watch_with_a_rejected_key_raises_auth_error(upstream: Any, recordings: tuple[Path, Path]) -> None:
    url, _ = upstream(recordings[0])
    with pytest.raises(AuthError):
        asyncio.run(_take(watch(NFL, base_url=url, api_key="not-the-key-1234", policy=FAST), 1))


def test_watch_refuses_misuse_before_connecting() -> None:
    for kwargs, named in (({"types": "steem"}, "types"), ({"stamp": "now"}, "stamp"),
                          ({"options": DetectOptions(), "types": "steam"}, "types"),
                          ({"options": {"threshold": 5}}, "options"), ({"base_url": "ftp://x"}, "base_url"),
                          ({"evict_idle_s": -1}, "evict_idle_s")):
        args: dict[str, Any] = {"base_url": "http://127.0.0.1:9", "api_key": KEY, **kwargs}
        with pytest.raises(ConfigError, match=f"^{named}: "):
            watch(NFL, **args)


def test_upstream_query_narrows_the_vendor_stream() -> None:
    flt = DetectOptions.build(bookmakers="pinnacle,bet365", markets="h2h", kinds="game", event_id="g1").filter
    assert upstream_query(flt, since=7).params() == {"event_id": "g1", "bookmakers": "bet365,pinnacle",
                                                     "markets": "h2h", "kinds": "game", "since": "7"}
    two = DetectOptions.build(event_id="g1,g2").filter  # the vendor takes one event id: the engine filters two
    assert upstream_query(two).params() == {}
