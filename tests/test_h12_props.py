"""Properties of the signals of SPEC 10-12 (line moves, steam, cooldown) over generated streams.

The streams are :func:`tests.strategies.quote_streams` with ``lines=True``: line sides whose
lines move by half and full points (and through key numbers), line-only observations,
several books on one or two outcomes drifting one way (so steam happens), plus everything
the price streams hold (invalid and null prices, stale and equal times, repeats).

- Default ``types`` is today's engine: byte for byte the same as an engine given
  ``types={"odds_drop"}`` explicitly, as the pre-issue-12 engine (the package at the last
  commit before issue 12, run in a subprocess), and the price alerts do not change when other
  types are on (without a cooldown).
- ``both`` is exactly the union of ``toward_favorite`` and ``toward_dog`` for every type.
- Chunking never changes anything; interleaving never changes anything across events, and
  never changes drops and line moves across line series (steam is defined in arrival order
  across books, SPEC 11, so re-ordering two books' moves of one outcome may change it).
- Snapshot/restore at any point gives the uninterrupted run; after evicting everything, the
  engine answers exactly as a new one (no line series, cooldown or steam group survives).
- Line moves equal an independent model of SPEC 10 (every rule of section 3 on the line, the
  prices riding on it, suspensions, line-only observations, invalid prices, key numbers).
- Steam equals an independent model of SPEC 11 fed the engine's detected moves; every steam
  holds at least ``steam_books`` distinct books (groups once) inside its window.
- A cooldown only removes alerts: the same detections, the same steams (a cooled move still
  counts), ``cooled`` = the alerts it removed, and a key's returned alerts are at least
  ``cooldown_ms`` apart.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core.alerts import Drop, LineMove, Steam
from dropengine.core.options import DetectOptions
from dropengine.core.rules import outcome_of

from .strategies import detect_options, quote_streams, signal_options, signal_streams_with_options
from .test_conformance import engine_opts

_FAST = settings(deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
ALL = frozenset({"odds_drop", "line_move", "steam"})
PRICE_COUNTERS = ("seen", "primed", "stale", "invalid", "suspended", "repeated", "detected")


def wire(alerts: list[Any]) -> list[bytes]:
    return [a.to_json() for a in alerts]


def run(quotes: list[Quote], opts: dict[str, Any]) -> tuple[list[Any], DropEngine]:
    engine = DropEngine(**engine_opts(opts))
    return engine.observe_many(quotes), engine


# --------------------------------------------------------------------------------------
# default types: today's engine
# --------------------------------------------------------------------------------------

@given(quote_streams(lines=True), detect_options())
@settings(_FAST, max_examples=40)
def test_default_types_are_todays_engine(quotes: list[Quote], opts: dict[str, Any]) -> None:
    alerts, engine = run(quotes, opts)
    assert all(type(a) is Drop for a in alerts)
    for same in ({**opts, "types": frozenset({"odds_drop"})}, {**opts, "types": "odds_drop"}):
        other, other_engine = run(quotes, same)
        assert wire(other) == wire(alerts)
        assert other_engine.counters == engine.counters
    built = DropEngine.from_options(DetectOptions.build(**engine_opts(opts)))
    assert wire(built.observe_many(quotes)) == wire(alerts)
    c = engine.counters
    assert (c.line_seen, c.line_detected, c.cooled, c.steam) == (0, 0, 0, 0)
    # the price alerts do not depend on what else is detected (no cooldown: SPEC 12 is off)
    for types in (frozenset({"odds_drop", "line_move"}), ALL):
        more, more_engine = run(quotes, {**opts, "types": types})
        assert wire([a for a in more if type(a) is Drop]) == wire(alerts)
        assert [getattr(more_engine.counters, k) for k in PRICE_COUNTERS] == [getattr(c, k) for k in PRICE_COUNTERS]


#: The last commit before issue 12 (its parent is the issue-11 layout; 0fd5446 added Quote.line_only).
BEFORE_ISSUE_12 = "0d7586d"
#: A server on stdin/stdout running the old package: length-prefixed pickles of (options, quote rows)
#: in, (alert bytes, price counters) out; an empty request ends it.
_OLD_RUNNER = """
import pickle, struct, sys
import dropengine
from dropengine import DropEngine, Quote
assert dropengine.__file__.startswith(sys.argv[1]), dropengine.__file__
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    (size,) = struct.unpack(">I", inp.read(4))
    if not size:
        break
    opts, rows = pickle.loads(inp.read(size))
    engine = DropEngine(**opts)
    alerts = engine.observe_many([Quote(**r) for r in rows])
    counters = {k: getattr(engine.counters, k) for k in
                ("seen", "primed", "stale", "invalid", "suspended", "repeated", "detected", "alerts")}
    data = pickle.dumps(([a.to_json() for a in alerts], counters))
    out.write(struct.pack(">I", len(data)) + data)
    out.flush()
