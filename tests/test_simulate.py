"""The market simulator (dropengine.sim.simulate) and its file writer (dropengine.sim.simfile).

Determinism (byte-identical files per seed, every format), validity of every price, replay
with no skips, the same alerts from frames and quote tables, and the market features the
model promises: the sharp book moves first, soft overrounds, line moves, suspensions,
in-play thinning, props only on request. Configuration errors name the field.
"""

from __future__ import annotations

import gzip
import hashlib
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from dropengine import ConfigError, DropEngine, replay
from dropengine.core.odds import american_to_prob, cents, is_valid_price
from dropengine.core.sides import parse_side
from dropengine.formats.tables import QUOTE_COLUMNS
from dropengine.io.replay import ReplayStats
from dropengine.sim.simfile import sim_format, write_simulation
from dropengine.sim.simulate import (
    BOOKMAKERS,
    CENT_LADDER,
    DIME_LADDER,
    NICKEL_LADDER,
    SPORTS,
    SimConfig,
    round_to_ladder,
    simulate_envelopes,
    simulate_quote_rows,
    two_way_probs,
)

SMALL = SimConfig(events=4, books=6, hours=8, props=True, seed=11)
GAME_PRICES = ("home_ml", "away_ml", "home_spread_price", "away_spread_price", "over_price", "under_price")
LADDERS = {b.key: b.ladder for b in BOOKMAKERS}


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def rows_of(cfg: SimConfig) -> list[dict[str, Any]]:
    return [r for env in simulate_envelopes(cfg) if "data" in env for r in env["data"]]


def alert_keys(path: Path) -> tuple[list[tuple[Any, ...]], ReplayStats]:
    stats = ReplayStats()
    alerts = [(d.event_id, d.bookmaker, d.side, d.prev, d.new) for d in replay([path], DropEngine(), stats=stats)]
    return alerts, stats


@pytest.fixture(scope="module")
def small_rows() -> list[dict[str, Any]]:
    return rows_of(SMALL)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, int]]]:
    """SMALL written once in every format (the determinism test writes its own second copies)."""
    root = tmp_path_factory.mktemp("sim")
    out = {}
    for name in ("rec.ndjson", "rec.ndjson.gz", "rec.sse", "rec.csv", "rec.csv.gz", "rec.parquet"):
        out[name] = (root / name, write_simulation(SMALL, root / name))
    out["quotes.ndjson"] = (root / "quotes.ndjson", write_simulation(SMALL, root / "quotes.ndjson", "quotes"))
    return out


@pytest.fixture(scope="module")
def frames_alerts(written: dict[str, tuple[Path, dict[str, int]]]) -> list[tuple[Any, ...]]:
    """The alerts of the frames recording: what every format's replay must give."""
    return alert_keys(written["rec.ndjson"][0])[0]


# --------------------------------------------------------------------------- determinism


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["rec.ndjson", "rec.ndjson.gz", "rec.sse", "rec.csv", "rec.csv.gz", "rec.parquet"])
def test_same_seed_gives_byte_identical_files(
    name: str, written: dict[str, tuple[Path, dict[str, int]]], tmp_path: Path
) -> None:
    first, counts = written[name]
    again = tmp_path / name
    assert write_simulation(SMALL, again) == counts
    assert digest(again) == digest(first)


def test_another_seed_gives_another_simulation(written: dict[str, tuple[Path, dict[str, int]]], tmp_path: Path) -> None:
    # the seed drives the simulation, not the writer: one format shows it (each format's own
    # content is checked by test_recording_replays_with_no_skips_and_the_same_alerts)
    other = tmp_path / "other.ndjson"
    write_simulation(SimConfig(events=4, books=6, hours=8, props=True, seed=12), other)
    assert digest(other) != digest(written["rec.ndjson"][0])
    assert rows_of(SimConfig(events=4, books=6, hours=8, props=True, seed=12)) != rows_of(SMALL)


