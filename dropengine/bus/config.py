"""Where the bus is and how its streams are kept: :class:`BusConfig`, the one place that
names every stream, subject and bucket of the alert log (API13 "Bus layout").

Pure: no I/O, no nats import. Every command that talks to the bus (``detect``, ``ingest``,
``serve --bus``) builds one of these from ``--bus URL[,URL...]`` and its options, so a typo is
a :class:`~dropengine.core.errors.ConfigError` naming the value before any connection.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..core.errors import ConfigError, short_repr
from ..core.partition import MAX_PARTITIONS

__all__ = ["BusConfig"]

_SCHEMES = frozenset({"nats", "tls"})
#: A prefix is one subject token (no ``.``, ``*``, ``>`` or spaces): it names subjects, streams
#: and buckets alike, so keep it to what all three accept.
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_server(url: object) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"servers: {short_repr(url)} must be a nats://HOST:PORT URL")
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConfigError(f"servers: {short_repr(text)} has a bad port (want nats://HOST:PORT)") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigError(f"servers: {short_repr(text)} must start with nats:// or tls://")
    if not parts.hostname:
        raise ConfigError(f"servers: {short_repr(text)} has no host (want nats://HOST:PORT)")
    if port is None or not 1 <= port <= 65535:
        raise ConfigError(f"servers: {short_repr(text)} needs a port from 1 to 65535 (want nats://HOST:PORT)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"servers: {short_repr(text)} must be only nats://HOST:PORT (no path or query)")
    return text


def _positive(name: str, value: object, *, integer: bool = False, minimum: float = 0.0) -> None:
    ok_type = (type(value) is int) if integer else (type(value) in (int, float))
    if not ok_type or not math.isfinite(value) or value <= minimum:  # type: ignore[arg-type,operator]
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name}: {short_repr(value)} must be {kind} above {minimum:g}")


def _check_partition(i: object) -> int:
    if type(i) is not int or not 0 <= i < MAX_PARTITIONS:
        raise ConfigError(f"partition: {short_repr(i)} must be an integer from 0 to {MAX_PARTITIONS - 1}")
    return i


@dataclass(frozen=True, slots=True)
class BusConfig:
    """The bus's servers and the alert log's settings.

    ``servers``: ``nats://HOST:PORT`` (or ``tls://``) URLs of one cluster; the client picks
    any and fails over between them. ``prefix`` names everything (several deployments can share
    one NATS cluster). ``replicas`` is JetStream's R for both streams and the buckets (1 or 3
    in practice; at most 5). Ages are seconds, sizes bytes; ``duplicate_window_s`` is how long
    JetStream remembers a ``Nats-Msg-Id`` (a republish inside it is dropped).

    Beyond the contract's fields (all optional): ``connect_timeout_s`` bounds the first
    connect, ``request_timeout_s`` each JetStream request (a publish attempt, an info),
    ``publish_attempts`` how often a publish is retried (same message id) on no-responders or
    a timeout, ``heartbeat_s`` the idle heartbeat of :meth:`AlertLog.follow`'s consumer (a
    consumer silent for about twice it is recreated from the next sequence).
    """

    servers: tuple[str, ...]
    prefix: str = "dropengine"
    replicas: int = 1
    log_max_age_s: float = 86400
    log_max_bytes: int = 1 << 30
    quote_max_age_s: float = 86400
    quote_max_bytes: int = 1 << 30
    duplicate_window_s: float = 120
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 2.0
    publish_attempts: int = 8
    heartbeat_s: float = 1.0

    def __post_init__(self) -> None:
        servers = self.servers
        if isinstance(servers, str) or not isinstance(servers, tuple) or not servers:
            raise ConfigError(f"servers: {short_repr(servers)} must be a non-empty tuple of nats://HOST:PORT URLs")
        object.__setattr__(self, "servers", tuple(_check_server(s) for s in servers))
        if not isinstance(self.prefix, str) or not _PREFIX.fullmatch(self.prefix):
            raise ConfigError(
                f"prefix: {short_repr(self.prefix)} must be 1-64 letters, digits, '_' or '-' (one subject token)"
            )
        if type(self.replicas) is not int or not 1 <= self.replicas <= 5:
            raise ConfigError(f"replicas: {short_repr(self.replicas)} must be an integer from 1 to 5")
        _positive("log_max_age_s", self.log_max_age_s)
        _positive("log_max_bytes", self.log_max_bytes, integer=True)
        _positive("quote_max_age_s", self.quote_max_age_s)
        _positive("quote_max_bytes", self.quote_max_bytes, integer=True)
        _positive("duplicate_window_s", self.duplicate_window_s)
        _positive("connect_timeout_s", self.connect_timeout_s)
        _positive("request_timeout_s", self.request_timeout_s)
        _positive("publish_attempts", self.publish_attempts, integer=True)
        _positive("heartbeat_s", self.heartbeat_s)
        # JetStream refuses a duplicate window longer than the stream's max age.
        if self.duplicate_window_s > min(self.log_max_age_s, self.quote_max_age_s):
            raise ConfigError(
                f"duplicate_window_s: {self.duplicate_window_s!r} must not exceed the streams' max age "
                f"({min(self.log_max_age_s, self.quote_max_age_s)!r} s)"
            )

    @classmethod
    def parse(cls, url_text: str, **kw: Any) -> BusConfig:
        """``--bus`` text: one or more comma-separated ``nats://HOST:PORT`` URLs; ``kw`` are the
        other fields (``prefix=``, ``replicas=``, ...)."""
        if not isinstance(url_text, str):
            raise ConfigError(f"bus: {short_repr(url_text)} must be nats://HOST:PORT[,nats://HOST:PORT...]")
        parts = tuple(p.strip() for p in url_text.split(","))
        if not url_text.strip() or any(not p for p in parts):
            raise ConfigError(f"bus: {short_repr(url_text)} must be nats://HOST:PORT[,nats://HOST:PORT...]")
        return cls(servers=parts, **kw)

    @property
    def _upper(self) -> str:
        return self.prefix.upper().replace("-", "_").replace(".", "_")

    @property
    def alert_stream(self) -> str:
        """The alert log's stream, ``{PREFIX}_ALERTS``."""
        return f"{self._upper}_ALERTS"

    @property
    def quote_stream(self) -> str:
        """The quote stream, ``{PREFIX}_QUOTES``."""
        return f"{self._upper}_QUOTES"

    def alert_subject(self, i: int) -> str:
        """Partition ``i``'s alert subject, ``{prefix}.alerts.{i}``."""
        return f"{self.prefix}.alerts.{_check_partition(i)}"

    def quote_subject(self, i: int) -> str:
        """Partition ``i``'s quote subject, ``{prefix}.quotes.{i}``."""
        return f"{self.prefix}.quotes.{_check_partition(i)}"

    @property
    def alert_subjects(self) -> str:
        """Every partition's alert subject (the alert stream's subject filter)."""
        return f"{self.prefix}.alerts.*"

    @property
    def quote_subjects(self) -> str:
        """Every partition's quote subject (the quote stream's subject filter)."""
        return f"{self.prefix}.quotes.*"

    @property
    def checkpoint_bucket(self) -> str:
        """The detectors' checkpoint object store, ``{prefix}_checkpoints``."""
        return f"{self.prefix}_checkpoints"

    @property
    def lease_bucket(self) -> str:
        """The partition leases' KV bucket, ``{prefix}_leases``."""
        return f"{self.prefix}_leases"

    @property
    def detector_bucket(self) -> str:
        """The detectors' registry KV bucket, ``{prefix}_detectors``: each partition's
        detection options (what the alert log holds), read by ``serve --bus`` frontends."""
        return f"{self.prefix}_detectors"

    def display(self) -> str:
        """The servers for a message: scheme, host and port only (never credentials)."""
        shown = []
        for s in self.servers:
            p = urlsplit(s)
            shown.append(f"{p.scheme}://{p.hostname}:{p.port}")
        return ",".join(shown)
