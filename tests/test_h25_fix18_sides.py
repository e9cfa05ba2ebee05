"""SPEC 2: one grammar for a side's line, core/sides.py's (session 18, fix18).

A line is a plain ASCII decimal (``-3``, ``+3.0``, ``.5``, ``007``: read as the number, written back in
SPEC 2's shortest form); no exponent, ``_``, spaces, other scripts' digits, ``inf``/``nan``. Every
table reader and both batch loads (pure and compiled) take a side through
:func:`~dropengine.core.sides.canonical_side`: for every spelling the stream engine replaying a
table gives the batch engine's alerts, counters and skips. Found on the way: digits past a double's
range (``'9' * 400``) made ``float()`` an inf and ``canonical_side`` raise a ConfigError, not a
``bad side``: one such row ended a whole replay (stream and batch) as a usage error, exit 2.

A hand-built Quote takes its side through the same grammar, kind and market key given or not: a
side the grammar refuses is a bad side (FeedError) there too (the lead's 940a704; before it, such a
side was kept as spelt and the stream engine's ``rules.series_line`` read ``total_over@1e3`` as 1000).
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote, encode_alerts, fast
from dropengine.core.errors import FeedError
from dropengine.core.sides import _LINE_TEXT, canonical_side, format_line, parse_side
from dropengine.io.replay import ReplayStats, replay, replay_batch

from .conftest import require_fast

ALL = {"odds_drop", "line_move", "steam"}

_DIGITS = st.text("0123456789", min_size=1, max_size=4)
#: Plain decimals in every spelling the grammar takes: signs, leading and trailing zeros, a bare dot.
_DECIMAL = st.builds(
    lambda sign, whole, frac, form: sign + (whole + "." + frac if form == 0 else whole + "." if form == 1 else
                                            "." + frac if form == 2 else whole),
    st.sampled_from(["", "+", "-"]), _DIGITS, _DIGITS, st.integers(0, 3),
)  # fmt: skip
#: What float() takes and the grammar does not, and what neither takes.
_HOSTILE = st.one_of(
    st.builds(lambda m, e: f"{m}{e}", _DECIMAL, st.sampled_from(["e3", "E-1", "e+0", "e309", "e-400"])),
    st.sampled_from(["1_0", " 3", "3 ", "\u0661\u0660", "\uff13", "inf", "-inf", "nan", "infinity", "", ".", "+",
                     "-", "e3", "0x10", "3,5", "1e3", "--3", "3..5"]),
    st.builds(lambda n: "9" * n, st.integers(300, 420)),  # past a double's range: float() gives inf
    st.builds(lambda n: "0." + "0" * n + "1", st.integers(300, 420)),  # below its range: 0
)  # fmt: skip
_LINE = st.one_of(_DECIMAL, _DECIMAL, _HOSTILE)
_PREFIX = st.sampled_from(["spread_home", "total_over", "player_points:A@b: c:under"])


@given(_PREFIX, _LINE)
@settings(max_examples=400, deadline=None)
def test_a_side_is_canonical_or_a_bad_side(prefix: str, text: str) -> None:
    side = f"{prefix}@{text}"
    try:
        got = canonical_side(side)
    except FeedError as exc:
        assert exc.reason == "bad side"
        # refused only what is not a plain decimal, or no finite number
        assert not _LINE_TEXT.fullmatch(text) or float(text) in (float("inf"), float("-inf"))
        return
    assert _LINE_TEXT.fullmatch(text)  # (never an exponent, '_', a space or another script's digit)
    assert got == f"{prefix}@{format_line(float(text))}"
    assert canonical_side(got) == got and parse_side(got).line == float(text)


@given(_PREFIX, _LINE, st.booleans())
@settings(max_examples=300, deadline=None)
def test_a_hand_built_quote_keys_its_side_by_the_same_grammar(prefix: str, text: str, given_kind: bool) -> None:
    side = f"{prefix}@{text}"
    kw: dict[str, Any] = {}
    if given_kind:  # (the decoders' shape: kind and market key given)
        kw = (
            {"kind": "prop", "market_key": "player_points"}
            if ":" in prefix
            else {"kind": "game", "market_key": "totals" if prefix.startswith("total") else "spreads"}
        )
    try:
        want: str | None = canonical_side(side)
    except FeedError:
        want = None
    try:
        got: str | None = Quote("americanfootball_nfl", "e", "pin", side, -110, 1, **kw).side
    except FeedError as exc:
        assert exc.reason == "bad side"
        got = None
    assert got == want


_HEADER = ["sport_key", "event_id", "bookmaker", "side", "price", "last_update", "kind", "market_key"]


def _table(path: Path, rows: list[tuple[str, str, int]]) -> Path:
    """A CSV quotes table: one book's spread and total sides, the line spelt as drawn, rows in time order."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(_HEADER)
        for t, (book, side, price) in enumerate(rows):
            market = "totals" if side.startswith("total") else "spreads"
            out.writerow(["americanfootball_nfl", "e1", book, side, price, 1000 * (t + 1), "game", market])
    return path