def test_gzip_header_carries_no_time_or_name(written: dict[str, tuple[Path, dict[str, int]]]) -> None:
    head = written["rec.ndjson.gz"][0].read_bytes()[:10]
    assert head[:2] == b"\x1f\x8b" and head[4:8] == b"\0\0\0\0"  # MTIME = 0
    assert head[3] & 0x08 == 0  # no FNAME field


def test_counts_match_the_stream(written: dict[str, tuple[Path, dict[str, int]]]) -> None:
    counts = written["rec.ndjson"][1]
    envelopes = list(simulate_envelopes(SMALL))
    assert counts["envelopes"] == len(envelopes) == len(written["rec.ndjson"][0].read_bytes().splitlines())
    assert counts["rows"] == sum(len(e["data"]) for e in envelopes if "data" in e)
    assert counts["quotes"] == sum(1 for _ in simulate_quote_rows(SMALL))
    assert all(c == counts for _, c in written.values())


# --------------------------------------------------------------------------- validity


def test_every_price_is_valid_and_on_its_books_ladder(small_rows: list[dict[str, Any]]) -> None:
    priced = 0
    for row in small_rows:
        fields = ("over_price", "under_price") if row["kind"] == "prop" else GAME_PRICES
        for f in fields:
            price = row[f]
            if price is None:
                continue
            priced += 1
            assert type(price) is int and is_valid_price(price), (f, row)
            assert round_to_ladder(price, LADDERS[row["bookmaker"]]) == price, (f, row)
        if row["kind"] == "game":
            assert row["away_spread"] == -row["home_spread"]
            assert float(row["home_spread"]) * 2 == int(float(row["home_spread"]) * 2)  # half points
    assert priced > 10_000


def test_envelopes_follow_the_vendor_shape() -> None:
    cfg = SimConfig(events=3, books=3, hours=4, seed=2, heartbeat_s=5)
    envelopes = list(simulate_envelopes(cfg))
    assert [e["type"] for e in envelopes[:3]] == ["connected", "hot_feed_status", "initial_state"]
    assert envelopes[0]["timestamp"] == cfg.start_ms // 1000  # unix seconds, as the vendor's
    assert {e["type"] for e in envelopes[3:]} == {"odds_update", "heartbeat"}
    stamps = [e["timestamp"] for e in envelopes[2:]]
    assert stamps == sorted(stamps)
    assert max(b - a for a, b in pairwise(stamps)) <= 5_000  # heartbeat when idle
    assert stamps[-1] > cfg.end_ms - 5_000
    last_update = 0
    for env in envelopes[3:]:
        if env["type"] == "odds_update":
            assert env["count"] == len(env["data"]) and env["sport_key"] == cfg.sport_key
            assert all(r["last_update"] <= env["timestamp"] for r in env["data"])
            first = min(r["last_update"] for r in env["data"])
            assert first >= last_update  # rows are in time order across envelopes
            last_update = max(r["last_update"] for r in env["data"])


def test_quote_rows_have_the_spec_columns_and_parse() -> None:
    rows = list(simulate_quote_rows(SimConfig(events=2, books=3, hours=3, props=True, seed=4)))
    assert rows and all(tuple(r) == QUOTE_COLUMNS for r in rows)
    for r in rows[:2000]:
        info = parse_side(r["side"])
        assert info.kind == r["kind"] and info.market_key == r["market_key"]
        assert r["price"] is None or is_valid_price(r["price"])


# --------------------------------------------------------------------------- replay


@pytest.mark.parametrize("name", ["rec.ndjson", "rec.ndjson.gz", "rec.sse", "rec.csv", "rec.csv.gz", "rec.parquet",
                                  "quotes.ndjson"])
