"""break22 (session 15): the batch path's by-chunk work against the pure path and the stream engine.

Session 15 made the compiled batch path read the input's columns where polars holds them, chunk by
chunk: a Categorical's physical codes numbered chunk by chunk (db1da1b, ``kernel.codes`` of a list),
the moves' and alerts' text taken by row through a mask per chunk (908f021, ``_taker``), the signals'
text columns no longer copied into one chunk first (f9f5c9a), the key ids in one pass (de48ed7) or
through one hash table (18c4991).

- ``detect_counted`` of a DataFrame of many chunks (``pl.concat(..., rechunk=False)``: 1-40 chunks,
  empty ones among them, String or Categorical keys): the compiled path == the pure path (alerts,
  their dtypes, counters, skips, rejected rows), for price drops, line moves and steam, last and
  anchor, cooldown and filters. (A replay of small Parquet files reaches neither by-chunk branch: its
  columns arrive in one chunk; 10M-row files arrive in ~40. A DataFrame's are used as they are.)
- ``replay`` of several Parquet files whose key columns differ in type from file to file (String,
  Categorical, Enum; an empty file and one-row files among them), hostile cells (null and empty keys,
  NaN, inf and 2**53 lines, odd prices, times out of order): ``--engine batch`` == ``--engine stream``
  (ndjson bytes, parquet values and dtypes, counters and skip counts) and ``DROPENGINE_PURE=1`` == the
  compiled path (output and whole summary). The skip *list* of several files is not compared between
  engines: its order is break21's F5 (a strict xfail in tests/test_h22_ci15_skip_order.py).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from dropengine.cli.group import main

from .conftest import require_fast
from .parquet_util import QUOTE_SCHEMA

_SCHEMA = QUOTE_SCHEMA
_KEYS = ["sport_key", "event_id", "bookmaker", "side", "market_key"]
_LINES = (-3.0, -3.5, -2.5, -7.0, -6.5, 3.0, 0.0, -0.0, 2.5, 44.5, 45.0, 47.0, 14.0)
_ODD_LINES: tuple[Any, ...] = (math.nan, None, math.inf, -math.inf, float(2**53), float(2**53 + 2), -1e-9)
_PRICES: tuple[Any, ...] = (-110, -120, -105, 100, 110, -150, 130, None, -110.5, 0, 50, -200, 250, math.nan)


def _text(line: float) -> str:
    if not math.isfinite(line):
        return repr(line)
    return str(int(line)) if float(line).is_integer() else repr(line)


def _rows(r: random.Random, n: int) -> pl.DataFrame:
    rows = []
    t = r.choice((0, 1_747_000_000_000))
    for _ in range(n):
        t += r.choice((0, 0, 1000, 30_000, 60_000, -5000))
        line: Any = r.choice(_ODD_LINES) if r.random() < 0.08 else r.choice(_LINES)
        shown = line if isinstance(line, float) else 0.0
        m = r.random()
        mk: str | None
        if m < 0.2:
            side, mk, line = r.choice(("h2h_home", "h2h_away")), "h2h", None
        elif m < 0.55:
            side, mk = f"{r.choice(('spread_home', 'spread_away'))}@{_text(shown)}", r.choice(("spreads", None, ""))
        elif m < 0.85:
            side, mk = f"{r.choice(('total_over', 'total_under'))}@{_text(shown)}", "totals"
        elif m < 0.97:
            who, ou = r.choice(("Ann", "Bo", "")), r.choice(("over", "under"))
            side, mk = f"player_points:{who}:{ou}@{_text(shown)}", "player_points"
        else:
            side, mk = r.choice(("", "weird", "spread_home")), r.choice(("spreads", None))
        rows.append(
            {
                "sport_key": r.choice(("americanfootball_nfl", "basketball_nba"))
                if r.random() > 0.03
                else r.choice((None, "")),
                "event_id": f"E{r.randint(1, 3)}" if r.random() > 0.02 else r.choice((None, "")),
                "bookmaker": r.choice(("pin", "dk", "fd", "mgm")) if r.random() > 0.02 else r.choice((None, "")),
                "side": side,
                "price": r.choice(_PRICES),
                "last_update": t + r.randint(0, 3) if r.random() > 0.01 else None,
                "market_key": mk,
                "line": line,
            }
        )
    return pl.DataFrame(rows, schema=_SCHEMA, strict=False)


def _files(seed: int, where: Path) -> list[str]:
    """2-4 Parquet files cut from one seeded table, each file's key columns of its own type."""
    r = random.Random(seed)
    table = _rows(r, r.randint(60, 300))
    cuts = sorted(r.sample(range(table.height), r.randint(1, 3)))
    files = []
    for i, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, table.height], strict=True)):
        part = table[lo:hi]
        how = ("categorical", "string", "enum", "empty", "one row", "categorical")[(seed + i) % 6]
        if how == "categorical":
            part = part.with_columns(pl.col(c).cast(pl.Categorical) for c in r.sample(_KEYS, r.randint(1, 5)))
        elif how == "enum":
            part = part.with_columns(
                pl.col(c).cast(pl.Enum(sorted(set(table.get_column(c).drop_nulls().to_list()))))
                for c in r.sample(_KEYS, r.randint(1, 3))
            )
        elif how == "empty":
            part = part[:0]
        elif how == "one row":
            part = part[:1]
        path = where / f"q{i}.parquet"
        part.write_parquet(path, row_group_size=r.choice((1, 4, 64)))
        files.append(str(path))
    return files


