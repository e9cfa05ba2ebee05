"""Issue 14 breaker (breaker14a): the compiled batch path (``accel="fast"``) against the polars
path (``accel="pure"``) on raw hostile tables no Quote could hold: NaN/inf/-0.0/1e308/5e-324
prices, int64-extreme, negative, equal and stale times, null/empty/unicode keys, sides with odd
lines ('@1e400', '@nan', '@-0'), bad lines, line-only rows, String/Categorical/Enum (unused and
reversed categories) key columns, chunked frames, LazyFrames, many distinct keys (hashed key
ids), every option. Identical alerts (values, dtypes, column order), counters, skips (reason and
row), rows and alert JSON."""

from __future__ import annotations

import math
import random
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine.analysis.batch import detect_counted

from .conftest import require_fast
from .test_h14_kernel_equivalence import same_result

T0 = 1_747_000_000_000
PRICES = [-110, -120, -130, -150, 100, -100, 105, -105, 120.5, -112.5, 261.9, 251.9, None, None, math.nan, math.inf,
          -math.inf, -0.0, 0.0, 1e308, -1e308, 5e-324, 99.9999999, -100.0000001, 100000, -100000, 100001, 10**30,
          -110.0000000001, -109.9999999999, 150, -200, -300, 1000]
SIDES = ["h2h_home", "h2h_away", "spread_home@-3", "spread_home@-3.5", "spread_home@-7", "spread_away@3",
         "total_over@44.5", "total_over@45", "total_under@44.5", "total_over@-0", "total_over@0", "spread_home@-3.0",
         "player_points:A:B@C:over@24.5", "player_points:Nikola Jokić:over@6", "", None, "bad@@", "spread_home@1e400",
         "spread_home@nan", "spread_home@inf", "h2h_draw", "spread_home@+3", "total_over@44.50", "spread_home@-1e-300",
         "total_over@1e6", "total_over@-1e6", "spread_home@ -3", "h2h_HOME", "ünï@1"]
EVENTS = ["e1", "e2", "", None, "é", "e1 "]
BOOKS = ["pinnacle", "fanduel", "dk", "", None, "b\x00"]
LUS = [T0, T0 + 1, T0 + 1000, T0 - 5, 0, -1, -(2**63), 2**63 - 1, 2**62, -(2**62), None, 1, T0 + 60000]
LINES = [None, -3.0, 3.0, math.nan, math.inf, -0.0, 1e300, 44.5]

def pick(rng, good, allv, h):
    return rng.choice(allv) if rng.random() < h else rng.choice(good)

def gen(rng, n):
    h = rng.choice([0.0, 0.02, 0.05, 0.15])
    rows = []
    lu = T0
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            lu += rng.choice([0, 0, 1, 1000, 60000, -1000])
            t = lu
        else:
            t = rng.choice(LUS)
        if rng.random() > h * 3 and r < 0.6:
            pass
        elif r >= 0.6 and rng.random() > h * 3:
            t = lu
        rows.append(dict(
            sport_key=pick(rng, ["americanfootball_nfl"], ["americanfootball_nfl", "basketball_nba", "", None], h),
            event_id=pick(rng, EVENTS[:2], EVENTS, h), bookmaker=pick(rng, BOOKS[:3], BOOKS, h),
            side=pick(rng, SIDES[:8], SIDES, h), price=pick(rng, PRICES[:12], PRICES, h), last_update=t,
            line=pick(rng, LINES[:1], LINES, h), lo=rng.random() < 0.1,
        ))
    return rows