@contextlib.contextmanager
def _accel(accel: str) -> Iterator[None]:
    """The batch load and detection pure (``DROPENGINE_PURE=1``) or compiled, for the block."""
    before = os.environ.get("DROPENGINE_PURE")
    os.environ["DROPENGINE_PURE"] = "1" if accel == "pure" else "0"
    try:
        assert fast.available() is (accel == "fast")
        yield
    finally:
        if before is None:
            del os.environ["DROPENGINE_PURE"]
        else:
            os.environ["DROPENGINE_PURE"] = before


def _skips(stats: ReplayStats) -> Any:
    return stats.skips.counts, [str(s) for s in stats.skips.first]


@given(
    st.lists(
        st.tuples(st.sampled_from(["pin", "dk", "fd"]), st.sampled_from(["spread_home", "total_over"]),
                  st.one_of(st.sampled_from(["-3", "3.5", "220.5", "0"]), _LINE),
                  st.sampled_from([-110, -130, -150, 120, -200])),
        min_size=2, max_size=24,
    )
)  # fmt: skip
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
def test_every_spelling_gives_the_same_alerts_counters_and_skips_on_stream_and_batch(
    tmp_path: Path, drawn: list[tuple[str, str, str, int]]
) -> None:
    require_fast()
    rows = [(book, f"{prefix}@{text}", price) for book, prefix, text, price in drawn]
    path = _table(tmp_path / "q.csv", rows)
    engine = DropEngine(types=ALL, steam_books=2)
    stream_stats = ReplayStats()
    stream = encode_alerts(list(replay([path], engine, "auto", stream_stats)))
    for accel in ("pure", "fast"):
        stats = ReplayStats()
        with _accel(accel):
            batch = replay_batch([path], "auto", stats, types=ALL, steam_books=2)
        assert encode_alerts(batch.alert_values()) == stream, accel
        assert batch.counters == engine.counters, accel
        assert _skips(stats) == _skips(stream_stats), accel


@pytest.mark.parametrize("engine", ["stream", "batch"])
def test_a_line_past_a_doubles_range_is_a_bad_side_not_the_end_of_the_run(tmp_path: Path, engine: str) -> None:
    from click.testing import CliRunner

    from dropengine.cli import main

    huge = "total_over@" + "9" * 400
    rows = [("pin", huge, -110), ("pin", huge, -150), ("pin", "total_over@1", -110), ("pin", "total_over@1", -150)]
    path = _table(tmp_path / "q.csv", rows)
    got = CliRunner().invoke(main, ["replay", str(path), "--engine", engine])
    assert got.exit_code == 0, got.output
    assert got.stdout.count('"type":"odds_drop"') == 1
    assert "bad side" in got.stderr and "beyond any number a line holds" in got.stderr
