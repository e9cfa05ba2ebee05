"""The shared CLI options (dropengine.cli.options): declared once, judged once.

``replay``, ``backtest`` and ``watch`` take the detection options, ``record`` the filters.
Every command must reject a bad value with the same message (the core's, from
``DetectOptions.build``) and exit status 2, accept the same values, and describe each shared
option in ``--help`` with the same text. Before the options were shared, ``watch`` rejected
``--kinds prop,game`` that ``replay`` took, and worded ``--threshold 0`` and ``inf`` otherwise.
"""

from __future__ import annotations

import re
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.cli.group import main
from dropengine.core.errors import ConfigError
from dropengine.core.options import DetectOptions

from .conftest import FIXTURES

RULES = str(FIXTURES / "golden" / "rules.quotes.ndjson")
# Both a --sport and --all: a source error that watch and record raise only after their options
# passed, so an accepted value ends in "exactly one of" without any connection being tried.
SOURCE = ["--sport", "basketball_nba", "--all", "--base-url", "http://127.0.0.1:9", "--api-key", "k"]
ACCEPTED_BY_SOURCE = "exactly one of --sport KEY, --all, --multi"

DETECTING = {
    "replay": (["replay", "-q"], [RULES]),
    "backtest": (["backtest", "-q"], [RULES]),
    "watch": (["watch", *SOURCE], []),
}
FILTERING = {**DETECTING, "record": (["record", *SOURCE, "--out", "never.ndjson"], [])}
SHARED_DETECTION = ("threshold", "direction", "reference", "unit")
SHARED_FILTERS = ("event_id", "bookmakers", "markets", "kinds")


def run(command: str, flags: list[str]) -> tuple[int, str | None]:
    """Exit status and the ``Error:`` line (``None`` if there is none) of one command."""
    head, tail = FILTERING[command]
    result = CliRunner().invoke(main, [*head, *flags, *tail], prog_name="dropengine")
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    return result.exit_code, errors[0] if errors else None


def outcomes(commands: dict[str, Any], flags: list[str]) -> dict[str, tuple[int, str | None]]:
    return {name: run(name, flags) for name in commands}


def assert_one_verdict(commands: dict[str, Any], flags: list[str], flag: str) -> bool:
    """Every command rejects ``flags`` with one message naming ``flag`` (exit 2), or none
    complains about any shared option. Returns whether the value was rejected."""
    seen = outcomes(commands, flags)
    rejected = {n: line for n, (code, line) in seen.items() if line is not None and ACCEPTED_BY_SOURCE not in line}
    if not rejected:
        for name, (code, line) in seen.items():
            assert code == (2 if name in ("watch", "record") else 0), (name, flags, line)
        return False
    assert set(rejected) == set(commands), (flags, seen)
    assert len(set(rejected.values())) == 1, (flags, seen)
    assert all(code == 2 for code, _ in seen.values()), (flags, seen)
    assert f"'{flag}'" in next(iter(rejected.values())), (flags, seen)
    return True


@pytest.mark.parametrize(
    "flags",
    [
        ["--threshold", "0"], ["--threshold", "-5"], ["--threshold", "ten"], ["--threshold", "inf"],
        ["--threshold", "nan"], ["--unit", "prob", "--threshold", "150"], ["--direction", "up"],
        ["--reference", "open"], ["--unit", "pct"],
    ],
)
def test_a_bad_detection_option_gets_one_message_from_every_command(flags: list[str]) -> None:
    assert assert_one_verdict(DETECTING, flags, flags[-2])


@pytest.mark.parametrize("name", SHARED_FILTERS)
@pytest.mark.parametrize("value", [",", " , ", ""])
def test_an_empty_filter_gets_one_message_from_every_command(name: str, value: str) -> None:
    flag = "--" + name.replace("_", "-")
    assert assert_one_verdict(FILTERING, [flag, value], flag)


def test_the_core_words_the_message() -> None:
    """The CLI's message is the core's (one place), behind click's ``Invalid value for``."""
    with pytest.raises(ConfigError) as exc:
        DetectOptions.build(kinds="games")
    core = str(exc.value).removeprefix("kinds: ")
    for name in FILTERING:
        assert run(name, ["--kinds", "games"]) == (2, f"Error: Invalid value for '--kinds': {core}")


def test_kinds_in_any_order_are_accepted_everywhere() -> None:
    """watch took only game, prop or "game,prop" (a click.Choice): "prop,game" and
    "game, prop" were usage errors there and fine in replay."""
    for value in ("prop,game", "game, prop", "prop"):
        assert not assert_one_verdict(FILTERING, ["--kinds", value], "--kinds")


_KIND_WORDS = st.sampled_from(["game", "prop", "games", "", " ", "Game", "player", "h2h"])


@settings(max_examples=40)
@given(st.lists(_KIND_WORDS, min_size=1, max_size=3).map(",".join))
def test_kinds_one_verdict_for_any_value(value: str) -> None:
    assert_one_verdict(FILTERING, ["--kinds", value], "--kinds")


_THRESHOLDS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["ten", "", "1e400", "-0", "0x10", "1_000", " 7 ", "nan", "-inf"]),
)


