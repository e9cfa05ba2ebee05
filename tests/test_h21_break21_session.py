"""break21 (session 14): hostile inputs against the session's fast paths, held to their references.

- the fused frames path (c4dec88: each row identity's keys remembered) == the general decoder on
  seeded hostile recordings: odd and unknown envelopes, unknown fields, nulls, ``_diff`` rows, a
  repeated JSON key, deep and truncated JSON, empty/None/NUL/long ids, lines and times of every
  type and range, interleaved sports, resumed ``initial_state``; with the identity memory of
  any size (alerts, counters, quotes, envelopes, every skip with its position, the snapshot);
- the batch path (505d9c1 line table, 7484f23/d0dd2bb one-chunk Parquet reader, c01603f) through
  ``replay --engine batch --output``: Parquet inputs of many row groups, two files,
  Categorical/Enum text, Float32/Int lines with -0.0, NaN and inf, extra columns of other types
  or named like the engine's own: the stream engine's ndjson and csv bytes and parquet values,
  its counters and skip counts in the summary;
- the stream engine's loop (fc2e206, 46a9c50): an item that is not a Quote stops ``observe_many`` where it
  is, naming its position, after the quotes before it (a list or an iterator, any hot set), and
  a re-prime does not bring the hot set's first spill forward (F1, fixed in 46a9c50);
- the batch replay's list of skipped rows keeps the stream engine's per-reason cap (F2, fixed in
  c01b5ae); lines past 2**53 are one key on both engines, spelt as Quote spells them (F3, fixed in
  00089ec);
- a Parquet row with a bad time and a bad line or side is skipped for the same reason by both engines
  (F4, fixed in c8365f1);
- with several Parquet files the two engines list skipped rows in one order (F5: the rule of
  core/merge.py; the batch replay follows it since session 15).
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

import dropengine.core.keystate as ks
from dropengine import DropEngine, Quote
from dropengine.cli.group import main
from dropengine.core.alerts import encode_alerts
from dropengine.core.errors import ConfigError
from dropengine.core.skips import SkipLog
from dropengine.formats import fused
from dropengine.io.replay import ReplayStats, replay

from .conftest import require_fast
from .parquet_util import QUOTE_SCHEMA
from .test_h14_state_store import hot_keys

ALL = 10**6

# -- the fused frames path ------------------------------------------------------------------------

_EIDS = ("e1", "e2", "", None, "e1 ", "é", "e\u0000", "x" * 300)
_BOOKS = ("pin", "dk", "", None)
_SPORTS = ("nba", "nfl", None, "", 3)
# usual lines first; then equal values of other types/signs, int64's bounds, past them, and not numbers
_LINES: tuple[Any, ...] = (
    -3.5,
    3,
    3.0,
    0,
    -0.0,
    None,
    220.5,
    2**53,
    2**53 + 1,
    float(2**53),
    2**63 - 1,
    2**63,
    -(2**63),
    2**64,
    1e308,
    1e-7,
    "3",
    True,
    2**1100,
)
_PRICES: tuple[Any, ...] = (
    -110,
    -150,
    120,
    200,
    -300,
    None,
    100,
    -100.0,
    99,
    0,
    1e9,
    2**63,
    "x",
    False,
    -110.5,
    150.25,
)
_TIMES: tuple[Any, ...] = (1000, 61_000, 121_000, 0, -1, 2**53, 10**13, 10**18, 2**63, 1000.0, "1000", None)


def _pick(r: random.Random, values: tuple[Any, ...], usual: int, odd: float) -> Any:
    return r.choice(values) if r.random() < odd else r.choice(values[:usual])


def _row(r: random.Random) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if r.random() < 0.97:
        d["event_id"] = _pick(r, _EIDS, 2, 0.08)
    if r.random() < 0.97:
        d["bookmaker"] = _pick(r, _BOOKS, 2, 0.08)
    if r.random() < 0.97:
        d["last_update"] = _pick(r, _TIMES, 3, 0.08) if r.random() < 0.9 else 1000 + r.randrange(4) * 30_000
    if r.random() < 0.2:
        d["sport_key"] = _pick(r, _SPORTS, 2, 0.3)
    k = r.random()
    if k < 0.45:
        if r.random() < 0.8:
            d["kind"] = "game"
        for f in (
            "home_ml",
            "away_ml",
            "draw_ml",
            "home_spread_price",
            "away_spread_price",
            "over_price",
            "under_price",
        ):
            if r.random() < 0.6:
                d[f] = _pick(r, _PRICES, 6, 0.05)
        for f in ("home_spread", "away_spread", "total"):
            if r.random() < 0.7:
                d[f] = _pick(r, _LINES, 6, 0.12)
    elif k < 0.9:
        if r.random() < 0.8:
            d["kind"] = "prop"
        if r.random() < 0.95:
            d["market_key"] = _pick(r, ("pts", "reb", "a:b", "", None, "h2h"), 2, 0.1)
        if r.random() < 0.95:
            d["player"] = _pick(r, ("Ann", "Bo", "", None, "B@b", "C:d"), 2, 0.1)
        if r.random() < 0.3:
            d["market"] = "Points"
        for f in ("over_price", "under_price"):
            if r.random() < 0.8:
                d[f] = _pick(r, _PRICES, 6, 0.05)
        if r.random() < 0.9:
            d["line"] = _pick(r, _LINES, 6, 0.12)
    else:
        d.update(
            kind=r.choice(("weird", None, "", "game", "prop", 3)),
            home_ml=_pick(r, _PRICES, 5, 0),
            line=_pick(r, _LINES, 5, 0),
            player=_pick(r, ("Ann", "", None), 3, 0),
        )
    if r.random() < 0.05:
        d["_diff"] = r.choice((True, False, None, 1))
    if r.random() < 0.03:
        d["unknown"] = r.choice((1, "x", {"a": [1]}))
    if r.random() < 0.03:
        d[r.choice(("home_team", "commence_time"))] = r.choice(("A", None, "", 5, "2026-01-01T00:00:00Z"))
    return d


def _recording(seed: int) -> bytes:
    """A seeded hostile vendor recording (a few identities, so lines and prices come back)."""
    r = random.Random(seed)
    lines = []
    for _ in range(r.randint(1, 30)):
        env: dict[str, Any] = {"type": r.choice(("odds_update",) * 8 + ("initial_state",) * 2 + ("heartbeat", "x"))}
        if r.random() < 0.9:
            env["sport_key"] = _pick(r, _SPORTS, 2, 0.1)
        env["data"] = [_row(r) for _ in range(r.randint(0, 5))]
        if r.random() < 0.02:
            env["data"] = r.choice((None, {}, "x", [1, "a"]))
        if r.random() < 0.02:
            env["op"] = "mcm"
        if r.random() < 0.02:
            env["extra"] = 1
        text = json.dumps(env)
        x = r.random()
        if x < 0.02:
            text = text[: r.randint(0, len(text))]  # truncated
        elif x < 0.04:
            text = text.replace('"event_id": ', '"event_id": "dup", "event_id": ', 1)  # a repeated key
        elif x < 0.05:
            text = "[" * 3000 + "]" * 3000  # deep
        elif x < 0.06:
            text = text.replace("}", ', "deep": ' + "[" * 200 + "]" * 200 + "}", 1)  # deep in a value
        elif x < 0.07:
            text = ""
        lines.append(text)
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def _replayed(paths: list[Path], fused_path: bool) -> tuple[Any, ...]:
    stats = ReplayStats(skips=SkipLog(keep=ALL, per_reason=ALL))
    engine = DropEngine(threshold=5)
    alerts = encode_alerts(list(replay(paths, engine, "frames", stats, fused=fused_path)))
    return (
        alerts,
        engine.counters,
        stats.quotes,
        stats.envelopes,
        stats.skips.counts,
        [str(s) for s in stats.skips.first],
        engine.snapshot(),
    )


@pytest.mark.parametrize("memory", [None, 1, 3])
def test_fused_equals_general_on_hostile_recordings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory: int | None
) -> None:
    """Seeded hostile recordings, one by one and three merged: the fused path's alerts, counters,
    quotes, envelopes, skips (reason and position) and engine snapshot are the general decoder's,
    with the identity memory forgotten at every identity, every third, or never."""
    if memory is not None:
        monkeypatch.setattr(fused, "_MAX_IDENTITIES", memory)
    paths = []
    alerts = 0
    for seed in range(40):
        path = tmp_path / f"r{seed}.ndjson"
        path.write_bytes(_recording(seed))
        paths.append(path)
        got = _replayed([path], True)
        assert got == _replayed([path], False), seed
        alerts += got[0].count(b"odds_drop")
    assert alerts > 20  # (lines and prices do come back)
    for i in range(0, len(paths) - 2, 3):
        assert _replayed(paths[i : i + 3], True) == _replayed(paths[i : i + 3], False), i


def test_fused_lines_coming_back_as_other_types_keep_their_own_sides(tmp_path: Path) -> None:
    """One identity in two sports whose lines return equal in other types and signs, past int64
    and back, between ``_diff`` rows: the fused path's sides and lines are the general decoder's."""
    prices = (-110, -150, 120, -150, 200, -110)
    data = []
    for i, line in enumerate((3, 3.0, -0.0, 0, 2**63, 0.0, 2**53, float(2**53), 2**53 + 1, 2**53 + 1, 3.0, 3)):
        p = prices[i % len(prices)]
        rows: list[dict[str, Any]] = [
            {
                "kind": "game",
                "event_id": "e1",
                "bookmaker": "pin",
                "last_update": 1000 + i,
                "home_spread": line,
                "home_spread_price": p,
                "total": line,
                "over_price": p,
                "sport_key": ("nba", "nfl")[i % 2],
            },
            {
                "kind": "prop",
                "event_id": "e1",
                "bookmaker": "pin",
                "market_key": "pts",
                "player": "Ann",
                "line": line,
                "over_price": p,
                "last_update": 1000 + i,
            },
        ]
        if i % 4 == 3:
            rows.append(
                {
                    "event_id": "e1",
                    "bookmaker": "pin",
                    "kind": "game",
                    "_diff": True,
                    "home_spread_price": -p,
                    "last_update": 1000 + i,
                }
            )
        data.append(msgspec.json.encode({"type": "odds_update", "sport_key": "nba", "data": rows}))
    path = tmp_path / "l.ndjson"
    path.write_bytes(b"\n".join(data) + b"\n")
    got = _replayed([path], True)
    assert got == _replayed([path], False)
    assert got[0].count(b"odds_drop") >= 15  # (the side of 2**53 + 1: F3, below)


# -- the batch path through the CLI ---------------------------------------------------------------

_SCHEMA = QUOTE_SCHEMA
_BATCH_LINES = (-3.0, -3.5, -2.5, -7.0, -6.5, -10.0, 3.0, 0.0, -0.0, 2.5, 44.5, 45.0, 47.0, 14.0, -14.5)


def _text(line: float) -> str:
    return str(int(line)) if float(line).is_integer() else repr(line)


def _quote_table(seed: int) -> pl.DataFrame:
    """Spreads, totals, props and h2h of a few events and books, lines on and off key numbers,
    -0.0, NaN, inf and null lines, null sports, odd prices; text or its dictionary."""
    r = random.Random(seed)
    rows = []
    mk: str | None
    t = 0
    for _ in range(r.randint(1, 250)):
        t += r.choice((0, 0, 1000, 30_000, 60_000, 120_000))
        line: Any = r.choice(_BATCH_LINES) if r.random() > 0.06 else r.choice((math.nan, None, math.inf))
        shown = line if isinstance(line, float) and math.isfinite(line) else 0.0
        m = r.random()
        if m < 0.2:
            side, mk, line = r.choice(("h2h_home", "h2h_away")), "h2h", None
        elif m < 0.55:
            side, mk = f"{r.choice(('spread_home', 'spread_away'))}@{_text(shown)}", r.choice(("spreads", None))
        elif m < 0.85:
            side, mk = f"{r.choice(('total_over', 'total_under'))}@{_text(shown)}", r.choice(("totals", None))
        else:
            side, mk = (
                f"player_points:{r.choice(('Ann', 'Bo'))}:{r.choice(('over', 'under'))}@{_text(shown)}",
                "player_points",
            )
        rows.append(
            {
                "sport_key": r.choice(("americanfootball_nfl", "basketball_nba", "americanfootball_ncaaf"))
                if r.random() > 0.02
                else None,
                "event_id": f"E{r.randint(1, 2)}",
                "bookmaker": r.choice(("pin", "dk", "fd", "mgm")),
                "side": side,
                "price": r.choice((-110, -120, -105, 100, 110, -150, 130, None, -110.5, 0, 50)),
                "last_update": t + r.randint(0, 3) if r.random() > 0.01 else None,
                "market_key": mk,
                "line": line,
            }
        )
    frame = pl.DataFrame(rows, schema=_SCHEMA, strict=False)
    v = seed % 6
    if v == 1:
        frame = frame.with_columns(pl.col("sport_key", "bookmaker", "market_key", "event_id").cast(pl.Categorical))
    elif v == 2:
        frame = frame.with_columns(pl.col("line").cast(pl.Float32))
    elif v == 3:
        frame = frame.with_columns(
            pl.col("sport_key").cast(pl.Enum(["americanfootball_nfl", "basketball_nba", "americanfootball_ncaaf"])),
            pl.col("price").cast(pl.Int64, strict=False),
        )
    elif v == 4:
        frame = frame.with_columns(
            pl.col("line").round(0).cast(pl.Int64, strict=False),
            pl.concat_list(pl.col("price"), pl.col("price")).alias("extra_list"),
        )
    elif v == 5:  # extra columns named like the engine's own
        frame = frame.with_columns(pl.lit(1.5).alias("_d"), pl.lit("x").alias("_ls"), pl.lit(2).alias("_i"))
    return frame


def _cli(args: list[str]) -> str:
    got = CliRunner().invoke(main, args, catch_exceptions=False)
    assert got.exit_code in (0, 1), got.output
    return got.output


@pytest.mark.parametrize("seed", range(12))
def test_batch_output_files_equal_the_stream_engine_on_odd_parquet(tmp_path: Path, seed: int) -> None:
    """``replay --engine batch -o`` (ndjson, csv, parquet) of Parquet inputs of many row groups (one
    file or two, so the one-chunk reader takes both of its ways) == ``--engine stream``: the ndjson
    bytes, the same rows in csv and parquet, the same summary."""
    require_fast()
    frame = _quote_table(seed)
    files = []
    if seed % 2 and frame.height > 4:
        half = frame.height // 2
        for name, part in (("a", frame[:half]), ("b", frame[half:])):
            part.write_parquet(tmp_path / f"{name}.parquet", row_group_size=7)
            files.append(str(tmp_path / f"{name}.parquet"))
    else:
        frame.write_parquet(tmp_path / "a.parquet", row_group_size=7)
        files.append(str(tmp_path / "a.parquet"))
    opts = [
        "--types",
        "odds_drop,line_move,steam",
        "--steam-books",
        "2",
        "--threshold",
        "5",
        *(
            ("--reference", "anchor", "--key-numbers", "americanfootball_*:spreads=3,7;basketball_*:totals=45,47")
            if seed % 3 == 0
            else ()
        ),
    ]
    out: dict[str, Path] = {}
    summary: dict[str, str] = {}
    for engine in ("stream", "batch"):
        for ext in ("ndjson", "csv", "parquet"):
            path = out[f"{engine}.{ext}"] = tmp_path / f"{engine}.{ext}"
            summary[f"{engine}.{ext}"] = _cli(["replay", "--engine", engine, *opts, "-o", str(path), *files]).replace(
                str(path), "OUT"
            )
    want = out["stream.ndjson"].read_bytes()
    assert out["batch.ndjson"].read_bytes() == want
    assert out["batch.csv"].read_bytes() == out["stream.csv"].read_bytes()
    assert_frame_equal(pl.read_parquet(out["batch.parquet"]), pl.read_parquet(out["stream.parquet"]), check_exact=True)
    assert want.count(b"\n") == pl.read_parquet(out["batch.parquet"]).height
    assert b'"line_move"' in want or frame.height < 20
    for engine in ("stream", "batch"):
        assert len({v for k, v in summary.items() if k.startswith(engine)}) == 1
    # the summary's counters and skip counts are the stream engine's (only the stream engine holds
    # keys to count); the list of skipped rows: the test below
    assert _counted(summary["stream.csv"]) == _counted(summary["batch.csv"])


def _counted(summary: str) -> list[str]:
    """A replay summary's lines up to its list of skipped rows, but the stream engine's key count."""
    lines = summary.splitlines()
    end = next((i for i, x in enumerate(lines) if x.startswith("first ")), len(lines))
    return [x for x in lines[:end] if not x.startswith("keys held")]


def _skip_list(summary: str) -> list[str]:
    lines = summary.splitlines()
    start = next((i for i, x in enumerate(lines) if x.startswith("first ")), len(lines))
    return lines[start:]


def test_batch_skip_list_keeps_the_per_reason_cap_of_the_stream_engine(tmp_path: Path) -> None:
    """Seven rows with a NaN line among good ones: both engines count 7 bad lines and list the
    same skipped rows (at most ``per_reason`` = 5 of a reason: 'first 5 skipped (2 more counted
    above)'). (F2 of break21: the batch replay listed all 7, there since 6534465; fixed by c01b5ae.)"""
    require_fast()
    rows = []
    for i in range(14):
        line = math.nan if i % 2 else -3.0 - (i % 4) / 2
        rows.append(
            {
                "sport_key": "americanfootball_nfl",
                "event_id": "E1",
                "bookmaker": "pin",
                "side": f"spread_home@{_text(-3.0 - (i % 4) / 2)}",
                "price": -110 - i,
                "last_update": 1000 * i,
                "market_key": "spreads",
                "line": line,
            }
        )
    path = tmp_path / "q.parquet"
    pl.DataFrame(rows, schema=_SCHEMA).write_parquet(path)
    got = {
        engine: _cli(["replay", "--engine", engine, "--types", "odds_drop,line_move", str(path)])
        for engine in ("stream", "batch")
    }
    assert _counted(got["stream"]) == _counted(got["batch"])
    assert re.search(r"\n  bad line +7\n", got["stream"])
    assert _skip_list(got["stream"])[0] == "first 5 skipped (2 more counted above):"
    assert _skip_list(got["batch"]) == _skip_list(got["stream"])


