"""The exception hierarchy: one root, with caller misuse kept apart from bad feed data.

Library callers catch :class:`DropEngineError` to handle everything this package raises.
:class:`ConfigError` means the caller passed a bad argument (fix the call);
:class:`FeedError` means the data was bad (skip it, count it, keep going);
:class:`SnapshotError` means a saved engine state cannot be restored;
:class:`UpstreamError` means a live upstream refused or ended the stream for good
(:class:`AuthError` when the key was the reason), after the retry policy gave up;
:class:`BusError` means the message bus (NATS JetStream) could not be reached or refused an
operation (:class:`FencedError` when another writer owns a partition); :class:`ClusterError`
means the Dask cluster of a sharded run failed (it could not start or be reached, a worker died).
Third-party exceptions (JSON, polars, network) are translated into these at the edge.
"""

from __future__ import annotations

__all__ = [
    "AuthError", "BusError", "ClusterError", "ConfigError", "DropEngineError", "FeedError", "FencedError",
    "SnapshotError",
    "UpstreamError", "short_repr",
]


def short_repr(value: object, limit: int = 80, *, text: int | None = None) -> str:
    """The ``repr`` of a caller's or client's value for an error message, bounded.

    A repr longer than ``limit`` keeps its first ``limit - 3`` characters and ends in ``...``.
    With ``text``, a string longer than ``text`` is cut *before* the repr (its first ``text``
    characters then ``...``, quoted): what a client sent stays readable as a prefix, and a
    server can mask a secret's prefix in it (server/params.py). Its repr is still bounded by
    ``limit`` (a character can take 10 in a repr: ``'\\U0001342f'``).
    """
    if text is not None and isinstance(value, str):
        shown = repr(value if len(value) <= text else value[:text] + "...")
    else:
        shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit - 3] + "..."


class DropEngineError(Exception):
    """Root of every exception raised by dropengine."""


class ConfigError(DropEngineError, ValueError):
    """The caller passed an invalid argument (a bad threshold, direction, filter, ...)."""


class FeedError(DropEngineError, ValueError):
    """A piece of feed data is malformed: a missing field, a bad type, an unparseable line.

    ``reason`` is a short stable label used to count skips (``"missing field"``,
    ``"invalid price"``, ``"bad json"``, ...); the message names the field and the value.
    """

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


class SnapshotError(DropEngineError, ValueError):
    """An engine snapshot is corrupt, truncated, of another version, or not a snapshot."""


class UpstreamError(DropEngineError):
    """A live upstream stopped us for good: a status or close code the retry policy never
    retries (SPEC section 8), or a request the upstream rejects as malformed.

    ``status`` is the HTTP status and ``close_code`` the WebSocket close code, when known.
    Messages never contain the API key.
    """

    def __init__(self, message: str, *, status: int | None = None, close_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.close_code = close_code


class AuthError(UpstreamError):
    """The upstream rejected the API key (HTTP 401/403, close 1008/4001/4003/4401): never retried."""


class BusError(DropEngineError):
    """The message bus (NATS JetStream, ``--bus``) was unreachable, or refused an operation
    (a stream with other settings, a message too large, no quorum). The message names the
    server address (never credentials) and the operation."""


class FencedError(BusError):
    """Another process writes this partition: its lease is held by someone else, or the alert
    log moved past the sequence this writer expected. The writer stops instead of publishing
    a second copy of anything."""


class ClusterError(DropEngineError):
    """The Dask cluster of a sharded batch run failed: the local cluster could not start, the
    scheduler could not be reached, or a task failed for a reason that is not the input's (a
    worker died or ran out of memory). Bad input is reported as one process reports it."""
