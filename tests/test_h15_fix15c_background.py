"""fix15c: the sync facade's set-up rules: same-named sinks keep one counters entry each
(R15-16), and a drain time that is not a finite number of seconds is refused wherever it is
given (B15C-13: one rule, rules.drain_seconds)."""

from __future__ import annotations

import asyncio
import math

import pytest

from dropengine.core.errors import ConfigError
from dropengine.deliver import BackgroundSinks, WebhookSink
from dropengine.deliver.options import SinkOptions


def test_same_named_sinks_are_told_apart() -> None:
    a, b = WebhookSink("https://example.com/a"), WebhookSink("https://example.com/b")
    bg = BackgroundSinks(a, b)
    assert list(bg.counters) == ["webhook https://example.com", "webhook https://example.com #2"]


@pytest.mark.parametrize("drain", [math.nan, math.inf, -1.0, "10"])
def test_a_drain_that_is_not_finite_seconds_is_refused_everywhere(drain: object) -> None:
    with pytest.raises(ConfigError, match="drain"):
        BackgroundSinks(WebhookSink("https://example.com/a"), drain_s=drain)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--sink-drain"):
        SinkOptions(drain_s=drain)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="drain_s"):
        asyncio.run(WebhookSink("https://example.com/a").aclose(drain))  # type: ignore[arg-type]
