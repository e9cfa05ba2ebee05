"""Issue 14, aim 3: the engine's compact key state (hot lists, cold packed keys) changes nothing.

- With every key going cold at once (a hot set of 2), alerts, counters and snapshot bytes are those
  of the default hot set, for every option and signal (hypothesis, adversarial streams).
- A snapshot restores to an engine that goes on as if never snapshotted, and writes the same bytes.
- Snapshots written before the change (bc091f5, kept below) restore and go on as a new engine would.
- The packing is exact: every value keeps its type and bits, every time its value.
"""

from __future__ import annotations

import base64
import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import dropengine.core.keystate as engine_mod  # the key state (split from engine.py)
from dropengine import DropEngine, Quote
from tests.strategies import detect_options, signal_options, signal_streams_with_options, streams_with_options


@contextmanager
def hot_keys(n: int, spill: int = 1, grow_after: int = 1 << 30) -> Iterator[None]:
    """Keep only ``n`` keys hot (the rest packed) inside the block; the hot set grows only after
    ``grow_after`` warmed keys between two spills (by default never)."""
    saved = engine_mod._HOT_KEYS, engine_mod._SPILL, engine_mod._GROW_AFTER
    engine_mod._HOT_KEYS, engine_mod._SPILL, engine_mod._GROW_AFTER = n, spill, grow_after  # type: ignore[misc]
    try:
        yield
    finally:
        engine_mod._HOT_KEYS, engine_mod._SPILL, engine_mod._GROW_AFTER = saved  # type: ignore[misc]


def enter_model(keys: engine_mod._Keys, key: tuple[str, str, str], st: list[Any]) -> list[Any] | None:
    """The model the detection loop is held to for a key that is not hot: its state made a list
    again (``warm``), or, when it is not held, None after adding it with ``st`` (``add``). The
    loop itself warms only while some key is cold and stores a new key itself (tests compare)."""
    got = keys.warm(key)
    if got is None:
        keys.add(key, st)
    return got


