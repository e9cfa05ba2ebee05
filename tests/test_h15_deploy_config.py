"""``dropengine serve --config FILE`` and ``DROPENGINE_SERVE_<OPTION>`` (issue 15, "Deployable").

Invariants: a flag wins over the environment, the environment over the file, the file over
the default, option by option; a key is a long option name with ``-`` or ``_``; an unknown key,
a key given twice, a value of the wrong TOML type or one the option refuses stops ``serve``
with a usage error (exit 2) naming the key and the file; deploy/serve.example.toml loads and
names every option. (A real ``serve --config`` process answers in test_h15_deploy_asyncapi.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.core import ParameterSource
from click.testing import CliRunner

from dropengine.cli import main
from dropengine.cli.serve import ENV_PREFIX, serve_cmd

from .conftest import ROOT

EXAMPLE = ROOT / "deploy" / "serve.example.toml"
#: The options that keep a variable of their own (shared with other commands: secrets, the bot API).
OWN_VARIABLES = {"upstream-key": "DROPENGINE_UPSTREAM_KEY", "webhook-secret": "DROPENGINE_WEBHOOK_SECRET",
                 "telegram-token": "DROPENGINE_TELEGRAM_TOKEN", "telegram-base-url": "DROPENGINE_TELEGRAM_BASE_URL"}


@pytest.fixture(autouse=True)
def _no_serve_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own DROPENGINE_SERVE_* must not leak into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def parse(*args: str) -> click.Context:
    """``serve``'s parameters as the command would get them (not run)."""
    return serve_cmd.make_context("serve", list(args))


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.toml"
    path.write_text(text)
    return path


def usage_error(*args: str) -> str:
    result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code == 2, result.output
    return result.output


def option_keys() -> set[str]:
    return {next(o for o in p.opts if o.startswith("--"))[2:] for p in serve_cmd.params
            if isinstance(p, click.Option) and p.expose_value and not p.hidden}


def test_the_example_loads_and_names_every_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # its paths are read from the current directory, as the flags'
    ctx = parse("--config", str(EXAMPLE))
    p = ctx.params
    assert p["source_spec"] == "replay:fixtures/demo_nba_frames.ndjson" and p["speed"] == 60.0
    assert p["port"] == 8080 and p["buffer_size"] == 10000 and p["cors_origin"] == ("http://127.0.0.1:5173",)
    assert p["steam_books"] == 3 and p["steam_window"] == 300
    assert ctx.get_parameter_source("port") == ParameterSource.DEFAULT_MAP
    named = set(re.findall(r"^#? ?([a-z][a-z_-]*) =", EXAMPLE.read_text(), re.M))
    assert named == option_keys()  # set or commented out, every option is shown (and nothing else)


def test_flags_beat_the_environment_which_beats_the_file_which_beats_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = toml(tmp_path, 'port = 1111\nbuffer-size = 5\nmax_pending = 7\nlog-level = "debug"\n')
    monkeypatch.setenv("DROPENGINE_SERVE_PORT", "2222")
    monkeypatch.setenv("DROPENGINE_SERVE_BUFFER_SIZE", "6")
    ctx = parse("--config", str(path), "--port", "3333")
    p = ctx.params
    assert (p["port"], p["buffer_size"], p["max_pending"], p["log_level"]) == (3333, 6, 7, "debug")
    assert p["send_timeout"] == 10.0  # in neither: the default
    sources = {n: ctx.get_parameter_source(n) for n in ("port", "buffer_size", "max_pending", "send_timeout")}
    assert sources == {"port": ParameterSource.COMMANDLINE, "buffer_size": ParameterSource.ENVIRONMENT,
                       "max_pending": ParameterSource.DEFAULT_MAP, "send_timeout": ParameterSource.DEFAULT}
    monkeypatch.delenv("DROPENGINE_SERVE_PORT")
    assert parse("--config", str(path)).params["port"] == 1111
    monkeypatch.setenv("DROPENGINE_SERVE_CONFIG", str(path))  # the file itself from the environment
    assert parse().params["max_pending"] == 7