_OPTIONS = {
    "last": ["--types", "odds_drop,line_move,steam", "--steam-books", "2", "--threshold", "5"],
    "anchor": [
        "--types",
        "odds_drop,line_move,steam",
        "--steam-books",
        "2",
        "--threshold",
        "5",
        "--reference",
        "anchor",
        "--cooldown",
        "60",
        "--key-numbers",
        "americanfootball_*:spreads=3,7;basketball_*:totals=45,47",
    ],
}


def _replay(args: list[str], out: Path) -> str:
    got = CliRunner().invoke(main, ["replay", *args, "-o", str(out)], catch_exceptions=False)
    assert got.exit_code in (0, 1), got.output
    return got.output.replace(str(out), "OUT")


def _counted(summary: str) -> list[str]:
    """The summary up to its list of skipped rows, without the stream engine's key count."""
    lines = summary.splitlines()
    end = next((i for i, x in enumerate(lines) if x.startswith("first ")), len(lines))
    return [x for x in lines[:end] if not x.startswith("keys held")]


@pytest.mark.parametrize("reference", sorted(_OPTIONS))
@pytest.mark.parametrize("seed", range(8))
def test_batch_of_mixed_key_types_in_several_files_is_the_stream_engine_and_the_pure_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, reference: str
) -> None:
    require_fast()
    files = _files(seed, tmp_path)
    opts = _OPTIONS[reference]
    summary: dict[str, str] = {}
    for engine in ("stream", "batch"):
        for ext in ("ndjson", "parquet"):
            summary[f"{engine}.{ext}"] = _replay(["--engine", engine, *opts, *files], tmp_path / f"{engine}.{ext}")
    with monkeypatch.context() as mp:
        mp.setenv("DROPENGINE_PURE", "1")
        for ext in ("ndjson", "parquet"):
            summary[f"pure.{ext}"] = _replay(["--engine", "batch", *opts, *files], tmp_path / f"pure.{ext}")
    want = (tmp_path / "stream.ndjson").read_bytes()
    assert (tmp_path / "batch.ndjson").read_bytes() == want
    assert (tmp_path / "pure.ndjson").read_bytes() == want
    stream = pl.read_parquet(tmp_path / "stream.parquet")
    for name in ("batch", "pure"):
        got = pl.read_parquet(tmp_path / f"{name}.parquet")
        assert got.schema == stream.schema
        assert_frame_equal(got, stream, check_exact=True)
    assert stream.height == want.count(b"\n")
    assert _counted(summary["batch.ndjson"]) == _counted(summary["stream.ndjson"])
    # the pure path's whole summary, skip list included, is the compiled path's
    assert summary["pure.ndjson"] == summary["batch.ndjson"]
    assert summary["pure.parquet"] == summary["batch.parquet"]


