"""Conformance, part 2: the same quotes written in each format replay to the same alerts.

A stream of :mod:`tests.strategies` is written as a vendor frame recording (NDJSON), a raw SSE
capture, a quote table (NDJSON, CSV, Parquet) and, when every quote names its teams, The Odds
API snapshots. Each file is replayed with ``dropengine.io.replay.replay`` (the stream engine)
and ``replay_batch`` (the columnar engine) at the drawn options, and a CLI run replays frames
and CSV with ``--engine stream`` and ``--engine batch``. Every result must equal
``DropEngine`` fed the quotes *as the format carries them*:

- alerts byte for byte (SPEC 4: prices keep the type they arrived with, so an integer price
  written ``-110`` stays ``-110`` and a fractional one stays fractional);
- counters: equal, except that an invalid price may be judged by the reader (a skip with
  reason ``invalid price``) instead of the engine (counter ``invalid``): either way the
  quote is counted once, and nothing else may be skipped;
- the stream and batch replays of one file: equal counters and equal skips (one judgement
  per quote, whichever engine runs).

What each format carries (decided here, where the format leaves no choice):
- JSON (frames, SSE, quote NDJSON, snapshots) has no NaN or infinity: those prices are written
  as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (invalid prices a feed may send;
  ``null`` would mean suspended): the quote-table writers do so themselves (0f8e362), the
  envelopes and snapshots written here do it in :func:`_json_price`;
- a Parquet price column has one type: Int64 when every price is an integer, else Float64
  (then every price arrives as a float, ``-110.0``);
- The Odds API snapshots carry no prop market label (``market``), and need both team names,
  and no line-only observation (every outcome has a price);
- line-only observations (SPEC 10, issue 12): a vendor row with the line and no price field
  (decoded only when the options detect lines: otherwise the replay never sees them), a quote
  table's ``line_only`` column.

Every alert type (issue 12): the same comparisons for streams with line moves and every signal
option (line moves, steams, cooled alerts; the CLI with ``--types``, ``--line-threshold``,
``--steam-*``, ``--cooldown``, ``--key-numbers``).

Writers: the product's where it has one (vendor row: ``formats.vendor.vendor_row``; SSE:
``formats.sse.encode_event``; quote row: ``formats.tables.table_row``; CSV cells: the
simulator's ``sim.simfile._write_csv``); test-local where it has none: the envelope line
(one ``odds_update`` per quote), the Parquet table of arbitrary quotes (the simulator's writer
fixes the price column to Int64) and The Odds API snapshot documents.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from hypothesis import assume, given, settings

from dropengine import DropEngine, Quote, encode_alerts, encode_drops
from dropengine.cli.group import main
from dropengine.core.alerts import Drop
from dropengine.core.engine import EngineCounters
from dropengine.core.options import DetectOptions
from dropengine.core.rules import is_valid_price
from dropengine.core.sides import format_line, parse_side
from dropengine.formats.sse import encode_event
from dropengine.formats.tables import table_row
from dropengine.formats.vendor import vendor_row
from dropengine.io.replay import ReplayStats, replay, replay_batch
from dropengine.io.tables import write_csv_rows, write_ndjson_rows, write_parquet_rows, write_quote_table

from .strategies import EVENTS, detect_options, signal_options, signal_streams_with_options, streams_with_options
from .test_conformance import (
    _FAST,
    ACCELS,
    all_int,
    as_float,
    batch_wire,
    engine_opts,
    use_accel,
    wire,
)

_ENC = msgspec.json.Encoder()

_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _json_price(p: object) -> object:
    """A price as JSON can carry it (non-finite floats as the strings a feed would send)."""
    if isinstance(p, float) and not math.isfinite(p):
        return "NaN" if math.isnan(p) else _NON_FINITE[p]
    return p


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _json_price(v) for k, v in row.items()}


# --------------------------------------------------------------------------------------
# writers: quotes -> file, and the quotes as the file carries them
# --------------------------------------------------------------------------------------

def _envelope(q: Quote) -> bytes:
    return _ENC.encode({"type": "odds_update", "sport_key": q.sport_key, "data": [_json_safe(vendor_row(q))]})


def write_frames(quotes: list[Quote], path: Path) -> list[Quote]:
    path.write_bytes(b"".join(_envelope(q) + b"\n" for q in quotes))
    return quotes


def write_sse(quotes: list[Quote], path: Path) -> list[Quote]:
    path.write_bytes(b"".join(encode_event(_envelope(q)) for q in quotes))
    return quotes


def write_quotes_ndjson(quotes: list[Quote], path: Path) -> list[Quote]:
    with open(path, "wb") as fh:  # the product writer writes non-finite prices as those strings (F2 fix)
        write_ndjson_rows(fh, (table_row(q) for q in quotes))
    return quotes


def write_csv(quotes: list[Quote], path: Path) -> list[Quote]:
    with open(path, "wb") as fh:
        write_csv_rows(fh, (table_row(q) for q in quotes), line_only=any(q.line_only for q in quotes))
    return quotes


def write_parquet(quotes: list[Quote], path: Path) -> list[Quote]:
    ints = all_int(quotes)
    write_parquet_rows(path, [table_row(q) for q in quotes], float_prices=not ints,
                       line_only=any(q.line_only for q in quotes))
    return quotes if ints else as_float(quotes)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _snapshot(q: Quote) -> dict[str, Any]:
    """One The Odds API v4 document holding just ``q`` (stamped with its ``last_update``)."""
    info = parse_side(q.side)
    home, away = q.home_team, q.away_team
    outcome: dict[str, Any] = {"price": _json_price(q.price)}
    if info.kind == "prop":
        outcome.update(name=info.outcome.capitalize(), description=info.player, point=info.line)
    elif info.market_key == "h2h":
        outcome["name"] = {"home": home, "away": away, "draw": "Draw"}[info.outcome]
    elif info.market_key == "spreads":
        outcome.update(name=home if info.outcome == "home" else away, point=info.line)
    else:
        outcome.update(name=info.outcome.capitalize(), point=info.line)
    event: dict[str, Any] = {
        "id": q.event_id, "sport_key": q.sport_key, "home_team": home, "away_team": away,
        "bookmakers": [{"key": q.bookmaker, "markets": [
            {"key": info.market_key, "last_update": _iso(q.last_update), "outcomes": [outcome]},
        ]}],
    }
    if q.commence_time is not None:
        event["commence_time"] = q.commence_time
    return {"timestamp": q.last_update, "data": [event]}


def theoddsapi_carries(quotes: list[Quote]) -> bool:
    return all(q.home_team is not None and q.away_team is not None and not q.line_only for q in quotes)


def decoded(name: str, carried: list[Quote], opts: dict[str, Any]) -> list[Quote]:
    """What a replay of the file feeds the engine. Tables: the quotes (``line_only`` column
    included). Vendor frames: line-only observations only when the options detect lines (the
    decoder's ``line_only``); and then one row of a total side (priced or line-only) also
    observes the other total side's line: the row holds the shared ``total`` line field and not
    that side's price field, which SPEC 10 makes a line-only observation of it (over before
    under: the row order)."""
    if name not in ("frames", "sse"):
        return carried
    if not DetectOptions.build(**engine_opts(opts)).detects_lines:
        return [q for q in carried if not q.line_only]
    out: list[Quote] = []
    for q in carried:
        if q.kind == "game" and q.market_key == "totals" and q.line is not None:
            over = q.side.startswith("total_over@")
            other = Quote(q.sport_key, q.event_id, q.bookmaker,
                          f"{'total_under' if over else 'total_over'}@{format_line(q.line)}", None, q.last_update,
                          home_team=q.home_team, away_team=q.away_team, commence_time=q.commence_time, line_only=True)
            out += [q, other] if over else [other, q]
        else:
            out.append(q)
    return out


def write_theoddsapi(quotes: list[Quote], path: Path) -> list[Quote]:
    path.write_bytes(b"".join(_ENC.encode(_snapshot(q)) + b"\n" for q in quotes))
    return [msgspec.structs.replace(q, market=None) for q in quotes]


Writer = Callable[[list[Quote], Path], list[Quote]]
#: format name -> (file name, --format value, writer)
FORMATS: dict[str, tuple[str, str, Writer]] = {
    "frames": ("rec.ndjson", "frames", write_frames),
    "sse": ("rec.sse", "sse", write_sse),
    "quotes-ndjson": ("quotes.ndjson", "quotes", write_quotes_ndjson),
    "csv": ("quotes.csv", "quotes", write_csv),
    "parquet": ("quotes.parquet", "quotes", write_parquet),
    "theoddsapi": ("snapshots.ndjson", "theoddsapi", write_theoddsapi),
}


# --------------------------------------------------------------------------------------
# the comparisons
# --------------------------------------------------------------------------------------

def check_counters(got: EngineCounters, stats: ReplayStats, expected: EngineCounters, where: str) -> None:
    """Equal counters, an invalid price counted once: by the engine or as a reader skip."""
    skips = dict(stats.skips.counts)
    by_reader = skips.pop("invalid price", 0)
    assert skips == {}, f"{where}: skipped {skips}"
    assert stats.skips.files == [], f"{where}: whole files skipped {stats.skips.files}"
    assert dataclasses.replace(got, seen=got.seen + by_reader, invalid=got.invalid + by_reader) == expected, where


@contextlib.contextmanager
def batch_accel(accel: str) -> Iterator[None]:
    """The batch calls inside (replay_batch, ``replay --engine batch``) on the path ``accel``
    names: ``pure`` by DROPENGINE_PURE=1 (what ``accel="auto"`` then resolves to), ``fast`` the
    compiled kernel (require_fast: numba installed, DROPENGINE_PURE unset)."""
    old = os.environ.pop("DROPENGINE_PURE", None)
    try:
        if use_accel(accel) == "pure":
            os.environ["DROPENGINE_PURE"] = "1"
        yield
    finally:
        os.environ.pop("DROPENGINE_PURE", None)
        if old is not None:
            os.environ["DROPENGINE_PURE"] = old


def replay_both(path: Path, fmt: str, opts: dict[str, Any]) -> tuple[
    list[bytes], EngineCounters, ReplayStats, list[bytes], EngineCounters, ReplayStats
]:
    eng = DropEngine(**engine_opts(opts))
    s_stats = ReplayStats()
    s_alerts = wire(list(replay([path], eng, fmt, s_stats)))
    b_stats = ReplayStats()
    res = replay_batch([path], fmt, b_stats, **engine_opts(opts))
    return s_alerts, eng.counters, s_stats, batch_wire(res), res.counters, b_stats


def check_every_format(quotes: list[Quote], opts: dict[str, Any]) -> None:
    """Each format, each engine: the engine's alerts (bytes) and counters on the quotes as the
    format carries them; the stream and batch replays of a file count and skip alike."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, (file_name, fmt, write) in FORMATS.items():
            if name == "theoddsapi" and not theoddsapi_carries(quotes):
                continue
            path = Path(tmp) / file_name
            carried = decoded(name, write(quotes, path), opts)
            eng = DropEngine(**engine_opts(opts))
            expected = wire(eng.observe_many(carried))
            s_alerts, s_counters, s_stats, b_alerts, b_counters, b_stats = replay_both(path, fmt, opts)
            assert s_alerts == expected, f"{name} replay (stream)"
            check_counters(s_counters, s_stats, eng.counters, f"{name} replay (stream)")
            assert b_alerts == expected, f"{name} replay (batch)"
            check_counters(b_counters, b_stats, eng.counters, f"{name} replay (batch)")
            assert (b_counters, b_stats.skips.counts) == (s_counters, s_stats.skips.counts), (
                f"{name}: stream and batch replays count differently")