"""


class OldEngine:
    """The pre-issue-12 package (extracted from git) in a subprocess."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _OLD_RUNNER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(root)}, cwd=root)

    def run(self, opts: dict[str, Any], quotes: list[Quote]) -> tuple[list[bytes], dict[str, int]]:
        rows = [{k: v for k, v in msgspec.structs.asdict(q).items() if k != "line_only"} for q in quotes]
        data = pickle.dumps((opts, rows))
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(struct.pack(">I", len(data)) + data)
        self.proc.stdin.flush()
        (size,) = struct.unpack(">I", self.proc.stdout.read(4))
        result: tuple[list[bytes], dict[str, int]] = pickle.loads(self.proc.stdout.read(size))
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(struct.pack(">I", 0))
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def old_engine() -> Iterator[OldEngine]:
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        try:
            archive = subprocess.run(["git", "-C", str(root), "archive", BEFORE_ISSUE_12, "dropengine"],
                                     capture_output=True, check=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            pytest.skip(f"git cannot extract commit {BEFORE_ISSUE_12} (a shallow clone?)")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True, timeout=60)
        engine = OldEngine(Path(tmp))
        try:
            yield engine
        finally:
            engine.close()


@given(quote_streams(lines=True, line_only=False), detect_options())
@settings(_FAST, max_examples=60)
def test_default_types_byte_identical_to_the_engine_before_issue_12(
    old_engine: OldEngine, quotes: list[Quote], opts: dict[str, Any]
) -> None:
    """Streams with line moves (no line-only quotes: the old Quote has no such field) through the
    pre-issue-12 package: the same alert bytes and price counters."""
    old_alerts, old_counters = old_engine.run(engine_opts(opts), quotes)
    alerts, engine = run(quotes, opts)
    assert wire(alerts) == old_alerts
    assert {k: getattr(engine.counters, k) for k in old_counters} == old_counters


# --------------------------------------------------------------------------------------
# post-filters, chunking, interleaving
# --------------------------------------------------------------------------------------

@given(signal_streams_with_options(signal_options()), st.data())
@settings(_FAST, max_examples=50)
def test_signal_stream_properties(case: tuple[list[Quote], dict[str, Any]], data: st.DataObject) -> None:
    """Each ``check_*`` below on the same drawn (signal stream, options): drawing the stream is
    most of an example, and four tests drew 190 streams from this one strategy; each property
    still sees 50 (direction union had 40), with its own extra draws (cuts, orders, snapshot
    point). A failure's traceback names the ``check_*`` that failed."""
    quotes, opts = case
    check_both_is_the_union_of_the_directions(quotes, opts)
    check_chunking_never_changes_anything(quotes, opts, data)
    check_interleaving(quotes, opts, data)
    check_snapshot_restore_mid_stream(quotes, opts, data)


