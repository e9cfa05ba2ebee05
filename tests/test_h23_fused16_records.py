"""Issue 14 aim 2, session 16: the fused path's state records (``_Keys.hold``).

Each row identity of :class:`~dropengine.formats.fused.FusedFrames` keeps its keys in a list, its
state record, that goes with its observations, ``(key, price, last_update, market_key, line, info,
record, at)``; the engine keeps the key's hot state list in the record's entry after the key
(``record[at]``, with its token in ``record[0]``) and reads it back instead of looking the key up in
its hot dict. That is valid only while the list is still the key's hot one and the key is still
the record's, so wherever a list leaves the hot set (cooled, evicted, replaced by a restored
state) every record the state holds is emptied, an entry is read and filled only for the key before
it (a line that moves within one batch), and a record another engine filled is emptied before it is
used. Held to:

- the same alerts, counters and snapshot bytes as the observations without records (6-tuples), the
  general decoder's quotes, and an engine whose hot set never spills ("pure"), at any hot-set size
  and spill size, with evictions (whole, or ``evict_iter`` steps left part way), snapshot/restore
  and ``with_options`` copies between envelopes, and two engines sharing one decoder's records;
- the replay itself, evicting between its yields (fused == general);
- the records' invariant after every step of a key state driven directly: a record is empty, or
  holds the state's token and, in each filled entry, the hot list of the key before it (so it keeps
  no list that left the hot set alive), and the state holds at most its hot-set limit of records.

Performance is measured in benchmarks/engine.py, never asserted here.
"""

from __future__ import annotations

import itertools
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
from dropengine.core.quote import QuoteInfo
from dropengine.core.skips import SkipLog
from dropengine.formats import fused
from dropengine.formats.frames import FrameDecoder
from dropengine.formats.fused import FusedFrames, decode_strict
from dropengine.io.replay import ReplayStats, replay

SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
T0 = 1000
ABSENT = object()
# equal lines of other types (one key) and moves (a new key for the side), and no line
LINES = st.sampled_from((ABSENT, None, 3, 3.0, -3.5, 220.5))
# far apart (threshold 5 cents: nearly every change alerts), a suspension, and an invalid price
PRICES = st.sampled_from((-110, -150, 120, 200, -300, None, 50))


@st.composite
def row(draw: st.DrawFn) -> dict[str, Any]:
    """A game or prop row of a few identities; times move on, now and then back (stale)."""
    r: dict[str, Any] = {
        "event_id": draw(st.sampled_from(("e1", "e2", "e3"))),
        "bookmaker": draw(st.sampled_from(("pin", "dk"))),
        "last_update": T0 + draw(st.integers(0, 40)),
    }
    if draw(st.booleans()):
        r["kind"] = "game"
        names: tuple[str, ...] = (
            "home_ml",
            "away_ml",
            "draw_ml",
            "home_spread_price",
            "away_spread_price",
            "over_price",
            "under_price",
        )
        lines: tuple[str, ...] = ("home_spread", "away_spread", "total")
    else:
        r.update(kind="prop", market_key=draw(st.sampled_from(("pts", "reb"))), player="Ann")
        names, lines = ("over_price", "under_price"), ("line",)
    for name in lines:
        v = draw(LINES)
        if v is not ABSENT:
            r[name] = v
    for name in names:
        if draw(st.integers(0, 4)):  # mostly present
            r[name] = draw(PRICES)
    return r


# what happens to the engines between two envelopes
OPS = st.one_of(
    st.just(("none",)),
    st.tuples(st.just("evict"), st.integers(T0 - 1, T0 + 41)),
    # evict_iter with steps of one key, left after ``n`` steps (observations go on between them)
    st.tuples(st.just("evict_iter"), st.integers(T0 - 1, T0 + 41), st.integers(0, 3)),
    st.just(("restore",)),
    st.just(("copy",)),
)


def envelope_lines(envelopes: list[list[dict[str, Any]]]) -> list[bytes]:
    return [msgspec.json.encode({"type": "odds_update", "sport_key": "nba", "data": data}) for data in envelopes]


class Path_:
    """One way of detecting the same stream: its engine, hot-set limit and pending evict_iter."""

    def __init__(self, cap: int | None) -> None:
        self.cap = cap
        self.engine = self.sized(DropEngine(threshold=5))
        self.steps: Any = None
        self.alerts: list[bytes] = []

    def sized(self, eng: DropEngine) -> DropEngine:
        if self.cap is not None:
            eng._state.cap = self.cap
        return eng

    def op(self, op: tuple[Any, ...]) -> None:
        eng = self.engine
        if self.steps is not None:  # a pending evict_iter goes one more step, or is left
            next(self.steps, None)
        if op[0] == "evict":
            eng.evict(op[1])
        elif op[0] == "evict_iter":
            self.steps = eng.evict_iter(op[1], chunk=1)
            for _ in range(op[2]):
                next(self.steps, None)
        elif op[0] == "restore":
            self.steps = None
            self.engine = self.sized(DropEngine.restore(eng.snapshot()))
        elif op[0] == "copy":
            self.steps = None
            self.engine = self.sized(eng.with_options(eng.options)[0])