@pytest.mark.parametrize("accel", ACCELS)
@given(streams_with_options(detect_options(), min_len=1))
@settings(_FAST, max_examples=40)
def test_replay_every_format_equals_engine(accel: str, case: tuple[list[Quote], dict[str, Any]]) -> None:
    """Each format, each engine, the price drops of SPEC 3 (see :func:`check_every_format`)."""
    with batch_accel(accel):
        check_every_format(*case)


@pytest.mark.parametrize("accel", ACCELS)
@given(signal_streams_with_options(signal_options(), min_len=1))
@settings(_FAST, max_examples=20)
def test_replay_every_format_every_type(accel: str, case: tuple[list[Quote], dict[str, Any]]) -> None:
    """Line moves, line-only observations, steams and cooldowns: each format replays, on both
    engines, to the engine's alerts and counters (:func:`check_every_format`)."""
    with batch_accel(accel):
        check_every_format(*case)


@pytest.mark.parametrize("accel", ACCELS)
@given(streams_with_options(detect_options(), min_len=1))
@settings(_FAST, max_examples=25)
def test_replay_of_split_recordings_equals_engine(accel: str, case: tuple[list[Quote], dict[str, Any]]) -> None:
    """SPEC 6 fan-in: the keys split over two recordings (each key in one file, in its own
    order), replayed together (merged by clock), give the engine's alerts and counters. Only
    the interleaving of keys changes, which SPEC 3 says never matters, so the alerts compare
    as a multiset. The Parquet batch path merges in polars (its own code), the others with
    the k-way merge."""
    quotes, opts = case
    keys = sorted({q.key for q in quotes})
    assume(len(keys) >= 2)  # two non-empty recordings
    first = set(keys[::2])
    parts = ([q for q in quotes if q.key in first], [q for q in quotes if q.key not in first])
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("frames", "csv", "parquet"):
            file_name, fmt, write = FORMATS[name]
            paths = [Path(tmp) / f"{i}{file_name}" for i in range(2)]
            carried = [q for part, path in zip(parts, paths, strict=True) for q in write(part, path)]
            eng = DropEngine(**engine_opts(opts))
            expected = sorted(wire(eng.observe_many(carried)))
            s_stats = ReplayStats()
            s_eng = DropEngine(**engine_opts(opts))
            assert sorted(wire(list(replay(paths, s_eng, fmt, s_stats)))) == expected, f"{name} (stream)"
            check_counters(s_eng.counters, s_stats, eng.counters, f"{name} (stream)")
            b_stats = ReplayStats()
            with batch_accel(accel):
                res = replay_batch(paths, fmt, b_stats, **engine_opts(opts))
            assert sorted(batch_wire(res)) == expected, f"{name} (batch)"
            check_counters(res.counters, b_stats, eng.counters, f"{name} (batch)")


