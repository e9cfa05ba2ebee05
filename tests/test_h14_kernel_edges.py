"""Issue 14: the compiled batch kernel on hand-written edges (pure == fast == the stream engine),
its exact rounding, dictionary-encoded vs plain text keys, the hashed key ids, the ``accel``
argument, and that importing the batch module does not load numba."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from dropengine import Quote
from dropengine.analysis.batch import detect_counted
from dropengine.core.errors import ConfigError
from dropengine.fast import available, resolve_accel
from dropengine.formats.tables import LINE_ONLY_COLUMN

from .conftest import require_fast
from .test_h14_kernel_equivalence import all_three, same_result

T0 = 1_747_000_000_000
NFL = "americanfootball_nfl"


def q(price: Any, s: int, side: str = "h2h_home", book: str = "pinnacle", event: str = "e1", **kw: Any) -> Quote:
    return Quote(NFL, event, book, side, price, T0 + s * 1000, **kw)


ALL_TYPES: dict[str, Any] = {"types": "odds_drop,line_move,steam", "steam_books": 2}

EDGES: dict[str, list[Quote]] = {
    "invalid prices skipped whole": [
        q(-110, 1), q(math.nan, 2), q(math.inf, 3), q(-math.inf, 4), q(10**30, 5), q(0, 6), q(99.5, 7),
        q(100001, 8), q(-130, 9), q(100000, 10), q(-100000, 11),
    ],
    "stale and equal times": [q(-110, 5), q(-130, 4), q(-130, 5), q(-150, 5), q(-170, 3), q(-200, 6)],
    "suspension and re-priming": [q(-110, 1), q(None, 2), q(-150, 3), q(-170, 4), q(None, 5), q(None, 6),
                                  q(-110, 7)],
    "never priced, then priced": [q(None, 1), q(None, 2), q(-120, 3), q(-140, 4)],
    "even money both ways": [q(100, 1), q(-100, 2), q(100.0, 3), q(-110, 4), q(105, 5), q(-105, 6), q(100, 7)],
    "int vs float prices": [q(-110, 1), q(-120.0, 2), q(-130, 3), q(-112.5, 4), q(-122.5, 5), q(261.9, 6),
                            q(251.9, 7)],
    "fractional boundary moves": [q(261.9, 1), q(251.9, 2), q(241.9, 3), q(-110.1, 4), q(-120.1, 5)],
    "line-only rows and line moves": [
        q(-110, 1, "spread_home@-3", book="fanduel"), q(None, 2, "spread_home@-3.5", book="fanduel", line_only=True),
        q(None, 3, "spread_home@-4", book="fanduel", line_only=True), q(-120, 4, "spread_home@-4", book="fanduel"),
        q(None, 5, "spread_home@-4", book="fanduel"), q(-105, 6, "spread_home@-3", book="fanduel"),
        q(-110, 7, "spread_home@-3", book="pinnacle"), q(-110, 8, "spread_home@-4", book="pinnacle"),
        q(-110, 9, "total_over@44.5"), q(-110, 10, "total_over@45"), q(-110, 11, "total_over@44.5"),
    ],
    "props with @ and : in names": [
        q(-110, 1, "player_points:A:B@C:over@24.5"), q(-130, 2, "player_points:A:B@C:over@24.5"),
        q(-110, 3, "player_points:A:B@C:over@25.5"), q(-110, 4, "player_points:Nikola Jokić:over@6"),
        q(-125, 5, "player_points:Nikola Jokić:over@6.5"),
    ],
    "one row": [q(-110, 1)],
    "no rows": [],
}


@pytest.mark.parametrize("reference", ["last", "anchor"])
@pytest.mark.parametrize("reprime", [True, False])
@pytest.mark.parametrize("name", list(EDGES))
def test_edges_pure_fast_stream(name: str, reference: str, reprime: bool) -> None:
    """Every edge, price drops alone and every type: pure == fast == DropEngine."""
    quotes = EDGES[name]
    for extra in ({}, ALL_TYPES, {"unit": "prob", "threshold": 1.0, **ALL_TYPES}, {"cooldown_ms": 2500, **ALL_TYPES},
                  {"types": "line_move", "cooldown_ms": 2500}):
        all_three(quotes, {"reference": reference, "reprime_after_suspension": reprime, **extra})


def test_edges_seen_by_the_kernel() -> None:
    """The edges are edges: the kernel counts invalid, stale, suspended, repeated and line quotes."""
    require_fast()
    c = all_three(EDGES["invalid prices skipped whole"], {}).counters
    assert (c.invalid, c.detected) == (7, 3)
    c = all_three(EDGES["stale and equal times"], {}).counters
    assert (c.stale, c.detected) == (2, 3)
    c = all_three(EDGES["even money both ways"], {}).counters
    assert c.repeated == 2
    c = all_three(EDGES["line-only rows and line moves"], {"types": "line_move"}).counters
    assert c.line_detected >= 4 and c.line_suspended == 1


def _table(quotes: list[Quote]) -> pl.DataFrame:
    from .test_h12_batch_equivalence import frame_of

    return frame_of(quotes)


TEXT = ("sport_key", "event_id", "bookmaker", "side", "kind", "market_key", "market", "player", "home_team",
        "away_team", "commence_time")


@pytest.mark.parametrize("dtype", ["categorical", "enum"])
def test_dictionary_encoded_keys(dtype: str) -> None:
    """Categorical (or Enum) text columns: the same alerts, counters and skips as String ones,
    on both paths, and the alerts' text columns stay dictionary-encoded (Categorical)."""
    require_fast()
    quotes = [*EDGES["line-only rows and line moves"], *EDGES["int vs float prices"],
              *EDGES["props with @ and : in names"]]
    plain = _table(quotes)

    def encoded(c: str) -> pl.Expr:
        if dtype == "enum":
            return pl.col(c).cast(pl.Enum(sorted(set(plain.get_column(c).drop_nulls().to_list()))))
        return pl.col(c).cast(pl.Categorical)

    coded = plain.with_columns(encoded(c) for c in TEXT if plain.schema.get(c) == pl.String)
    for opts in ({}, ALL_TYPES, {"reference": "anchor"}):
        want = detect_counted(plain, accel="pure", **opts)
        pure = detect_counted(coded, accel="pure", **opts)
        fast = detect_counted(coded, accel="fast", **opts)
        same_result(pure, fast)
        assert all(fast.alerts.schema[c] == pl.Categorical for c in TEXT if c in fast.alerts.columns
                   and c in coded.columns and coded.schema[c] != pl.String)
        assert all(want.alerts.schema[c] == pl.String for c in TEXT if c in want.alerts.columns)
        # (the detector's own words, batch._WORD_COLUMNS, are Categorical on every input)
        assert_frame_equal(fast.alerts.with_columns(pl.col(pl.Categorical).cast(pl.String)),
                           want.alerts.with_columns(pl.col(pl.Categorical).cast(pl.String)))
        assert fast.counters == want.counters
        assert [a for a in fast.alert_values()] == [a for a in want.alert_values()]


