"""Issue 14 breaker (breaker14b): the fused frames path against the general decoder.

Contract (/tmp/notes/API14.md, issue 14 aim 2): ``replay(..., fused=True)`` gives byte-identical
alerts, counters, skips (reason, position, message) and replay statistics to ``fused=False``,
for any input. Each test here is a minimal input on which they differ (strict xfail until fixed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dropengine import DropEngine
from dropengine.core.alerts import encode_alerts
from dropengine.core.skips import SkipLog
from dropengine.io.replay import ReplayStats, replay

ALL = 10**6

FIRST = (b'{"type":"odds_update","sport_key":"nba","data":[{"event_id":"e","bookmaker":"b","last_update":1000,'
         b'"home_ml":-110}]}')


def second(extra: bytes) -> bytes:
    """A price drop -110 -> -150 whose row also carries an unknown field ``zz`` holding ``extra``."""
    return (b'{"type":"odds_update","sport_key":"nba","data":[{"event_id":"e","bookmaker":"b","last_update":1001,'
            b'"home_ml":-150,"zz":' + extra + b"}]}")


def run(path: Path, fused: bool) -> Any:
    stats = ReplayStats(skips=SkipLog(keep=ALL, per_reason=ALL))
    engine = DropEngine()
    try:
        alerts = list(replay([path], engine, "auto", stats, fused=fused))
    except Exception as exc:  # a replay never raises on bad feed data: show it as a difference
        return ("raised", type(exc).__name__, str(exc))
    return (encode_alerts(alerts), engine.counters, stats.quotes, stats.envelopes, stats.skips.counts,
            stats.skips.first)


def assert_same(tmp_path: Path, lines: list[bytes]) -> None:
    path = tmp_path / "rec.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    general = run(path, False)
    assert general[0] != "raised"
    assert run(path, True) == general


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"1E+999"])
def test_unknown_field_with_out_of_range_number(tmp_path: Path, number: bytes) -> None:
    assert_same(tmp_path, [FIRST, second(number)])


@pytest.mark.parametrize("text", [b'"\xff\xfe"', b'"\xc0\xaf"', b'"\xed\xa0\x80"'])  # bad byte, overlong, surrogate
def test_unknown_field_with_invalid_utf8(tmp_path: Path, text: bytes) -> None:
    assert_same(tmp_path, [FIRST, second(text)])


def test_unknown_envelope_field_with_out_of_range_number(tmp_path: Path) -> None:
    line = (b'{"type":"odds_update","sport_key":"nba","zz":1e400,"data":[{"event_id":"e","bookmaker":"b",'
            b'"last_update":1001,"home_ml":-150}]}')
    assert_same(tmp_path, [FIRST, line])


def test_resume_after_a_line_with_an_unknown_out_of_range_number(tmp_path: Path) -> None:
    assert_same(tmp_path, [
        FIRST, second(b"1e400"), b'{"type":"connected","sport_key":"nba"}',
        b'{"type":"initial_state","sport_key":"nba","data":[{"event_id":"e","bookmaker":"b","last_update":1001,'
        b'"home_ml":-150}]}',
    ])


def test_unknown_field_name_with_invalid_utf8(tmp_path: Path) -> None:
    line = (b'{"type":"odds_update","sport_key":"nba","data":[{"event_id":"e","bookmaker":"b","last_update":1001,'
            b'"home_ml":-150,"z\xff":1}]}')
    assert_same(tmp_path, [FIRST, line])
