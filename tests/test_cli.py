"""The ``dropengine replay`` command: output, summary, skip report, flags, output files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from dropengine.cli.group import main

from .conftest import FIXTURES

GOLDEN = FIXTURES / "golden"
RULES = str(GOLDEN / "rules.quotes.ndjson")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), prog_name="dropengine")
    return result.exit_code, result.stdout, result.stderr


def test_replay_prints_alerts_as_json_lines_and_a_summary_on_stderr() -> None:
    code, out, err = invoke("replay", RULES)
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 8 and all(x["type"] == "odds_drop" for x in lines)
    assert "alerts" in err and "stale" in err and "primed" in err
    # the first skipped rows are reported with file and line
    assert "rules.quotes.ndjson:18: invalid price" in err  # 'abc'; +50 on line 17 is the engine's invalid
    assert "rules.quotes.ndjson:26: bad json" in err
    assert "rules.quotes.ndjson:28: bad time" in err


def test_quiet_keeps_stderr_empty() -> None:
    code, out, err = invoke("replay", "-q", RULES)
    assert code == 0 and err == "" and len(out.splitlines()) == 8


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--threshold", "0"], "--threshold"),
        (["--threshold", "-5"], "--threshold"),
        (["--threshold", "ten"], "--threshold"),
        (["--direction", "up"], "--direction"),
        (["--reference", "open"], "--reference"),
        (["--unit", "pct"], "--unit"),
        (["--format", "xml"], "--format"),
        (["--kinds", "games"], "--kinds"),
        (["--bookmakers", ","], "--bookmakers"),
        (["--output", "alerts.txt"], "--output"),
    ],
)
def test_bad_flag_values_exit_2_naming_the_flag(args: list[str], flag: str) -> None:
    code, out, err = invoke("replay", *args, RULES)
    assert code == 2
    assert flag in err
    assert out == ""


def test_prob_threshold_above_100_names_the_threshold() -> None:
    code, _, err = invoke("replay", "--unit", "prob", "--threshold", "150", RULES)
    assert code == 2 and "threshold" in err


def test_missing_path_exits_2() -> None:
    code, _, err = invoke("replay", "no/such/file.ndjson")
    assert code == 2 and "no/such/file.ndjson" in err


def test_unrecognisable_file_is_reported_suggesting_format_and_nothing_usable_exits_1(tmp_path: Path) -> None:
    # issue 10: a file whose format cannot be told is a reported skip, not a usage error;
    # with nothing else to read, no quote was usable: exit 1 (2 stays for usage errors)
    odd = tmp_path / "notes.txt"
    odd.write_text("hello\nworld\n")
    code, _, err = invoke("replay", str(odd))
    assert code == 1 and "--format" in err and "notes.txt" in err


@pytest.mark.parametrize("suffix", [".ndjson", ".csv", ".parquet"])
def test_output_file_by_extension(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"alerts{suffix}"
    code, out, err = invoke("replay", RULES, "--output", str(target))
    assert code == 0 and out == ""
    assert f"alerts written to {target}" in err
    if suffix == ".ndjson":
        rows = [json.loads(x) for x in target.read_text().splitlines()]
    elif suffix == ".csv":
        rows = pl.read_csv(target).to_dicts()
    else:
        rows = pl.read_parquet(target).to_dicts()
    assert [r["delta"] for r in rows] == [-12, -10, 10, 10, -15, -10.0, 15, -20]
    assert [r["side"] for r in rows][-2:] == ["player_points:O:Neal @ LA:over@24.5", "h2h_home"]
    assert rows[6]["player"] == "O:Neal @ LA"


def test_filters_reach_the_engine() -> None:
    code, out, _ = invoke("replay", "-q", "--direction", "toward_dog", "--reference", "anchor", RULES)
    assert code == 0
    assert [json.loads(x)["delta"] for x in out.splitlines()] == [15, 10, 15]
    code, out, _ = invoke("replay", "-q", "--event-id", "E2", "--threshold", "20", RULES)
    assert [json.loads(x)["event_id"] for x in out.splitlines()] == ["E2"]
    # In probability points: -120 -> -132 is 54.55% -> 56.90% (2.35 pts), +105 -> -105 is
    # 48.78% -> 51.22% (2.44), +100 -> +110 is 50.00% -> 47.62% (2.38), -110 -> -125 (3.17),
    # -112.5 -> -122.5 (2.12), -110 -> +105 (3.60), +150 -> +130 (3.48): all >= 2; but
    # -150 -> -140 is 60.00% -> 58.33% (1.67) and stays quiet. At 5 points nothing fires.
    code, out, _ = invoke("replay", "-q", "--unit", "prob", "--threshold", "2", RULES)
    sides = [json.loads(x)["side"] for x in out.splitlines()]
    assert code == 0 and len(sides) == 7 and "total_over@220.5" not in sides
    code, out, _ = invoke("replay", "-q", "--unit", "prob", "--threshold", "5", RULES)
    assert code == 0 and out == ""


def test_forced_format_and_several_paths() -> None:
    code, out, _ = invoke(
        "replay", "-q", "--format", "frames", str(GOLDEN / "frames.ndjson"),
    )
    assert code == 0 and len(out.splitlines()) == 4
    code, out, err = invoke("replay", str(GOLDEN / "frames.ndjson"), str(GOLDEN / "theoddsapi"))
    assert code == 0 and len(out.splitlines()) == 7
    flat = " ".join(err.split())
    assert "frames.ndjson (frames)" in flat and "2025-11-09T120000Z.json (theoddsapi)" in flat


def test_help_explains_the_formats() -> None:
    code, out, _ = invoke("replay", "--help")
    assert code == 0
    for word in ("--format", "--threshold", "--reference", "--output", "The Odds API", "SSE"):
        assert word in out


def test_progress_bar_on_a_terminal_for_large_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Large input on a terminal shows a progress bar on stderr; a pipe never gets one."""
    import dropengine.cli.replay as cli

    big = tmp_path / "big.ndjson"
    big.write_bytes((GOLDEN / "frames.ndjson").read_bytes() * 50)
    monkeypatch.setattr(cli, "PROGRESS_MIN_BYTES", 1000)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    code, out, err = invoke("replay", str(big))
    assert code == 0 and "reading" in err
    assert len(out.splitlines()) == 4  # repeated lines are re-observations, not new moves
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    monkeypatch.setenv("TTY_INTERACTIVE", "0")
    code, out, err = invoke("replay", str(big))
    assert code == 0 and "reading" not in err