# -- the stream engine's loop ---------------------------------------------------------------------

T0 = 1_747_000_000_000


def _quotes(r: random.Random, n: int) -> list[Quote]:
    out = []
    for i in range(n):
        out.append(
            Quote(
                "basketball_nba",
                f"e{r.randrange(5)}",
                r.choice(("pin", "dk")),
                r.choice(("h2h_home", "h2h_away", "spread_home@-3")),
                r.choice((-110, -130, 105, 150, None, -110.5)),
                T0 + i * r.choice((1, 1000, 61_000)),
            )
        )
    return out


@pytest.mark.parametrize("hot", [None, 1, 2])
@pytest.mark.parametrize("as_iter", [False, True])
def test_an_item_that_is_not_a_quote_stops_the_batch_where_it_is(hot: int | None, as_iter: bool) -> None:
    """``observe_many`` with a bad item at ``k`` (a list or an iterator, any hot set, prices alone
    or with signals): ConfigError naming ``quotes[k]`` and ``k`` applied quotes; the engine is then
    the one that observed the first ``k`` quotes (counters, snapshot)."""
    r = random.Random(21)
    for trial in range(40):
        quotes = _quotes(r, r.randint(1, 40))
        k = r.randint(0, len(quotes))
        bad: Any = r.choice((None, "x", {"price": -110}, (1, 2), 3.5))
        items = [*quotes[:k], bad, *quotes[k:]]
        opts: dict[str, Any] = r.choice(
            (
                {},
                {"reference": "anchor"},
                {"unit": "prob", "threshold": 2},
                {"types": "odds_drop,line_move,steam", "steam_books": 2},
            )
        )
        with hot_keys(hot or ks._HOT_KEYS, 1):
            eng = DropEngine(**opts)
            ref = DropEngine(**opts)
            head = r.randint(0, k)  # some quotes before, in their own call
            eng.observe_many(quotes[:head])
            with pytest.raises(ConfigError) as err:
                eng.observe_many(iter(items[head:]) if as_iter else items[head:])
            got = ref.observe_many(quotes[:k])
        assert f"quotes[{k - head}]" in str(err.value), (trial, str(err.value))
        assert f"(the {k - head} quote(s) before it were applied)" in str(err.value)
        assert eng.counters.seen == k
        assert eng.counters == ref.counters and eng.snapshot() == ref.snapshot(), trial
        assert len(got) == ref.counters.alerts


