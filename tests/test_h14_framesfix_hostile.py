"""Issue 14 (framesfix): the fused frames path on JSON the typed schema cannot vouch for.

msgspec skips a field a Struct does not name *without validating it*: a number out of range
(``1e400``), invalid UTF-8, in a value or a key, decode fine against the schema while the
general decoder rejects the line (``bad json``). The fused path must take exactly the lines the
general decoder takes, read the same values from them, and never raise later when it decodes a
kept line again for a resume (SPEC 8). Contract: ``replay(..., fused=True)`` gives the alerts,
counters, skips (reason, position, message) and statistics of ``replay(..., fused=False)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine
from dropengine.core.alerts import encode_alerts
from dropengine.core.skips import SkipLog
from dropengine.formats.frames import LazyRows
from dropengine.formats.fused import decode_strict
from dropengine.io.replay import ReplayStats, replay

ALL = 10**6  # keep every skip: positions and messages are compared, not only counts


def run(path: Path, fused: bool) -> Any:
    stats = ReplayStats(skips=SkipLog(keep=ALL, per_reason=ALL))
    engine = DropEngine()
    try:
        alerts = list(replay([path], engine, "auto", stats, fused=fused))
    except Exception as exc:  # a replay never raises on feed data: shown as a difference
        return ("raised", type(exc).__name__, str(exc)[:200])
    return (encode_alerts(alerts), engine.counters, stats.quotes, stats.formats, stats.envelopes,
            stats.unknown_envelope_types, stats.skips.counts, stats.skips.first, stats.skips.files)


def assert_same(path: Path, lines: list[bytes]) -> Any:
    path.write_bytes(b"\n".join(lines) + b"\n")
    general = run(path, False)
    assert general[0] != "raised", general
    assert run(path, True) == general
    return general


def obj(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """A JSON object written from raw key and value bytes (so it may hold what no encoder writes)."""
    return b"{" + b",".join(b'"' + k + b'":' + v for k, v in pairs) + b"}"


def row(event: bytes, book: bytes, lu: int, price: int, extra: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    return obj([(b"event_id", b'"' + event + b'"'), (b"bookmaker", b'"' + book + b'"'),
                (b"last_update", str(lu).encode()), (b"home_ml", str(price).encode()), *extra])


def envelope(etype: bytes, rows: list[bytes], extra: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    return obj([(b"type", b'"' + etype + b'"'), (b"sport_key", b'"nba"'), *extra,
                (b"data", b"[" + b",".join(rows) + b"]")])


CONNECTED = b'{"type":"connected","sport_key":"nba"}'

# -- hostile values and keys -----------------------------------------------------------------

BAD_VALUES = (
    b"1e400", b"-1e400", b"1E+999", b"1" + b"0" * 309 + b".0",  # out of a float's range: bad json for msgspec
    b'"\xff\xfe"', b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"a\xf4\x90\x80\x80"',  # invalid UTF-8
)
GOOD_ODD_VALUES = (
    b"1" + b"0" * 400, b"-18446744073709551617", b"1e-400", b"-0.0",  # beyond int64, underflow: decoded alike
    b'"\\u0000\\ud83d\\ude00"', b'[1,{"a":[null,{"b":true}]}]', b'{"a":1,"a":"x"}', b"{}", b"[]", b"null",
)
KNOWN = (b"home_ml", b"last_update", b"event_id", b"bookmaker", b"kind", b"_diff", b"sport_key", b"home_team")
KEYS = (b"zz", b"z\xff", b"\xc0\xaf", b"home\\u005fml", b"last\\u005fupdate", *KNOWN)
ENV_KEYS = (b"zz", b"timestamp", b"count", b"since", b"truncated", b"coalesced", b"op", b"sport_key", b"type",
            b"data", b"d\\u0061ta", b"\xff")


@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize("where", ["row", "envelope", "key"])
def test_a_line_the_general_decoder_rejects_is_rejected_alike(tmp_path: Path, value: bytes, where: str) -> None:
    first = envelope(b"odds_update", [row(b"e", b"b", 1000, -110)])
    if where == "row":
        second = envelope(b"odds_update", [row(b"e", b"b", 1001, -150, [(b"zz", value)])])
    elif where == "envelope":
        second = envelope(b"odds_update", [row(b"e", b"b", 1001, -150)], [(b"timestamp", b"1"), (b"zz", value)])
    else:  # the value's bytes in an unknown key's name
        second = envelope(b"odds_update", [row(b"e", b"b", 1001, -150, [(value.strip(b'"'), b"1")])])
    resent = envelope(b"initial_state", [row(b"e", b"b", 1001, -150), row(b"e", b"b", 1002, -190)])
    out = assert_same(tmp_path / "r.ndjson", [first, second, CONNECTED, resent])
    if where != "key" or value.startswith(b'"'):
        assert out[6].get("bad json") == 1


def test_known_fields_read_alike_whatever_surrounds_them(tmp_path: Path) -> None:
    """Escaped key names, repeated keys (the last counts) and vendor envelope fields of other
    types than documented: the fused path reads the values the general decoder reads."""
    lines = [
        envelope(b"odds_update", [row(b"e", b"b", 1000, -110)], [(b"timestamp", b"1"), (b"count", b"1")]),
        envelope(b"odds_update", [row(b"e", b"b", 1001, -150, [(b"home\\u005fml", b"-170")])]),
        envelope(b"odds_update", [row(b"e", b"b", 1002, -150, [(b"home_ml", b'"x"'), (b"home_ml", b"-210")])]),
        envelope(b"odds_update", [row(b"e", b"b", 1003, -230, [(b"home_ml", b"-250")])],
                 [(b"timestamp", b'"today"'), (b"since", b"null"), (b"truncated", b"1")]),
        envelope(b"odds_update", [row(b"e", b"b", 1004, -270)], [(b"data", b"5")]),
        envelope(b"initial_state", [row(b"e", b"b", 1005, -300)], [(b"sport_key", b"7")]),
        b"\xef\xbb\xbf" + envelope(b"odds_update", [row(b"e", b"b", 1006, -330)]),  # a BOM mid-file (cat a b)
        CONNECTED,
        b"\xef\xbb\xbf" + envelope(b"initial_state", [row(b"e", b"b", 1006, -330), row(b"e", b"b", 1007, -360)],
                                   [(b"zz", b'{"deep":[1,2]}')]),
    ]
    out = assert_same(tmp_path / "k.ndjson", lines)
    assert out[0].count(b'"odds_drop"') >= 6 and out[1].repeated == 0  # the resumed row was dropped, not repeated


@st.composite
def hostile_lines(draw: st.DrawFn) -> list[bytes]:
    """A stream of data envelopes, some with hostile keys or values injected at either level,
    reconnects, and initial_states re-sending rows seen before (the resume frontier)."""
    sent: list[bytes] = []
    lines: list[bytes] = []
    lu = 1000
    for _ in range(draw(st.integers(1, 10))):
        r = draw(st.integers(0, 9))
        if r == 0:
            lines.append(CONNECTED)
            continue
        rows = []
        if r == 1 and sent:  # a resume: earlier rows again, and maybe a new one
            rows = draw(st.lists(st.sampled_from(sent), min_size=1, max_size=3))
        for _ in range(draw(st.integers(0 if rows else 1, 3))):
            lu += draw(st.integers(0, 2))
            extra = []
            if draw(st.integers(0, 2)) == 0:
                extra.append((draw(st.sampled_from(KEYS)), draw(st.sampled_from(BAD_VALUES + GOOD_ODD_VALUES))))
            rows.append(row(draw(st.sampled_from((b"e1", b"e2"))), b"b", lu,
                            draw(st.sampled_from((-110, -130, -150, -180, 120))), extra))
        sent.extend(rows)
        env_extra = []
        if draw(st.integers(0, 3)) == 0:
            env_extra.append((draw(st.sampled_from(ENV_KEYS)), draw(st.sampled_from(BAD_VALUES + GOOD_ODD_VALUES))))
        etype = b"initial_state" if r == 1 or draw(st.integers(0, 6)) == 0 else b"odds_update"
        lines.append(envelope(etype, rows, env_extra))
    return lines


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(lines=hostile_lines())
def test_fused_equals_general_on_hostile_json(tmp_path: Path, lines: list[bytes]) -> None:
    assert_same(tmp_path / "h.ndjson", lines)


@settings(max_examples=60, deadline=None)
@given(lines=hostile_lines())
def test_a_line_the_schema_takes_whole_decodes_again_to_the_same_rows(lines: list[bytes]) -> None:
    """The invariant the lazy resume frontier rests on: whatever decode_strict takes, the
    general decoder takes too, and LazyRows gives back exactly its rows."""
    for line in lines:
        env = decode_strict(line)
        if env is None:
            continue
        general = msgspec.json.decode(line)
        assert LazyRows(line, len(env.data)).rows() == general["data"]  # type: ignore[arg-type]


# -- nesting at the recursion limit ----------------------------------------------------------

def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_lines(depth: int, resume: bool) -> list[bytes]:
    deep = row(b"e", b"b", 1001, -150, [(b"zz", nested(depth))])
    lines = [envelope(b"odds_update", [row(b"e", b"b", 1000, -110)]), envelope(b"odds_update", [deep])]
    if resume:
        lines += [CONNECTED, envelope(b"initial_state", [deep, row(b"e", b"b", 1002, -190)])]
    return lines


def test_nesting_around_the_recursion_limit(tmp_path: Path) -> None:
    """Where the limit falls depends on the stack depth of the decode (and of the fingerprint
    of a resumed row): the fused path decodes and fingerprints at the general path's depth."""
    path = tmp_path / "n.ndjson"

    def rejected(depth: int) -> bool:
        path.write_bytes(b"\n".join(deep_lines(depth, False)) + b"\n")
        return bool(run(path, False)[6].get("bad json"))

    lo, hi = 1, 4000  # the general path takes lo, rejects hi
    assert not rejected(lo) and rejected(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if rejected(mid) else (mid, hi)
    for depth in range(lo - 12, hi + 3):
        assert_same(path, deep_lines(depth, False))
        assert_same(path, deep_lines(depth, True))
