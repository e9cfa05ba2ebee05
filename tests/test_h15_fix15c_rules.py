"""fix15c: the pure delivery rules breaker15c's findings changed (dropengine.deliver.rules):
one alert is one chat line whatever the feed's text holds (B15C-7)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.deliver.rules import alert_line, batch_text, discord_escape

from .test_h15_sinks_rules import drop

_names = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=60, deadline=None)
@given(_names, _names, _names)
def test_one_alert_is_one_line_whatever_the_feed_text(home: str, away: str, book: str) -> None:
    a = drop(1, home_team=home or "h", away_team=away or "a", bookmaker=book or "b")
    line = alert_line(a)
    assert len(line.splitlines()) == 1 and "\u2028" not in line and "\u2029" not in line
    text, n = batch_text([discord_escape(line), discord_escape(alert_line(drop(2)))], 2000)
    assert n == len(text.splitlines()) == 2


def test_printable_feed_text_is_kept_as_written() -> None:
    a = drop(1, home_team="Atlético 👨‍👩‍👧 Madrid", away_team="Köln\u00a0FC")  # a joiner and a no-break space stay
    assert "Atlético 👨‍👩‍👧 Madrid" in alert_line(a) and "Köln\u00a0FC" in alert_line(a)
    forged = alert_line(drop(1, home_team="Celtics\nDROP fake\u2028x\u202ey"))
    assert "Celtics DROP fake x y" in forged


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["hooks.example.com/", "https:/h.example/", "discord.com/api/webhooks/1/", "", "u@", "h?t="]),
       st.text(st.characters(categories=["L", "N"]), min_size=8, max_size=30))
def test_a_refused_sink_url_never_echoes_its_token(prefix: str, token: str) -> None:
    """B15C-9: a URL refused for its scheme shows at most what precedes its path, query or userinfo."""
    import pytest

    from dropengine.core.errors import ConfigError
    from dropengine.deliver.rules import parse_sink_spec

    for kind in ("webhook", "discord"):
        with pytest.raises(ConfigError) as err:
            parse_sink_spec(f"{kind}:{prefix}S3CRET{token}")
        assert "S3CRET" not in str(err.value) and token not in str(err.value)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.integers(1_600_000_000, 1_900_000_000), st.floats(0, 0.999))
def test_one_retry_after_parser_reads_seconds_and_http_dates(delay: int, now: int, frac: float) -> None:
    """R15-2/B15C-3: core.retry.parse_retry_after is the one parser; the sinks' header reading is it."""
    import email.utils

    from dropengine.core.retry import parse_retry_after
    from dropengine.deliver.rules import retry_after_s

    date = email.utils.formatdate(now + delay, usegmt=True)
    import pytest

    got = parse_retry_after(date, now + frac)
    assert got == retry_after_s(date, None, now + frac) and got == pytest.approx(max(0.0, delay - frac), abs=1e-6)
    assert parse_retry_after(date) is None  # no clock given: not read (the live client backs off long)
    assert parse_retry_after(f" {delay} ") == retry_after_s(str(delay)) == float(delay)
    assert parse_retry_after("1.5") == retry_after_s("1.5") == 1.5
    for bad in ("-1", "nan", "inf", "1e3", "soon", ""):
        assert parse_retry_after(bad, now) is None and retry_after_s(bad, None, now) is None


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.floats(0, 1))
def test_one_full_jitter_for_the_live_policy_and_the_sinks(retry: int, u: float) -> None:
    from dropengine.core.retry import Backoff, Outcome, Retry, RetryPolicy, full_jitter
    from dropengine.deliver.rules import RetrySchedule

    schedule = RetrySchedule(base_s=0.5, cap_s=30.0)
    assert schedule.backoff_s(retry, u) == full_jitter(0.5, 30.0, retry - 1, u)
    backoff = Backoff(RetryPolicy(base_s=0.5, cap_s=30.0, floor_s=0.0), attempt=retry - 1)
    decision = backoff.decide(Outcome.network("reset"), 0.0, u)
    assert isinstance(decision, Retry) and decision.delay_s == full_jitter(0.5, 30.0, retry - 1, u)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=60),
                min_size=1, max_size=8), st.integers(2, 120))
def test_a_batch_fits_the_limit_in_utf16_units(lines: list[str], limit: int) -> None:
    """N3: the services count UTF-16 code units; an astral character is two."""
    lines = [x.replace("\n", " ") for x in lines]
    text, n = batch_text(lines, limit)
    assert len(text.encode("utf-16-le", "surrogatepass")) // 2 <= limit and 1 <= n <= len(lines)
    if len(lines[0].encode("utf-16-le", "surrogatepass")) // 2 <= limit:
        assert text.split("\n")[:n] == lines[:n]


def test_a_bad_host_or_port_is_a_config_error_naming_the_flag() -> None:
    """R15-8 (the sinks' part): a port out of range or an unclosed IPv6 bracket is a ConfigError, not a ValueError."""
    import pytest

    from dropengine.core.errors import ConfigError
    from dropengine.deliver.rules import parse_sink_spec

    for url in ("http://127.0.0.1:99999/h", "http://[::1/x", "https://h:abc/x"):
        with pytest.raises(ConfigError, match=r"--sink: webhook: .*0\.\.65535"):
            parse_sink_spec(f"webhook:{url}")