def run(quotes: list[Quote], opts: dict[str, Any], cuts: list[int]) -> tuple[list[Any], Any, bytes]:
    eng = DropEngine(**opts)
    alerts: list[Any] = []
    bounds = sorted({0, len(quotes), *(min(c, len(quotes)) for c in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        alerts += eng.observe_many(quotes[lo:hi])
    return alerts, eng.counters, eng.snapshot()


@settings(max_examples=40, deadline=None)
@given(case=st.one_of(streams_with_options(detect_options()), signal_streams_with_options(signal_options())),
       cuts=st.lists(st.integers(0, 30), max_size=3))
def test_cold_keys_change_nothing(case: tuple[list[Quote], dict[str, Any]], cuts: list[int]) -> None:
    quotes, opts = case
    whole = run(quotes, opts, cuts)
    full = DropEngine(**opts)  # every key hot (the default hot set holds them all)
    full.observe_many(quotes)
    prices = {k: full.price_of(*k) for k in full._state}
    bound = quotes[len(quotes) // 2].last_update if quotes else 0
    with hot_keys(1, 1):
        # every key but the one just quoted goes cold at once (and warms on its next quote)
        assert run(quotes, opts, cuts) == whole
        eng = DropEngine(**opts)
        eng.observe_many(quotes)
    assert {k: eng.price_of(*k) for k in eng._state} == prices
    assert eng._state == full._state and eng._lines == full._lines
    # eviction by age and by event start drops the same keys, hot or cold
    assert eng.evict(bound, started_before_ms=bound) == full.evict(bound, started_before_ms=bound)
    assert eng.snapshot() == full.snapshot()


@settings(max_examples=40, deadline=None)
@given(case=st.one_of(streams_with_options(detect_options()), signal_streams_with_options(signal_options())),
       cut=st.integers(0, 40), hot=st.sampled_from((1, 3, 1 << 16)))
def test_snapshot_restore_then_continue_is_never_snapshotted(
    case: tuple[list[Quote], dict[str, Any]], cut: int, hot: int
) -> None:
    quotes, opts = case
    whole_alerts, whole_counters, whole_blob = run(quotes, opts, [])
    with hot_keys(hot):
        first = DropEngine(**opts)
        alerts = first.observe_many(quotes[:cut])
        blob = first.snapshot()
        second = DropEngine.restore(blob)
        assert second.snapshot() == blob
        assert len(second) == len(first)
        alerts += second.observe_many(quotes[cut:])
        assert alerts == whole_alerts
        assert second.counters == whole_counters
        assert second.snapshot() == whole_blob


T0 = 1_747_000_000_000


def stream() -> list[Quote]:
    out: list[Quote] = []
    books = ("pinnacle", "draftkings", "fanduel")
    for i in range(60):
        b = books[i % 3]
        e = f"ev{i % 4}"
        side = ("h2h_home", "spread_home@-3.5", "spread_home@-4", "total_over@220.5")[i % 4]
        price = (None if i % 17 == 5 else [-110, -125.5, 105, -100, 100, -135][i % 6] - (i % 5))
        out.append(Quote("americanfootball_nfl", e, b, side, price, T0 + 1000 * i - (3000 if i % 13 == 7 else 0),
                         commence_time="2026-05-01T23:30:00Z"))
    return out

# Written by bc091f5's engine (before issue 14) after stream()[:40], with these options:
OLD_OPTIONS: dict[str, dict[str, Any]] = {
    "DEFAULT": {},
    "SIGNALS": {"threshold": 5, "reference": "anchor", "reprime_after_suspension": False,
                "types": frozenset({"odds_drop", "line_move", "steam"}), "steam_books": 2, "cooldown_ms": 2000},
}
OLD_SNAPSHOTS = {
    "DEFAULT": (
        "RFJPUEVORwAAAdMkwiP49N1q6mOk7qT/cfpssYNEZDEfJPUwHNfb0OplhKZjb25maWeKqXRocmVzaG9sZAqpZGlyZWN0aW9upGJv"
        "dGipcmVmZXJlbmNlpGxhc3SkdW5pdKVjZW50c7hyZXByaW1lX2FmdGVyX3N1c3BlbnNpb27DpnNwb3J0c8CoZXZlbnRfaWTAqmJv"
        "b2ttYWtlcnPAp21hcmtldHPApWtpbmRzwKhjb3VudGVyc5goCwAEAwAAAKVzdGF0ZZuZo2V2MKhwaW5uYWNsZahoMmhfaG9tZdCR"
        "zwAAAZbBUQqgzwAAAZbBUQqgwtCSzwAAAZbBUH4AmaNldjGqZHJhZnRraW5nc7BzcHJlYWRfaG9tZUAtMy41y8Bf4AAAAAAAzwAA"
        "AZbBUQ6IzwAAAZbBUQ6IwsvAX6AAAAAAAM8AAAGWwVCB6JmjZXYyp2ZhbmR1ZWyuc3ByZWFkX2hvbWVALTRmzwAAAZbBURJwzwAA"
        "AZbBURJwwmfPAAABlsFQhdCZo2V2M6hwaW5uYWNsZbB0b3RhbF9vdmVyQDIyMC410JrPAAABlsFQ53jPAAABlsFRFljD0JnPAAAB"
        "lsFQibiZo2V2MadmYW5kdWVssHNwcmVhZF9ob21lQC0zLjXR/3XPAAABlsFQ70jPAAABlsFQ70jC0f93zwAAAZbBUMBomaNldjKo"
        "cGlubmFjbGWuc3ByZWFkX2hvbWVALTTQks8AAAGWwVDzMM8AAAGWwVDzMMLQkc8AAAGWwVCVcJmjZXYzqmRyYWZ0a2luZ3OwdG90"
        "YWxfb3ZlckAyMjAuNcvAX6AAAAAAAM8AAAGWwVD3GM8AAAGWwVD3GMLLwF/gAAAAAADPAAABlsFQjaCZo2V2MKdmYW5kdWVsqGgy"
        "aF9ob21lZ88AAAGWwVD7AM8AAAGWwVD7AMJmzwAAAZbBUJ1AmaNldjGocGlubmFjbGWwc3ByZWFkX2hvbWVALTMuNdCZzwAAAZbB"
        "UPMwzwAAAZbBUPMwwtCYzwAAAZbBUKEomaNldjKqZHJhZnRraW5nc65zcHJlYWRfaG9tZUAtNGTPAAABlsFQpRDPAAABlsFQ0/DD"
        "ZM8AAAGWwVClEJmjZXYzp2ZhbmR1ZWywdG90YWxfb3ZlckAyMjAuNdH/ec8AAAGWwVEGuM8AAAGWwVEGuMLR/3jPAAABlsFQqPim"
        "ZXZlbnRzlJKjZXYwzwAAAZ3l4KzAkqNldjHPAAABneXgrMCSo2V2Ms8AAAGd5eCswJKjZXYzzwAAAZ3l4KzA"
    ),
    "SIGNALS": (
        "RFJPUEVORwAAAc40ymUldsAHRLENc131zFdbdA/YhQE8eA8siRXdViU3h6Zjb25maWeNqXRocmVzaG9sZAWpZGlyZWN0aW9upGJv"
        "dGipcmVmZXJlbmNlpmFuY2hvcqR1bml0pWNlbnRzuHJlcHJpbWVfYWZ0ZXJfc3VzcGVuc2lvbsKmc3BvcnRzwKhldmVudF9pZMCq"
        "Ym9va21ha2Vyc8CnbWFya2V0c8Cla2luZHPApXR5cGVzk6lvZGRzX2Ryb3CpbGluZV9tb3ZlpXN0ZWFtq3N0ZWFtX2Jvb2tzAqtj"
        "b29sZG93bl9tc80H0Khjb3VudGVyc9wAECgLAAQDAAAAHQkAAxEAAAClc3RhdGWbmaNldjCocGlubmFjbGWoaDJoX2hvbWXQkc8A"
        "AAGWwVEKoM8AAAGWwVEKoMLQks8AAAGWwVB+AJmjZXYxqmRyYWZ0a2luZ3Owc3ByZWFkX2hvbWVALTMuNcvAX+AAAAAAAM8AAAGW"
        "wVEOiM8AAAGWwVEOiMLLwF+gAAAAAADPAAABlsFQgeiZo2V2MqdmYW5kdWVsrnNwcmVhZF9ob21lQC00Zs8AAAGWwVEScM8AAAGW"
        "wVEScMJnzwAAAZbBUIXQmaNldjOocGlubmFjbGWwdG90YWxfb3ZlckAyMjAuNdCazwAAAZbBUOd4zwAAAZbBURZYw9CZzwAAAZbB"
        "UIm4maNldjGnZmFuZHVlbLBzcHJlYWRfaG9tZUAtMy410f91zwAAAZbBUO9IzwAAAZbBUO9IwtH/d88AAAGWwVDAaJmjZXYyqHBp"
        "bm5hY2xlrnNwcmVhZF9ob21lQC000JLPAAABlsFQ8zDPAAABlsFQ8zDC0JHPAAABlsFQlXCZo2V2M6pkcmFmdGtpbmdzsHRvdGFs"
        "X292ZXJAMjIwLjXLwF+gAAAAAADPAAABlsFQ9xjPAAABlsFQ9xjCy8Bf4AAAAAAAzwAAAZbBUI2gmaNldjCnZmFuZHVlbKhoMmhf"
        "aG9tZWfPAAABlsFQ+wDPAAABlsFQ+wDCZs8AAAGWwVCdQJmjZXYxqHBpbm5hY2xlsHNwcmVhZF9ob21lQC0zLjXQmc8AAAGWwVDz"
        "MM8AAAGWwVDzMMLQmM8AAAGWwVChKJmjZXYyqmRyYWZ0a2luZ3Ouc3ByZWFkX2hvbWVALTRkzwAAAZbBUKUQzwAAAZbBUNPww2TP"
        "AAABlsFQpRCZo2V2M6dmYW5kdWVssHRvdGFsX292ZXJAMjIwLjXR/3nPAAABlsFRBrjPAAABlsFRBrjC0f94zwAAAZbBUKj4pmV2"
        "ZW50c5SSo2V2MM8AAAGd5eCswJKjZXYxzwAAAZ3l4KzAkqNldjLPAAABneXgrMCSo2V2M88AAAGd5eCswKVsaW5lc5mbo2V2Mapk"
        "cmFmdGtpbmdzq3NwcmVhZF9ob21ly8AMAAAAAAAAzwAAAZbBUIHozwAAAZbBUQ6IwsvADAAAAAAAAM8AAAGWwVCB6MvAX+AAAAAA"
        "AMvAX+AAAAAAAJujZXYyp2ZhbmR1ZWyrc3ByZWFkX2hvbWXLwBAAAAAAAADPAAABlsFQhdDPAAABlsFREnDCy8AQAAAAAAAAzwAA"
        "AZbBUIXQZmabo2V2M6hwaW5uYWNsZap0b3RhbF9vdmVyy0BrkAAAAAAAzwAAAZbBUIm4zwAAAZbBURZYw8tAa5AAAAAAAM8AAAGW"
        "wVCJuMDAm6NldjGnZmFuZHVlbKtzcHJlYWRfaG9tZcvADAAAAAAAAM8AAAGWwVDAaM8AAAGWwVDvSMLLwAwAAAAAAADPAAABlsFQ"
        "wGjR/3XR/3Wbo2V2MqhwaW5uYWNsZatzcHJlYWRfaG9tZcvAEAAAAAAAAM8AAAGWwVCVcM8AAAGWwVDzMMLLwBAAAAAAAADPAAAB"
        "lsFQlXDQktCSm6NldjOqZHJhZnRraW5nc6p0b3RhbF9vdmVyy0BrkAAAAAAAzwAAAZbBUI2gzwAAAZbBUPcYwstAa5AAAAAAAM8A"
        "AAGWwVCNoMvAX6AAAAAAAMvAX6AAAAAAAJujZXYxqHBpbm5hY2xlq3NwcmVhZF9ob21ly8AMAAAAAAAAzwAAAZbBUKEozwAAAZbB"
        "UPMwwsvADAAAAAAAAM8AAAGWwVChKNCZ0Jmbo2V2MqpkcmFmdGtpbmdzq3NwcmVhZF9ob21ly8AQAAAAAAAAzwAAAZbBUKUQzwAA"
        "AZbBUNPww8vAEAAAAAAAAM8AAAGWwVClEMDAm6NldjOnZmFuZHVlbKp0b3RhbF9vdmVyy0BrkAAAAAAAzwAAAZbBUKj4zwAAAZbB"
        "UQa4wstAa5AAAAAAAM8AAAGWwVCo+NH/edH/eaRjb29skKVzdGVhbZIAkA=="
    ),
}


def test_snapshots_written_before_issue_14_restore_and_go_on() -> None:
    quotes = stream()
    for name, opts in OLD_OPTIONS.items():
        back = DropEngine.restore(base64.b64decode(OLD_SNAPSHOTS[name]))
        ref = DropEngine(**opts)
        ref.observe_many(quotes[:40])
        assert back.counters == ref.counters
        assert back.observe_many(quotes[40:]) == ref.observe_many(quotes[40:])
        assert back.counters == ref.counters and back.snapshot() == ref.snapshot()


values = st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
                   st.sampled_from((-0.0, 0.0, 2**31, -2**31, -2**31 - 1, 2**31 - 1, 100, -100)))
times = st.one_of(st.integers(0, 2**63 - 1), st.sampled_from((0, 2**32 - 1, 2**32, 2**63 - 1)))


@settings(max_examples=100, deadline=None)
@given(price=values, aprice=values, since=times, newest=times, asince=times, susp=st.booleans(),
       curp=values, ancp=values)
def test_packing_is_exact(price: Any, aprice: Any, since: int, newest: int, asince: int, susp: bool,
                          curp: Any, ancp: Any) -> None:
    for codec, st_ in ((engine_mod._PRICE_CODEC, [price, since, newest, susp, aprice, asince]),
                       (engine_mod._LINE_CODEC, [price, since, newest, susp, aprice, asince, curp, ancp])):
        back = codec.unpack(codec.pack(st_))
        assert [type(v) for v in back] == [type(v) for v in st_]
        assert all(a == b and (not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b))
                   for a, b in zip(back, st_, strict=True))
        assert codec.newest(codec.pack(st_)) == newest
    # the price codec's shortcut for int prices writes and reads what its general path does
    general = engine_mod._Codec(engine_mod._PRICE_CODEC._kinds, engine_mod._NEWEST)
    price_st = [price, since, newest, susp, aprice, asince]
    assert general.pack(price_st) == engine_mod._PRICE_CODEC.pack(price_st)
    assert general.unpack(engine_mod._PRICE_CODEC.pack(price_st)) == engine_mod._PRICE_CODEC.unpack(
        general.pack(price_st))


def _uniform(keys: int, rounds: int) -> list[Quote]:
    """Every key quoted ``rounds`` times, round robin (a working set of ``keys``), prices moving."""
    return [Quote("basketball_nba", f"E{k}", "book", "h2h_home", -110 - 10 * ((r + k) % 3), 1_000 * r + k)
            for r in range(rounds) for k in range(keys)]


def test_a_working_set_wider_than_the_hot_set_grows_it_instead_of_churning() -> None:
    """Round robin over 50 keys with a hot set of 8: without growth every quote warms a cold key;
    with it the hot set doubles until the 50 fit, and the alerts, counters and snapshot stay the same."""
    quotes = _uniform(50, 6)
    with hot_keys(8, 4):  # never grows: the churn the growth avoids
        churn = DropEngine()
        churning = churn.observe_many(quotes), churn.counters, churn.snapshot()
        assert len(churn._state.hot) <= 8
    with hot_keys(8, 4, grow_after=2):
        grown = DropEngine()
        growing = grown.observe_many(quotes), grown.counters, grown.snapshot()
        assert grown._state.cap == 64 and len(grown._state.hot) == 50
    assert growing == churning
    assert sum(1 for a in growing[0]) > 0


def test_keys_quoted_once_do_not_grow_the_hot_set() -> None:
    """New keys are not churn: a universe quoted once each stays packed past the hot set."""
    with hot_keys(8, 4, grow_after=2):
        eng = DropEngine()
        eng.observe_many(_uniform(200, 1))
        assert eng._state.cap == 8 and len(eng._state.hot) <= 8 and len(eng._state) == 200
