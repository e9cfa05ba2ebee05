"""``dropengine watch --types ...`` (issue 12) against the project's real ``mock-upstream``
(uvicorn on loopback): the live run prints the line moves and steam that ``replay`` of the
same recording prints, line-only books included; bounded by ``--max-alerts``, ``--duration``
and a subprocess timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropengine.cli.group import main
from dropengine.core.keys import KeyTable
from dropengine.mock import MockUpstream, load_timeline
from dropengine.server.asgi import BackgroundServer

from .test_h12_cli_replay import ALL, nfl_frames

KEY = "CANARY-H12-WATCH-7d1c"
CLI = [sys.executable, "-m", "dropengine"]


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DROPENGINE_API_KEY": KEY}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("h12watch") / "nfl.ndjson"
    path.write_text("".join(json.dumps(f, separators=(",", ":")) + "\n" for f in nfl_frames()))
    return path


@pytest.fixture  # per test: the mock's timeline plays once, from the first connection
def upstream(recording: Path) -> Iterator[str]:
    mock = MockUpstream(load_timeline([recording]), speed=3000.0, max_gap=0.003, keys=KeyTable.single(KEY))
    with BackgroundServer(mock.app, secrets=mock.secrets()) as url:
        yield url


def _watch(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(["watch", "--sport", "americanfootball_nfl", "--base-url", url, "--stamp", "data",
                "--heartbeat-s", "1", "--retry-scale", "0.02", "--status-every", "0.2", "--duration", "30", *extra])


def test_watch_with_every_type_prints_what_replay_prints(upstream: str, recording: Path) -> None:
    expected = run(["replay", "--types", ALL, str(recording)]).stdout.splitlines()
    assert len(expected) == 10  # 6 line moves (one book line-only), 2 steam, 2 price drops
    watch = _watch(upstream, "--types", ALL, "--max-alerts", str(len(expected)))
    assert watch.returncode == 0, watch.stderr
    assert watch.stdout.splitlines() == expected
    # the status line counts each type (only with signals)
    assert "(odds_drop 2, line_move 6, steam 2)" in watch.stderr
    assert KEY not in watch.stdout + watch.stderr


def test_watch_default_types_print_only_price_drops_with_todays_status(upstream: str, recording: Path) -> None:
    expected = run(["replay", str(recording)]).stdout.splitlines()
    assert len(expected) == 2
    watch = _watch(upstream, "--max-alerts", "2")
    assert watch.returncode == 0, watch.stderr
    assert watch.stdout.splitlines() == expected
    assert "alerts 2" in watch.stderr and "odds_drop" not in watch.stderr and "line_move" not in watch.stderr


def test_watch_bad_signal_flags_exit_2_before_connecting() -> None:
    for args, shown in ((["--types", "steem"], "'steem'"), (["--steam-window", "-1"], "-1 seconds"),
                        (["--key-numbers", "x"], "'x'")):
        r = CliRunner().invoke(main, ["watch", "--sport", "americanfootball_nfl", "--base-url", "http://127.0.0.1:9",
                                      "--api-key", "k", *args])
        assert r.exit_code == 2 and shown in r.stderr and "Invalid value for" in r.stderr, r.stderr