def test_every_option_has_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROPENGINE_SERVE_CORS_ORIGIN", "https://a.example https://b.example")
    monkeypatch.setenv("DROPENGINE_SERVE_SOURCE", "replay:x.ndjson")
    monkeypatch.setenv("DROPENGINE_SERVE_STEAM_BOOKS", "4")
    p = parse().params
    assert p["cors_origin"] == ("https://a.example", "https://b.example") and p["source_spec"] == "replay:x.ndjson"
    assert p["steam_books"] == 4
    for param in serve_cmd.params:
        if isinstance(param, click.Option):
            long = next(o for o in param.opts if o.startswith("--"))[2:]
            want = OWN_VARIABLES.get(long, ENV_PREFIX + long.upper().replace("-", "_"))
            assert param.envvar == want, long
    assert "DROPENGINE_SERVE_<OPTION>" in CliRunner().invoke(main, ["serve", "--help"]).output


def test_dash_and_underscore_keys_are_one_setting(tmp_path: Path) -> None:
    assert parse("--config", str(toml(tmp_path, "buffer_size = 9\nstate-every = 2\n"))).params["buffer_size"] == 9
    out = usage_error("--config", str(toml(tmp_path, "buffer_size = 9\nbuffer-size = 8\n")))
    assert "'buffer_size' and 'buffer-size' are the same setting" in out


@pytest.mark.parametrize(("text", "key", "says"), [
    ("prot = 8080\n", "prot", "unknown key 'prot'"),
    ("config = 'x.toml'\n", "config", "unknown key 'config'"),
    ("[serve]\nport = 1\n", "serve", "unknown key 'serve'"),
    ('port = "8080"\n', "port", "'8080' is a string; it takes an integer"),
    ("port = 8080.5\n", "port", "8080.5 is a number; it takes an integer"),
    ("port = true\n", "port", "True is a boolean; it takes an integer"),
    ("port = 70000\n", "port", "70000 is not in the range"),
    ("buffer-age = -1\n", "buffer-age", "-1"),
    ("speed = \"fast\"\n", "speed", "'fast' must be a positive number or max"),
    ("speed = [1]\n", "speed", "is a list"),
    ("log-level = 3\n", "log-level", "it takes a string"),
    ("log-level = \"loud\"\n", "log-level", "'loud' is not one of"),
    ('cors-origin = ["https://a.example/"]\n', "cors-origin", "is not * or an origin"),
    ("cors-origin = [1]\n", "cors-origin", "it takes a string (or a list of them)"),
    ('keys = "no-such-keys.txt"\n', "keys", "does not exist"),
])
def test_a_bad_key_or_value_is_a_usage_error_naming_the_key_and_the_file(
        tmp_path: Path, text: str, key: str, says: str) -> None:
    path = toml(tmp_path, text)
    out = " ".join(usage_error("--config", str(path)).split())  # (click wraps long messages)
    assert f"--config {path}" in out and key in out and says in out, out


def test_a_file_that_is_not_toml_names_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, "port = \n")
    out = usage_error("--config", str(path))
    assert f"--config {path}: not valid TOML" in " ".join(out.split())


def test_a_bad_environment_value_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROPENGINE_SERVE_PORT", "eighty")
    assert "'eighty' is not a valid integer" in usage_error("--source", "replay:x")
    monkeypatch.delenv("DROPENGINE_SERVE_PORT")
    monkeypatch.setenv("DROPENGINE_SERVE_CORS_ORIGIN", "https://a.example/")
    out = " ".join(usage_error("--source", "replay:x").split())
    assert "--cors-origin" in out and "'https://a.example/' is not * or an origin" in out


def test_file_settings_of_a_source_are_refused_with_bus(tmp_path: Path) -> None:
    """A config's source-only keys count as given (not silently ignored by a frontend)."""
    out = usage_error("--config", str(toml(tmp_path, "speed = 5\n")), "--bus", "nats://127.0.0.1:1")
    assert "--speed and --bus" in out
