"""Issue 11, defect 2: the ENGINE judges price validity (SPEC 3 rule 2), readers only skip what
cannot become a Quote. So the same recording, in every input format, gives the same counters,
skips and alerts on `replay` and `replay --engine batch` (library and CLI): an out-of-range
numeric price (0, +50, -99, 100001; NaN and infinities in a float Parquet column) is an engine
`invalid`, never a reader skip on one path and an engine count on the other."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from dropengine.cli.group import main
from dropengine.core.engine import DropEngine
from dropengine.core.quote import Quote
from dropengine.formats.sse import encode_event
from dropengine.formats.tables import table_row
from dropengine.formats.vendor import vendor_row
from dropengine.io.replay import ReplayStats, replay, replay_batch
from dropengine.io.tables import write_parquet_rows, write_quote_table

SPORT, EVENT, BOOK, HOME, AWAY = "americanfootball_nfl", "ev1", "book1", "Home FC", "Away FC"
T0 = 1_762_689_600_000
# (home price, away price) per step: valid prices with drops, and out-of-range numeric ones
STEPS: list[tuple[int | float, int | float]] = [
    (-110, 100), (-130, 120), (50, 140), (-150, 0), (-99, -100), (-170, 100001), (-190, 160), (0, 180),
    (-200, -99), (-220, 200), (10**30, -10**20),
]
# Parquet holds Int64 prices only: its file gets the steps without the two huge integers
_INT64 = [(h, a) for h, a in STEPS if max(abs(h), abs(a)) < 2**63]
FORMATS = ["frames", "sse", "quotes-ndjson", "csv", "parquet", "theoddsapi"]


def _quotes(steps: list[tuple[Any, Any]] = STEPS) -> list[tuple[int, list[Quote]]]:
    out = []
    for i, (home, away) in enumerate(steps):
        lu = T0 + 60_000 * i
        out.append((lu, [
            Quote(SPORT, EVENT, BOOK, side, price, lu, home_team=HOME, away_team=AWAY)
            for side, price in (("h2h_home", home), ("h2h_away", away))
        ]))
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def write(fmt: str, tmp: Path, steps: list[tuple[Any, Any]] = STEPS) -> Path:
    """The quotes of ``steps`` written in ``fmt`` with the writers the package offers."""
    snaps = _quotes(steps)
    quotes = [q for _, qs in snaps for q in qs]
    enc = msgspec.json.Encoder()
    if fmt in ("frames", "sse"):
        envs = [enc.encode({"type": "odds_update", "sport_key": SPORT, "data": [vendor_row(q) for q in qs]})
                for _, qs in snaps]
        path = tmp / f"rec.{'ndjson' if fmt == 'frames' else 'sse'}"
        path.write_bytes(b"".join(e + b"\n" for e in envs) if fmt == "frames" else b"".join(map(encode_event, envs)))
        return path
    if fmt in ("quotes-ndjson", "csv", "parquet"):
        path = tmp / {"quotes-ndjson": "q.ndjson", "csv": "q.csv", "parquet": "q.parquet"}[fmt]
        write_quote_table(path, [q for _, qs in _quotes(_INT64) for q in qs] if fmt == "parquet" else quotes)
        return path
    assert fmt == "theoddsapi"
    lines = []
    for lu, qs in snaps:
        outcomes = [{"name": HOME if q.side == "h2h_home" else AWAY, "price": q.price} for q in qs]
        lines.append(enc.encode({"timestamp": _iso(lu), "data": [{
            "id": EVENT, "sport_key": SPORT, "home_team": HOME, "away_team": AWAY,
            "bookmakers": [{"key": BOOK, "markets": [{"key": "h2h", "last_update": _iso(lu), "outcomes": outcomes}]}],
        }]}))
    path = tmp / "odds.ndjson"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _library(path: Path) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    engine = DropEngine()
    s1 = ReplayStats()
    drops = [d.to_dict() for d in replay([path], engine, stats=s1)]
    s2 = ReplayStats()
    result = replay_batch([path], stats=s2)
    stream = (engine.counters.as_dict(), dict(s1.skips.counts), s1.quotes, len(drops))
    batch = (result.counters.as_dict(), dict(s2.skips.counts), s2.quotes, result.alerts.height)
    return stream, batch


def _cli(*args: str) -> tuple[str, str]:
    result = CliRunner().invoke(main, ["replay", *args])
    assert result.exit_code == 0, result.stderr
    summary = re.sub(r"\s+", " ", result.stderr)
    return result.stdout, summary


@pytest.mark.parametrize("fmt", FORMATS)
def test_both_engines_count_and_skip_the_same_in_every_format(tmp_path: Path, fmt: str) -> None:
    path = write(fmt, tmp_path)
    stream, batch = _library(path)
    assert stream == batch
    counters, skips, quotes, _ = stream
    steps = _INT64 if fmt == "parquet" else STEPS
    assert skips == {}  # every price is a number: nothing for a reader to skip
    assert quotes == 2 * len(steps)
    # the engine judged every out-of-range price invalid (a price beyond int64 too)
    bad = sum(1 for h, a in steps for p in (h, a) if not 100 <= abs(p) <= 100000)
    assert counters["invalid"] == bad and counters["seen"] == 2 * len(steps)
    out_stream, err_stream = _cli(str(path))
    out_batch, err_batch = _cli("--engine", "batch", str(path))
    assert out_stream == out_batch and out_stream  # the same alerts, byte for byte
    assert err_stream.replace("keys held 2 ", "") == err_batch  # the batch engine holds no keys to report
    assert f"invalid {bad} " in err_stream


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 0.0, 50.5, -99.9])
def test_a_non_finite_or_out_of_range_float_in_parquet_is_an_engine_invalid_on_both_engines(
    tmp_path: Path, bad: float
) -> None:
    rows = [table_row(q) for _, qs in _quotes([(-110.0, 100.0), (bad, -120.5), (-130.0, 110.0)]) for q in qs]
    path = tmp_path / "f.parquet"
    write_parquet_rows(path, rows, float_prices=True)
    stream, batch = _library(path)
    assert stream == batch
    assert stream[1] == {} and stream[0]["invalid"] == 1


def test_text_that_is_no_number_is_a_reader_skip_on_both_engines(tmp_path: Path) -> None:
    # what cannot become a Quote stays the reader's: the same skip on both paths
    path = write("csv", tmp_path)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(",-130,", ",abc,")
    path.write_text("\n".join(lines) + "\n")
    stream, batch = _library(path)
    assert stream == batch
    assert stream[1] == {"invalid price": 1}
    assert json.dumps(stream[0])  # counters are plain data


# ---- defect 3: one fractional price must not turn every batch alert price into a float ---------

FRACTIONAL: list[tuple[Any, Any]] = [(-110, 100), (-130, 120.5), (-150, 140), (-170, 160), (-190.5, 180)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_batch_alerts_keep_each_price_type_when_one_price_is_fractional(tmp_path: Path, fmt: str) -> None:
    if fmt == "parquet":  # one column type per file: ints in one file, the fractional prices in another
        write_quote_table(tmp_path / "a.parquet", [q for _, qs in _quotes(FRACTIONAL) for q in qs
                                                   if type(q.price) is int])
        write_quote_table(tmp_path / "b.parquet", [q for _, qs in _quotes(FRACTIONAL) for q in qs
                                                   if type(q.price) is float])
        paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    else:
        paths = [write(fmt, tmp_path, FRACTIONAL)]
    stream = [d.to_json() for d in replay(paths, DropEngine())]
    batch = [d.to_json() for d in replay_batch(paths).drops()]
    assert batch == stream
    assert b'"prev":-110,' in b"".join(stream)  # an int stays an int beside the fractional prices
    assert b"120.5" in b"".join(stream) or b"190.5" in b"".join(stream)


def test_an_integer_price_too_large_for_a_float_is_an_engine_invalid_on_both_engines(tmp_path: Path) -> None:
    path = write("csv", tmp_path, [(-110, 100), (-130, 120)])
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(",-130,", ",-1" + "0" * 400 + ",")
    path.write_text("\n".join(lines) + "\n")
    stream, batch = _library(path)
    assert stream == batch
    assert stream[1] == {} and stream[0]["invalid"] == 1


@pytest.mark.parametrize("name", ["q.ndjson", "q.csv"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_price_written_as_text_stays_invalid_never_a_suspension(
    tmp_path: Path, name: str, bad: float
) -> None:
    # JSON and CSV have no number for NaN/inf: the writer spells it as text, which the reader
    # skips as an invalid price; written as null it would be a suspension (conformance F2)
    quotes = [q for _, qs in _quotes([(-110, 100), (bad, 120), (-130, 140)]) for q in qs]
    path = tmp_path / name
    write_quote_table(path, quotes)
    engine = DropEngine()
    direct = [d.to_json() for d in engine.observe_many(quotes)]
    stats = ReplayStats()
    replayed_engine = DropEngine()
    replayed = [d.to_json() for d in replay([path], replayed_engine, stats=stats)]
    assert replayed == direct and direct  # -110 -> -130 alerts: the bad price changed nothing
    assert dict(stats.skips.counts) == {"invalid price": 1}
    assert replayed_engine.counters.suspended == 0