def test_recording_replays_with_no_skips_and_the_same_alerts(
    name: str, written: dict[str, tuple[Path, dict[str, int]]], frames_alerts: list[tuple[Any, ...]]
) -> None:
    alerts, stats = alert_keys(written[name][0])
    assert stats.skips.total == 0, stats.skips.first
    assert stats.quotes == written[name][1]["quotes"]
    assert len(alerts) > 100
    assert alerts == frames_alerts


def test_alerts_cover_pre_game_and_in_play_and_both_directions(written: dict[str, tuple[Path, dict[str, int]]]) -> None:
    drops = list(replay([written["rec.ndjson"][0]], DropEngine()))
    kinds = {d.kind for d in drops}
    assert kinds == {"game", "prop"}
    assert {d.direction for d in drops} == {"toward_favorite", "toward_dog"}
    assert any(d.last_update < ms(d.commence_time or "") for d in drops)
    assert any(d.last_update >= ms(d.commence_time or "") for d in drops)


# --------------------------------------------------------------------------- market features

JUMPY = SimConfig(events=8, books=6, hours=16, seed=5, jump_rate=0.4)


def by_book(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["kind"] == "game":
            out[(r["event_id"], r["bookmaker"])].append(r)
    return out


def sharp_suspensions(rows: list[dict[str, Any]]) -> Iterator[tuple[str, int]]:
    """Pre-game suspensions of the sharp book away from kick-off: news jumps.

    Only those with no other sharp row in the 20 minutes before, so that soft books are not
    still reacting to an earlier move.
    """
    previous: dict[str, int] = {}
    for r in rows:
        if r["kind"] != "game" or r["bookmaker"] != "pinnacle":
            continue
        pre_game = r["last_update"] < ms(r["commence_time"]) - 15 * 60_000
        isolated = r["last_update"] - previous.get(r["event_id"], -(10**15)) > 20 * 60_000
        if r["home_ml"] is None and pre_game and isolated:
            yield r["event_id"], r["last_update"]
        previous[r["event_id"]] = r["last_update"]


def test_sharp_book_moves_first_and_soft_books_follow_with_lags() -> None:
    rows = rows_of(JUMPY)
    books = by_book(rows)
    jumps = list(sharp_suspensions(rows))
    assert len(jumps) >= 10
    lags: dict[str, list[float]] = defaultdict(list)
    for event, t0 in jumps:
        for profile in JUMPY.bookmakers[1:]:
            seq = books[(event, profile.key)]
            before = [r for r in seq if t0 - 2 * 60_000 <= r["last_update"] < t0]
            # no soft book suspends in the two minutes before the sharp book does
            assert not any(r["home_ml"] is None for r in before), (event, profile.key)
            after = [r for r in seq if r["last_update"] >= t0]
            if after:
                lags[profile.key].append((after[0]["last_update"] - t0) / 1000)
    medians = {book: statistics.median(v) for book, v in lags.items()}
    assert all(m >= 15 for m in medians.values()), medians
    assert medians["draftkings"] < medians["betmgm"] and medians["draftkings"] < medians["bovada"], medians


def test_soft_moneyline_overround_is_four_to_five_percent(small_rows: list[dict[str, Any]]) -> None:
    over: dict[str, list[float]] = defaultdict(list)
    for r in small_rows:
        if r["kind"] == "game" and r["home_ml"] is not None and r["last_update"] < ms(r["commence_time"]):
            over[r["bookmaker"]].append(american_to_prob(r["home_ml"]) + american_to_prob(r["away_ml"]) - 1)
    for book, values in over.items():
        if book == "pinnacle":
            assert 0.02 <= statistics.median(values) <= 0.03
            continue
        assert 0.035 <= statistics.median(values) <= 0.055, book
        assert sum(0.03 <= v <= 0.06 for v in values) / len(values) >= 0.95, book


def test_spread_and_total_lines_move_as_well_as_prices(small_rows: list[dict[str, Any]]) -> None:
    line_moves = {"home_spread": 0, "total": 0}
    price_moves = 0
    for seq in by_book(small_rows).values():
        for a, b in pairwise(seq):
            for f in line_moves:
                line_moves[f] += a[f] != b[f]
            if a["total"] == b["total"] and a["over_price"] and b["over_price"] and a["over_price"] != b["over_price"]:
                price_moves += 1
    assert line_moves["home_spread"] > 20 and line_moves["total"] > 20 and price_moves > 50


def test_suspensions_around_jumps_kick_off_and_scores() -> None:
    rows = rows_of(JUMPY)
    commence = {r["event_id"]: ms(r["commence_time"]) for r in rows}
    suspended = [r for r in rows if r["kind"] == "game" and r["over_price"] is None]
    near_kickoff = [r for r in suspended if abs(r["last_update"] - commence[r["event_id"]]) <= 2 * 60_000]
    pre_game = [r for r in suspended if r["last_update"] < commence[r["event_id"]] - 15 * 60_000]
    in_play = [r for r in suspended if commence[r["event_id"]] + 10 * 60_000 < r["last_update"]]
    assert pre_game and near_kickoff and in_play
    started = {e for e, t in commence.items() if t < JUMPY.end_ms - 3_600_000}
    for event in started:  # every book suspends at kick-off
        books = {r["bookmaker"] for r in near_kickoff if r["event_id"] == event}
        assert books == {b.key for b in JUMPY.bookmakers}
    # a suspended key re-opens: the book's next row after a suspension has prices again
    seqs = by_book(rows)
    reopened = sum(
        1 for seq in seqs.values() for a, b in pairwise(seq)
        if a["over_price"] is None and b["over_price"] is not None
    )
    assert reopened >= len(pre_game) // 2


def test_in_play_thins_the_feed() -> None:
    cfg = SimConfig(events=4, books=10, hours=10, props=True, seed=8)
    rows = rows_of(cfg)
    inplay_books = {b.key for b in cfg.bookmakers if b.inplay}
    assert inplay_books != {b.key for b in cfg.bookmakers}  # some books do not trade in play
    gaps: dict[str, list[float]] = defaultdict(list)
    last: dict[tuple[str, str], int] = {}
    for r in rows:
        kickoff = ms(r["commence_time"])
        if r["last_update"] <= kickoff + 60_000:
            continue
        assert r["kind"] == "game", "props are pulled in play"
        assert r["bookmaker"] in inplay_books, r["bookmaker"]
        key = (r["event_id"], r["bookmaker"])
        if key in last:
            gaps[r["bookmaker"]].append((r["last_update"] - last[key]) / 1000)
        last[key] = r["last_update"]
    assert set(gaps) == inplay_books
    for book, values in gaps.items():
        floor = cfg.inplay_interval_s / (6 if book == "pinnacle" else 2)
        assert statistics.median(values) >= floor, (book, statistics.median(values))


def test_props_only_when_asked(small_rows: list[dict[str, Any]]) -> None:
    props = [r for r in small_rows if r["kind"] == "prop"]
    assert props
    assert {r["market_key"] for r in props} <= {m.key for role in SPORTS[SMALL.sport_key].roles for m in role}
    assert any(not r["player"].isascii() or "'" in r["player"] for r in props)  # names that test parsing
    without = rows_of(SimConfig(events=4, books=6, hours=8, props=False, seed=11))
    assert without and all(r["kind"] == "game" for r in without)


@pytest.mark.parametrize("sport", sorted(SPORTS))
def test_every_sport_simulates_and_replays(sport: str, tmp_path: Path) -> None:
    out = tmp_path / f"{sport}.ndjson"
    counts = write_simulation(SimConfig(events=2, books=4, hours=6, props=True, seed=1, sport_key=sport), out)
    alerts, stats = alert_keys(out)
    assert counts["quotes"] > 100 and stats.skips.total == 0 and alerts
    if SPORTS[sport].fixed_spread is not None:
        lines = {abs(r["home_spread"]) for r in rows_of(SimConfig(events=2, books=2, hours=3, seed=1, sport_key=sport))}
        assert lines == {SPORTS[sport].fixed_spread}


# --------------------------------------------------------------------------- helpers


def test_round_to_ladder() -> None:
    assert round_to_ladder(-103.4, NICKEL_LADDER) == -105
    assert round_to_ladder(-102.4, NICKEL_LADDER) == 100  # even money is written +100
    assert round_to_ladder(-112.0, DIME_LADDER) == -110
    assert round_to_ladder(-107.4, CENT_LADDER) == -107
    assert round_to_ladder(612.0, NICKEL_LADDER) == 600
    assert round_to_ladder(-99_999_999.0, CENT_LADDER) == -100_000
    for price in (101.0, -100.4, 150.5, -199.6, 480.0, 1234.0, -7777.0):
        for ladder in (CENT_LADDER, NICKEL_LADDER, DIME_LADDER):
            assert is_valid_price(round_to_ladder(price, ladder))


@pytest.mark.parametrize("p", [0.02, 0.3, 0.5, 0.77, 0.98])
def test_two_way_probs_sum_to_the_overround(p: float) -> None:
    q1, q2 = two_way_probs(p, 0.045)
    assert q1 + q2 == pytest.approx(1.045)
    assert 0 < q2 < q1 < 1 if p > 0.5 else 0 < q1 <= q2 < 1
    assert two_way_probs(p, 0.0) == pytest.approx((p, 1 - p))
    assert cents(-110) == -10  # the library's cents scale, used for every move size


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("events", 0), ("events", True), ("events", 1.5), ("books", 0), ("books", len(BOOKMAKERS) + 1),
        ("hours", 0), ("hours", float("nan")), ("hours", "24"), ("props", 1), ("seed", 1.0), ("seed", None),
        ("start_ms", -1), ("sport_key", "curling"), ("heartbeat_s", 0), ("heartbeat_s", 31),
        ("push_interval_ms", -1), ("inplay_interval_s", 0.5), ("activity", -1.0), ("jump_rate", float("inf")),
    ],
)
def test_config_errors_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        SimConfig(**{field: value})