def records_of(frames: FusedFrames) -> list[list[Any]]:
    return list(frames._keys.values())


def check_records(keys: ks._Keys, records: list[list[Any]]) -> None:
    """The records' invariant: a record is empty, or holds one state's token; with this state's, it
    is held and each filled entry is the hot list of the key before it. A state holds at most
    ``cap`` records."""
    held = {id(r) for r in keys.held}
    assert len(keys.held) <= max(keys.cap, 1)
    for rec in records:
        if rec[0] is None:
            assert all(rec[i] is None for i in rec[1])
        elif rec[0] is keys.token:
            assert id(rec) in held
            for i in rec[1]:
                assert rec[i] is None or keys.hot.get(rec[i - 1]) is rec[i]


@SETTINGS
@given(
    envelopes=st.lists(st.lists(row(), min_size=1, max_size=4), min_size=1, max_size=14),
    ops=st.lists(OPS, min_size=14, max_size=14),
    cap=st.sampled_from((1, 2, 3, 5, 8, 1000)),
    other=st.sampled_from((1, 4, None)),
    spill=st.sampled_from((1, 2, 8)),
)
def test_records_detect_as_six_tuples_general_and_pure_at_any_hot_set_and_eviction(
    monkeypatch: pytest.MonkeyPatch, envelopes: list[Any], ops: list[Any], cap: int, other: int | None, spill: int
) -> None:
    monkeypatch.setattr(ks, "_SPILL", spill)
    held = Path_(cap)  # the fused observations with their records
    shared = Path_(other)  # the same observations (records shared with held), another hot set
    six = Path_(cap)  # the same observations without records
    general = Path_(cap)  # the general decoder's quotes
    pure = Path_(None)  # those quotes, a hot set that never spills
    frames = FusedFrames(FrameDecoder())
    decoder = FrameDecoder()
    skips = SkipLog()
    for line, op in zip(envelope_lines(envelopes), ops, strict=False):  # (ops: 14, envelopes: up to 14)
        env = decode_strict(line)
        assert env is not None  # (every row here is of the schema)
        obs: list[Any] = []
        assert frames.envelope(env, line, "x", skips, obs)
        quotes = decoder.feed(msgspec.json.decode(line), skips, "x")
        stripped = [o[:6] if type(o) is tuple else o for o in obs]
        # each with its identity's record and an entry of it (its key is there unless its line moved on)
        assert all(o[6] is frames._keys[o[6][2]] and o[7] in o[6][1] for o in obs if type(o) is tuple)
        for p, items in ((held, obs), (shared, obs), (six, stripped)):
            p.alerts += [a.to_json() for a in p.engine._observe_prices(items)]
        for p in (general, pure):
            p.alerts += [a.to_json() for a in p.engine.observe_many(quotes)]
        for p in (held, shared, six, general, pure):
            p.op(op)
        want = (pure.alerts, pure.engine.counters, pure.engine.snapshot())
        for p in (held, shared, six, general):
            assert (p.alerts, p.engine.counters, p.engine.snapshot()) == want
        for p in (held, shared):
            check_records(p.engine._state, records_of(frames))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    envelopes=st.lists(st.lists(row(), min_size=1, max_size=4), min_size=1, max_size=14),
    cap=st.sampled_from((1, 2, 5)),
    before=st.lists(st.integers(T0 - 1, T0 + 41), min_size=1, max_size=6),
)
def test_the_replay_evicting_between_its_yields_fused_equals_general(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, envelopes: list[Any], cap: int, before: list[int]
) -> None:
    """A caller evicting between the replay's yields (after each alert): one envelope a batch on both
    paths, so each eviction meets the same state."""
    monkeypatch.setattr(replay_mod, "_BATCH", 1)
    monkeypatch.setattr(replay_mod, "_FUSED_BATCH", 1)
    monkeypatch.setattr(ks, "_SPILL", 1)
    path = tmp_path / "r.ndjson"
    path.write_bytes(b"\n".join(envelope_lines(envelopes)) + b"\n")

    def run(fused_path: bool) -> tuple[Any, ...]:
        engine = DropEngine(threshold=5)
        engine._state.cap = cap
        stats = ReplayStats()
        got = []
        for i, alert in enumerate(replay([path], engine, "frames", stats, fused=fused_path)):
            got.append(alert)
            engine.evict(before[i % len(before)])
        return encode_alerts(got), engine.counters, engine.snapshot()

    assert run(True) == run(False)


