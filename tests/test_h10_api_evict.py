"""Issue 10: ``DropEngine.evict`` by key age or by event start, kept in snapshots.

``serve`` and ``watch`` bound their memory with this call; the properties below are what lets
them call it at any moment: eviction never changes what a key that stays does, and a key
that goes simply primes again.
"""

from __future__ import annotations

import hashlib
import struct

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dropengine import ConfigError, Drop, DropEngine, Quote, SnapshotError

T0 = 1_747_000_000_000
HOUR = 3_600_000
# event -> ISO commence time (None: the feed never says when it starts)
EVENTS: dict[str, str | None] = {
    "early": "2025-05-11T22:00:00Z",  # T0 is 2025-05-11T21:46:40Z
    "late": "2025-05-12T22:00:00+00:00",
    "unknown": None,
    "garbled": "next tuesday",
}
EARLY_MS = 1_747_000_800_000  # 2025-05-11T22:00:00Z
LATE_MS = EARLY_MS + 24 * HOUR


def q(event: str, price: float | None, t: int, side: str = "h2h_home", book: str = "pin") -> Quote:
    return Quote("americanfootball_nfl", event, book, side, price, t, commence_time=EVENTS[event])


def test_evict_by_event_start_drops_every_key_of_started_events() -> None:
    eng = DropEngine()
    for ev in EVENTS:
        eng.observe_many([q(ev, -110, T0, "h2h_home"), q(ev, 120, T0, "h2h_away")])
    assert eng.keys_held == 8
    # nothing is older than T0 - 1 by update time, and only "early" started before EARLY_MS + 1
    assert eng.evict(T0 - 1, started_before_ms=EARLY_MS + 1) == 2
    assert eng.keys_held == 6
    assert eng.price_of("early", "pin", "h2h_home") is None
    assert eng.price_of("late", "pin", "h2h_home") == -110
    # a start at exactly the bound is kept (strictly before), unknown/garbled starts never match
    assert eng.evict(T0 - 1, started_before_ms=LATE_MS) == 0
    assert eng.evict(T0 - 1, started_before_ms=LATE_MS + 1) == 2
    assert eng.evict(T0 - 1, started_before_ms=2**62) == 0
    assert eng.keys_held == 4
    # the age rule still applies alongside
    assert eng.evict(T0 + 1, started_before_ms=0) == 4
    assert eng.keys_held == 0


def test_evict_by_age_is_todays_behaviour() -> None:
    eng = DropEngine()
    eng.observe_many([q("late", -110, T0, "h2h_home"), q("late", -110, T0 + 5000, "h2h_away")])
    assert eng.evict(T0 + 1) == 1
    assert eng.keys_held == 1


def test_evicted_event_primes_again_and_its_start_is_learned_again() -> None:
    eng = DropEngine()
    eng.observe_many([q("early", -110, T0), q("early", -110, T0, "h2h_away")])
    assert eng.evict(0, started_before_ms=EARLY_MS + 1) == 2
    # the first quote after eviction primes: no alert even though -110 -> -150 is 40 cents
    assert eng.observe(q("early", -150, T0 + 10)) == []
    assert eng.counters.primed == 3
    assert eng.evict(0, started_before_ms=EARLY_MS + 1) == 1


def test_event_entries_are_dropped_with_their_last_key() -> None:
    eng = DropEngine()
    eng.observe_many([q("late", -110, T0), q("late", -110, T0 + 10, "h2h_away")])
    eng.evict(T0 + 5)  # one key of "late" left: its start is still known
    assert eng.evict(0, started_before_ms=LATE_MS + 1) == 1
    # no key left: the event entry went too, so the snapshot holds no events
    payload = msgspec.msgpack.decode(eng.snapshot()[42:])
    assert payload["events"] == []