def test_a_reprime_does_not_bring_the_first_spill_forward() -> None:
    """The hot set spills only past its limit (``_Keys.add``: ``len(hot) > cap``), also after
    re-primes in the same call: a fresh engine with a limit of 4 holds 4 hot keys, none cold.
    (F1 of break21: fc2e206 spilled here, its re-prime counted in n_primed moving full_at; fixed by
    46a9c50, which checks ``len(hot) > keys.cap`` before a spill.)"""

    def q(side: str, price: int | None, t: int) -> Quote:
        return Quote("basketball_nba", "E1", "pin", side, price, t)

    with hot_keys(4, 1):
        eng = DropEngine()
        eng.observe_many([q("h2h_home", -110, 1), q("h2h_away", -110, 1), q("h2h_draw", 300, 1)])
        eng.observe_many([q("h2h_home", None, 2), q("h2h_home", -110, 3), q("spread_home@-3", -110, 3)])
        keys = eng._state
        assert (len(keys.hot), keys.ncold) == (4, 0)
        assert eng.counters.primed == 5  # (four new keys and the re-prime: the results are right)


def test_reprimes_leave_the_results_of_any_hot_set() -> None:
    """Re-primes between new keys, a hot set of 4 or the default: the same alerts, counters and
    snapshot (the spill is storage; F1 only moves it)."""
    r = random.Random(5)
    quotes = []
    t = T0
    for i in range(300):
        t += r.choice((1, 1000))
        quotes.append(
            Quote(
                "basketball_nba",
                f"e{i % 9 if r.random() < 0.8 else i}",
                "pin",
                r.choice(("h2h_home", "h2h_away")),
                r.choice((-110, None, -130, None, 120)),
                t,
            )
        )
    runs = []
    for hot in (None, 4):
        with hot_keys(hot or ks._HOT_KEYS, 1):
            eng = DropEngine()
            alerts = [a.to_json() for a in eng.observe_many(quotes[:150])]
            alerts += [a.to_json() for a in eng.observe_many(quotes[150:])]
            runs.append((alerts, eng.counters, eng.snapshot()))
    assert runs[0] == runs[1]
    assert runs[0][1].primed > 300 // 9 and runs[0][1].suspended > 0