def check_both_is_the_union_of_the_directions(quotes: list[Quote], opts: dict[str, Any]) -> None:
    """SPEC 3 rule 6 for every type: direction filters after detection, cooldown and steam."""
    both, eng_both = run(quotes, {**opts, "direction": "both"})
    fav, eng_fav = run(quotes, {**opts, "direction": "toward_favorite"})
    dog, eng_dog = run(quotes, {**opts, "direction": "toward_dog"})
    assert all(a.direction == "toward_favorite" for a in fav) and all(a.direction == "toward_dog" for a in dog)
    assert sorted(wire(fav) + wire(dog)) == sorted(wire(both))
    same = {k: v for k, v in eng_both.counters.as_dict().items() if k != "alerts"}
    for other in (eng_fav, eng_dog):
        assert {k: v for k, v in other.counters.as_dict().items() if k != "alerts"} == same


def check_chunking_never_changes_anything(quotes: list[Quote], opts: dict[str, Any], data: st.DataObject) -> None:
    alerts, engine = run(quotes, opts)
    one = DropEngine(**engine_opts(opts))
    assert wire([a for q in quotes for a in one.observe(q)]) == wire(alerts)
    assert one.counters == engine.counters
    cuts = sorted(data.draw(st.lists(st.integers(0, len(quotes)), max_size=4), label="cuts"))
    chunked = DropEngine(**engine_opts(opts))
    got: list[Any] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(quotes)], strict=True):
        got += chunked.observe_many(quotes[lo:hi])
    assert wire(got) == wire(alerts)
    assert chunked.counters == engine.counters


def _regroup(quotes: list[Quote], key: Any, order: list[Any]) -> list[Quote]:
    groups: dict[Any, list[Quote]] = {}
    for q in quotes:
        groups.setdefault(key(q), []).append(q)
    return [q for k in order for q in groups[k]]


def check_interleaving(quotes: list[Quote], opts: dict[str, Any], data: st.DataObject) -> None:
    """Events never interact: any order of events (each event's quotes in order) gives the same
    alerts of every type and the same counters. Line series never interact: any order of the
    line series (each ``(event, book, line side)``'s quotes, all its price keys, in order)
    gives the same drops and line moves; steam is defined in arrival order across books."""
    alerts, engine = run(quotes, opts)

    def by_event(q: Quote) -> str:
        return q.event_id

    def by_series(q: Quote) -> tuple[str, str, str]:
        return (q.event_id, q.bookmaker, outcome_of(q.side))

    events = data.draw(st.permutations(sorted({by_event(q) for q in quotes})), label="event order")
    moved, moved_engine = run(_regroup(quotes, by_event, events), opts)
    assert sorted(wire(moved)) == sorted(wire(alerts))
    assert moved_engine.counters == engine.counters
    series = data.draw(st.permutations(sorted({by_series(q) for q in quotes})), label="series order")
    moved, moved_engine = run(_regroup(quotes, by_series, series), opts)
    assert sorted(wire([a for a in moved if type(a) is not Steam])) == sorted(
        wire([a for a in alerts if type(a) is not Steam]))
    same = {k: v for k, v in engine.counters.as_dict().items() if k not in ("steam", "alerts")}
    assert {k: v for k, v in moved_engine.counters.as_dict().items() if k not in ("steam", "alerts")} == same


# --------------------------------------------------------------------------------------
# state: snapshot/restore, evict
# --------------------------------------------------------------------------------------

def check_snapshot_restore_mid_stream(quotes: list[Quote], opts: dict[str, Any], data: st.DataObject) -> None:
    alerts, engine = run(quotes, opts)
    cut = data.draw(st.integers(0, len(quotes)), label="snapshot at")
    first = DropEngine(**engine_opts(opts))
    head = first.observe_many(quotes[:cut])
    second = DropEngine.restore(first.snapshot())
    assert second.options == first.options
    tail = second.observe_many(quotes[cut:])
    assert wire(head + tail) == wire(alerts)
    assert second.counters == engine.counters