@pytest.mark.parametrize(
    "name", ["rules.quotes.parquet", "frames.ndjson", "capture.sse", "theoddsapi", "theoddsapi_snapshots.ndjson"]
)
def test_batch_engine_prints_the_same_bytes(name: str) -> None:
    _, stream_out, _ = invoke("replay", "-q", str(GOLDEN / name))
    code, batch_out, _ = invoke("replay", "-q", "--engine", "batch", str(GOLDEN / name))
    assert code == 0 and batch_out == stream_out and stream_out


def test_batch_engine_on_a_mixed_int_and_float_table() -> None:
    """A column holds one type: values equal the stream's, integers print as floats (README)."""
    _, stream_out, _ = invoke("replay", RULES)
    code, batch_out, batch_err = invoke("replay", "--engine", "batch", RULES)
    assert code == 0
    s = [json.loads(x) for x in stream_out.splitlines()]
    b = [json.loads(x) for x in batch_out.splitlines()]
    assert s == b  # JSON numbers compare by value: -120 == -120.0
    assert "invalid price" in batch_err and "bad json" in batch_err


def test_batch_engine_reports_rejected_parquet_rows() -> None:
    code, _, err = invoke("replay", "--engine", "batch", str(GOLDEN / "rules.quotes.parquet"))
    assert code == 0
    assert "rules.quotes.parquet:row 25: missing field" in err
    # +50 (row 17) and -99 are counted invalid by the engine, as on the stream path: no skip
    assert "invalid price" not in err and re.search(r"invalid\s+2\n", err)


def test_simulate_writes_a_replayable_recording_byte_identically(tmp_path: Path) -> None:
    args = ["simulate", "--events", "2", "--books", "3", "--hours", "4", "--props", "--seed", "11"]
    a, b = tmp_path / "a.ndjson.gz", tmp_path / "b.ndjson.gz"
    assert invoke(*args, "--out", str(a))[0] == 0
    code, _, err = invoke(*args, "--out", str(b))
    assert code == 0 and "envelopes" in err and "quotes" in err
    assert a.read_bytes() == b.read_bytes()
    code, out, err = invoke("replay", str(a))
    assert code == 0 and out and "skipped" in err
    assert invoke("simulate", "--seed", "12", "--events", "2", "--books", "3", "--hours", "4", "--out",
                  str(tmp_path / "c.ndjson.gz"))[0] == 0
    assert (tmp_path / "c.ndjson.gz").read_bytes() != a.read_bytes()


@pytest.mark.parametrize(
    ("args", "flag"),
    [(["--events", "0"], "--events"), (["--books", "99"], "--books"), (["--hours", "-1"], "--hours"),
     (["--sport", "curling"], "--sport"), (["--out", "x.txt"], "--out")],
)
def test_simulate_bad_values_exit_2_naming_the_flag(args: list[str], flag: str, tmp_path: Path) -> None:
    full = ["simulate", "--out", str(tmp_path / "s.ndjson"), *args]
    code, _, err = invoke(*full)
    assert code == 2 and flag in err