KEYS = [(f"e{e}", "b", s) for e in range(2) for s in ("h2h_home", "h2h_away")]


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("hold"), st.integers(0, 3), st.integers(0, 3)),
            st.tuples(st.just("move"), st.integers(0, 3), st.booleans(), st.sampled_from(KEYS)),
            st.tuples(st.just("add"), st.sampled_from(KEYS)),
            st.tuples(st.just("warm"), st.sampled_from(KEYS)),
            st.tuples(st.just("cool"), st.integers(1, 3)),
            st.tuples(st.just("remove"), st.sampled_from(KEYS)),
            st.tuples(st.just("load"), st.sampled_from(KEYS)),
        ),
        max_size=60,
    ),
    cap=st.integers(1, 4),
)
def test_a_record_is_empty_or_holds_hot_lists_of_its_keys(ops: list[Any], cap: int) -> None:
    """``_Keys`` driven directly (as the loop and eviction drive it), records of two keys each held
    between its steps (a key in two of them, as after a decoder forgot its identities), their keys
    moved now and then (a new line: the entry emptied, as the decoder does): after each step the
    invariant holds, so no record keeps a list that is not its key's hot one (a cooled list is
    emptied into ``spare`` and handed to another key later)."""
    keys = ks._Keys(ks._PRICE_CODEC)
    keys.cap = cap
    records = [[None, (4, 6), "owner's", KEYS[a], None, KEYS[b], None] for a, b in ((0, 1), (2, 3), (0, 2), (1, 3))]
    for i, op in enumerate(ops):
        if op[0] == "hold":  # the loop's miss on a hot key: its list kept for the record's key there
            rec = records[op[1]]
            at = (4, 6)[op[2] % 2]
            key = rec[at - 1] if op[2] < 2 else KEYS[op[2]]  # (or for another key: not kept)
            st_ = keys.hot.get(key)
            if st_ is not None:
                keys.hold(rec, at, key, st_)
                assert rec[at] is (st_ if rec[at - 1] is key else None) or rec[at - 1] is not key
        elif op[0] == "move":  # the owner's key at an entry changes (a new line): the entry emptied
            rec = records[op[1]]
            at = 6 if op[2] else 4
            rec[at - 1], rec[at] = op[3], None
        elif op[0] == "add":
            if op[1] not in keys.hot and keys.peek(op[1]) is None:
                keys.add(op[1], [-110, T0 + i, T0 + i, False, -110, T0 + i])
        elif op[0] == "warm":
            if op[1] not in keys.hot:  # (the loop warms a key that is not hot)
                keys.warm(op[1])
        elif op[0] == "cool":
            keys.cool(min(op[1], max(0, len(keys.hot) - 1)))
        elif op[0] == "remove":
            if keys.peek(op[1]) is not None:
                keys.remove([op[1]])
        elif keys.peek(op[1]) is not None:  # load: a restored state over a held key
            keys.load(op[1], [120, T0, T0 + i, False, 120, T0])
        check_records(keys, records)


def test_the_records_a_state_holds_are_bounded_by_its_hot_set() -> None:
    """Records their owner dropped (a decoder that forgot its identities: new records for the same
    keys) are let go once the state holds as many as its hot-set limit: it never holds more."""
    keys = ks._Keys(ks._PRICE_CODEC)
    keys.cap = 4
    keys.add(KEYS[0], [-110, T0, T0, False, -110, T0])
    st_ = keys.hot[KEYS[0]]
    records = []
    for _ in range(10):
        rec: list[Any] = [None, (4,), "owner's", KEYS[0], None]
        keys.hold(rec, 4, KEYS[0], st_)
        records.append(rec)
        assert len(keys.held) <= 4
    assert sum(r[0] is keys.token for r in records) == len(keys.held) <= 4
    check_records(keys, records)


