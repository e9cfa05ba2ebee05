"""Issue 14 aim 2, session 17: the fused path's priming (new keys) and a churning stream.

Two changes to how a new key is primed on the fused frames path, neither a change of what is detected:

- ``FusedFrames.envelope(..., flush=)``: a large envelope (an ``initial_state`` of thousands of rows)
  hands its observations to ``flush`` every ``_FLUSH_ROWS`` rows, which applies them (the replay's
  way); its observation tuples then die young instead of all being kept until the envelope ends;
- the detection loop keeps a new (or warmed) key's hot list in the observation's state record at
  once (``_Keys.hold``), so the key's next price finds it there.

Held to: the flushed chunks are the envelope's observations, in order, and the decoder ends in the
same state; a churning stream (new identities arriving steadily, each priming new keys) with tiny
hot sets and spills detects, through the flushes, exactly as the observations without records,
the general decoder's quotes and an engine that never spills (alerts, counters, snapshot bytes),
with the records' invariant after every envelope; the replay of such a stream equals the general
decoder's; a primed or warmed key's entry holds its hot list. Performance is measured in
benchmarks/engine.py (``--churn``), never asserted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dropengine.core.keystate as ks
import dropengine.io.replay as replay_mod
from dropengine import DropEngine
from dropengine.core.alerts import encode_alerts
from dropengine.core.skips import SkipLog
from dropengine.formats import fused
from dropengine.formats.frames import FrameDecoder, _stored_row
from dropengine.formats.fused import FusedFrames, as_quotes, decode_strict
from dropengine.io.replay import ReplayStats, replay

from .test_h23_fused16_records import T0, Path_, check_records, envelope_lines, records_of, row

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@st.composite
def churning(draw: st.DrawFn, max_envelopes: int = 8) -> list[list[dict[str, Any]]]:
    """Envelopes of fused16's rows in which an identity moves to a new event now and then (its
    row primes new keys, the old ones are never quoted again): new keys arriving steadily."""
    fresh = 0
    out = []
    for _ in range(draw(st.integers(1, max_envelopes))):
        data = []
        for r in draw(st.lists(row(), min_size=1, max_size=12)):
            if draw(st.integers(0, 2)) == 0:
                fresh += 1
                r["event_id"] = f"n{fresh}"
            data.append(r)
        out.append(data)
    return out


def flushed_envelope(frames: FusedFrames, line: bytes, skips: SkipLog) -> tuple[list[list[Any]], list[Any]]:
    """The envelope of ``line`` with a flush that takes what ``out`` holds: the chunks, and the rest."""
    env = decode_strict(line)
    assert env is not None
    chunks: list[list[Any]] = []
    out: list[Any] = []

    def flush() -> None:
        chunks.append(list(out))
        out.clear()

    assert frames.envelope(env, line, "x", skips, out, None, flush)
    return chunks, out


def decoder_state(dec: FrameDecoder) -> tuple[Any, ...]:
    rows = {k: _stored_row(v) for k, v in dec._rows.items()}
    return rows, dec._cursor, dec._frontier_n, dec.envelopes, dec.rows


@SETTINGS
@given(envelopes=churning(), every=st.sampled_from((1, 2, 3, 32)))
def test_flushed_chunks_are_the_envelopes_observations_in_order(
    monkeypatch: pytest.MonkeyPatch, envelopes: list[Any], every: int
) -> None:
    monkeypatch.setattr(fused, "_FLUSH_ROWS", every)
    a, b = FusedFrames(FrameDecoder()), FusedFrames(FrameDecoder())
    skips_a, skips_b = SkipLog(), SkipLog()
    for line in envelope_lines(envelopes):
        chunks, rest = flushed_envelope(a, line, skips_a)
        env = decode_strict(line)
        assert env is not None
        whole: list[Any] = []
        assert b.envelope(env, line, "x", skips_b, whole)
        assert as_quotes([o for c in chunks for o in c] + rest) == as_quotes(whole)
        assert decoder_state(a.decoder) == decoder_state(b.decoder)
    assert skips_a.counts == skips_b.counts


def test_a_large_envelope_is_flushed_every_few_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """100 game rows of 7 prices each, a flush every 32 rows: after rows 33, 65 and 97."""
    monkeypatch.setattr(fused, "_FLUSH_ROWS", 32)
    data = [
        {"kind": "game", "event_id": f"e{i}", "bookmaker": "pin", "last_update": T0, "home_ml": -110, "away_ml": 100,
         "draw_ml": 300, "home_spread": -3.5, "away_spread": 3.5, "home_spread_price": -110,
         "away_spread_price": -110, "total": 220.5, "over_price": -110, "under_price": -110}
        for i in range(100)
    ]  # fmt: skip
    chunks, rest = flushed_envelope(FusedFrames(FrameDecoder()), envelope_lines([data])[0], SkipLog())
    assert [len(c) for c in chunks] == [33 * 7, 32 * 7, 32 * 7]
    assert len(rest) == 3 * 7
    # and no flush at all without one (the general path's envelopes, a caller that keeps them)
    out: list[Any] = []
    line = envelope_lines([data])[0]
    env = decode_strict(line)
    assert env is not None
    assert FusedFrames(FrameDecoder()).envelope(env, line, "x", SkipLog(), out)
    assert len(out) == 700


@SETTINGS
@given(
    envelopes=churning(),
    cap=st.sampled_from((1, 2, 3, 5, 8)),
    spill=st.sampled_from((1, 2, 8)),
    every=st.sampled_from((1, 2, 5)),
)
def test_a_churning_stream_flushed_detects_as_six_tuples_general_and_pure(
    monkeypatch: pytest.MonkeyPatch, envelopes: list[Any], cap: int, spill: int, every: int
) -> None:
    """New keys arriving steadily past tiny hot sets (spills cool keys between a key's prime and its
    next price, and records are emptied then), the observations applied by flushes as the replay
    applies them: the same as without records, as the general decoder's quotes and as never spilling."""
    monkeypatch.setattr(ks, "_SPILL", spill)
    monkeypatch.setattr(fused, "_FLUSH_ROWS", every)
    held, six, general, pure = Path_(cap), Path_(cap), Path_(cap), Path_(None)
    frames = FusedFrames(FrameDecoder())
    decoder = FrameDecoder()
    skips = SkipLog()
    for line in envelope_lines(envelopes):
        chunks, rest = flushed_envelope(frames, line, skips)
        obs = [o for c in chunks for o in c] + rest
        for chunk in [*chunks, rest]:
            held.alerts += [a.to_json() for a in held.engine._observe_prices(chunk)]
            six.alerts += [a.to_json() for a in six.engine._observe_prices([o[:6] for o in chunk])]
        quotes = decoder.feed(msgspec.json.decode(line), skips, "x")
        assert as_quotes(obs) == quotes
        for p in (general, pure):
            p.alerts += [a.to_json() for a in p.engine.observe_many(quotes)]
        want = (pure.alerts, pure.engine.counters, pure.engine.snapshot())
        for p in (held, six, general):
            assert (p.alerts, p.engine.counters, p.engine.snapshot()) == want
        check_records(held.engine._state, records_of(frames))