def test_a_vendor_line_past_2_53_is_one_key_on_both_engines(tmp_path: Path) -> None:
    """Vendor lines (and The Odds API points) 2**53 and 2**53 + 1 (one float): the stream engine
    (fused and general) and the batch engine key them alike and give the same alerts and counters,
    with the side Quote spells. (F3 of break21: the decoders spelt the exact int, there since the
    frame decoders' int lines; fixed by 00089ec in core.sides.format_line.)"""
    from dropengine.io.replay import replay_batch

    rows = [(1000, 2**53, -110), (2000, 2**53 + 1, -150)]
    lines = [
        msgspec.json.encode(
            {
                "type": "odds_update",
                "sport_key": "nba",
                "data": [
                    {
                        "kind": "game",
                        "event_id": "e1",
                        "bookmaker": "pin",
                        "last_update": t,
                        "home_spread": line,
                        "home_spread_price": p,
                    }
                ],
            }
        )
        for t, line, p in rows
    ]
    path = tmp_path / "big.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    canonical = Quote("nba", "e1", "pin", f"spread_home@{2**53 + 1}", -150, 2000).side
    assert canonical == "spread_home@9007199254740992"
    batch = replay_batch([path], "frames", ReplayStats(skips=SkipLog(keep=ALL, per_reason=ALL)))
    assert [a.side for a in batch.alert_values()] == [canonical]  # (one key: -110 -> -150)
    for fused_path in (True, False):
        engine = DropEngine()
        alerts = list(replay([path], engine, "frames", ReplayStats(), fused=fused_path))
        assert encode_alerts(alerts) == encode_alerts(batch.alert_values())
        assert engine.counters == batch.counters
    # The Odds API's points alike (its decoder spells the side from the exact int too)
    responses = []
    for second, (_, line, price) in enumerate(rows, 1):
        book = {
            "key": "pin",
            "last_update": "2025-12-01T00:00:00Z",
            "markets": [
                {
                    "key": "spreads",
                    "last_update": f"2025-12-01T00:00:0{second}Z",
                    "outcomes": [
                        {"name": "A", "price": price, "point": line},
                        {"name": "B", "price": -110, "point": -line},
                    ],
                }
            ],
        }
        event = {
            "id": "e1",
            "sport_key": "americanfootball_nfl",
            "commence_time": "2026-01-01T00:00:00Z",
            "home_team": "A",
            "away_team": "B",
            "bookmakers": [book],
        }
        responses.append(tmp_path / f"odds{second}.json")
        responses[-1].write_bytes(msgspec.json.encode([event]))
    batch = replay_batch(responses, "theoddsapi", ReplayStats())
    engine = DropEngine()
    alerts = list(replay(responses, engine, "theoddsapi", ReplayStats()))
    assert len(batch.alert_values()) == 1
    assert encode_alerts(alerts) == encode_alerts(batch.alert_values())
    assert engine.counters == batch.counters