def frame(rows, rng):
    floaty = any(isinstance(r["price"], float) for r in rows)
    df = pl.DataFrame({
        "sport_key": [r["sport_key"] for r in rows], "event_id": [r["event_id"] for r in rows],
        "bookmaker": [r["bookmaker"] for r in rows], "side": [r["side"] for r in rows],
        "price": pl.Series([r["price"] for r in rows], dtype=pl.Float64 if floaty else pl.Int64, strict=False),
        "last_update": pl.Series([r["last_update"] for r in rows], dtype=pl.Int64),
        "line": pl.Series([r["line"] for r in rows], dtype=pl.Float64),
    })
    if rng.random() < 0.5:
        df = df.with_columns(pl.Series("line_only", [r["lo"] for r in rows], dtype=pl.Boolean))
    if rng.random() < 0.3:
        markets = ["spreads", "totals", "h2h", None, "player_points"]
        df = df.with_columns(pl.Series("market_key", [rng.choice(markets) for _ in rows], dtype=pl.String),
                             pl.Series("kind", [rng.choice(["game", "prop", None]) for _ in rows], dtype=pl.String),
                             pl.Series("player", [rng.choice(["A", None, ""]) for _ in rows], dtype=pl.String))
    if rng.random() < 0.2:
        arr = [max(0, (r["last_update"] or 0) % (2**50)) + rng.choice([0, 5, -3, 1000]) for r in rows]
        df = df.with_columns(pl.Series("arr", arr, dtype=pl.Int64).clip(0))
    if rng.random() < 0.1 and df.height:
        # many distinct keys: beyond the direct slots (hashed key ids)
        m = df.height
        df = df.with_columns(pl.Series("event_id", [f"ev{rng.randrange(60)}" for _ in range(m)]),
                             pl.Series("bookmaker", [f"bk{rng.randrange(60)}" for _ in range(m)]))
        df = pl.concat([df, df.with_columns(pl.col("event_id") + "x", pl.col("bookmaker") + "y")])
        df = pl.concat([df] * 3).with_columns(pl.int_range(pl.len()).alias("_n")).with_columns(
            (pl.col("last_update") + pl.col("_n") * 7).alias("last_update")).drop("_n")
    mode = rng.choice(["str", "cat", "enum", "mixed"])
    text = ("sport_key", "event_id", "bookmaker", "side", "market_key", "kind", "player")
    for c in [c for c in text if c in df.columns]:
        m = mode if mode != "mixed" else rng.choice(["str", "cat", "enum"])
        if m == "cat":
            df = df.with_columns(pl.col(c).cast(pl.Categorical))
        elif m == "enum":
            cats = sorted({v for v in df.get_column(c).to_list() if v is not None}, reverse=rng.random() < 0.5)
            cats = [*cats, "zz_unused", "aa_unused"]
            df = df.with_columns(pl.col(c).cast(pl.Enum(cats)))
    if rng.random() < 0.3 and df.height > 2:
        k = rng.randrange(1, df.height)
        df = pl.concat([df[:k], df[k:]], rechunk=False)
    return df

def options(rng):
    o = {}
    o["reference"] = rng.choice(["last", "anchor"])
    o["reprime_after_suspension"] = rng.random() < 0.5
    if rng.random() < 0.3:
        o["unit"] = "prob"
        o["threshold"] = rng.choice([0.5, 1, 2.5, 1e-9])
    else:
        o["threshold"] = rng.choice([10, 5, 0.5, 20, 9.999999999, 1e-9, 25.5])
    t = rng.choice(["odds_drop", "line_move", "odds_drop,line_move", "steam", "odds_drop,steam", "line_move,steam",
                    "odds_drop,line_move,steam"])
    o["types"] = t
    if "steam" in t:
        o["steam_books"] = rng.choice([2, 3])
        o["steam_window_ms"] = rng.choice([1, 1000, 60000])
        if rng.random() < 0.3:
            o["steam_groups"] = [["pinnacle", "fanduel"]]
    if rng.random() < 0.3:
        o["cooldown_ms"] = rng.choice([1, 1000, 60000])
    if rng.random() < 0.2:
        o["direction"] = rng.choice(["toward_favorite", "toward_dog"])
    if rng.random() < 0.2:
        o["line_threshold"] = rng.choice([0.25, 1, 3])
    if rng.random() < 0.3:
        f = rng.choice(["event_id", "bookmakers", "markets", "kinds", "sports"])
        o[f] = {"event_id": "e1", "bookmakers": "pinnacle,dk", "markets": rng.choice(["spreads", "h2h", "totals"]),
                "kinds": rng.choice(["game", "prop"]), "sports": "americanfootball_nfl"}[f]
    if "steam" in o["types"] and rng.random() < 0.3:
        o["steam_threshold"] = rng.choice([15, 30, 10.5]) if o.get("unit") != "prob" else None
        o["steam_line_threshold"] = rng.choice([1, 0.5, 2.5])
        o = {k: v for k, v in o.items() if v is not None}
        if o.get("steam_threshold") is not None and o["steam_threshold"] < o.get("threshold", 10):
            o["steam_threshold"] = o.get("threshold", 10)
    if rng.random() < 0.2:
        o["key_numbers"] = rng.choice(["americanfootball_nfl:spreads=3,7", "americanfootball_nfl:totals=44,45",
                                       "basketball_nba:spreads=0.5"])
    return o

