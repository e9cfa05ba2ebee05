"""Issue 14 aim 2, session 18: the rows the fused path keeps for the decoder (``_diff`` bases).

The decoder keeps every identity's last full row (``FrameDecoder._rows``) for a later ``_diff`` row
to merge into (and for ``forget``). The fused path used to store its typed row there; the replaced
row's ~16 field objects were then freed cold at the identity's next row. Now, from a line of at
most ``fused._LAZY_BYTES`` that the schema took whole, it keeps the line (``LazyRows``, which the
resume frontier keeps anyway) and the row's index in the identity's record (its last two entries),
and stores the record in the decoder's dict only when it is not already there: the record's line
entry is None exactly while the record is not the decoder's row for its identity (new, or
replaced or dropped there: ``FrameDecoder._row``, ``forget``, the fused path's own typed row).

Held to: the decoder's rows, read as the general decoder's (``frames._stored_row``), are the
general decoder's, field for field, after every line of adversarial streams mixing short and long
lines, ``_diff`` rows, lines decoded the general way, resumed streams and ``forget``; the same
quotes and skips; the records' invariant above after every step; ``LazyRows.row(i)`` is
``LazyRows.rows()[i]``; no identity keeps a longer line alive; the replay with every row kept either
way equals the general path. Performance is measured in benchmarks/engine.py, never asserted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.core.errors import FeedError
from dropengine.core.quote import Quote
from dropengine.core.skips import SkipLog
from dropengine.formats import fused
from dropengine.formats.frames import FrameDecoder, LazyRows, _stored_row
from dropengine.formats.fused import FusedFrames, TypedEnvelope, as_quotes, decode_strict, typed_envelope
from dropengine.formats.jsonline import decode_json

from .test_h14_frames_fused import G, assert_same, env, envelopes, write


@pytest.fixture(autouse=True)
def _long_lines_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests hold the rule for lines of at most ``fused._LAZY_BYTES``, a longer line storing
    typed rows: the longer lines kept within ``fused._LAZY_LONG_BYTES`` (session 19) are held by
    tests/test_h26_fused19_long.py."""
    monkeypatch.setattr(fused, "_LAZY_LONG_BYTES", 0)


SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
NAMES = fused._JSON_NAMES  # the fields a row has for the fused path (the general decoder also keeps unknown ones)


def feed_fused(frames: FusedFrames, line: bytes, skips: SkipLog, where: str) -> list[Quote]:
    """``line`` as the replay's fused path takes it (io.replay._fused_frames and _replay_fused)."""
    dec = frames.decoder
    typed: TypedEnvelope | None = decode_strict(line)
    obj = None
    if typed is None:
        try:
            obj = decode_json(line)
        except FeedError:
            return []
        typed = typed_envelope(obj)
        if typed is None:
            return dec.feed(obj, skips, where)
    out: list[Any] = []
    if not frames.envelope(typed, line, where, skips, out, None if obj is None else obj["data"]):
        return dec.feed(decode_json(line) if obj is None else obj, skips, where)  # a resumed initial_state
    return as_quotes(out)


def feed_general(dec: FrameDecoder, line: bytes, skips: SkipLog, where: str) -> list[Quote]:
    try:
        obj = decode_json(line)
    except FeedError:
        return []
    return dec.feed(obj, skips, where)


def rows_of(dec: FrameDecoder) -> dict[Any, dict[str, Any]]:
    """The decoder's rows as the general decoder reads them, on the fields the fused path reads."""
    return {k: {n: v[n] for n in NAMES if n in v} for k, v in ((k, _stored_row(r)) for k, r in dec._rows.items())}


def check_records(frames: FusedFrames) -> None:
    """A record's line entry is set exactly while the record is the decoder's row for its identity,
    and then it is a short line whose row at the index is of that identity."""
    rows = frames.decoder._rows
    for ident, rec in frames._keys.items():
        assert rec[2] is ident
        line, i = rec[-2], rec[-1]
        assert (line is not None) == (rows.get(ident) is rec)
        if line is not None:
            assert type(line) is LazyRows and len(line.line) <= fused._LAZY_BYTES
            raw = line.row(i)
            assert (raw["event_id"], raw["bookmaker"]) == ident[1:3]