def cli_args(opts: dict[str, Any]) -> list[str]:
    args = ["--threshold", repr(opts["threshold"]), "--direction", opts["direction"],
            "--reference", opts["reference"], "--unit", opts["unit"], "-q"]
    for k, v in engine_opts(opts).items():
        if k in ("sports", "event_id", "bookmakers", "markets", "kinds", "types", "line_threshold", "steam_books",
                 "steam_threshold", "steam_groups", "key_numbers"):
            args += [f"--{k.replace('_', '-')}", str(v)]
        elif k in ("steam_window_ms", "cooldown_ms"):  # the CLI takes seconds
            args += ["--steam-window" if k == "steam_window_ms" else "--cooldown", repr(v / 1000)]
    return args


def run_cli(path: Path, fmt: str, engine: str, opts: dict[str, Any], all_invalid: bool = False) -> bytes:
    """stdout of ``dropengine replay``. Exit status 0; 1 when every quote's price is invalid
    (the CLI's "no usable quotes" rule, whether the reader or the engine judged them)."""
    result = CliRunner().invoke(main, ["replay", str(path), "--format", fmt, "--engine", engine, *cli_args(opts)])
    ok = (1,) if all_invalid else (0,)
    assert result.exit_code in ok, (result.exit_code, result.output, result.exception)
    return result.stdout_bytes


