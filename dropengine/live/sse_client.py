"""One SSE connection to ``GET {base}/v1/sse/odds/{sport}`` on httpx + httpx-sse.

Yields the ``data`` of each complete event and ends by raising
:class:`~dropengine.live.transport.Ended` with how it ended. httpx-sse dispatches an
event only at its terminating blank line, so an event cut by a disconnect is never parsed
(SPEC section 8). The read timeout is the heartbeat rule: no event for twice the heartbeat
interval means the connection is dead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import httpx
from httpx_sse import SSEError, aconnect_sse

from ..core.keys import redact
from ..core.retry import Outcome, parse_retry_after
from .transport import Ended, OnOpen, UpstreamConfig, auth_parts, describe

__all__ = ["sse_connection"]


async def sse_connection(
    config: UpstreamConfig, sport_key: str, params: dict[str, str], dead_after_s: float, on_open: OnOpen
) -> AsyncGenerator[str, None]:
    """The frames of one connection; see the module docstring. ``on_open`` is not called:
    SSE has no channel to the upstream (its filters are all in ``params``)."""
    headers, auth_params = auth_parts(config)
    key = config.api_key.reveal()
    query = {**params, **auth_params}
    timeout = httpx.Timeout(config.connect_timeout_s, read=None)
    # trust_env=False: no proxy or netrc from the environment sees the key by surprise
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
        try:
            async with aconnect_sse(client, "GET", config.stream_url(sport_key), params=query, headers=headers) as es:
                response = es.response
                if response.status_code != 200:
                    body = (await response.aread())[:200].decode("utf-8", "replace")
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    raise Ended(Outcome.http(response.status_code, retry_after, _short(redact(body, [key]))))
                events = es.aiter_sse()
                while True:
                    try:
                        async with asyncio.timeout(dead_after_s):
                            event = await anext(events)
                    except StopAsyncIteration:
                        raise Ended(Outcome.ended()) from None
                    except TimeoutError:
                        raise Ended(Outcome.silence(dead_after_s)) from None
                    if event.data:
                        yield event.data
        except SSEError as exc:  # 200 but not text/event-stream: a proxy page, a wrong URL
            raise Ended(Outcome.http(200, None, describe(exc, config))) from None
        except httpx.HTTPError as exc:
            raise Ended(Outcome.network(describe(exc, config))) from None
        except OSError as exc:
            raise Ended(Outcome.network(describe(exc, config))) from None


def _short(body: str) -> str:
    text = " ".join(body.split())
    return text[:160]
