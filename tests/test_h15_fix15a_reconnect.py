"""``live.transport.reconnecting``: SPEC 8's loop, once, for the upstream and the client
(helper fix15a, review R15-1). Driven with fake connections and a fake wait (no I/O, no
clock assertions): items flow across reconnects, a connection is open at its first item,
the detail is redacted, the history is bounded, a stop raises after being reported, and a
caller that closes ends the loop quietly.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator

import pytest

from dropengine.core.errors import AuthError
from dropengine.core.retry import Backoff, Outcome, Retry, RetryPolicy, Stop
from dropengine.live.transport import Ended, reconnecting

KEY = "k-SECRET-123456"


def run(outcomes: list[Outcome | None], *, closed_after: int | None = None, keep: int | None = None,
        items_per: int = 2) -> tuple[list[str], list[str], list[tuple[Outcome, Retry | Stop]], BaseException | None]:
    """Connections that yield ``items_per`` items then end with the next outcome (``None``:
    the end of the stream); returns the items, the hook calls, the history and the error."""
    calls: list[str] = []
    history: list[tuple[Outcome, Retry | Stop]] = []
    n = 0

    async def connect() -> AsyncGenerator[str, None]:
        nonlocal n
        n += 1
        k = n
        for i in range(items_per):
            yield f"c{k}-{i}"
        outcome = outcomes[k - 1] if k <= len(outcomes) else Outcome.http(401, None, "no")
        if outcome is not None:
            raise Ended(outcome)

    async def wait(delay: float) -> None:
        calls.append("wait")

    def ended(outcome: Outcome, decision: Retry | Stop) -> None:
        calls.append(f"end:{outcome.kind}:{type(decision).__name__}")

    async def main() -> tuple[list[str], BaseException | None]:
        got: list[str] = []
        try:
            async for item in reconnecting(
                    connect, Backoff(RetryPolicy()), where="GET /x", secrets=[KEY], rng=random.Random(1),
                    history=history, on_open=lambda: calls.append("open"), on_end=ended, wait=wait,
                    closed=lambda: closed_after is not None and n >= closed_after, keep_history=keep):
                got.append(item)
        except AuthError as exc:
            return got, exc
        return got, None

    got, error = asyncio.run(main())
    return got, calls, history, error


def test_items_flow_across_reconnects_until_a_stop() -> None:
    got, calls, history, error = run([Outcome.network(f"reset by {KEY}"), None])
    assert got == ["c1-0", "c1-1", "c2-0", "c2-1", "c3-0", "c3-1"]
    assert calls == ["open", "end:network:Retry", "wait", "open", "end:ended:Retry", "wait", "open",
                     "end:http:Stop"]
    assert isinstance(error, AuthError) and len(history) == 3
    assert KEY not in history[0][0].detail and "reset by" in history[0][0].detail  # redacted


def test_a_connection_that_yields_nothing_is_never_open() -> None:
    _, calls, _, error = run([Outcome.network("refused")], items_per=0)
    assert calls == ["end:network:Retry", "wait", "end:http:Stop"] and isinstance(error, AuthError)


def test_closing_ends_quietly_without_deciding() -> None:
    got, calls, history, error = run([Outcome.network("cut")] * 5, closed_after=2)
    assert error is None and got == ["c1-0", "c1-1", "c2-0", "c2-1"]
    assert calls == ["open", "end:network:Retry", "wait", "open"] and len(history) == 1


@pytest.mark.parametrize("keep", [1, 2])
def test_the_history_keeps_the_newest(keep: int) -> None:
    _, _, history, _ = run([Outcome.network(str(i)) for i in range(4)], keep=keep)
    assert len(history) == keep and history[-1][0].kind == "http"