@given(quote_streams(lines=True), quote_streams(lines=True), signal_options())
@settings(_FAST, max_examples=50)
def test_evicting_everything_leaves_a_new_engine(first: list[Quote], then: list[Quote], opts: dict[str, Any]) -> None:
    """After ``evict`` past every quote seen, no price key, line series, cooldown or steam group
    is left: the next stream gives exactly what a new engine gives."""
    engine = DropEngine(**engine_opts(opts))
    engine.observe_many(first)
    newest = max((q.last_update for q in first), default=0)
    engine.evict(newest + 1)
    assert engine.keys_held == 0
    fresh = DropEngine(**engine_opts(opts))
    assert wire(engine.observe_many(then)) == wire(fresh.observe_many(then))


# --------------------------------------------------------------------------------------
# steam and cooldown
# --------------------------------------------------------------------------------------

def model_steam(moves: list[tuple[Drop | LineMove, int]], opts: dict[str, Any]) -> list[tuple[Any, ...]]:
    """SPEC 11 written out, fed the detected moves in arrival order: each book's latest move per
    ``(event, outcome, direction)``; T = the newest last_update among the counted moves; the
    window's books (a group once, by its earliest move); the group's cooldown of one window."""
    books, window = opts["steam_books"], opts["steam_window_ms"]
    unit: dict[str, str] = {}
    for group in (opts.get("steam_groups") or "").split(","):
        if group:
            for b in group.split("+"):
                unit[b] = group
    price_min = opts.get("steam_threshold", opts["threshold"] if opts["unit"] == "cents" else None)
    line_min = opts["line_threshold"]
    counted: dict[tuple[str, str, str], dict[str, tuple[int, int, Drop | LineMove]]] = {}
    fired: dict[tuple[str, str, str], int] = {}
    out: list[tuple[Any, ...]] = []
    for arrival, (move, _) in enumerate(moves):
        size, need = (abs(move.delta), price_min) if isinstance(move, Drop) else (abs(move.points), line_min)
        if need is not None and size < need - 1e-9:
            continue
        g = (move.event_id, outcome_of(move.side), move.direction)
        members = counted.setdefault(g, {})
        members[move.bookmaker] = (move.last_update, arrival, move)
        t = max(lu for lu, _, _ in members.values())
        if g in fired and t < fired[g] + window:
            continue
        seen: set[str] = set()
        listed = []
        for lu, _, m in sorted((v for v in members.values() if v[0] >= t - window), key=lambda v: v[:2]):
            u = unit.get(m.bookmaker, m.bookmaker)
            if u not in seen:
                seen.add(u)
                listed.append((m.bookmaker, lu))
        if len(listed) >= books:
            fired[g] = t
            out.append((*g, t, tuple(listed)))
    return out


def _detected_moves(quotes: list[Quote], opts: dict[str, Any]) -> list[tuple[Drop | LineMove, int]]:
    """Every move as detected (before filters and cooldown), in arrival order, with its quote's index."""
    bare = {k: v for k, v in opts.items() if k in ("threshold", "reference", "unit", "reprime_after_suspension",
                                                   "line_threshold", "key_numbers")}
    engine = DropEngine(**engine_opts({**bare, "types": frozenset({"odds_drop", "line_move"})}))
    return [(a, i) for i, q in enumerate(quotes) for a in engine.observe(q) if isinstance(a, (Drop, LineMove))]