def test_forgotten_identities_with_a_tiny_hot_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoder forgets its identities at every new one (new records each time) while the
    engine's hot set holds one key: the same alerts and state as without records."""
    monkeypatch.setattr(fused, "_MAX_IDENTITIES", 1)
    monkeypatch.setattr(ks, "_SPILL", 1)
    rows = []
    for i, (e, p) in enumerate(itertools.product(("e1", "e2", "e3"), (-110, -150, 120, -150, 200))):
        rows.append(
            [
                {
                    "kind": "game",
                    "event_id": e,
                    "bookmaker": "pin",
                    "last_update": T0 + i,
                    "home_ml": p,
                    "away_ml": -p,
                    "total": 220.5,
                    "over_price": p,
                    "under_price": -p,
                }
            ]
        )
    a, b = Path_(1), Path_(1)
    frames = FusedFrames(FrameDecoder())
    for line in envelope_lines(rows * 3):
        env = decode_strict(line)
        assert env is not None
        obs: list[Any] = []
        frames.envelope(env, line, "x", SkipLog(), obs)
        a.alerts += [x.to_json() for x in a.engine._observe_prices(obs)]
        b.alerts += [x.to_json() for x in b.engine._observe_prices([o[:6] for o in obs])]
        assert len(a.engine._state.held) <= 1
    assert a.alerts == b.alerts and len(a.alerts) > 20
    assert a.engine.snapshot() == b.engine.snapshot()


def test_a_new_line_is_a_new_key_in_its_entry() -> None:
    """A line side whose line moves to and fro, also within one batch: each line is its own key
    (primed on its first price, its own state after), so the side's entry is read and filled for
    the key before it only: the same alerts, counters and state as the general decoder's quotes
    (an entry kept for the side would give the second line's first price the first line's state)."""
    data = []
    for i, (spread, p) in enumerate(((3, -110), (3, -150), (-3.5, 120), (-3.5, -110), (3.0, 200), (-3.5, -150))):
        data.append(
            [
                {
                    "kind": "game",
                    "event_id": "e1",
                    "bookmaker": "pin",
                    "last_update": T0 + i,
                    "home_spread": spread,
                    "away_spread": -spread,
                    "total": 200 + spread,
                    "home_spread_price": p,
                    "away_spread_price": p,
                    "over_price": p,
                    "under_price": p,
                },
                {
                    "kind": "prop",
                    "event_id": "e1",
                    "bookmaker": "pin",
                    "market_key": "pts",
                    "player": "Ann",
                    "line": spread,
                    "over_price": p,
                    "under_price": p,
                    "last_update": T0 + i,
                },
            ]
        )
    lines = envelope_lines(data)
    for batched in (False, True):  # an envelope a batch, or all in one (the lines move within it)
        fused_engine, general_engine = DropEngine(threshold=5), DropEngine(threshold=5)
        frames = FusedFrames(FrameDecoder())
        decoder = FrameDecoder()
        fused_alerts: list[bytes] = []
        general_alerts: list[bytes] = []
        batch: list[Any] = []
        for line in lines:
            env = decode_strict(line)
            assert env is not None
            frames.envelope(env, line, "x", SkipLog(), batch)
            if not batched or line is lines[-1]:
                fused_alerts += [a.to_json() for a in fused_engine._observe_prices(batch)]
                batch = []
            quotes = decoder.feed(msgspec.json.decode(line), SkipLog(), "x")
            general_alerts += [a.to_json() for a in general_engine.observe_many(quotes)]
        assert fused_alerts == general_alerts and len(general_alerts) >= 8
        assert fused_engine.counters == general_engine.counters
        assert fused_engine.snapshot() == general_engine.snapshot()
        check_records(fused_engine._state, records_of(frames))


def test_an_entry_is_read_only_for_the_key_before_it() -> None:
    """The record's key at an entry moves away and back within one batch, the same key object both
    times (a decoder may reuse its key tuples): the entry is filled for the record's key as the
    engine meets it, so the other key's observation between must not read it."""
    x, y = ("e1", "pin", "spread_home@3"), ("e1", "pin", "spread_home@-3.5")
    info = QuoteInfo("nba", "game", None, None, None, None, None)
    rec: list[Any] = [None, (4,), "owner's", x, None]
    batch = [
        (x, -110, T0, "spreads", 3.0, info, rec, 4),
        (y, 150, T0, "spreads", -3.5, info, rec, 4),
        (x, -150, T0 + 1, "spreads", 3.0, info, rec, 4),
        (y, -200, T0 + 1, "spreads", -3.5, info, rec, 4),
    ]
    held, six = DropEngine(threshold=5), DropEngine(threshold=5)
    held._observe_prices(batch[:1])  # x is known and hot
    six._observe_prices([o[:6] for o in batch[:1]])
    # the batch: x (its list kept in the entry: x is the record's key), y, x again, y again
    got = [a.to_json() for a in held._observe_prices(batch[1:])]
    assert got == [a.to_json() for a in six._observe_prices([o[:6] for o in batch[1:]])]
    assert len(got) == 2 and held.snapshot() == six.snapshot()