def _initial_state_then(envelopes: list[Any], path: Path) -> Path:
    """A recording of an ``initial_state`` of every row at once (one large envelope), then
    ``envelopes`` as updates."""
    first = msgspec.json.encode(
        {"type": "initial_state", "sport_key": "nba", "data": [r for e in envelopes for r in e]}
    )
    path.write_bytes(b"\n".join([first, *envelope_lines(envelopes)]) + b"\n")
    return path


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(envelopes=churning(max_envelopes=4), cap=st.sampled_from((1, 3, 8, 1000)), every=st.sampled_from((1, 3)))
def test_the_replay_of_a_churning_initial_state_fused_equals_general(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, envelopes: list[Any], cap: int, every: int
) -> None:
    """An ``initial_state`` of every row at once (one large envelope: flushed as it is decoded),
    then the updates, past a tiny hot set: the replay's alerts, counters and state equal the general
    decoder's."""
    monkeypatch.setattr(ks, "_SPILL", 1)
    monkeypatch.setattr(fused, "_FLUSH_ROWS", every)
    path = _initial_state_then(envelopes, tmp_path / "r.ndjson")

    def run(fused_path: bool) -> tuple[Any, ...]:
        engine = DropEngine(threshold=5)
        engine._state.cap = cap
        stats = ReplayStats()
        got = list(replay([path], engine, "frames", stats, fused=fused_path))
        return encode_alerts(got), engine.counters, engine.snapshot(), stats.quotes

    assert run(True) == run(False)


