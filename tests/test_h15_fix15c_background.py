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


def test_two_writers_of_one_file_are_refused_naming_both(tmp_path: object) -> None:
    """B15C-11: two ndjson sinks on one file, or one on the dead-letter file (by another spelling)."""
    from pathlib import Path

    from dropengine.deliver.options import build_sinks
    from dropengine.deliver.rules import SinkSpec

    base = Path(str(tmp_path))
    a = base / "a.ndjson"
    for opts in (SinkOptions(specs=(SinkSpec("ndjson", str(a)), SinkSpec("ndjson", str(base / "." / "a.ndjson")))),
                 SinkOptions(specs=(SinkSpec("ndjson", str(a)),), dead_letter=a)):
        with pytest.raises(ConfigError, match="the same file as") as err:
            build_sinks(opts)
        assert str(err.value).count("a.ndjson") == 2
    assert len(build_sinks(SinkOptions(specs=(SinkSpec("ndjson", str(a)), SinkSpec("ndjson", str(base / "b.ndjson"))),
                                       dead_letter=base / "dead.ndjson"))) == 2
