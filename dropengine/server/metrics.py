"""``/metrics`` through prometheus-client: one registry per server, read at scrape time.

Why a collector and not ``Counter``/``Gauge`` objects: the server's counts already live where
they are kept exactly (the hub's :class:`~dropengine.server.hub.HubCounters`, the server's
:class:`~dropengine.server.ingest.Metrics`, ``status()``); mirroring each increment into a
second set of objects would be two truths that can drift. A :class:`ServerCollector` reads
them once per scrape and hands prometheus-client metric families, which
:func:`prometheus_client.generate_latest` writes in the Prometheus text format (0.0.4).

Each server gets its own :class:`~prometheus_client.CollectorRegistry` (:func:`server_registry`),
never the process-wide default one: several servers in one process (tests, an embedding
application) each expose their own numbers, and nothing is registered globally.

The metric names and meanings are those of the hand-written text before issue 15; values are
now written as floats (``dropengine_connections_total 3.0``), as prometheus-client writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = [
    "CONTENT_TYPE", "REJECTED_STATUSES", "SINK_OUTCOMES", "CallbackCollector", "MetricLine", "MetricsSource",
    "ServerCollector", "exposition", "server_registry",
]

#: One plain metric: (name, ``"counter"`` or ``"gauge"``, help, value). A server's own metrics
#: beyond the shared ones are declared so (``StreamServer._metric_lines``).
MetricLine = tuple[str, str, str, object]

#: The content type of what :func:`exposition` writes (``generate_latest``'s text format).
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4

#: The HTTP statuses of refused stream requests (``dropengine_rejected_total{status=...}``).
REJECTED_STATUSES: Final = (400, 401, 403, 429)


class MetricsSource(Protocol):
    """What a :class:`ServerCollector` reads: the server's counters, at scrape time."""

    def metric_lines(self) -> Sequence[MetricLine]:
        """The unlabelled metrics, in exposition order."""
        ...

    def alerts_by_type(self) -> Mapping[str, int]:
        """Alerts detected (or followed) by type, before any connection's filter."""
        ...

    def rejected(self) -> Mapping[int, int]:
        """Stream requests refused, by HTTP status."""
        ...

    def sinks(self) -> Mapping[str, Mapping[str, int]]:
        """Server-wide sinks' counters by sink name (``offered``, ``delivered``, ``failed``,
        ``dropped``, ``retried``, ``dead_lettered``); empty without sinks."""
        ...


def _family(name: str, kind: str, help_text: str, value: float) -> Metric:
    """A counter or gauge family of one value (a ``kind`` that is neither is a programming error)."""
    if kind == "counter":
        return CounterMetricFamily(name, help_text, value=value)
    if kind == "gauge":
        return GaugeMetricFamily(name, help_text, value=value)
    raise ValueError(f"kind: {kind!r} is not counter or gauge (metric {name})")


def _number(name: str, value: object) -> float:
    """A metric value as a float; anything else (None, text) is a programming error naming the metric."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    raise ValueError(f"{name}: {value!r} is not a number")


class ServerCollector(Collector):
    """The metric families of one server, read from ``source`` at each scrape."""

    def __init__(self, source: MetricsSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        for name, kind, help_text, value in self._source.metric_lines():
            yield _family(name, kind, help_text, _number(name, value))
        by_type = CounterMetricFamily("dropengine_alerts_total", "alerts detected by type (before filters)",
                                      labels=["type"])
        for t, n in self._source.alerts_by_type().items():
            by_type.add_metric([t], _number("dropengine_alerts_total", n))
        yield by_type
        rejected = CounterMetricFamily("dropengine_rejected_total", "stream requests refused, by status",
                                       labels=["status"])
        counts = self._source.rejected()
        for status in REJECTED_STATUSES:
            rejected.add_metric([str(status)], _number("dropengine_rejected_total", counts.get(status, 0)))
        yield rejected
        yield from _sink_families(self._source.sinks())


#: ``dropengine_sink_alerts_total{outcome=...}``: what became of the alerts offered to a sink.
SINK_OUTCOMES: Final = ("delivered", "failed", "dropped")


def _sink_families(sinks: Mapping[str, Mapping[str, int]]) -> Iterator[Metric]:
    """The server-wide sinks' counters (nothing without sinks). A sink's name shows its kind and
    host or chat only (``webhook https://example.com``), never a token."""
    if not sinks:
        return
    offered = CounterMetricFamily("dropengine_sink_offered_total", "alerts offered to a server-wide sink",
                                  labels=["sink"])
    outcomes = CounterMetricFamily("dropengine_sink_alerts_total",
                                   "alerts a server-wide sink delivered, failed (dead-lettered) or dropped "
                                   "(queue full)", labels=["sink", "outcome"])
    retries = CounterMetricFamily("dropengine_sink_retries_total", "retried deliveries", labels=["sink"])
    dead = CounterMetricFamily("dropengine_sink_dead_lettered_total", "alerts written to the dead-letter file",
                               labels=["sink"])
    for name, c in sinks.items():
        offered.add_metric([name], _number("dropengine_sink_offered_total", c.get("offered", 0)))
        for outcome in SINK_OUTCOMES:
            outcomes.add_metric([name, outcome], _number("dropengine_sink_alerts_total", c.get(outcome, 0)))
        retries.add_metric([name], _number("dropengine_sink_retries_total", c.get("retried", 0)))
        dead.add_metric([name], _number("dropengine_sink_dead_lettered_total", c.get("dead_lettered", 0)))
    yield from (offered, outcomes, retries, dead)


def server_registry(source: MetricsSource, extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """A fresh registry (never the global one) holding ``source``'s collector and ``extra``
    collectors (e.g. server-wide sinks' counters)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(source))
    for collector in extra:
        registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """``registry`` in the Prometheus text format (:data:`CONTENT_TYPE`)."""
    return generate_latest(registry)


class CallbackCollector(Collector):
    """Metric lines computed by ``lines()`` at each scrape (a component that keeps plain
    counters, e.g. a delivery sink, exposed on a server's registry)."""

    def __init__(self, lines: Callable[[], Iterable[MetricLine]]) -> None:
        self._lines = lines

    def collect(self) -> Iterator[Metric]:
        for name, kind, help_text, value in self._lines():
            yield _family(name, kind, help_text, _number(name, value))

