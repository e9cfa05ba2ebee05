"""One WebSocket connection to ``{base}/ws/odds/{sport}`` on ``websockets``.

Yields text frames and ends by raising :class:`~dropengine.live.transport.Ended` with the
close code (1006 when the TCP connection died without a close frame), the HTTP status of a
refused handshake, a network error, or heartbeat silence. Once open it hands its sender to
``on_open``, before reading anything: the stream sends its ``subscribe`` filter there on
every new connection, since subscriptions are connection-local.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from ..core.errors import ConfigError
from ..core.retry import Outcome, parse_retry_after
from .transport import Ended, OnOpen, UpstreamConfig, auth_parts, describe, redacted

__all__ = ["ws_connection"]

#: An ``initial_state`` carries every active row of a sport: allow large frames.
MAX_FRAME_BYTES = 64 * 1024 * 1024


async def ws_connection(
    config: UpstreamConfig, sport_key: str, params: dict[str, str], dead_after_s: float, on_open: OnOpen
) -> AsyncGenerator[str, None]:
    """The frames of one connection; see the module docstring."""
    try:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
        from websockets.typing import Subprotocol
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError("transport 'ws' needs the websockets package: pip install 'dropengine[live]'") from None
    from urllib.parse import urlencode

    headers, auth_params = auth_parts(config)
    query = {**params, **auth_params}
    url = config.stream_url(sport_key) + ("?" + urlencode(query) if query else "")
    subprotocols = [Subprotocol(f"apikey.{config.api_key.reveal()}")] if config.auth == "subprotocol" else None
    try:
        async with connect(
            url,
            additional_headers=headers,
            subprotocols=subprotocols,
            open_timeout=config.connect_timeout_s,
            max_size=MAX_FRAME_BYTES,
            proxy=None,  # loopback and direct connections; no proxy from the environment sees the key
        ) as ws:
            await on_open(ws.send)
            while True:
                try:
                    async with asyncio.timeout(dead_after_s):
                        message = await ws.recv()
                except TimeoutError:
                    raise Ended(Outcome.silence(dead_after_s)) from None
                yield message if isinstance(message, str) else message.decode("utf-8", "replace")
    except ConnectionClosed as exc:
        frame = exc.rcvd
        code = frame.code if frame is not None else 1006
        reason = frame.reason if frame is not None else "connection lost without a close frame"
        raise Ended(Outcome.close(code, redacted(reason, config))) from None
    except InvalidStatus as exc:
        status = exc.response.status_code
        retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
        raise Ended(Outcome.http(status, retry_after, "handshake refused")) from None
    except InvalidURI:
        raise ConfigError(f"base_url: {config.ws_base()!r} does not make a valid WebSocket URL") from None
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        raise Ended(Outcome.network(describe(exc, config))) from None

