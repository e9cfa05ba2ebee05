"""The simulator's line moves and steam (issue 12): what the engine detects in a simulated recording.

Books follow the sharp book's news within minutes, so their lines move together (steam); with
``line_moves`` soft books also move their own lines; ``line_only`` books publish lines without
prices, which only the line series sees (SPEC 10). The default keeps every recording byte for
byte (tests/test_h11_simcli_sim.py pins two).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dropengine import ConfigError, DropEngine
from dropengine.cli.group import main
from dropengine.core.quote import Quote, commence_ms
from dropengine.core.skips import SkipLog
from dropengine.formats.frames import FrameDecoder
from dropengine.sim.simulate import SimConfig, simulate_envelopes

BASE = SimConfig(events=3, books=8, hours=8, seed=5)
TYPES = "odds_drop,line_move,steam"


def quotes(cfg: SimConfig) -> Iterator[Quote]:
    """The recording as a replay with line detection reads it (line-only observations included)."""
    decoder = FrameDecoder(cfg.sport_key, line_only=True)
    skips = SkipLog()
    for env in simulate_envelopes(cfg):
        yield from decoder.feed(env, skips)
    assert skips.total == 0


def alerts(cfg: SimConfig) -> list[Any]:
    return DropEngine(types=TYPES).observe_many(list(quotes(cfg)))


@pytest.fixture(scope="module")
def base_alerts() -> list[Any]:
    return alerts(BASE)


def test_books_move_lines_together_into_steam(base_alerts: list[Any]) -> None:
    counts = Counter(a.type for a in base_alerts)
    assert counts["line_move"] > 0 and counts["steam"] > 0, counts
    for steam in (a for a in base_alerts if a.type == "steam"):
        books = [b.bookmaker for b in steam.books]
        assert len(set(books)) >= 3 and steam.lag_ms <= 300_000
    # line-move steam: at least one steam made of line moves of three books within the window
    assert any(all(b.type == "line_move" for b in a.books) for a in base_alerts if a.type == "steam")


def test_own_line_moves_add_line_moves_no_other_book_follows(base_alerts: list[Any]) -> None:
    """Pre-game (in play every book re-hangs its lines with the score anyway)."""
    more = [a for a in alerts(replace(BASE, line_moves=0.2)) if a.type == "line_move" and _pregame(a)]
    base = [a for a in base_alerts if a.type == "line_move" and _pregame(a)]
    assert len(more) > len(base) * 1.3, (len(more), len(base))
    # an own move is half a point: the half-point moves are the ones that grow
    assert Counter(abs(m.points) for m in more)[0.5] > Counter(abs(m.points) for m in base)[0.5]


def _pregame(a: Any) -> bool:
    ms = commence_ms(a.commence_time)
    assert ms is not None
    return bool(a.last_update < ms)


def test_line_only_books_publish_lines_and_fire_line_moves_without_prices() -> None:
    cfg = replace(BASE, line_only=("fanduel", "betmgm"))
    rows = [r for env in simulate_envelopes(cfg) if "data" in env for r in env["data"]]
    only = [r for r in rows if r["bookmaker"] in cfg.line_only]
    assert only and all("home_spread_price" not in r and "over_price" not in r and "total" in r for r in only)
    assert all("home_spread_price" in r for r in rows if r["bookmaker"] not in cfg.line_only)
    got = alerts(cfg)
    line_only_moves = [a for a in got if a.type == "line_move" and a.bookmaker in cfg.line_only]
    assert line_only_moves and all(a.new_price is None and a.prev_price is None for a in line_only_moves)
    assert not any(a.type == "odds_drop" and a.bookmaker in cfg.line_only and a.market_key != "h2h" for a in got)


def test_default_has_no_own_line_moves_and_the_same_rows() -> None:
    """line_moves=0 and no line-only books are the defaults: the rows are those of the model before."""
    assert BASE.line_moves == 0.0 and BASE.line_only == ()
    explicit = replace(BASE, line_moves=0.0, line_only=())
    assert json.dumps(list(simulate_envelopes(explicit))) == json.dumps(list(simulate_envelopes(BASE)))


@pytest.mark.parametrize(("kwargs", "field"), [({"line_moves": -1.0}, "line_moves"),
                                               ({"line_moves": float("nan")}, "line_moves"),
                                               ({"line_only": ("nobody",)}, "line_only"),
                                               ({"line_only": "fanduel"}, "line_only")])
def test_bad_values_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: "):
        SimConfig(**kwargs)


def test_cli_flags(tmp_path: Path) -> None:
    out = tmp_path / "s.ndjson"
    args = ["simulate", "--events", "2", "--books", "4", "--hours", "3", "--seed", "3", "--line-moves", "0.1",
            "--line-only", "fanduel", "--out", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    rows = [r for line in out.read_text().splitlines() for r in json.loads(line).get("data", ())]
    assert any(r["bookmaker"] == "fanduel" for r in rows)
    assert all("home_spread_price" not in r for r in rows if r["bookmaker"] == "fanduel")
    bad = CliRunner().invoke(main, ["simulate", "--line-only", "fanduel,nobody", "--out", str(out)])
    assert bad.exit_code == 2 and "--line-only" in bad.output
    bad = CliRunner().invoke(main, ["simulate", "--line-moves", "-1", "--out", str(out)])
    assert bad.exit_code == 2 and "--line-moves" in bad.output