_DETECT: list[dict[str, Any]] = [
    {"threshold": 5},
    {"threshold": 5, "reference": "anchor"},
    {"types": "odds_drop,line_move,steam", "steam_books": 2, "threshold": 5},
    {
        "types": "odds_drop,line_move,steam",
        "steam_books": 2,
        "threshold": 5,
        "reference": "anchor",
        "cooldown_ms": 60_000,
    },
    {"types": "line_move,steam", "steam_books": 2, "line_threshold": 0.5},
    {"types": "steam", "steam_books": 2, "bookmakers": "pin,dk"},
]


def _chunked(seed: int) -> pl.DataFrame:
    """A seeded hostile table cut into 1-40 chunks (an empty one now and then), keys String or
    Categorical."""
    r = random.Random(seed)
    table = _rows(r, r.randint(20, 600))
    if r.random() < 0.6:
        table = table.with_columns(pl.col(c).cast(pl.Categorical) for c in r.sample(_KEYS, r.randint(1, 5)))
    k = r.randint(1, min(40, table.height))
    cuts = sorted(r.sample(range(1, table.height), k - 1)) if table.height > 1 and k > 1 else []
    parts = [table[lo:hi] for lo, hi in zip([0, *cuts], [*cuts, table.height], strict=True)]
    if r.random() < 0.3:
        parts.insert(r.randrange(len(parts) + 1), table[:0])
    return pl.concat(parts, rechunk=False)


def _counted_result(frame: pl.DataFrame, opts: dict[str, Any], accel: str) -> tuple[Any, ...]:
    from dropengine.analysis.batch import detect_counted

    got = detect_counted(frame, accel=accel, **opts)
    return got.alerts.schema, got.alerts.to_dicts(), got.counters, got.skipped, got.rejected.to_dicts()


def test_compiled_batch_of_many_chunks_is_the_pure_path(monkeypatch: pytest.MonkeyPatch) -> None:
    require_fast()
    import dropengine.analysis.batch as batch
    from dropengine.fast import kernel

    reached = {"text by mask": 0, "codes by chunk": 0}
    taker, codes = batch._taker, kernel.codes

    def spy_taker(at: pl.Series, height: int) -> Any:
        take = taker(at, height)

        def spied(column: pl.Series) -> pl.Series:
            reached["text by mask"] += column.n_chunks() > 1
            return take(column)

        return spied

    def spy_codes(physical: Any, stop: int) -> Any:
        reached["codes by chunk"] += isinstance(physical, list) and len(physical) > 1
        return codes(physical, stop)

    monkeypatch.setattr(batch, "_taker", spy_taker)
    monkeypatch.setattr(kernel, "codes", spy_codes)
    alerts = 0
    for seed in range(40):
        frame = _chunked(seed)
        for opts in _DETECT:
            got = _counted_result(frame, opts, "fast")
            assert got == _counted_result(frame, opts, "pure"), (seed, opts)
            alerts += len(got[1])
    assert alerts > 1000
    assert reached["text by mask"] > 100 and reached["codes by chunk"] > 20, reached


def test_the_mixed_inputs_do_alert_and_do_skip(tmp_path: Path) -> None:
    """The generator's inputs are not vacuous: over the seeds, every alert type fires and rows of
    several skip reasons are counted (else the comparisons above compare empty outputs)."""
    require_fast()
    text = ""
    for seed in range(8):
        where = tmp_path / str(seed)
        where.mkdir()
        out = where / "a.ndjson"
        text += _replay(["--engine", "batch", *_OPTIONS["last"], *_files(seed, where)], out)
        text += out.read_text()
    for needle in ('"type":"odds_drop"', '"type":"line_move"', '"type":"steam"', "bad line", "missing field"):
        assert needle in text, needle