@given(signal_streams_with_options(signal_options(types=(ALL,), filters=False), min_len=10))
@settings(_FAST, max_examples=80)
def test_steam_equals_the_model_and_its_invariants(case: tuple[list[Quote], dict[str, Any]]) -> None:
    quotes, opts = case
    opts = {**opts, "direction": "both"}
    alerts, engine = run(quotes, opts)
    steams = [a for a in alerts if type(a) is Steam]
    moves = _detected_moves(quotes, opts)
    expected = model_steam(moves, opts)
    got = [(s.event_id, s.side, s.direction, s.last_update, tuple((b.bookmaker, b.last_update) for b in s.books))
           for s in steams]
    assert got == expected
    assert engine.counters.steam == len(steams)
    window, groups = opts["steam_window_ms"], opts.get("steam_groups")
    last_fire: dict[tuple[str, str, str], int] = {}
    for s in steams:
        lus = [b.last_update for b in s.books]
        assert len(s.books) >= opts["steam_books"]
        assert lus == sorted(lus) and all(s.last_update - window <= lu <= s.last_update for lu in lus)
        assert (s.leader, s.lag_ms) == (s.books[0].bookmaker, lus[-1] - lus[0])
        names = [b.bookmaker for b in s.books]
        assert len(set(names)) == len(names)
        if groups:
            assert not {"pinnacle", "draftkings"} <= set(names)  # a group counts once
        g = (s.event_id, s.side, s.direction)
        assert g not in last_fire or s.last_update >= last_fire[g] + window
        last_fire[g] = s.last_update
        for b in s.books:  # each entry is a move of the steam's outcome
            assert outcome_of(b.side) == s.side
            assert b.type in ("odds_drop", "line_move")


@given(signal_streams_with_options(signal_options(types=(ALL,), filters=False, cooldown=False)), st.data())
@settings(_FAST, max_examples=60)
def test_cooldown_only_removes_alerts(case: tuple[list[Quote], dict[str, Any]], data: st.DataObject) -> None:
    """SPEC 12: the same detections and the same steams with and without a cooldown; the
    alerts it removes are exactly ``cooled``; a key's returned alerts are >= cooldown_ms apart."""
    quotes, opts = case
    cooldown = data.draw(st.sampled_from((1, 1000, 60_000, 300_000, 10**9)))
    opts = {**opts, "direction": "both"}
    plain, plain_engine = run(quotes, opts)
    cooled, cooled_engine = run(quotes, {**opts, "cooldown_ms": cooldown})
    assert wire([a for a in cooled if type(a) is Steam]) == wire([a for a in plain if type(a) is Steam])
    kept = [a for a in cooled if type(a) is not Steam]
    every = [a for a in plain if type(a) is not Steam]
    it = iter(wire(every))
    assert all(any(x == y for y in it) for x in wire(kept))  # a subsequence
    c, p = cooled_engine.counters, plain_engine.counters
    assert (c.detected, c.line_detected, c.steam) == (p.detected, p.line_detected, p.steam)
    assert c.cooled == len(every) - len(kept)
    # SPEC 12 written out: per key, an alert goes out when the key's last alert that went out
    # is at least cooldown_ms older (suppressed alerts do not restart it)
    last: dict[tuple[str, ...], int] = {}
    want = []
    for a in every:
        key = (a.type, a.event_id, a.bookmaker, a.side)
        if key not in last or a.last_update - last[key] >= cooldown:
            last[key] = a.last_update
            want.append(a)
    assert wire(kept) == wire(want)


def test_counted_kinds_of_generated_content() -> None:
    """The generator makes what the properties need: line moves (half and full points, key
    numbers), line-only observations, and steams of three books."""
    seen: Counter[str] = Counter()

    @given(quote_streams(lines=True, min_len=15))
    @settings(_FAST, max_examples=60, database=None)
    def collect(quotes: list[Quote]) -> None:
        alerts = DropEngine(types="odds_drop,line_move,steam").observe_many(quotes)
        seen["line_only"] += sum(q.line_only for q in quotes)
        for a in alerts:
            seen[a.type] += 1
            if type(a) is LineMove:
                seen[f"points {abs(a.points)}"] += 1
                seen["key numbers"] += bool(a.key_numbers)
            if type(a) is Steam and len(a.books) >= 3:
                seen["steam of 3"] += 1

    collect()
    for kind in ("line_only", "odds_drop", "line_move", "points 0.5", "points 1", "key numbers", "steam of 3"):
        assert seen[kind] > 0, (kind, seen)