@pytest.mark.parametrize("fault", [{"line": math.nan}, {"side": "spread_home@x"}, {"side": "zzz"}])
def test_a_parquet_row_with_a_bad_time_and_another_fault_is_skipped_for_the_same_reason(
    tmp_path: Path, fault: dict[str, Any]
) -> None:
    """A Parquet row with a negative last_update and a bad line or side: both engines count it
    under the same reason and list the same skip (reason, position, message). (F4 of break21: the
    batch engine said "bad time", there since 460e6f8; fixed by c8365f1.)"""
    require_fast()
    base = {
        "sport_key": "nba",
        "event_id": "e1",
        "bookmaker": "pin",
        "side": "spread_home@-3",
        "price": -120.0,
        "last_update": 2000,
        "market_key": "spreads",
        "line": -3.0,
    }
    rows = [
        {**base, "last_update": 1000, "price": -110.0},
        {**base, "last_update": -5, **fault},
        {**base, "last_update": 3000, "price": -130.0},
    ]
    path = tmp_path / "q.parquet"
    pl.DataFrame(rows, schema=_SCHEMA).write_parquet(path)
    got = {
        engine: _cli(["replay", "--engine", engine, "--types", "odds_drop,line_move", str(path)])
        for engine in ("stream", "batch")
    }
    assert _skip_list(got["stream"]) == ["first 1 skipped:", _skip_list(got["stream"])[1]]
    assert "row 2" in _skip_list(got["stream"])[1]
    assert _counted(got["batch"]) == _counted(got["stream"])
    assert _skip_list(got["batch"]) == _skip_list(got["stream"])


