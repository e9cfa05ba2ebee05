"""breaker13b: hostile inputs against issue 13's latest fixes, with real servers.

- a malformed resume cursor is a 200 + ``reset`` (server/params.py ``parse_request``): hostile
  cursors (huge, unicode, CR/LF, the API key in them) never break the SSE framing nor echo
  the key. Finding: a key longer than the 40-character echo, not at the cursor's start,
  leaked its prefix (fixed: masked before shortening, and any prefix the cut leaves is masked).
- the detectors' registry (bus/registry.py): corrupt entries are skipped, the valid one read.
- ``ingest`` refuses to lower a quote stream limit without --allow-shrink, naming both values.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from dropengine import Quote
from dropengine.core.keys import KeyTable
from dropengine.core.options import DetectOptions
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer
from dropengine.server.params import parse_request
from dropengine.server.sources import ManualSource

from .natsutil import NatsServer, nats_server_module

__all__ = ["nats_server_module"]

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
KEY = "CANARY-BREAKER2-0123456789abcdefghijklmnopqrstuvwxyz"  # longer than the 40-char echo
SPORT = "basketball_nba"
_prefixes = itertools.count()


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


# -- 1. a malformed cursor ------------------------------------------------------------------------

# breaker13b finding (was a strict xfail): parse_request shortened the cursor to 40 characters before masking
# and _mask masked only secret[:40], so a long key after one other character leaked its first 39 characters
@pytest.mark.parametrize("lead", ["x", "12345-"])
def test_a_long_key_inside_a_malformed_cursor_leaks_no_part_of_it(lead: str) -> None:
    reason = parse_request({"last_event_id": lead + KEY}, secrets=[KEY]).cursor_reset
    assert reason is not None
    assert KEY[:16] not in reason, reason  # 16 characters of a key are a key half given away


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    source = ManualSource()
    srv = DropServer(source, ServeConfig(keys=KeyTable.single(KEY)))
    with BackgroundServer(srv.app, secrets=[KEY]) as url:
        clock = 1_000
        for price in (-110, -120):
            clock += 1_000
            source.push([Quote(SPORT, "g", "pinnacle", "h2h_home", price, clock)], now_ms=clock)
        yield url


def _first_frames(url: str, params: dict[str, Any], headers: dict[str, Any]) -> list[dict[str, Any]]:
    """connected + reset, each line of the framing checked."""
    out: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{url}/v1/odds-drop/all", params={"apiKey": KEY, "heartbeat_s": 1, **params},
                      headers=headers, timeout=httpx.Timeout(5, read=5)) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            # every line is a field of the SSE framing: a raw newline in a reason would end it
            assert line == "" or line.startswith(("id: ", "data: ", "event: ", "retry: ", ":")), line
            if line.startswith("data: "):
                data = json.loads(line[6:])
                if data["type"] != "heartbeat":
                    out.append(data)
                if len(out) >= 2:
                    break
    return out


HOSTILE = ["-1", "abc-", "a" * 45, "x" * 5000, "ünï☃\u2028\u0085 -1", "a\r\nb\nid: 9-9\r\rdata: {}",
           f"{KEY}-1", f"abc-{KEY}", KEY.lower(), "1-1-1", " - ", "\x00\x1b[2J"]


@pytest.mark.timeout(30)
def test_hostile_cursors_in_the_query_are_a_reset_that_keeps_the_framing(served: str) -> None:
    for text in HOSTILE:
        connected, reset = _first_frames(served, {"last_event_id": text}, {})
        assert connected["type"] == "connected" and reset["type"] == "reset", (text, reset)
        assert KEY.lower() not in json.dumps(reset).lower() and len(reset["reason"]) < 200
        assert "\n" not in reset["reason"] and "\r" not in reset["reason"]


@pytest.mark.timeout(30)
def test_hostile_cursors_in_the_header_are_a_reset(served: str) -> None:
    for raw in (b"-1", b"abc-", b"\xfc\xff-1", KEY.encode() + b"-x", b"9" * 4000):
        _, reset = _first_frames(served, {}, {"Last-Event-ID": raw})
        assert reset["type"] == "reset" and reset["reason"].startswith("Last-Event-ID "), (raw, reset)
        assert KEY[:20] not in reset["reason"]


# -- 2. the detectors' registry --------------------------------------------------------------------


@pytest.mark.bus
@pytest.mark.timeout(60)
def test_corrupt_registry_entries_are_skipped(nats_server_module: NatsServer) -> None:
    pytest.importorskip("nats")
    from dropengine.bus.config import BusConfig
    from dropengine.bus.connect import connect
    from dropengine.bus.registry import record_detector, recorded_detectors

    pfx = f"brk2r{next(_prefixes)}"

    async def go() -> list[Any]:
        bus = await connect(BusConfig((nats_server_module.url,), prefix=pfx), name="breaker2")
        try:
            await record_detector(bus, 1, 2, DetectOptions.build(), 5)  # creates the bucket
            kv = await bus.js.key_value(bus.config.detector_bucket)
            hostile = {
                "p0.2": b"\xff\xfe\x00",
                "p0.3": b"[]",
                "p1.3": b'{"partition": "1", "partitions": 3, "options": {}, "saved_ms": 1}',
                "p2.3": b'{"partition": 2, "partitions": 3, "options": null, "saved_ms": 1}',
                "p0.4": b'{"partition": 0, "partitions": 4, "options": {}, "saved_ms": 1e999}',
                "p0.5": b'{"partition": 99999999999999999999999, "partitions": 5, "options": {}, "saved_ms": 1}',
                "p0.6": b'{"partition": 0, "partitions": 6, "options": {"types": ["odds_drop"], '
                        b'"filter_threshold": {"a": 1}}, "saved_ms": 1}',
                "p0.7": b"",
            }
            for k, v in hostile.items():
                await kv.put(k, v)
            return await recorded_detectors(bus)
        finally:
            await bus.close()

    records = run(go())
    assert [(r.partition, r.partitions) for r in records] == [(1, 2)]


# -- 3. ingest refuses a lowered quote limit, naming both -----------------------------------------

@pytest.mark.bus
@pytest.mark.timeout(60)
def test_a_lowered_quote_max_age_is_refused_naming_both(nats_server_module: NatsServer) -> None:
    pytest.importorskip("nats")
    from click.testing import CliRunner

    from dropengine.cli.group import main

    pfx = f"brk2i{next(_prefixes)}"
    demo = ROOT / "fixtures" / "demo_nba_frames.ndjson"

    def ingest(*extra: str) -> Any:
        return CliRunner().invoke(main, ["ingest", "--source", f"replay:{demo}", "--speed", "max", "--bus",
                                         nats_server_module.url, "--bus-prefix", pfx, "--status-every", "0",
                                         "--log-level", "error", "--partitions", "2", *extra])

    res = ingest("--quote-max-age", "7200")
    assert res.exit_code == 0, res.output
    res = ingest("--quote-max-age", "3600")
    assert res.exit_code == 2 and "7200" in res.output and "3600" in res.output, res.output
    assert "--allow-shrink" in res.output