@settings(max_examples=40)
@given(_THRESHOLDS, st.sampled_from(["cents", "prob"]))
def test_threshold_one_verdict_for_any_value(text: str, unit: str) -> None:
    assert_one_verdict(DETECTING, ["--unit", unit, "--threshold", text], "--threshold")


def _shared(command: click.Command, names: tuple[str, ...]) -> dict[str, tuple[Any, ...]]:
    out = {}
    for p in command.params:
        if isinstance(p, click.Option) and p.name in names:
            choices = getattr(p.type, "choices", None)
            out[p.name] = (tuple(p.opts), p.help, p.default, p.show_default, p.metavar, p.type.name,
                           tuple(choices) if choices is not None else None)
    return out


def test_every_command_declares_the_shared_options_identically() -> None:
    commands = {name: main.commands[name] for name in FILTERING}
    detection = {n: _shared(c, SHARED_DETECTION) for n, c in commands.items() if n in DETECTING}
    filters = {n: _shared(c, SHARED_FILTERS) for n, c in commands.items()}
    reference = detection["replay"]
    assert set(reference) == set(SHARED_DETECTION)
    assert all(d == reference for d in detection.values()), detection
    assert set(filters["replay"]) == set(SHARED_FILTERS)
    assert all(f == filters["replay"] for f in filters.values()), filters
    # --sports filters replay and backtest; watch and record choose sports with --sport/--multi/--all
    assert _shared(commands["replay"], ("sports",)) == _shared(commands["backtest"], ("sports",)) != {}


@pytest.mark.parametrize("command", sorted(FILTERING))
def test_help_lists_the_shared_options_with_the_same_text(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"], prog_name="dropengine", terminal_width=200)
    assert result.exit_code == 0
    text = re.sub(r"\s+", " ", result.stdout)
    names = SHARED_FILTERS + (SHARED_DETECTION if command in DETECTING else ())
    for p in main.commands["replay"].params:
        if isinstance(p, click.Option) and p.name in names:
            assert p.help is not None
            assert f"{p.opts[0]} " in text and re.sub(r"\s+", " ", p.help) in text, (command, p.name)


FLAGS = ["--threshold", "2.5", "--direction", "toward_dog", "--reference", "anchor", "--kinds", "prop, game",
         "--bookmakers", "pinnacle,fanduel", "--event-id", "E1"]
EXPECTED = DetectOptions.build(2.5, "toward_dog", "anchor", kinds="prop, game", bookmakers="pinnacle,fanduel",
                               event_id="E1")


def _options_of(kwargs: dict[str, Any]) -> DetectOptions:
    """The DetectOptions a detection call got, as options= or as its separate settings."""
    if kwargs.get("options") is not None:
        return kwargs["options"]  # type: ignore[no-any-return]
    return DetectOptions.build(**{k: v for k, v in kwargs.items() if k != "timestamp_column"})


def test_each_command_passes_on_the_one_options_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flags become one DetectOptions, equal to what the Python API builds from the same
    values, and that is what each engine gets (stream, batch, backtest, live)."""
    import dropengine.cli.backtest as backtest_mod
    import dropengine.cli.live as live_mod
    import dropengine.cli.replay as replay_mod

    seen: dict[str, DetectOptions] = {}

    def stream(paths: Any, engine: Any, *args: Any, **kwargs: Any) -> Any:
        seen["replay"] = engine.config
        return iter(())

    def batch(*args: Any, **kwargs: Any) -> Any:
        seen["replay --engine batch"] = _options_of(kwargs)
        raise KeyboardInterrupt  # stops the command right there (exit 130), nothing else to run

    def backtest(table: Any, where: Any, cfg: Any, options: DetectOptions) -> Any:
        seen["backtest"] = options
        raise ConfigError("stop here")

    def live(sports: Any, config: Any, engine: Any, *args: Any, **kwargs: Any) -> None:
        seen["watch"] = engine.config
        seen["watch upstream"] = config.filters

    monkeypatch.setattr(replay_mod, "replay", stream)
    monkeypatch.setattr(replay_mod, "replay_batch", batch)
    monkeypatch.setattr(backtest_mod, "replay_backtest", backtest)  # (run_backtest in the rule's order)
    monkeypatch.setattr(live_mod, "_live", live)
    runner = CliRunner()
    runner.invoke(main, ["replay", "-q", *FLAGS, RULES])
    runner.invoke(main, ["replay", "-q", "--engine", "batch", *FLAGS, RULES])
    runner.invoke(main, ["backtest", "-q", *FLAGS, RULES])
    source = [a for a in SOURCE if a != "--all"]
    result = runner.invoke(main, ["watch", *source, *FLAGS])
    assert result.exit_code == 0, result.output
    query = seen.pop("watch upstream")
    assert seen == {"replay": EXPECTED, "replay --engine batch": EXPECTED, "backtest": EXPECTED, "watch": EXPECTED}
    # the filters narrow the upstream's stream too: one event id, lists as sets (sorted)
    assert (query.event_id, query.bookmakers, query.kinds) == ("E1", ("fanduel", "pinnacle"), ("game", "prop"))
