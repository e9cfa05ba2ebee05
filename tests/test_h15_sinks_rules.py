"""The pure rules of delivery (dropengine.deliver.rules): the signature against a vector
computed outside Python (openssl), the receiver's check, the answer table, backoff bounds,
the sliding-window rate limit (never more than the limit in any window, whatever the send
times), message lines and batching, dead-letter records and ``--sink`` specs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.core.alerts import Drop, LineMove, Steam, SteamBook
from dropengine.core.errors import ConfigError
from dropengine.deliver.rules import (
    RateLimiter,
    RetrySchedule,
    alert_line,
    batch_text,
    classify,
    dead_letter_record,
    delivery_id,
    discord_escape,
    parse_sink_spec,
    retry_after_s,
    sign,
    telegram_windows,
    verify,
)


def drop(i: int = 0, **kw: object) -> Drop:
    fields: dict[str, object] = dict(
        sport_key="basketball_nba", event_id=f"ev{i}", bookmaker="pinnacle", side="h2h_home", kind="game",
        market_key="h2h", prev=-110, new=-120, delta=-10, direction="toward_favorite",
        last_update=1_747_000_000_000 + i, timestamp=1_747_000_000_100 + i, elapsed_ms=61_000,
        home_team="Boston Celtics", away_team="Los Angeles Lakers", commence_time="2026-05-12T22:30:00Z")
    fields.update(kw)
    return Drop(**fields)  # type: ignore[arg-type]


# -- signature -------------------------------------------------------------------------------
def test_signature_matches_openssl_vector() -> None:
    # printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec_test'
    assert sign("whsec_test", 1_700_000_000, b'{"a":1}') == \
        "sha256=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 2**40), st.text(min_size=1, max_size=20))
def test_verify_accepts_only_the_exact_signature(body: bytes, ts: int, secret: str) -> None:
    good = sign(secret, ts, body)
    assert verify(secret, str(ts), body, good, now_s=ts)
    assert not verify(secret, str(ts), body + b"x", good, now_s=ts)  # body changed
    assert not verify(secret, str(ts + 1), body, good, now_s=ts)  # timestamp changed
    assert not verify(secret + "x", str(ts), body, good, now_s=ts)  # other secret
    assert not verify(secret, str(ts), body, good, now_s=ts + 301)  # too old: a replay
    assert not verify(secret, None, body, good, now_s=ts) and not verify(secret, str(ts), body, None, now_s=ts)
    assert not verify(secret, "²", body, good, now_s=ts)  # a digit to str.isdigit, not to int()


def test_delivery_id_is_stable_per_alert_and_differs_between_alerts() -> None:
    a, b = drop(1).to_json(), drop(2).to_json()
    assert delivery_id(a) == delivery_id(drop(1).to_json()) and delivery_id(a) != delivery_id(b)
    assert len(delivery_id(a)) == 32


# -- answers and retries ---------------------------------------------------------------------
@pytest.mark.parametrize(("status", "answer"), [
    (200, "ok"), (204, "ok"), (429, "rate_limited"), (500, "retry"), (502, "retry"), (503, "retry"),
    (408, "retry"), (400, "reject"), (401, "reject"), (403, "reject"), (404, "reject"), (410, "reject"),
    (301, "reject"), (302, "reject"),
])
def test_classify(status: int, answer: str) -> None:
    assert classify(status) == answer


def test_retry_after_from_header_and_from_each_services_body() -> None:
    assert retry_after_s("3", None) == 3.0
    assert retry_after_s("0.25", None) == 0.25
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", None) is None  # a date: no clock here
    assert retry_after_s(None, {"message": "You are being rate limited.", "retry_after": 0.64, "global": False}) == 0.64
    assert retry_after_s(None, {"ok": False, "error_code": 429, "parameters": {"retry_after": 7}}) == 7.0
    assert retry_after_s("9", {"retry_after": 1.5}) == 1.5  # the body is the more precise
    assert retry_after_s(None, {"retry_after": True}) is None and retry_after_s("-1", None) is None
    assert retry_after_s(None, None) is None


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 80), st.floats(0, 1, exclude_max=True), st.floats(0.001, 5), st.floats(0.001, 100))
def test_backoff_is_full_jitter_below_the_capped_exponential(retry: int, u: float, base: float, cap: float) -> None:
    s = RetrySchedule(base_s=base, cap_s=cap)
    ceiling = min(cap, base * 2.0 ** (retry - 1))
    wait = s.backoff_s(retry, u)
    assert 0 <= wait <= ceiling
    assert wait == pytest.approx(u * ceiling)


def test_retry_after_is_honoured_up_to_its_cap_and_scaling_leaves_the_timeout() -> None:
    s = RetrySchedule(retry_after_cap_s=60)
    assert s.wait_s(1, 0.9, 12.0) == 12.0 and s.wait_s(1, 0.9, 600.0) == 60.0
    scaled = s.scaled(0.01)
    assert scaled.base_s == pytest.approx(0.005) and scaled.retry_after_cap_s == pytest.approx(0.6)
    assert scaled.timeout_s == s.timeout_s
    for bad in ({"attempts": 0}, {"base_s": -1.0}, {"timeout_s": 0.0}, {"cap_s": float("nan")}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            RetrySchedule(**bad)


# -- rate limits -----------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 3), min_size=1, max_size=40),
       st.sampled_from([((5, 2.0),), ((1, 1.0), (20, 60.0)), ((1, 1.0),), ((3, 0.5), (4, 1.0))]))
def test_a_sender_that_waits_as_told_never_exceeds_any_window(gaps: list[float], windows: tuple[tuple[int, float], ...]
                                                              ) -> None:
    limiter = RateLimiter(windows)
    now, sent = 0.0, []
    for gap in gaps:  # the sender wants to send `gap` after its last send; it waits as told
        now += gap
        now += limiter.wait_s(now)
        assert limiter.wait_s(now) == pytest.approx(0.0, abs=1e-9)
        limiter.record(now)
        sent.append(now)
    for limit, period in windows:
        for i, t in enumerate(sent):
            inside = [u for u in sent[i:] if u < t + period - 1e-9]
            assert len(inside) <= limit


def test_rate_limiter_exact_waits_and_a_429_block() -> None:
    limiter = RateLimiter(((5, 2.0),))
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        assert limiter.wait_s(t) == 0.0
        limiter.record(t)
    assert limiter.wait_s(0.5) == pytest.approx(1.5)  # the first send leaves the window at 2.0
    assert limiter.wait_s(2.0) == 0.0
    limiter.block(10.0)
    assert limiter.wait_s(3.0) == pytest.approx(7.0)
    assert telegram_windows("12345") == ((1, 1.0),)
    assert telegram_windows("-1001234567890") == ((1, 1.0), (20, 60.0))


# -- messages --------------------------------------------------------------------------------
def test_alert_lines_are_readable_for_each_type() -> None:
    assert alert_line(drop()) == ("DROP basketball_nba · Los Angeles Lakers @ Boston Celtics · pinnacle h2h_home "
                                  "-110 → -120 (-10c, toward favorite)")
    prop = drop(side="player_points:Nikola Jokic:over@25.5", kind="prop", market_key="player_points",
                player="Nikola Jokic", market="Points", line=25.5, prev=105, new=-112.5, delta=-17.5,
                home_team=None, away_team=None)
    assert alert_line(prop) == ("DROP basketball_nba · event ev0 · pinnacle Nikola Jokic Points over 25.5 "
                                "+105 → -112.5 (-17.5c, toward favorite)")
    move = LineMove(sport_key="americanfootball_nfl", event_id="e", bookmaker="draftkings", side="spread_home",
                    kind="game", market_key="spreads", prev_line=-3, new_line=-3.5, points=-0.5, prev_price=-110,
                    new_price=100, direction="toward_favorite", key_numbers=(3,), last_update=1, timestamp=2,
                    elapsed_ms=3, home_team="Chiefs", away_team="Bills")
    assert alert_line(move) == ("LINE americanfootball_nfl · Bills @ Chiefs · draftkings spread_home -3 → -3.5 "
                                "(-0.5 pts, toward favorite; key 3) price -110 → +100")
    books = (SteamBook("pinnacle", "line_move", "spread_home", 1, prev_line=-3, new_line=-3.5, points=-0.5),
             SteamBook("draftkings", "odds_drop", "spread_home@-3", 45_001, prev=-110, new=-125, delta=-15))
    steam = Steam(sport_key="americanfootball_nfl", event_id="e", side="spread_home", market_key="spreads",
                  kind="game", direction="toward_favorite", books=books, leader="pinnacle", lag_ms=45_000,
                  last_update=45_001, timestamp=45_002)
    assert alert_line(steam) == ("STEAM americanfootball_nfl · event e · spread_home toward favorite at 2 books "
                                 "in 45s, pinnacle first: pinnacle, draftkings")


def test_discord_escape_keeps_sides_literal_and_blocks_mentions() -> None:
    assert discord_escape("h2h_home *x* @everyone <@1> `c` a|b ~s~ > q") == \
        "h2h\\_home \\*x\\* \\@everyone \\<\\@1\\> \\`c\\` a\\|b \\~s\\~ \\> q"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=120).filter(lambda t: "\n" not in t), min_size=1, max_size=40),
       st.integers(20, 400))
def test_batch_text_fits_the_limit_and_takes_lines_in_order(lines: list[str], limit: int) -> None:
    def units(t: str) -> int:  # UTF-16 code units, as the services count (N3)
        return len(t) + sum(1 for c in t if ord(c) > 0xFFFF)

    text, n = batch_text(lines, limit)
    assert 1 <= n <= len(lines) and units(text) <= limit
    if n > 1 or units(lines[0]) <= limit:
        assert text == "\n".join(lines[:n])
    else:
        cut = lines[0][:limit - 1]
        while units(cut) > limit - 1:
            cut = cut[:-1]
        assert text == cut + "…"
    if n < len(lines):  # stopped because the next line would not fit
        assert units(text) + 1 + units(lines[n]) > limit


def test_dead_letter_record_is_one_exact_json_line() -> None:
    line = dead_letter_record(drop(), reason="rejected: HTTP 404 (not retried)", attempts=1, sink="webhook x",
                              delivery="abc", at_ms=5)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"alert": json.loads(drop().to_json()), "reason": "rejected: HTTP 404 (not retried)",
                                "attempts": 1, "sink": "webhook x", "delivery_id": "abc", "at_ms": 5}


# -- specs -----------------------------------------------------------------------------------
def test_sink_specs() -> None:
    assert parse_sink_spec("webhook:https://example.com/h?x=1").target == "https://example.com/h?x=1"
    assert parse_sink_spec("Discord:https://discord.com/api/webhooks/1/tok").kind == "discord"
    assert parse_sink_spec("telegram:-1001234").target == "-1001234"
    assert parse_sink_spec("telegram:@mychannel").target == "@mychannel"
    assert parse_sink_spec("ndjson:out.ndjson").kind == "ndjson"
    secret_path = "https://discord.com/api/webhooks/1/SECRET-TOKEN-xyz"
    assert "SECRET-TOKEN" not in repr(parse_sink_spec(f"discord:{secret_path}"))
    for bad, shown in (("slack:https://x", "'slack'"), ("webhook:", "empty"), ("webhook:ftp://x/SECRETPATH", "http"),
                       ("telegram:abc", "'abc'"), ("nocolon", "KIND:TARGET")):
        with pytest.raises(ConfigError, match="--sink") as info:
            parse_sink_spec(bad)
        assert shown in str(info.value) and "SECRETPATH" not in str(info.value)
