"""Breaking ``serve --config`` / ``DROPENGINE_SERVE_*`` / ``--cors-origin`` as a hostile operator
would (helper breaker15a, issue 15 "Deployable"). Findings: /tmp/notes/breaker15a.md.

Each ``xfail(strict=True)`` test is a defect seen today (it fails now and passes once fixed);
the plain tests are invariants checked on the way that no other test states.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from dropengine.cli import main
from dropengine.cli.serve import ENV_PREFIX, serve_cmd
from dropengine.core.errors import ConfigError
from dropengine.server.app import DropServer, ServeConfig, cors_origins
from dropengine.server.asgi import BackgroundServer
from dropengine.server.sources import ManualSource

from .conftest import ROOT

DEMO = ROOT / "fixtures" / "demo_nba_frames.ndjson"


@pytest.fixture(autouse=True)
def _no_serve_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def toml(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "serve.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def parse(*args: str) -> click.Context:
    return serve_cmd.make_context("serve", list(args))


def refused(*args: str) -> str:
    """The usage error ``serve`` gives for ``args`` (parsed only: nothing starts)."""
    with pytest.raises(click.UsageError) as info:
        parse(*args)
    return info.value.format_message()


# ---- B15A-1 (fixed in e500f68): a secret of the wrong TOML type was echoed in the error ----

@pytest.mark.parametrize(("text", "secret"), [
    ("upstream-key = 918273645546372819\n", "918273645546372819"),
    ('webhook-secret = ["s3cr3t-webhook-value"]\n', "s3cr3t-webhook-value"),
    ('telegram-token = { token = "123456:s3cr3t-bot-token" }\n', "s3cr3t-bot-token"),
])
def test_a_secret_of_the_wrong_type_is_refused_without_showing_it(tmp_path: Path, text: str, secret: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--config", str(toml(tmp_path, text))])
    assert result.exit_code == 2, result.output
    assert secret not in result.output, result.output


# ---- B15A-17 (fixed in d1738bb): a sink URL (it holds a Discord token) of the wrong TOML type was echoed ----

@pytest.mark.parametrize("text", [
    'sink = { url = "discord:https://discord.com/api/webhooks/123/T0KEN-SECRET" }\n',
    'sink = [["discord:https://discord.com/api/webhooks/123/T0KEN-SECRET"]]\n',
])
def test_a_sink_of_the_wrong_type_is_refused_without_showing_it(tmp_path: Path, text: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--config", str(toml(tmp_path, text))])
    assert result.exit_code == 2, result.output
    assert "T0KEN-SECRET" not in result.output, result.output


# ---- B15A-2 (fixed in 4af2a1b): a buffer size beyond a C ssize_t crashed with a traceback ----

def test_a_buffer_size_no_deque_can_hold_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused when parsed (flag, environment, file alike), before anything starts."""
    too_big = str(2**64)
    assert "--buffer-size" in refused("--buffer-size", too_big)
    assert "buffer-size" in refused("--config", str(toml(tmp_path, f"buffer-size = {too_big}\n")))
    monkeypatch.setenv("DROPENGINE_SERVE_BUFFER_SIZE", too_big)
    assert "--buffer-size" in refused()


# ---- B15A-3 (fixed in 1e6d947): NaN slipped through FloatRange ----

@pytest.mark.parametrize("how", ["flag", "env", "file"])
def test_max_gap_nan_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "flag":
        args = ["--max-gap", "nan"]
    elif how == "env":
        monkeypatch.setenv("DROPENGINE_SERVE_MAX_GAP", "nan")
        args = []
    else:
        args = ["--config", str(toml(tmp_path, "max-gap = nan\n"))]
    assert "max-gap" in refused(*args)


def test_nan_elsewhere_is_refused_before_serving() -> None:
    """Invariant (holds today): the other float settings refuse NaN at start (ServeConfig or the
    signal options), exit 2, no traceback."""
    for flag in ("--send-timeout", "--state-every", "--steam-threshold", "--buffer-age"):
        result = CliRunner().invoke(main, ["serve", "--source", f"replay:{DEMO}", "--port", "0", flag, "nan"])
        assert result.exit_code == 2, (flag, result.output)
        assert "Traceback" not in result.output, (flag, result.output)


# ---- B15A-4 (fixed in fbef0c9): origins accepted that no browser will ever send ----

@pytest.mark.parametrize(("given", "browser_sends"), [
    ("https://Odds.Example.com", "https://odds.example.com"),
    ("https://odds.example.com:443", "https://odds.example.com"),
    ("http://odds.example.com:80", "http://odds.example.com"),
    ("https://odds.example.com:99999", None),
])
def test_an_accepted_origin_is_one_a_browser_can_send(given: str, browser_sends: str | None) -> None:
    try:
        got = cors_origins([given])
    except ConfigError:
        return  # refused, naming it: fine
    assert browser_sends is not None and got == (browser_sends,), got


def test_every_origin_is_checked_even_after_a_wildcard() -> None:
    with pytest.raises(ConfigError, match="cors_origin"):
        cors_origins(["*", "https://odds.example.com/"])