@SETTINGS
@given(
    lines=st.lists(envelopes(), min_size=1, max_size=25),
    lazy=st.sampled_from((0, 250, 8192)),
    forget=st.lists(st.integers(0, 30), max_size=4),
    at=st.lists(st.integers(1_000, 1_062), min_size=4, max_size=4),
)
def test_the_decoders_rows_are_the_general_decoders(
    monkeypatch: pytest.MonkeyPatch, lines: list[bytes], lazy: int, forget: list[int], at: list[int]
) -> None:
    monkeypatch.setattr(fused, "_LAZY_BYTES", lazy)  # 0: every row typed; 250: some lines each way
    frames, general = FusedFrames(FrameDecoder()), FrameDecoder()
    skips_f, skips_g = SkipLog(), SkipLog()
    for n, line in enumerate(lines):
        where = f"s:{n + 1}"
        assert feed_fused(frames, line, skips_f, where) == feed_general(general, line, skips_g, where)
        if n in forget:
            t = at[forget.index(n)]
            assert frames.decoder.forget(t) == general.forget(t)
        assert rows_of(frames.decoder) == rows_of(general)
        assert frames.decoder.identities_held == general.identities_held
        check_records(frames)
    assert skips_f.counts == skips_g.counts


@settings(max_examples=60, deadline=None)
@given(line=envelopes())
def test_a_kept_lines_row_alone_is_its_row_among_all(line: bytes) -> None:
    typed = decode_strict(line)
    if typed is None:  # only a line the schema took whole is kept as a line
        return
    kept = LazyRows(line, len(typed.data))  # type: ignore[arg-type]
    whole = kept.rows()
    assert [kept.row(i) for i in range(kept.n)] == whole


ROW = {**G, "home_ml": -110, "away_ml": 120, "home_spread": -3.5, "home_spread_price": -110}
IDENT = ("g", "e1", "pin")


def test_a_record_replaced_or_dropped_by_the_general_decoder_is_stored_again() -> None:
    dec = FrameDecoder()
    frames = FusedFrames(dec)
    general = FrameDecoder()
    skips = SkipLog()
    steps = [
        env("odds_update", {**ROW, "last_update": 1000}),
        env("odds_update", {"_diff": True, "event_id": "e1", "bookmaker": "pin", "last_update": 1001, "home_ml": -130}),
        env("odds_update", {**ROW, "last_update": 1002, "away_ml": 130}),
        env("odds_update", {"_diff": True, "event_id": "e1", "bookmaker": "pin", "last_update": 1003, "home_ml": -150}),
        env("odds_update", {**ROW, "last_update": 1004, "away_ml": 140}),
        b"forget 1005",
        env("odds_update", {**ROW, "last_update": 1006, "away_ml": 150}),
        env("odds_update", {"_diff": True, "event_id": "e1", "bookmaker": "pin", "last_update": 1007, "draw_ml": 300}),
    ]
    kinds = []
    for n, line in enumerate(steps):
        if line.startswith(b"forget"):
            assert dec.forget(1005) == general.forget(1005) == 1
        else:
            assert feed_fused(frames, line, skips, f"h:{n}") == feed_general(general, line, skips, f"h:{n}")
        assert rows_of(dec) == rows_of(general)
        check_records(frames)
        rec = frames._keys[IDENT]
        kinds.append(
            ("record" if dec._rows.get(IDENT) is rec else type(dec._rows.get(IDENT)).__name__, rec[-2] is not None)
        )
    assert kinds == [
        ("record", True),
        ("dict", False),
        ("record", True),
        ("dict", False),
        ("record", True),
        ("NoneType", False),
        ("record", True),
        ("dict", False),
    ]
    assert _stored_row(dec._rows[IDENT])["draw_ml"] == 300 and _stored_row(dec._rows[IDENT])["away_ml"] == 150


