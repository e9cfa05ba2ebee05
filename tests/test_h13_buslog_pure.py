"""The bus's pure parts: BusConfig (validation names the value; the names of streams,
subjects and buckets) and the codec (quote batches, alerts, message id / source headers)."""

from __future__ import annotations

import calendar
import datetime
import sys

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.bus.codec import (
    QuoteBatch,
    decode_alert,
    decode_quotes,
    encode_alert,
    encode_quotes,
    msg_id,
    parse_source,
    source_header,
)
from dropengine.bus.config import BusConfig
from dropengine.bus.log import epoch_of
from dropengine.core.alerts import Drop
from dropengine.core.epoch import new_epoch
from dropengine.core.errors import ConfigError, FeedError
from dropengine.core.quote import Quote

pytestmark = pytest.mark.bus


def test_importing_the_bus_does_not_load_nats() -> None:
    import subprocess

    code = "import sys, dropengine.bus, dropengine.bus.log; assert 'nats' not in sys.modules, 'nats loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_names_follow_the_contract() -> None:
    cfg = BusConfig.parse("nats://127.0.0.1:4222, nats://127.0.0.1:4223", prefix="my-app")
    assert cfg.servers == ("nats://127.0.0.1:4222", "nats://127.0.0.1:4223")
    assert cfg.alert_stream == "MY_APP_ALERTS" and cfg.quote_stream == "MY_APP_QUOTES"
    assert cfg.alert_subject(3) == "my-app.alerts.3" and cfg.quote_subject(0) == "my-app.quotes.0"
    assert cfg.checkpoint_bucket == "my-app_checkpoints" and cfg.lease_bucket == "my-app_leases"
    d = BusConfig(("tls://h:1",))
    assert (d.prefix, d.replicas, d.log_max_age_s, d.log_max_bytes, d.duplicate_window_s) == (
        "dropengine", 1, 86400, 1 << 30, 120)


def test_display_hides_credentials() -> None:
    cfg = BusConfig.parse("nats://user:s3cret@127.0.0.1:4222")
    assert "s3cret" not in cfg.display() and "user" not in cfg.display()
    assert cfg.display() == "nats://127.0.0.1:4222"


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://127.0.0.1:4222", "http://127.0.0.1:4222"),
        ("nats://:4222", "nats://:4222"),
        ("nats://127.0.0.1", "nats://127.0.0.1"),
        ("nats://127.0.0.1:99999", "nats://127.0.0.1:99999"),
        ("nats://127.0.0.1:42x", "nats://127.0.0.1:42x"),
        ("nats://127.0.0.1:4222/path", "nats://127.0.0.1:4222/path"),
        ("nats://a:1,,nats://b:2", "nats://a:1,,nats://b:2"),
        ("", "''"),
    ],
)
def test_bad_servers_are_named(url: str, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        BusConfig.parse(url)
    assert named in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prefix", "a.b"), ("prefix", ""), ("prefix", "x y"), ("replicas", 0), ("replicas", 7), ("replicas", True),
        ("log_max_age_s", 0), ("log_max_age_s", float("nan")), ("log_max_bytes", 1.5), ("log_max_bytes", -1),
        ("quote_max_age_s", -3), ("quote_max_bytes", 0), ("duplicate_window_s", 0), ("connect_timeout_s", 0),
        ("publish_attempts", 0), ("heartbeat_s", float("inf")),
    ],
)
def test_bad_settings_name_the_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        BusConfig(("nats://127.0.0.1:4222",), **{field: value})  # type: ignore[arg-type]
    assert str(err.value).startswith(field) and repr(value) in str(err.value)


def test_duplicate_window_within_max_age() -> None:
    with pytest.raises(ConfigError, match="duplicate_window_s: 600"):
        BusConfig(("nats://h:1",), duplicate_window_s=600, log_max_age_s=60)


def test_partition_subject_bounds() -> None:
    cfg = BusConfig(("nats://h:1",))
    for bad in (-1, 4096, "0", None):
        with pytest.raises(ConfigError, match="partition"):
            cfg.alert_subject(bad)  # type: ignore[arg-type]


quotes = st.builds(
    Quote, st.just("nfl"), st.text("abc123", min_size=1, max_size=6), st.sampled_from(["b1", "b2"]),
    st.sampled_from(["h2h_home", "h2h_away", "spread_home@-3.5", "total_over@44"]),
    st.one_of(st.none(), st.integers(-2000, 2000).filter(lambda p: abs(p) >= 100)),
    st.integers(0, 2**52),
)


@settings(max_examples=25)
@given(st.integers(0, 2**62), st.lists(quotes, max_size=5))
def test_quote_batch_round_trip(now_ms: int, qs: list[Quote]) -> None:
    assert decode_quotes(encode_quotes(now_ms, qs)) == QuoteBatch(now_ms, qs)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"not json", "quote message"),
        (b'{"now_ms": 1}', "quotes"),
        (b'{"now_ms": "x", "quotes": []}', "now_ms"),
        (b'{"now_ms": 1, "quotes": [{"sport_key": "nfl"}]}', "event_id"),
        (b'{"now_ms": 1, "quotes": [{"sport_key": "nfl", "event_id": "e", "bookmaker": "b", "side": "h2h_home", '
         b'"price": "cheap", "last_update": 1}]}', "price"),
        (b'{"now_ms": 1, "quotes": [{"sport_key": "nfl", "event_id": "e", "bookmaker": "b", "side": "nope", '
         b'"price": 100, "last_update": 1}]}', "nope"),
        (b'{"now_ms": -5, "quotes": []}', "-5"),
    ],
)
def test_bad_quote_messages_are_feed_errors_naming_what(data: bytes, named: str) -> None:
    with pytest.raises(FeedError) as err:
        decode_quotes(data)
    assert named in str(err.value)


def test_alert_round_trip_and_bad_alert() -> None:
    d = Drop(sport_key="nfl", event_id="e", bookmaker="b", side="home", kind="game", market_key="h2h", prev=-110,
             new=-130, delta=20, direction="toward_favorite", last_update=1, timestamp=2, elapsed_ms=1)
    assert decode_alert(encode_alert(d)) == d
    assert encode_alert(d) == msgspec.json.encode(d)
    with pytest.raises(FeedError, match="alert message"):
        decode_alert(b'{"type": "nope"}')


def test_msg_id_and_source() -> None:
    assert msg_id(1, 4, 17, 0) == "p1.4.17.0"
    assert source_header(17, 2) == "17.2"
    assert parse_source("17.2") == (17, 2)
    assert parse_source("k3x.17.2") == (17, 2)  # with the quote stream's epoch (review13 #2)
    for bad in (None, "", "17", "a.b", "0.1", "1.2.3.4", "K3X.1.2", "-1.0"):
        assert parse_source(bad) is None
    for args in ((4, 4, 1, 0), (0, 0, 1, 0), (0, 1, 0, 0), (0, 1, 1, -1)):
        with pytest.raises(ConfigError):
            msg_id(*args)


@settings(max_examples=25)
@given(st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2200, 1, 1)))
def test_epoch_is_the_hubs_epoch_of_the_creation_microsecond(created: datetime.datetime) -> None:
    aware = created.replace(tzinfo=datetime.UTC)
    us = calendar.timegm(aware.timetuple()) * 10**6 + aware.microsecond
    assert epoch_of(aware) == new_epoch(us)