@pytest.fixture
def server() -> Iterator[list[BackgroundServer]]:
    running: list[BackgroundServer] = []
    yield running
    for bg in running:
        bg.stop()


def test_an_upper_case_origin_either_is_refused_or_matches_the_browser(server: list[BackgroundServer]) -> None:
    srv = DropServer(ManualSource(), ServeConfig())
    try:
        srv.allow_origins(["https://Odds.Example.com"])
    except ConfigError:
        return
    bg = BackgroundServer(srv.app)
    server.append(bg)
    url = bg.start()
    r = httpx.get(url + "/healthz", headers={"Origin": "https://odds.example.com"}, timeout=5)
    assert r.headers.get("access-control-allow-origin") == "https://odds.example.com"


# ---- B15A-5 (fixed in 62e529e): a UTF-8 byte order mark ----

def test_a_config_with_a_byte_order_mark_loads_or_says_so(tmp_path: Path) -> None:
    path = toml(tmp_path, "\ufeffport = 8123\n".encode())
    try:
        ctx = parse("--config", str(path))
    except click.UsageError as exc:
        assert "BOM" in exc.format_message() or "byte order mark" in exc.format_message()
        return
    assert ctx.params["port"] == 8123


# ---- invariants checked on the way ----------------------------------------------------------------

def test_an_empty_file_and_a_comment_only_file_are_the_defaults(tmp_path: Path) -> None:
    for text in ("", "# nothing\n\n"):
        p = parse("--config", str(toml(tmp_path, text))).params
        assert (p["port"], p["buffer_size"], p["cors_origin"]) == (8080, 10_000, ())


def test_a_repeatable_option_is_replaced_whole_by_the_higher_level(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """File < env < flags for a repeatable option too, and never merged across levels (an operator
    who narrows the origins in the environment must not keep the file's)."""
    path = toml(tmp_path, 'cors-origin = ["https://a.example", "https://b.example"]\n')
    assert parse("--config", str(path)).params["cors_origin"] == ("https://a.example", "https://b.example")
    monkeypatch.setenv("DROPENGINE_SERVE_CORS_ORIGIN", "https://c.example")
    assert parse("--config", str(path)).params["cors_origin"] == ("https://c.example",)
    got = parse("--config", str(path), "--cors-origin", "https://d.example").params["cors_origin"]
    assert got == ("https://d.example",)


@pytest.mark.parametrize("text", ["[serve]\nport = 1\n", "port.value = 1\n", "cors-origin = [[\"https://a.example\"]]\n",
                                  "port = 1979-05-27\n"])
def test_nested_tables_dotted_keys_and_dates_are_refused_naming_the_key(tmp_path: Path, text: str) -> None:
    out = " ".join(refused("--config", str(toml(tmp_path, text))).split())
    assert "--config" in out and ("port" in out or "serve" in out or "cors-origin" in out), out


# ---- B15A-9 (fixed by fix15a): a password in the upstream URL was shown on /healthz and the start-up line ------------

def test_a_password_in_the_upstream_url_is_never_shown() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["DROPENGINE_UPSTREAM_KEY"] = "upstream-key-1"
    proc = subprocess.Popen([sys.executable, "-m", "dropengine", "serve", "--source",
                             "upstream:http://feeduser:pr0xy-pa55word@127.0.0.1:1", "--port", "0",
                             "--log-level", "warning"], stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert " at http://" in line, line
        url = line.split(" at ")[1].split()[0]
        health = httpx.get(url + "/healthz", timeout=5).text
    finally:
        proc.kill()  # (how it stops is not the point here)
        proc.wait(10)
    assert "pr0xy-pa55word" not in line, line
    assert "pr0xy-pa55word" not in health, health


# ---- B15A-11 (fixed in 258c805): the example switched to --bus as its comment says was refused ----

EXAMPLE = ROOT / "deploy" / "serve.example.toml"


def test_the_example_switched_to_the_bus_is_not_refused_for_its_own_settings(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    assert '\nsource = "' in text and '\n# bus = "' in text  # (the example as it is shipped)
    switched = text.replace('\nsource = "', '\n# source = "').replace('\n# bus = "', '\nbus = "')
    path = toml(tmp_path, switched)
    # a bus nobody listens on: past the flag checks serve waits for it; its first message is what counts
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    proc = subprocess.Popen([sys.executable, "-m", "dropengine", "serve", "--config", str(path), "--port", "0",
                             "--bus", "nats://127.0.0.1:1"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # up to the first message of serve's own (or EOF)
            lines.append(line)
            if line.startswith(("Error:", "dropengine serve")):
                break
    finally:
        proc.kill()
        proc.wait(10)
    err = "".join(lines)
    assert lines, "serve said nothing"
    assert "a frontend on the bus has no source" not in " ".join(err.split()), err


# ---- B15A-13 (fixed in 37dfa4a): an empty state path was a traceback ----

def test_an_empty_state_path_is_a_usage_error(tmp_path: Path) -> None:
    """Refused when parsed (file, flag), naming state, before anything starts."""
    assert "state" in refused("--config", str(toml(tmp_path, 'state = ""\n')))
    assert "--state" in refused("--state", "")
