"""The retry policy of SPEC section 8, row by row and exhaustively over codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropengine.core.errors import AuthError, ConfigError, UpstreamError
from dropengine.core.retry import (
    CLOSE_RULES,
    Backoff,
    Outcome,
    Retry,
    RetryPolicy,
    Stop,
    Wait,
    dead_after_s,
    parse_retry_after,
    rule_for,
)

P = RetryPolicy()  # the SPEC numbers: 1 s doubling, cap 30 s, healthy 10 s, restart 5 s

NEVER_RETRY_CLOSE = {1008, 4001, 4003, 4401}
NEVER_RETRY_HTTP_AUTH = {401, 403}


def decide(outcome: Outcome, healthy: float = 0.0, u: float = 1.0, b: Backoff | None = None) -> Retry | Stop:
    return (b or Backoff(P)).decide(outcome, healthy, u, "test stream")


def test_every_close_code_has_a_decision() -> None:
    for code in range(1000, 5000):
        d = decide(Outcome.close(code))
        if code in NEVER_RETRY_CLOSE:
            assert isinstance(d, Stop), code
            assert isinstance(d.error, AuthError)
            assert d.error.close_code == code
            assert str(code) in str(d.error) and "test stream" in str(d.error)
        else:
            assert isinstance(d, Retry), code
            assert d.delay_s > 0


def test_every_http_status_has_a_decision() -> None:
    for status in range(100, 600):
        d = decide(Outcome.http(status))
        if status in NEVER_RETRY_HTTP_AUTH:
            assert isinstance(d, Stop) and isinstance(d.error, AuthError) and d.error.status == status
        elif 400 <= status <= 499 and status not in (408, 429):
            # a request the upstream calls malformed (404 unknown sport, 400 bad filter)
            assert isinstance(d, Stop) and type(d.error) is UpstreamError and d.error.status == status, status
        else:
            assert isinstance(d, Retry), status


@pytest.mark.parametrize("outcome", [
    Outcome.network("ConnectError: refused"), Outcome.silence(10.0), Outcome.ended(),
    Outcome.http(500), Outcome.http(502), Outcome.http(503), Outcome.http(504),
    Outcome.close(1006), Outcome.close(1011), Outcome.close(1013), Outcome.close(1000), Outcome.close(1001),
])
def test_transient_failures_back_off_exponentially(outcome: Outcome) -> None:
    b = Backoff(P)
    delays = []
    for _ in range(8):
        d = b.decide(outcome, 0.0, 1.0)  # u = 1: the ceiling itself
        assert isinstance(d, Retry)
        delays.append(d.delay_s)
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


def test_full_jitter_spans_zero_to_the_ceiling_with_a_floor() -> None:
    for attempt in range(10):
        ceiling = min(30.0, 2.0**attempt)
        low = Backoff(P, attempt).decide(Outcome.close(1006), 0.0, 0.0)
        mid = Backoff(P, attempt).decide(Outcome.close(1006), 0.0, 0.5)
        high = Backoff(P, attempt).decide(Outcome.close(1006), 0.0, 1.0)
        assert isinstance(low, Retry) and isinstance(mid, Retry) and isinstance(high, Retry)
        assert low.delay_s == P.floor_s  # never 0: no hot loop on unlucky draws
        assert mid.delay_s == pytest.approx(max(ceiling / 2, P.floor_s))
        assert high.delay_s == ceiling


def test_1012_waits_at_least_five_seconds() -> None:
    for u in (0.0, 0.01, 0.5, 1.0):
        for attempt in range(8):
            d = Backoff(P, attempt).decide(Outcome.close(1012), 0.0, u)
            assert isinstance(d, Retry) and d.delay_s >= 5.0
    assert rule_for(Outcome.close(1012)).wait is Wait.RESTART


@pytest.mark.parametrize("outcome", [Outcome.http(429, 7.0), Outcome.close(4002, retry_after_s=7.0)])
def test_429_and_4002_honour_retry_after(outcome: Outcome) -> None:
    for u in (0.0, 1.0):
        d = decide(outcome, u=u)
        assert isinstance(d, Retry) and d.delay_s == 7.0
    # the backoff still grows under it: "Retry-After: 0" from a server is not a licence to spin
    b = Backoff(P)
    zero = Outcome.http(429, 0.0)
    assert [b.decide(zero, 0.0, 1.0).delay_s for _ in range(6)] == [1, 2, 4, 8, 16, 30]  # type: ignore[union-attr]


@pytest.mark.parametrize("outcome", [Outcome.http(429), Outcome.close(4002)])
def test_429_and_4002_without_retry_after_back_off_long(outcome: Outcome) -> None:
    for u in (0.0, 0.3, 1.0):
        d = decide(outcome, u=u)
        assert isinstance(d, Retry) and P.cap_s / 2 <= d.delay_s <= P.cap_s


def test_backoff_resets_only_after_ten_healthy_seconds() -> None:
    b = Backoff(P)
    for _ in range(4):
        b.decide(Outcome.close(1006), 0.0, 1.0)
    # flapping: connections that open and drop within 10 s keep doubling
    d = b.decide(Outcome.close(1006), 9.99, 1.0)
    assert isinstance(d, Retry) and d.delay_s == 16 and d.attempt == 5
    d = b.decide(Outcome.ended(), 9.0, 1.0)
    assert isinstance(d, Retry) and d.delay_s == 30
    # a connection healthy for 10 s resets: the next failure waits the base again
    d = b.decide(Outcome.close(1006), 10.0, 1.0)
    assert isinstance(d, Retry) and d.delay_s == 1 and d.attempt == 1


def test_stops_do_not_count_as_attempts_and_messages_are_typed() -> None:
    b = Backoff(P, attempt=3)
    d = b.decide(Outcome.http(401, detail="missing api key"), 0.0, 0.5, "sse /v1/sse/odds/x")
    assert isinstance(d, Stop) and isinstance(d.error, AuthError)
    assert str(d.error).startswith("sse /v1/sse/odds/x: HTTP 401")
    assert b.attempt == 3
    d = b.decide(Outcome.http(404), 0.0, 0.5)
    assert isinstance(d, Stop) and not isinstance(d.error, AuthError)


def test_table_rows_match_the_spec() -> None:
    stop = {c for c, r in CLOSE_RULES.items() if not r.retry}
    assert stop == NEVER_RETRY_CLOSE
    assert all(CLOSE_RULES[c].auth for c in stop)
    assert CLOSE_RULES[4002].wait is Wait.RETRY_AFTER


outcomes = st.one_of(
    st.builds(Outcome.http, st.integers(100, 599), st.none() | st.floats(0, 120)),
    st.builds(Outcome.close, st.integers(1000, 4999), st.just(""), st.none() | st.floats(0, 120)),
    st.builds(Outcome.network, st.text(max_size=5)),
    st.builds(Outcome.silence, st.floats(1, 60)),
    st.builds(Outcome.ended),
)


@given(st.lists(st.tuples(outcomes, st.floats(0, 30), st.floats(0, 1)), min_size=1, max_size=30))
def test_any_sequence_is_bounded_and_never_hot(steps: list[tuple[Outcome, float, float]]) -> None:
    """Every retry waits at least the floor and at most the largest bound that applies."""
    b = Backoff(P)
    for outcome, healthy, u in steps:
        before = b.attempt
        d = b.decide(outcome, healthy, u)
        if isinstance(d, Stop):
            assert b.attempt == before
            continue
        assert d.delay_s >= P.floor_s
        limit = max(P.cap_s, P.restart_wait_s, outcome.retry_after_s or 0.0)
        assert d.delay_s <= limit
        assert b.attempt == (1 if healthy >= P.healthy_s else before + 1)


def test_scaled_policy_keeps_the_rules() -> None:
    fast = P.scaled(0.01)
    b = Backoff(fast)
    delays = [b.decide(Outcome.close(1011), 0.0, 1.0).delay_s for _ in range(7)]  # type: ignore[union-attr]
    assert delays == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.16, 0.3, 0.3])
    d = Backoff(fast).decide(Outcome.close(1012), 0.0, 0.0)
    assert isinstance(d, Retry) and d.delay_s == pytest.approx(0.05)


def test_bad_arguments_name_themselves() -> None:
    with pytest.raises(ConfigError, match="u: 2"):
        Backoff(P).decide(Outcome.ended(), 0.0, 2.0)
    with pytest.raises(ConfigError, match="base_s"):
        RetryPolicy(base_s=0)
    with pytest.raises(ConfigError, match="cap_s"):
        RetryPolicy(cap_s=float("nan"))


def test_heartbeat_rule_and_retry_after_parsing() -> None:
    assert dead_after_s(5) == 10 and dead_after_s(30) == 60
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 12 ") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None  # a date: back off long instead
    assert parse_retry_after("-1") is None


def test_redaction_sees_through_percent_encoding() -> None:
    import logging

    from dropengine.live.redaction import RedactingFilter

    f = RedactingFilter(["SECRET-1"])
    record = logging.LogRecord("uvicorn.access", logging.INFO, "x", 1, '%s - "%s %s"', (
        "127.0.0.1", "GET", "/v1/odds-drop/all?api%4Bey=%53ECRET-1&threshold=0"), None)
    f.filter(record)
    assert "SECRET-1" not in record.getMessage() and "%53ECRET-1" not in record.getMessage()
    anonymous = RedactingFilter()  # without a key list: any key-named parameter, however encoded
    record = logging.LogRecord("uvicorn.access", logging.INFO, "x", 1, "%s", ("/x?api%4Bey=abc123",), None)
    anonymous.filter(record)
    assert "abc123" not in record.getMessage()