# --------------------------------------------------------------------------------------
# line series (SPEC 10) against an independent model
# --------------------------------------------------------------------------------------

def model_lines(quotes: list[Quote], opts: dict[str, Any]) -> list[tuple[Any, ...]]:
    """SPEC 10 written out from the text (section 3's rules on the line, prices riding along):
    the line moves in arrival order, as ``(event, book, line side, prev_line, new_line, points,
    prev_price, new_price, direction, key_numbers, last_update, elapsed_ms)``."""
    anchor = opts["reference"] == "anchor"
    reprime = opts["reprime_after_suspension"]
    threshold = opts["line_threshold"]
    series: dict[tuple[str, str, str], dict[str, Any]] = {}
    out: list[tuple[Any, ...]] = []
    for q in quotes:
        p = q.price
        if p is not None and not (isinstance(p, (int, float)) and p == p and 100 <= abs(p) <= 100000):
            continue  # an invalid price: the quote is skipped whole
        if q.line is None:
            continue
        key = (q.event_id, q.bookmaker, q.side.rpartition("@")[0])
        line, lu = q.line, q.last_update
        suspension = p is None and not q.line_only
        s = series.get(key)
        if s is None:
            series[key] = {"newest": lu, "susp": True, "line": None} if suspension else {
                "newest": lu, "susp": False, "line": line, "since": lu, "price": p,
                "aline": line, "asince": lu, "aprice": p}
            continue
        if lu < s["newest"]:
            continue  # stale
        s["newest"] = lu
        if suspension:
            s["susp"] = True
            if line == s["line"]:
                s["price"] = None  # an observation at this line that carried no price
            if s["line"] is not None and line == s["aline"]:
                s["aprice"] = None
            continue
        if s["susp"]:
            s["susp"] = False
            if reprime or s["line"] is None:
                s.update(line=line, since=lu, price=p, aline=line, asince=lu, aprice=p)
                continue
        if line == s["line"]:
            s["price"] = p
            if line == s["aline"]:
                s["aprice"] = p
            continue
        ref, ref_since, ref_price = (s["aline"], s["asince"], s["aprice"]) if anchor else (
            s["line"], s["since"], s["price"])
        s.update(line=line, since=lu, price=p)
        if line == s["aline"]:
            s["aprice"] = p
        points = round(line - ref, 9)
        if abs(points) < threshold - 1e-9:
            continue
        s.update(aline=line, asince=lu, aprice=p)
        side = key[2]
        dearer = points > 0 if side.endswith("over") else points < 0
        lo, hi = min(ref, line), max(ref, line)
        keys = tuple(k for k in (3, 4, 6, 7, 10, 14) if q.sport_key.startswith("americanfootball_")
                     and side.startswith("spread_") and (lo <= k <= hi or lo <= -k <= hi))
        out.append((*key, ref, line, points, ref_price, p, "toward_favorite" if dearer else "toward_dog", keys, lu,
                    lu - ref_since))
    return out


@given(signal_streams_with_options(signal_options(types=(frozenset({"line_move"}),), filters=False, cooldown=False)))
@settings(_FAST, max_examples=80)
def test_line_moves_equal_the_model(case: tuple[list[Quote], dict[str, Any]]) -> None:
    """Every rule of SPEC 10 on generated streams (moving lines, line-only observations,
    suspensions with and without re-priming, stale and equal times, invalid prices, last and
    anchor): the engine's line moves == the model's, field for field."""
    quotes, opts = case
    opts = {k: v for k, v in opts.items() if k != "key_numbers"} | {"direction": "both"}
    alerts, engine = run(quotes, opts)
    got = [(a.event_id, a.bookmaker, a.side, a.prev_line, a.new_line, a.points, a.prev_price, a.new_price,
            a.direction, tuple(a.key_numbers), a.last_update, a.elapsed_ms) for a in alerts]
    assert got == model_lines(quotes, opts)
    assert engine.counters.line_detected == len(got)
