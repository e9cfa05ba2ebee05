"""``serve``'s settings (flags, ``DROPENGINE_SERVE_*``, ``--config``): fixes of breaker15a's
findings (helper fix15a, issue 15). The findings' own tests are tests/test_h15_breaker15a_*.py;
these state the rules behind them for every option they cover."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dropengine.cli import main
from dropengine.cli.serve import _MAY_HOLD_SECRETS, _SECRET_OPTIONS, ENV_PREFIX, serve_cmd


@pytest.fixture(autouse=True)
def _no_serve_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def _key(p: click.Parameter) -> str:
    return next(o for o in p.opts if o.startswith("--"))[2:]


def test_every_option_holding_a_secret_is_known_as_one() -> None:
    """An option whose check hides its value (the sinks' secrets) or that takes a key is in
    ``_SECRET_OPTIONS``, so a config error never echoes it (B15A-1)."""
    holding = {p.name for p in serve_cmd.params if isinstance(p, click.Option)
               and (getattr(p.callback, "__name__", "") == "_secret" or _key(p).endswith("-key"))}
    assert holding and holding <= _SECRET_OPTIONS, holding
    assert {p.name for p in serve_cmd.params} >= _SECRET_OPTIONS


@pytest.mark.parametrize("name", sorted(_SECRET_OPTIONS | _MAY_HOLD_SECRETS))
@pytest.mark.parametrize("value", ["918273645546372819", '["s3cr3t-in-a-list"]', '{ t = "s3cr3t-in-a-table" }',
                                   "1979-05-27T07:32:00Z", "true", "3.25"])
def test_a_secret_or_a_url_of_the_wrong_toml_type_is_refused_without_its_value(tmp_path: Path, name: str,
                                                                      value: str) -> None:
    param = next(p for p in serve_cmd.params if p.name == name)
    if isinstance(param, click.Option) and param.multiple and value.startswith('["'):
        return  # a list of strings is the right type there (the sink check's own message applies)
    key = _key(param)
    path = tmp_path / "serve.toml"
    path.write_text(f"{key} = {value}\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    out = " ".join(result.output.split())
    assert result.exit_code == 2, out
    assert f"{key}: the value is a" in out and "(the value is not shown)" in out, out
    for shown in ("918273645546372819", "s3cr3t", "1979", "3.25"):
        assert shown not in out, out


def test_a_non_secret_of_the_wrong_type_is_still_shown(tmp_path: Path) -> None:
    """Only secrets are hidden: the other keys keep naming the value (what to fix)."""
    path = tmp_path / "serve.toml"
    path.write_text('host = 127\n')
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code == 2 and "host: 127 is a number; it takes a string" in result.output, result.output


@pytest.mark.parametrize("command", ["serve", "ingest"])
@pytest.mark.parametrize("value", ["nan", "-nan", "inf", "-1"])
def test_max_gap_is_a_finite_non_negative_number_for_every_command_with_a_source(command: str, value: str) -> None:
    """``--max-gap`` is declared once (``source_options``) and checked as mock-upstream checks
    it: NaN passed click's FloatRange and silently turned the cap off (B15A-3)."""
    result = CliRunner().invoke(main, [command, "--max-gap", value])
    out = " ".join(result.output.split())
    assert result.exit_code == 2 and "'--max-gap'" in out and "must be a non-negative number of seconds" in out, out


def test_a_finite_max_gap_is_kept() -> None:
    assert serve_cmd.make_context("serve", ["--max-gap", "0.25"]).params["max_gap"] == 0.25
    assert serve_cmd.make_context("serve", []).params["max_gap"] == 5.0


@pytest.mark.parametrize("flag", ["--buffer-size", "--max-pending"])
def test_a_count_no_container_can_hold_is_a_usage_error_and_the_largest_is_kept(flag: str) -> None:
    """Beyond ``sys.maxsize`` the hub's deque failed with an OverflowError traceback (B15A-2);
    every count up to it is still taken as given."""
    import sys

    result = CliRunner().invoke(main, ["serve", flag, str(sys.maxsize + 1)])
    assert result.exit_code == 2 and f"'{flag}'" in result.output, result.output
    name = flag[2:].replace("-", "_")
    assert serve_cmd.make_context("serve", [flag, str(sys.maxsize)]).params[name] == sys.maxsize


@pytest.mark.parametrize("how", ["flag", "file"])
def test_an_empty_state_path_is_refused_when_parsed(tmp_path: Path, how: str) -> None:
    """``state = ""`` (a blank template value) or ``--state ''`` names no file: a usage error
    naming --state, before anything starts (it was a ValueError traceback, B15A-13)."""
    if how == "flag":
        args = ["--state", ""]
    else:
        path = tmp_path / "serve.toml"
        path.write_text('state = ""\n')
        args = ["--config", str(path)]
    with pytest.raises(click.UsageError) as info:
        serve_cmd.make_context("serve", args)
    out = info.value.format_message()
    assert "state" in out and "an empty file name" in out, out
    kept = serve_cmd.make_context("serve", ["--state", str(tmp_path / "serve.state")]).params["state_path"]
    assert kept == tmp_path / "serve.state"


def test_a_config_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    """Windows editors save a UTF-8 BOM; tomllib refuses it, so it was 'Invalid statement (at
    line 1, column 1)' with no hint (B15A-5). The same file with and without it: the same settings."""
    text = 'port = 8123\ncors-origin = ["https://a.example"]\n'
    plain, marked = tmp_path / "plain.toml", tmp_path / "marked.toml"
    plain.write_text(text)
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode())
    got = [serve_cmd.make_context("serve", ["--config", str(p)]).params for p in (plain, marked)]
    assert got[0] == got[1] and got[1]["port"] == 8123


def test_a_config_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_bytes(b'host = "\xff"\n')
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code == 2 and "not valid TOML: not UTF-8" in " ".join(result.output.split()), result.output


def test_a_file_that_sets_bus_keeps_its_source_settings_unused_and_names_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B15A-11: a deployment's file switched to the bus (source commented, bus set) is not refused
    for its own source settings; they are named on stderr. The same settings as flags or from
    the environment are refused, and a file that does not choose the mode is refused naming it."""
    import dropengine.cli.serve as serve_module

    reached: list[str] = []
    monkeypatch.setattr(serve_module, "_serve_bus", lambda bus_url, *a: reached.append(bus_url))
    path = tmp_path / "serve.toml"
    path.write_text('bus = "nats://127.0.0.1:1"\nspeed = 60\nstate-every = 5.0\nsteam-books = 3\nport = 0\n')
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code == 0 and reached == ["nats://127.0.0.1:1"], result.output
    assert f"--config {path}: speed, state-every, steam-books: settings of a source, not used" in result.output
    for extra, env in ((["--speed", "2"], {}), ([], {"DROPENGINE_SERVE_STATE_EVERY": "7"})):
        result = CliRunner().invoke(main, ["serve", "--config", str(path), *extra], env=env)
        out = " ".join(result.output.split())
        assert result.exit_code == 2 and "and --bus: a frontend on the bus has no source" in out, out
        assert ("--speed" if extra else "--state-every") in out.split(" and --bus")[0], out
    source_only = tmp_path / "source.toml"
    source_only.write_text("speed = 60\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(source_only), "--bus", "nats://127.0.0.1:1"])
    out = " ".join(result.output.split())
    assert result.exit_code == 2 and "--speed and --bus" in out and f"(--speed: set by --config {source_only})" in out
    assert len(reached) == 1