def test_two_parquet_files_list_their_skipped_rows_in_one_order(tmp_path: Path) -> None:
    """a.parquet's second row (t=2000) and b.parquet's first (t=5000) lack their sport: both engines
    list the two skips in the same order, the rule's (core/merge.py): a skipped row holds its file's
    clock, so b's first row (no usable row before it) stands before a's second (a at 1000)."""
    require_fast()
    base = {
        "sport_key": "nba",
        "event_id": "e1",
        "bookmaker": "pin",
        "side": "h2h_home",
        "price": -110.0,
        "market_key": "h2h",
        "line": None,
    }
    for name, rows in (("a", [(1000, "nba"), (2000, None), (3000, "nba")]), ("b", [(5000, None), (6000, "nba")])):
        pl.DataFrame(
            [{**base, "last_update": t, "sport_key": s, "price": -110.0 - t / 100} for t, s in rows], schema=_SCHEMA
        ).write_parquet(tmp_path / f"{name}.parquet")
    files = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    got = {engine: _cli(["replay", "--engine", engine, *files]) for engine in ("stream", "batch")}
    assert _counted(got["batch"]) == _counted(got["stream"])
    assert sorted(_skip_list(got["batch"])) == sorted(_skip_list(got["stream"]))  # (the same rows)
    assert _skip_list(got["stream"])[1:] == [
        "  b.parquet:row 1: missing field: sport_key: missing",
        "  a.parquet:row 2: missing field: sport_key: missing",
    ]  # the rule's order
    assert _skip_list(got["batch"]) == _skip_list(got["stream"])