def _both(df: pl.DataFrame | pl.LazyFrame, ts: str | None, opts: dict[str, Any]) -> None:
    out: list[Any] = []
    for accel in ("pure", "fast"):
        try:
            out.append(detect_counted(df, accel=accel, timestamp_column=ts, **opts))
        except Exception as e:  # a ConfigError (e.g. an option pair) must be the same on both
            out.append(e)
    a, b = out
    if isinstance(a, Exception) or isinstance(b, Exception):
        assert (type(a), str(a)) == (type(b), str(b))
        return
    same_result(a, b)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32))
def test_hostile_tables_pure_equals_fast(seed: int) -> None:
    require_fast()
    rng = random.Random(seed)
    rows = gen(rng, rng.randint(0, 40))
    df: pl.DataFrame | pl.LazyFrame = frame(rows, rng)
    opts = options(rng)
    ts = "arr" if "arr" in df.columns else None
    if rng.random() < 0.2:
        df = df.lazy()
    _both(df, ts, opts)


def _keyed(n_events: int, n_books: int, n_rows: int, dtype: Any) -> pl.DataFrame:
    """``n_rows`` quotes of random (event, book, side) over ``n_events`` x ``n_books`` x 3 sides
    (the code product is what picks the kernel's key-id branch), moving prices; keys as ``dtype``
    (Enum categories reversed, with unused ones), a null key row and a chunk split."""
    rng = random.Random(n_events * 1000 + n_books)
    data: dict[str, list[Any]] = {c: [] for c in ("sport_key", "event_id", "bookmaker", "side", "price",
                                                  "last_update")}
    t = T0
    for k in range(n_rows):
        if k < max(n_events, n_books):  # every event and book once
            e, b = k % n_events, k % n_books
        else:  # then few of the books: keys repeat
            e, b = rng.randrange(n_events), rng.randrange(8)
        t += rng.choice([0, 1, 7])
        data["sport_key"].append("americanfootball_nfl")
        data["event_id"].append(None if k == 3 else f"ev{e}")
        data["bookmaker"].append(f"bk{b}")
        data["side"].append(rng.choice(["spread_home@-3", "spread_home@-3.5", "total_over@44.5"]))
        data["price"].append(rng.choice([-110, -120, -130, 100, -100, None, -125.5]))
        data["last_update"].append(t - rng.choice([0, 0, 0, 5]))
    df = pl.DataFrame(data, schema_overrides={"price": pl.Float64})
    for c in ("event_id", "bookmaker", "side"):
        if dtype == "enum":
            cats = sorted({v for v in df.get_column(c).to_list() if v is not None}, reverse=True)
            df = df.with_columns(pl.col(c).cast(pl.Enum(["unused_z", *cats, "unused_a"])))
        elif dtype == "categorical":
            df = df.with_columns(pl.col(c).cast(pl.Categorical))
    half = df.height // 2
    return pl.concat([df[:half], df[half:]], rechunk=False)


def test_many_keys_hashed_ids_pure_equals_fast() -> None:
    """Over 65,536 code combinations (200 events x 200 books x 3 sides; few realized, so keys
    repeat): the hashed key ids, with Enum, Categorical and String keys, every type and anchor."""
    require_fast()
    for dtype in ("enum", "categorical", "string"):
        df = _keyed(200, 200, 1500, dtype)
        assert df.get_column("bookmaker").n_unique() * df.get_column("event_id").n_unique() * 3 > 65_536
        for opts in ({"reference": "anchor"}, {"types": "odds_drop,line_move,steam", "steam_books": 3,
                                               "cooldown_ms": 5}):
            _both(df, None, opts)
            _both(df.lazy(), None, opts)


def test_one_row_and_empty_dictionary_encoded() -> None:
    require_fast()
    one = _keyed(1, 1, 1, "enum").head(1)
    for df in (one, one.head(0), one.with_columns(pl.lit(None, pl.Float64).alias("price"))):
        for opts in ({}, {"types": "odds_drop,line_move,steam", "steam_books": 2}):
            _both(df, None, opts)