def test_bad_rows_skipped_alike() -> None:
    """Rows no quote could be built from (missing fields, bad time, bad line, bad side, bad
    line-only marks): the same skip counts and rejected rows on both paths, the rest detected."""
    require_fast()
    frame = pl.DataFrame({
        "sport_key": [NFL, NFL, "", NFL, NFL, NFL, NFL, NFL, NFL, NFL, NFL],
        "event_id": ["e1", "e1", "e1", None, "e1", "e1", "e1", "e1", "e1", "e1", "e1"],
        "bookmaker": ["b"] * 11,
        "side": ["h2h_home", "h2h_home", "h2h_home", "h2h_home", "nonsense@@", "spread_home@-3", "spread_home@-3",
                 "spread_home@-3.0", "spread_home@-3.5", "h2h_home", "spread_home@-4"],
        "price": [-110, -130, -150, -170, -190, -110, -110, -140, None, -150, -150],
        "last_update": [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4, -5, T0 + 6, T0 + 7, T0 + 8, T0 + 9, T0 + 10],
        "line": [None, None, None, None, None, None, math.inf, None, -3.5, None, None],
        LINE_ONLY_COLUMN: ["", "false", None, None, None, None, None, "true", "true", "maybe", "true"],
    })
    for opts in ({}, {"types": "line_move,odds_drop"}):
        pure = detect_counted(frame, accel="pure", **opts)
        fast = detect_counted(frame, accel="fast", **opts)
        same_result(pure, fast)
        assert set(fast.skipped) == {"missing field", "bad time", "bad line", "bad side", "bad field"}


def test_many_keys_hashed() -> None:
    """More key combinations than the kernel numbers through a lookup table (3,000 events x
    1,500 books: they are hashed to dense ids): the same results as the polars path."""
    require_fast()
    from dropengine.fast import kernel

    n = 6000
    assert kernel.LOOKUP_SLOTS < 3000 * 1500
    frame = pl.DataFrame({
        "sport_key": [NFL] * n,
        "event_id": [f"e{i % 3000}" for i in range(n)],
        "bookmaker": [f"b{(i * 7) % 1500}" for i in range(n)],
        "side": ["h2h_home" if i % 3 else "spread_home@-3" for i in range(n)],
        "price": [-110 - 10 * ((i * 13) % 5) for i in range(n)],
        "last_update": [T0 + i for i in range(n)],
    })
    for opts in ({}, {"reference": "anchor", "types": "odds_drop,line_move"}):
        same_result(detect_counted(frame, accel="pure", **opts), detect_counted(frame, accel="fast", **opts))


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=-3.9e6, max_value=3.9e6, allow_nan=False)
       | st.integers(-2**40, 2**40).map(lambda m: m / 1024)
       | st.tuples(st.integers(-99999, 99999), st.integers(-99999, 99999)).map(lambda t: t[0] / 100 - t[1] / 100))
def test_round_decimals_is_pythons_round(x: float) -> None:
    """The kernel's rounding of a delta or a points move is Python's ``round(x, 9)`` bit for bit
    (the written delta decides a move within the rounding margin of the threshold)."""
    require_fast()
    from dropengine.fast import kernel

    got = kernel.round_decimals(x)
    want = round(x, 9)
    assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want)


def test_accel_argument() -> None:
    """``accel``: unknown values and ``fast`` without numba are ConfigErrors naming it; ``auto``
    follows :func:`available`; DROPENGINE_PURE=1 turns the compiled path off."""
    with pytest.raises(ConfigError, match="accel"):
        resolve_accel("gpu")
    with pytest.raises(ConfigError, match="accel"):
        detect_counted(pl.DataFrame(), accel="numba")
    assert resolve_accel("pure") is False
    assert resolve_accel("auto") is available()
    old = os.environ.get("DROPENGINE_PURE")
    os.environ["DROPENGINE_PURE"] = "1"
    try:
        assert available() is False and resolve_accel("auto") is False
        with pytest.raises(ConfigError, match=r"accel: 'fast' needs numba"):
            resolve_accel("fast")
    finally:
        if old is None:
            del os.environ["DROPENGINE_PURE"]
        else:
            os.environ["DROPENGINE_PURE"] = old


def test_import_batch_does_not_load_numba() -> None:
    """numba is loaded on the first compiled call, never by importing the batch module."""
    code = ("import sys, dropengine.analysis.batch, dropengine.fast; "
            "print('numba' in sys.modules, 'dropengine.fast.kernel' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