@pytest.mark.parametrize(
    ("name", "fmt", "field"),
    [
        ("x.txt", None, "out"), ("x.parquet.gz", None, "out"), ("x", None, "out"), ("x.csv", "frames", "format"),
        ("x.ndjson", "sse", "format"), ("x.ndjson", "bogus", "format"),
    ],
)
def test_bad_output_names_are_config_errors(name: str, fmt: str | None, field: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        write_simulation(SMALL, tmp_path / name, fmt)
    assert not (tmp_path / name).exists()


def test_unwritable_output_is_a_config_error(tmp_path: Path) -> None:
    for name in ("missing/x.ndjson", "missing/x.parquet"):
        with pytest.raises(ConfigError, match=r"^out: cannot write"):
            write_simulation(SimConfig(events=1, books=1, hours=1), tmp_path / name)


def test_format_by_extension() -> None:
    assert sim_format(Path("a.ndjson")) == "frames"
    assert sim_format(Path("a.JSONL.gz")) == "frames"
    assert sim_format(Path("a.sse")) == "sse"
    assert sim_format(Path("a.csv.gz")) == "quotes"
    assert sim_format(Path("a.parquet")) == "quotes"
    assert sim_format(Path("a.ndjson"), "quotes") == "quotes"


def test_gzip_output_decompresses_to_the_plain_output(written: dict[str, tuple[Path, dict[str, int]]]) -> None:
    assert gzip.decompress(written["rec.ndjson.gz"][0].read_bytes()) == written["rec.ndjson"][0].read_bytes()
    assert gzip.decompress(written["rec.csv.gz"][0].read_bytes()) == written["rec.csv"][0].read_bytes()
