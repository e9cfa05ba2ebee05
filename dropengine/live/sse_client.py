"""SSE over httpx, read with the project's parser: the one way both live paths read a stream.

:func:`open_stream` and :func:`read_events` are shared by the upstream's connection
(:func:`sse_connection`, ``GET {base}/v1/sse/odds/{sport}``) and the client's
(:class:`~dropengine.client.AsyncDropClient`, ``GET {base}/v1/odds-drop/...``), so a rule of
SPEC 8 about reading a stream is written once:

- an answer other than a 200 ``text/event-stream`` ends the connection as that status (with its
  ``Retry-After`` and what the body says, redacted and short);
- events are parsed by :class:`~dropengine.formats.sse.SSEParser`: one is dispatched only at its
  terminating blank line, so an event cut by a disconnect is never parsed;
- silence is counted in ended blocks (an event, or a comment such as a ping), not bytes: no
  block for ``dead_after_s`` seconds of waiting on the server is a dead connection (a server
  trickling a line that never ends is silent); the time the reader spends between events does
  not count;
- a line longer than :data:`MAX_LINE_CHARS` ends the connection (it would be held whole).

Everything ends by raising :class:`~dropengine.live.transport.Ended` with how it ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Final

import httpx

from ..core.errors import FeedError
from ..core.keys import redact
from ..core.retry import Outcome, parse_retry_after
from ..core.skips import printable
from ..formats.jsonline import decode_json
from ..formats.sse import SSEEvent, SSEParser
from .transport import Ended, OnOpen, UpstreamConfig, auth_parts, describe

__all__ = ["MAX_LINE_CHARS", "error_message", "open_stream", "read_events", "sse_connection"]

#: The longest line a stream may send (an unfinished line is held whole until it ends): far
#: above the vendor's largest frames (an ``initial_state`` of a few MB), far below what would
#: exhaust memory. A longer one ends the connection as a network error (retried by the policy).
MAX_LINE_CHARS: Final = 64 << 20
#: How much of an error answer's body is read (a hostile 500 may be megabytes).
_ERROR_BODY_BYTES: Final = 4096


@asynccontextmanager
async def open_stream(client: httpx.AsyncClient, url: str, *, params: Mapping[str, str],
                      headers: Mapping[str, str], secrets: Sequence[str] = ()) -> AsyncIterator[httpx.Response]:
    """``GET url`` as an event stream: the response when it is a 200 ``text/event-stream``;
    else raises :class:`Ended`: the status with its ``Retry-After`` and :func:`error_message`
    of the body (``secrets`` redacted), or a 200 of another type (a proxy page, a wrong URL).
    httpx's own errors are the caller's to translate (it knows what to redact)."""
    async with client.stream("GET", url, params=params, headers=headers) as response:
        if response.status_code != 200:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= _ERROR_BODY_BYTES:
                    break
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            detail = printable(redact(error_message(bytes(body)), list(secrets)))
            raise Ended(Outcome.http(response.status_code, retry_after, detail))
        ctype = response.headers.get("content-type", "")
        if not ctype.lower().startswith("text/event-stream"):
            raise Ended(Outcome.http(200, None, f"the answer is {ctype or 'untyped'}, not an event stream"))
        yield response


async def read_events(response: httpx.Response, dead_after_s: Callable[[], float]) -> AsyncGenerator[SSEEvent, None]:
    """The events of an open stream (see the module docstring). ``dead_after_s`` is read at
    each wait (a client learns the server's heartbeat from its first frame)."""
    parser = SSEParser()
    chunks = response.aiter_text()
    loop = asyncio.get_running_loop()
    waited, blocks = 0.0, parser.blocks
    while True:
        limit = dead_after_s()
        budget = limit - waited
        started = loop.time()
        try:
            if budget <= 0:
                raise TimeoutError
            async with asyncio.timeout(budget):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            cut = parser.close()  # a partial event is discarded, never parsed (SPEC 8)
            raise Ended(Outcome.ended("the server ended the stream"
                                      + (" (a partial event discarded)" if cut else ""))) from None
        except TimeoutError:
            raise Ended(Outcome.silence(limit)) from None
        waited += loop.time() - started
        events = parser.feed(chunk)
        if parser.blocks != blocks:
            waited, blocks = 0.0, parser.blocks
        for sse in events:
            yield sse
        if parser.unfinished > MAX_LINE_CHARS:  # (the events the chunk completed are handed on)
            raise Ended(Outcome.network(f"a line of more than {MAX_LINE_CHARS:,} characters: not an event stream "
                                        "this client reads"))


def error_message(body: bytes) -> str:
    """What an error answer says: the JSON ``message`` or ``error`` (our server's 400 names the
    parameter there), else the start of its text."""
    try:
        doc = decode_json(body[:_ERROR_BODY_BYTES])
    except FeedError:
        doc = None
    if isinstance(doc, dict):
        parameter, message = doc.get("parameter"), doc.get("message")
        if isinstance(parameter, str) and isinstance(message, str):  # our 400: the parameter, what is wrong
            return f"{parameter}: {message}"[:300]
        for name in ("message", "error", "detail"):
            text = doc.get(name)
            if isinstance(text, str):
                return text[:300]
    return " ".join(body[:200].decode("utf-8", "replace").split())


async def sse_connection(
    config: UpstreamConfig, sport_key: str, params: dict[str, str], dead_after_s: float, on_open: OnOpen
) -> AsyncGenerator[str, None]:
    """The frames (``data`` of each event) of one upstream connection; see the module
    docstring. ``on_open`` is not called: SSE has no channel to the upstream (its filters are
    all in ``params``)."""
    headers, auth_params = auth_parts(config)
    query = {**params, **auth_params}
    timeout = httpx.Timeout(config.connect_timeout_s, read=None)
    # trust_env=False: no proxy or netrc from the environment sees the key by surprise
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
        try:
            async with open_stream(client, config.stream_url(sport_key), params=query, headers=headers,
                                   secrets=[config.api_key.reveal()]) as response:
                async for event in read_events(response, lambda: dead_after_s):
                    if event.data:
                        yield event.data
        except httpx.HTTPError as exc:
            raise Ended(Outcome.network(describe(exc, config))) from None
        except OSError as exc:
            raise Ended(Outcome.network(describe(exc, config))) from None