def test_a_primed_or_warmed_key_is_held_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop keeps a key's hot list in the observation's record when it primes the key (and when it
    warms a cold one), not only on its next price: the entry holds the list the key has in the hot set."""
    monkeypatch.setattr(ks, "_SPILL", 1)
    frames = FusedFrames(FrameDecoder())
    engine = DropEngine(threshold=5)
    state = engine._state

    def apply(rows: list[dict[str, Any]]) -> list[Any]:
        line = envelope_lines([rows])[0]
        env = decode_strict(line)
        assert env is not None
        obs: list[Any] = []
        assert frames.envelope(env, line, "x", SkipLog(), obs)
        engine._observe_prices(obs)
        return obs

    def game(e: str, t: int, p: int) -> dict[str, Any]:
        return {"kind": "game", "event_id": e, "bookmaker": "pin", "last_update": t, "home_ml": p, "away_ml": -p}

    for key, _, _, _, _, _, rec, at in apply([game("e1", T0, -110), game("e2", T0, -120)]):
        assert rec[0] is state.token and rec[at] is state.hot[key]
    # a hot set of two keys: e3's prime cools e1's keys; then, with room again (no spill to empty
    # the records), e1's next prices warm both back
    state.cap = 2
    apply([game("e3", T0 + 1, -130)])
    assert ("e1", "pin", "h2h_home") not in state.hot and ("e1", "pin", "h2h_away") not in state.hot
    state.cap = 100
    for key, _, _, _, _, _, rec, at in apply([game("e1", T0 + 2, -110)]):
        assert rec[0] is state.token and rec[at] is state.hot[key]
    check_records(state, records_of(frames))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    envelopes=churning(max_envelopes=4),
    cap=st.sampled_from((1, 3, 1000)),
    before=st.lists(st.integers(T0 - 1, T0 + 41), min_size=1, max_size=6),
    every=st.sampled_from((2, 3)),
)
def test_a_caller_evicting_between_the_yields_of_a_flushed_envelope_fused_equals_general(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, envelopes: list[Any], cap: int, before: list[int], every: int
) -> None:
    """A large envelope flushed every few rows (its last rows after the last flush), the caller evicting
    after each alert: the whole envelope is applied before its first alert is yielded, as on the general
    path (one envelope a batch on both)."""
    monkeypatch.setattr(replay_mod, "_BATCH", 1)
    monkeypatch.setattr(replay_mod, "_FUSED_BATCH", 1)
    monkeypatch.setattr(ks, "_SPILL", 1)
    monkeypatch.setattr(fused, "_FLUSH_ROWS", every)
    path = _initial_state_then(envelopes, tmp_path / "r.ndjson")

    def run(fused_path: bool) -> tuple[Any, ...]:
        engine = DropEngine(threshold=5)
        engine._state.cap = cap
        got = []
        for i, alert in enumerate(replay([path], engine, "frames", ReplayStats(), fused=fused_path)):
            got.append(alert)
            engine.evict(before[i % len(before)])
        return encode_alerts(got), engine.counters, engine.snapshot()

    assert run(True) == run(False)
