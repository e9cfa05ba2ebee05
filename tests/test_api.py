"""The public API is explicit: this test pins it, so a change to it is a deliberate one."""

from __future__ import annotations

import inspect

import dropengine
from dropengine import live, server
from dropengine.core import engine, errors, keys, odds, retry, sides

PUBLIC = {
    "AlertFilter", "AuthError", "Backoff", "Outcome", "RetryPolicy", "Secret", "UpstreamError",
    "ConfigError", "Drop", "DropEngine", "DropEngineError", "EngineConfig",
    "EngineCounters", "FeedError", "FrameDecoder", "Quote", "ReplayStats", "SSEEvent", "SSEParser",
    "SideInfo", "Skip", "SkipLog", "SnapshotError", "__version__", "american_to_decimal",
    "american_to_prob", "cents", "decimal_to_american", "delta", "direction_of", "encode_drop",
    "encode_drops", "format_line", "h2h_side", "is_valid_price", "merge_by_clock", "parse_side",
    "prob_to_american", "prop_side", "quote_from_row", "quotes_from_odds_api", "replay",
    "spread_side", "total_side",
    # issue 10: the Literal types of the engine arguments, so callers can annotate them
    "DirectionChoice", "Reference", "Unit",
    # issue 11: the one options type taken by DropEngine, batch.detect and every command
    "DetectOptions",
    # issue 12: the signals of SPEC 10-12
    "SIGNALS", "Alert", "Signal", "LineMove", "Steam", "SteamBook", "KeyNumbers", "encode_alert", "encode_alerts",
    # issue 13: the split rule of the bus and the sharded batch engine, and the bus's errors
    "partition_of", "BusError", "FencedError", "ClusterError",
    # issue 15: runner sides of multi-runner markets (Betfair), and alerts of a live upstream (loaded lazily)
    "runner_side", "watch",
}


def test_all_is_pinned_and_every_name_exists() -> None:
    assert set(dropengine.__all__) == PUBLIC
    for name in dropengine.__all__:
        assert hasattr(dropengine, name), name


def test_submodule_all_lists_exist() -> None:
    for mod in (live, engine, errors, keys, odds, retry, server, sides):
        for name in mod.__all__:
            assert hasattr(mod, name), f"{mod.__name__}.{name}"


def test_one_exception_root() -> None:
    for exc in (dropengine.ConfigError, dropengine.FeedError, dropengine.SnapshotError, dropengine.UpstreamError,
                dropengine.AuthError):
        assert issubclass(exc, dropengine.DropEngineError)
    assert issubclass(dropengine.AuthError, dropengine.UpstreamError)
    assert not issubclass(dropengine.ConfigError, dropengine.FeedError)


def test_engine_signature() -> None:
    params = inspect.signature(dropengine.DropEngine).parameters
    assert list(params)[:4] == ["threshold", "direction", "reference", "unit"]
    assert params["threshold"].default == 10
    assert params["direction"].default == "both"
    assert params["reference"].default == "last"
    assert params["unit"].default == "cents"


def test_client_api_is_pinned() -> None:
    """``dropengine.client`` (issue 15): a subpackage, imported by the caller (it brings httpx)."""
    import dropengine.client as client

    assert set(client.__all__) == {
        "ALERT_TYPES", "AUTH_MODES", "DEFAULT_HEARTBEAT_S", "AsyncDropClient", "ClientOptions", "ClientStats",
        "Connected", "ConnectedFilters", "DropClient", "DropQuery", "Event", "EventDecoder", "Heartbeat", "Reset",
        "SteamSettings",
    }
    for name in client.__all__:
        assert hasattr(client, name), name
