"""Issue 10 (api-breaker): ``DropEngine.restore`` never raises anything but ``SnapshotError``.

The checksum only proves the bytes are the ones that were written; a crafted payload (the
SHA-256 of a payload is easy to compute) must still either restore an engine that works or be a
``SnapshotError``: a server restoring a state file must never die of RecursionError or a
TypeError on its first quote.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote, SnapshotError

HEADER = struct.Struct(">8sH32s")
T0 = 1_747_000_000_000


def craft(body: bytes) -> bytes:
    """A snapshot with a valid header and checksum around ``body``."""
    return HEADER.pack(b"DROPENG\x00", 1, hashlib.sha256(body).digest()) + body


def payload_of(blob: bytes) -> Any:
    return msgspec.msgpack.decode(blob[HEADER.size :])


def sample_engine(reference: str = "last") -> DropEngine:
    eng = DropEngine(threshold=5, reference=reference, bookmakers="pin,dk")  # type: ignore[arg-type]
    eng.observe_many(
        [
            Quote("nba", "e1", "pin", "h2h_home", -110, T0, commence_time="2025-05-11T22:00:00Z"),
            Quote("nba", "e1", "pin", "h2h_home", -130, T0 + 1),
            Quote("nba", "e1", "pin", "h2h_away", None, T0 + 2),
            Quote("nba", "e2", "dk", "spread_home@-3.5", 105.5, T0 + 3),
        ]
    )
    return eng


def exercise(eng: DropEngine) -> None:
    """What a restored engine must survive: quotes on its keys and new ones, eviction,
    another snapshot round trip."""
    keys = [*list(eng._state)[:5], ("e9", "pin", "h2h_home")]
    for i, (e, b, s) in enumerate(keys):
        if type(e) is not str or type(b) is not str or type(s) is not str:
            continue
        try:
            quotes = [Quote("nba", e, b, s, p, T0 + 10_000 + i * 10 + j) for j, p in enumerate((-110, -150, None, 120))]
        except Exception:  # a key no Quote can carry (a bad side): not the engine's business
            continue
        eng.observe_many(quotes)
        eng.observe(Quote("nba", e, b, s, 130, 2**62))
    eng.evict(T0 + 10_005, started_before_ms=T0)
    back = DropEngine.restore(eng.snapshot())
    assert back.counters == eng.counters
    assert back.keys_held == eng.keys_held


def check_restore(data: bytes) -> None:
    try:
        eng = DropEngine.restore(data)
    except SnapshotError:
        return
    exercise(eng)


def test_deeply_nested_payload_is_a_snapshot_error() -> None:
    # before the fix: RecursionError (msgspec), which a server restoring --state did not expect
    with pytest.raises(SnapshotError, match="malformed"):
        DropEngine.restore(craft(b"\x91" * 100_000 + b"\xc0"))
    deep_state = msgspec.msgpack.encode({"config": 1})[:-1] + b"\x91" * 50_000 + b"\xc0"
    with pytest.raises(SnapshotError):
        DropEngine.restore(craft(deep_state))


@pytest.mark.parametrize(
    ("row", "what"),
    [
        (["e", "b", "h2h_home", "x", T0, T0, False, -110, T0], "price"),
        (["e", "b", "h2h_home", -110, T0, "z", False, -110, T0], "newest time"),
        (["e", "b", "h2h_home", None, T0, T0, False, None, T0], "not suspended without a price"),
        (["e", "b", "h2h_home", -110, T0, T0, False, None, T0], "anchor"),
        ([1, "b", "h2h_home", -110, T0, T0, False, -110, T0], "key"),
        (["e", "b", "h2h_home", -110, T0, T0, 0, -110, T0], "suspended flag"),
        (["e", "b", "h2h_home", True, T0, T0, False, -110, T0], "bool price"),
        (["e", "b", "h2h_home", -110, 1.5, T0, False, -110, T0], "float time"),
    ],
)
def test_state_rows_of_the_wrong_shape_are_refused(row: list[Any], what: str) -> None:
    # before the fix these restored, then the first quote on the key raised TypeError
    payload = payload_of(sample_engine().snapshot())
    payload["state"].append(row)
    with pytest.raises(SnapshotError, match="malformed"):
        DropEngine.restore(craft(msgspec.msgpack.encode(payload)))


@pytest.mark.parametrize("counters", [[0] * 7 + [1.5], [0] * 7 + ["3"], [0] * 7 + [-1], [0] * 7 + [True]])
def test_counters_must_be_non_negative_ints(counters: list[Any]) -> None:
    payload = payload_of(sample_engine().snapshot())
    payload["counters"] = counters
    with pytest.raises(SnapshotError, match="malformed"):
        DropEngine.restore(craft(msgspec.msgpack.encode(payload)))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    check_restore(data)
    check_restore(b"DROPENG\x00\x00\x01" + data)
    check_restore(craft(data))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["last", "anchor"]), st.data())
def test_flipped_or_truncated_snapshots(reference: str, data: st.DataObject) -> None:
    blob = sample_engine(reference).snapshot()
    i = data.draw(st.integers(0, len(blob) - 1))
    flipped = bytearray(blob)
    flipped[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SnapshotError):
        DropEngine.restore(bytes(flipped))
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(SnapshotError):
        DropEngine.restore(blob[:cut])


LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=5),
    st.binary(max_size=3), st.sampled_from(["last", "anchor", "cents", "prob", "both", "h2h_home", "game"]),
)
VALUES = st.recursive(
    LEAF, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=10
)


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, (*prefix, i))
    return out


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["last", "anchor"]), st.data())
def test_crafted_payloads_restore_a_working_engine_or_raise_snapshot_error(reference: str, data: st.DataObject) -> None:
    payload = payload_of(sample_engine(reference).snapshot())
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(payload)))
        value = data.draw(VALUES)
        if not path:
            payload = value
            continue
        parent = payload
        for p in path[:-1]:
            parent = parent[p]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    check_restore(craft(msgspec.msgpack.encode(payload)))