def test_no_identity_keeps_a_longer_line_alive() -> None:
    dec = FrameDecoder()
    frames = FusedFrames(dec)
    skips = SkipLog()
    long_rows = [{**ROW, "event_id": f"e{i}", "last_update": 1000 + i} for i in range(200)]
    long_line = env("initial_state", *long_rows)
    assert len(long_line) > fused._LAZY_BYTES
    feed_fused(frames, long_line, skips, "l:1")
    assert all(isinstance(r, fused.Row) for r in dec._rows.values())  # typed: none keeps the long line
    assert all(rec[-2] is None for rec in frames._keys.values())
    short = env("odds_update", {**ROW, "event_id": "e3", "last_update": 2000, "home_ml": -120})
    feed_fused(frames, short, skips, "l:2")
    rec = frames._keys[("g", "e3", "pin")]
    assert dec._rows[("g", "e3", "pin")] is rec and rec[-2].line is short and rec[-1] == 0
    # a longer line's row replaces the record again (and the record says so)
    feed_fused(
        frames, env("odds_update", *[{**r, "last_update": 3000 + n} for n, r in enumerate(long_rows)]), skips, "l:3"
    )
    assert isinstance(dec._rows[("g", "e3", "pin")], fused.Row) and rec[-2] is None
    check_records(frames)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(lines=st.lists(envelopes(), min_size=1, max_size=25), lazy=st.sampled_from((0, 250)))
def test_the_replay_with_rows_kept_either_way_equals_the_general_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[bytes], lazy: int
) -> None:
    monkeypatch.setattr(fused, "_LAZY_BYTES", lazy)
    assert_same([write(tmp_path / "s.ndjson", lines)])


def test_a_diff_merges_into_a_kept_lines_row_with_its_unknown_free_fields() -> None:
    """A row kept as its line merges as the general decoder's raw row (the schema took the line
    whole: it has no field the typed row lacks), a null kept as a null."""
    line = msgspec.json.encode(
        {
            "type": "odds_update",
            "sport_key": "nba",
            "data": [
                {**ROW, "last_update": 1000, "draw_ml": None, "away_team": None},
                {**ROW, "event_id": "e2", "last_update": 1000},
            ],
        }
    )
    dec = FrameDecoder()
    frames = FusedFrames(dec)
    feed_fused(frames, line, SkipLog(), "d:1")
    stored = _stored_row(dec._rows[IDENT])
    assert stored == msgspec.json.decode(line)["data"][0]
    assert "draw_ml" in stored and stored["draw_ml"] is None


PROP = {
    "kind": "prop",
    "event_id": "e1",
    "bookmaker": "pin",
    "market_key": "pts",
    "player": "Ann",
    "market": "Points",
    "line": 20.5,
    "over_price": -110,
    "under_price": -110,
}


@pytest.mark.parametrize("row", [ROW, PROP], ids=["game", "prop"])
def test_short_long_short_lines_of_one_identity_keep_its_last_row(row: dict[str, Any]) -> None:
    """A short line's row (the record), then a longer line's (typed), then a short line's again:
    the record is stored again (it said it was not the decoder's row), for a game and a prop."""
    dec = FrameDecoder()
    frames = FusedFrames(dec)
    general = FrameDecoder()
    skips = SkipLog()
    filler = [{**ROW, "event_id": f"f{i}", "last_update": 1000} for i in range(80)]
    lines = [
        env("odds_update", {**row, "last_update": 1000}),
        env("odds_update", {**row, "last_update": 1001, "over_price": -120, "home_ml": -120}, *filler),
        env("odds_update", {**row, "last_update": 1002, "over_price": -130, "home_ml": -130}),
        env("odds_update", {**row, "_diff": True, "last_update": 1003, "under_price": -140, "away_ml": -140}),
    ]
    assert len(lines[0]) <= fused._LAZY_BYTES < len(lines[1]) and len(lines[2]) <= fused._LAZY_BYTES
    for n, line in enumerate(lines):
        assert feed_fused(frames, line, skips, f"p:{n}") == feed_general(general, line, skips, f"p:{n}")
        assert rows_of(dec) == rows_of(general)
        check_records(frames)


def test_rows_of_lines_read_in_turn_are_each_lines_own() -> None:
    """LazyRows.row remembers the line it scanned last: rows of two lines read in turn (and of two
    equal lines, two objects) are each their own line's."""
    a = env("odds_update", {**ROW, "last_update": 1000}, {**ROW, "event_id": "e2", "last_update": 1001})
    b = env(
        "odds_update", {**ROW, "last_update": 2000, "home_ml": -150}, {**ROW, "event_id": "e3", "last_update": 2001}
    )
    la, lb, la2 = LazyRows(a, 2), LazyRows(b, 2), LazyRows(a, 2)
    for lazy in (la, lb, la, la2, lb, lb, la):
        assert [lazy.row(1), lazy.row(0)] == lazy.rows()[::-1]