def _all_invalid(quotes: list[Quote]) -> bool:
    return all(q.price is not None and not is_valid_price(q.price)
               for q in quotes)


@pytest.mark.parametrize("accel", ACCELS)
@given(streams_with_options(detect_options(reprime=(True,)), min_len=1))
@settings(_FAST, max_examples=15)
def test_cli_replay_equals_engine(accel: str, case: tuple[list[Quote], dict[str, Any]]) -> None:
    """``dropengine replay --engine stream|batch`` prints exactly the engine's alerts as NDJSON
    (frames and CSV, ``--format auto``; the CLI has no re-priming switch, so the engine re-primes)."""
    quotes, opts = case
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("frames", "csv"):
            file_name, _, write = FORMATS[name]
            path = Path(tmp) / file_name
            carried = write(quotes, path)
            expected = encode_alerts(DropEngine(**engine_opts(opts)).observe_many(carried))
            # --format auto: the CLI tells the format from the file as a user's run does
            bad = _all_invalid(carried)
            if accel == "pure":  # the stream engine needs no second run
                assert run_cli(path, "auto", "stream", opts, bad) == expected, f"{name} --engine stream"
            with batch_accel(accel):
                assert run_cli(path, "auto", "batch", opts, bad) == expected, f"{name} --engine batch"


@pytest.mark.parametrize("accel", ACCELS)
@given(signal_streams_with_options(signal_options(reprime=(True,)), min_len=1))
@settings(_FAST, max_examples=10)
def test_cli_replay_every_type(accel: str, case: tuple[list[Quote], dict[str, Any]]) -> None:
    """``dropengine replay --types ... --line-threshold ... --steam-* --cooldown --key-numbers``
    prints exactly the engine's alerts of every type (frames and CSV, both engines)."""
    quotes, opts = case
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("frames", "csv"):
            file_name, _, write = FORMATS[name]
            path = Path(tmp) / file_name
            carried = decoded(name, write(quotes, path), opts)
            expected = encode_alerts(DropEngine(**engine_opts(opts)).observe_many(carried))
            bad = _all_invalid(carried)
            if accel == "pure":  # the stream engine needs no second run
                assert run_cli(path, "auto", "stream", opts, bad) == expected, f"{name} --engine stream"
            with batch_accel(accel):
                assert run_cli(path, "auto", "batch", opts, bad) == expected, f"{name} --engine batch"