def test_the_first_commence_time_seen_for_an_event_is_kept() -> None:
    eng = DropEngine()
    eng.observe(Quote("nfl", "E", "pin", "h2h_home", -110, T0))  # no start yet
    eng.observe(Quote("nfl", "E", "pin", "h2h_away", -110, T0, commence_time="2025-05-11T22:00:00Z"))
    eng.observe(Quote("nfl", "E", "dk", "h2h_away", -110, T0, commence_time="2030-01-01T00:00:00Z"))
    assert eng.evict(0, started_before_ms=EARLY_MS + 1) == 3


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        (("yesterday",), {}, "before_ms"),
        ((True,), {}, "before_ms"),
        ((1.5,), {}, "before_ms"),
        ((0,), {"started_before_ms": "now"}, "started_before_ms"),
        ((0,), {"started_before_ms": False}, "started_before_ms"),
        ((0,), {"started_before_ms": 2.0}, "started_before_ms"),
    ],
)
def test_evict_arguments_are_checked(args: tuple[object, ...], kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        DropEngine().evict(*args, **kwargs)  # type: ignore[arg-type]


def test_snapshot_keeps_event_starts() -> None:
    eng = DropEngine()
    eng.observe_many([q("early", -110, T0), q("late", -110, T0)])
    back = DropEngine.restore(eng.snapshot())
    assert back.evict(0, started_before_ms=EARLY_MS + 1) == 1
    assert back.price_of("late", "pin", "h2h_home") == -110


def _version1_snapshot_without_events(eng: DropEngine) -> bytes:
    """A snapshot as builds before issue 10 wrote it: version 1, no ``events`` entry."""
    payload = msgspec.msgpack.decode(eng.snapshot()[42:])
    del payload["events"]
    body = msgspec.msgpack.encode(payload)
    return struct.pack(">8sH32s", b"DROPENG\x00", 1, hashlib.sha256(body).digest()) + body


def test_snapshots_written_before_issue_10_still_restore() -> None:
    eng = DropEngine(threshold=15, reference="anchor")
    eng.observe_many([q("early", -110, T0), q("early", -120, T0 + 1)])
    back = DropEngine.restore(_version1_snapshot_without_events(eng))
    assert back.counters == eng.counters and back.keys_held == 1
    assert [d.delta for d in back.observe(q("early", -126, T0 + 2))] == [-16]
    # the start is unknown until a new key of the event brings it again
    assert back.evict(0, started_before_ms=EARLY_MS + 1) == 0
    back.observe(q("early", -110, T0 + 3, "h2h_away"))
    assert back.evict(0, started_before_ms=EARLY_MS + 1) == 2


def test_malformed_event_table_is_a_snapshot_error() -> None:
    eng = DropEngine()
    eng.observe(q("early", -110, T0))
    payload = msgspec.msgpack.decode(eng.snapshot()[42:])
    payload["events"] = [["early"]]
    body = msgspec.msgpack.encode(payload)
    blob = struct.pack(">8sH32s", b"DROPENG\x00", 1, hashlib.sha256(body).digest()) + body
    with pytest.raises(SnapshotError, match="malformed"):
        DropEngine.restore(blob)


# -- properties -------------------------------------------------------------------------

KEYS = [(ev, book, side) for ev in EVENTS for book in ("pin", "dk") for side in ("h2h_home", "h2h_away")]
PRICES = st.sampled_from([-300, -150, -130, -120, -115, -110, -105, 100, -100, 105, 110, 120, 150, 300, None])
STEP = st.tuples(st.integers(0, len(KEYS) - 1), PRICES, st.integers(-2, 30))
BOUNDS = st.sampled_from([None, 0, EARLY_MS, EARLY_MS + 1, LATE_MS + 1])


def _stream(steps: list[tuple[int, float | None, int]]) -> list[Quote]:
    t = T0
    out = []
    for ki, price, dt in steps:
        t += dt * 1000
        ev, book, side = KEYS[ki]
        out.append(q(ev, price, max(t, T0), side, book))
    return out


def _by_key(drops: list[Drop]) -> dict[tuple[str, str, str], list[Drop]]:
    out: dict[tuple[str, str, str], list[Drop]] = {}
    for d in drops:
        out.setdefault((d.event_id, d.bookmaker, d.side), []).append(d)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(STEP, max_size=60),
    cut=st.integers(0, 60),
    # often nothing old enough by age alone, so the start rule decides
    age=st.one_of(st.just(-5), st.integers(-5, 400)),
    started=BOUNDS,
    via_snapshot=st.booleans(),
)
def test_eviction_only_changes_evicted_keys_and_they_prime_again(
    steps: list[tuple[int, float | None, int]], cut: int, age: int, started: int | None, via_snapshot: bool
) -> None:
    quotes = _stream(steps)
    before, after = quotes[:cut], quotes[cut:]
    plain = DropEngine()
    expected = _by_key(plain.observe_many(before) + plain.observe_many(after))

    eng = DropEngine()
    got_before = eng.observe_many(before)
    held = _held(eng)
    by_age = DropEngine.restore(eng.snapshot()).evict(T0 + age * 1000)
    dropped = eng.evict(T0 + age * 1000, started_before_ms=started)
    if dropped > by_age:
        event("some keys went by their event's start only")
    if via_snapshot:
        eng = DropEngine.restore(eng.snapshot())
    evicted = held - _held(eng)
    assert dropped == len(evicted)
    got = _by_key(got_before + eng.observe_many(after))

    for key in KEYS:
        if key in evicted:
            # an evicted key starts over: it behaves as a fresh engine fed what came after
            fresh = DropEngine()
            pre = _by_key(got_before).get(key, [])
            post = _by_key(fresh.observe_many([x for x in after if x.key == key])).get(key, [])
            assert got.get(key, []) == pre + post
        else:
            assert got.get(key, []) == expected.get(key, [])


def _held(eng: DropEngine) -> set[tuple[str, str, str]]:
    payload = msgspec.msgpack.decode(eng.snapshot()[42:])
    return {(r[0], r[1], r[2]) for r in payload["state"]}