# --------------------------------------------------------------------------------------
# the exact cases of issue-11 defects 2 and 3
# --------------------------------------------------------------------------------------

def _q(price: int | float | None, lu: int) -> Quote:
    sport, home, away, commence = EVENTS["ev1"]
    return Quote(sport, "ev1", "pinnacle", "h2h_home", price, lu, home_team=home, away_team=away,
                 commence_time=commence)


def test_finding_g3_line_only_quote_through_a_vendor_row(tmp_path: Path) -> None:
    """SPEC 10: a line-only observation written as a vendor row reads back as one (the line
    field without the price field), not as a suspension (a null price field). Golden finding G3:
    ``vendor_row`` wrote the null price field until 2fab512 (a strict xfail here until then)."""
    q = Quote("americanfootball_nfl", "E1", "fanduel", "spread_home@-3", None, 1000, line_only=True)
    path = tmp_path / "rec.ndjson"
    write_frames([q], path)
    engine = DropEngine(types="line_move")
    list(replay([path], engine, "frames"))
    assert (engine.counters.line_seen, engine.counters.line_suspended, engine.counters.line_primed) == (1, 0, 1)


def test_defect2_parquet_counted_alike(tmp_path: Path) -> None:
    """Issue 11 defect 2 (fixed in 6534465): replay counted an invalid Parquet price as a
    reader skip (seen 2, invalid 0), replay --engine batch as engine invalid (seen 3, invalid 1)."""
    path = tmp_path / "q.parquet"
    write_parquet([_q(-110, 1000), _q(50, 2000), _q(-120, 3000)], path)
    _, s_counters, s_stats, _, b_counters, b_stats = replay_both(path, "quotes", {"threshold": 10})
    assert (b_counters, b_stats.skips.counts) == (s_counters, s_stats.skips.counts)


def test_defect3_batch_keeps_price_types(tmp_path: Path) -> None:
    """Issue 11 defect 3: ``replay --engine batch`` printed every price as a float (``-140.0``)
    when one price of the recording was fractional (library fixed in 6534465,
    ``BatchResult.drops()``; CLI in bb55c27; an xfail(strict) here until then)."""
    path = tmp_path / "rec.ndjson"
    quotes = write_frames([_q(-110, 1000), _q(-140, 2000), _q(-112.5, 3000), _q(-130, 4000)], path)
    expected = encode_alerts(DropEngine(threshold=10).observe_many(quotes))
    assert expected == encode_drops([a for a in DropEngine(threshold=10).observe_many(quotes) if type(a) is Drop])
    assert b'"prev":-110,"new":-140' in expected  # integers stay integers (SPEC 4)
    assert encode_drops(replay_batch([path], "frames", threshold=10).drops()) == expected
    assert run_cli(path, "frames", "stream", {"threshold": 10, "direction": "both", "reference": "last",
                                              "unit": "cents"}) == expected
    assert run_cli(path, "frames", "batch", {"threshold": 10, "direction": "both", "reference": "last",
                                             "unit": "cents"}) == expected


def test_finding2_quote_table_ndjson_keeps_an_invalid_price_invalid(tmp_path: Path) -> None:
    """SPEC 3 rule 2: an invalid price (NaN) is skipped and leaves the key as it was; rule 3: a
    null suspends it. A quote table written and read back must keep the difference
    (conformance finding F2, fixed in 0f8e362: the NDJSON writer wrote NaN as ``null``)."""
    quotes = [_q(-110, 1000), _q(math.nan, 2000), _q(-130, 3000)]
    eng = DropEngine(threshold=10)
    expected = wire(eng.observe_many(quotes))
    path = tmp_path / "q.ndjson"
    write_quote_table(path, quotes)
    stats = ReplayStats()
    got_eng = DropEngine(threshold=10)
    assert wire(list(replay([path], got_eng, "quotes", stats))) == expected  # no re-prime: -110 -> -130 alerts
    check_counters(got_eng.counters, stats, eng.counters, "quote NDJSON")
