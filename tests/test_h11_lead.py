"""Issue 11, lead: the detection settings have one list of names (core/options.py)."""

from __future__ import annotations

import inspect
from typing import Any

import polars as pl
import pytest

from dropengine import ConfigError, DetectOptions, DropEngine
from dropengine.analysis import batch
from dropengine.core.options import DetectKeywords, FilterKeywords

ENTRY_POINTS = {
    "DropEngine": lambda **kw: DropEngine(**kw),
    "DetectOptions.build": lambda **kw: DetectOptions.build(**kw),
    "batch.detect": lambda **kw: batch.detect(pl.DataFrame(), **kw),
    "batch.detect_counted": lambda **kw: batch.detect_counted(pl.DataFrame(), **kw),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("name", ["sport", "treshold", "book", "reprime"])
def test_a_misspelt_setting_is_refused_by_name(entry: str, name: str) -> None:
    """``**keywords`` takes any name at run time; a typo must not pass silently."""
    with pytest.raises(ConfigError, match=rf"^{name}: not a detection setting"):
        ENTRY_POINTS[entry](**{name: 1})


@pytest.mark.parametrize("entry", ["DropEngine", "batch.detect", "batch.detect_counted"])
@pytest.mark.parametrize("given", [{"threshold": 5}, {"direction": "toward_dog"}, {"kinds": "prop"},
                                   {"reprime_after_suspension": False}, {"unit": "prob"}])
def test_options_and_separate_settings_together_are_refused(entry: str, given: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"^options: give either options= or the separate settings"):
        ENTRY_POINTS[entry](options=DetectOptions(), **given)


@pytest.mark.parametrize("entry", ["DropEngine", "batch.detect", "batch.detect_counted"])
def test_options_of_the_wrong_type_are_named(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"^options: .* is not a DetectOptions"):
        ENTRY_POINTS[entry](options={"threshold": 5})


def test_every_entry_point_builds_the_same_options_from_the_same_settings() -> None:
    settings: dict[str, Any] = {"threshold": 2.5, "direction": "toward_dog", "reference": "anchor", "unit": "cents",
                                "sports": "nba", "kinds": "game", "reprime_after_suspension": False}
    want = DetectOptions.build(**settings)
    assert DropEngine(**settings).options == want
    frame = pl.DataFrame({"sport_key": ["nba"] * 2, "event_id": ["e"] * 2, "bookmaker": ["b"] * 2,
                          "side": ["h2h_home"] * 2, "price": [-110, -150], "last_update": [1, 2]})
    assert batch.detect_counted(frame, **settings).counters == batch.detect_counted(frame, want).counters


def test_the_keyword_lists_are_the_engines_parameters() -> None:
    """DropEngine names the first four explicitly (the API test pins them) and takes the rest as
    FilterKeywords; DetectKeywords is the union, the batch functions' keywords."""
    params = inspect.signature(DropEngine).parameters
    explicit = [p for p in params if params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert set(DetectKeywords.__optional_keys__) == set(explicit) | set(FilterKeywords.__optional_keys__)


def test_engineconfig_keeps_its_positional_fields_of_0_1() -> None:
    from dropengine import EngineConfig

    cfg = EngineConfig(5, "anchor", "cents", False)
    assert (cfg.threshold, cfg.reference, cfg.unit, cfg.reprime_after_suspension) == (5, "anchor", "cents", False)
    assert DropEngine(options=cfg).options is cfg


def test_a_detectoptions_in_the_threshold_place_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^threshold: got a DetectOptions; pass it as options="):
        DropEngine(DetectOptions())  # type: ignore[arg-type]


def test_a_number_in_batch_detects_options_place_says_threshold_is_a_keyword() -> None:
    with pytest.raises(ConfigError, match=r"a threshold is a keyword: threshold=10"):
        batch.detect(pl.DataFrame(), 10)  # type: ignore[arg-type]


DECIMAL_CSV = ("sport_key,event_id,bookmaker,side,price,last_update\n"
               "nba,e1,b,h2h_home,1.91,1\nnba,e1,b,h2h_home,2.05,2\n")


@pytest.mark.parametrize("args", [["replay"], ["replay", "--engine", "batch"], ["backtest"]])
def test_an_input_whose_every_price_the_engine_finds_invalid_exits_1_with_the_reason(
    tmp_path: Any, args: list[str]
) -> None:
    """0.1 skipped such rows in the readers and exited 1; the engine judges them now (SPEC 3
    rule 2), and zero usable input is still not success, with the decimal-odds hint."""
    from click.testing import CliRunner

    from dropengine.cli import main

    path = tmp_path / "decimal.csv"
    path.write_text(DECIMAL_CSV, encoding="utf-8")
    result = CliRunner().invoke(main, [*args, str(path)])
    assert result.exit_code == 1, result.output
    assert "all 2 prices are invalid American odds" in result.output
    assert "oddsFormat=american" in result.output


def test_one_valid_price_among_invalid_ones_is_usable(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from dropengine.cli import main

    path = tmp_path / "mixed.csv"
    path.write_text(DECIMAL_CSV + "nba,e1,b,h2h_away,-110,3\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["replay", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("value", ["a,,b", "a,", ",a", "a, ,b"])
def test_one_list_rule_an_empty_item_is_refused_everywhere(value: str) -> None:
    """The server answered 400 for ``bookmakers=a,,b`` while the CLI and the Python API dropped
    the empty item: one rule now (core.filters.parse_csv), the server's query included."""
    from dropengine.core.filters import AlertFilter
    from dropengine.formats.query import StreamQuery
    from dropengine.server.params import ParamError, parse_request

    with pytest.raises(ConfigError, match=r"^bookmakers: .* has an empty item"):
        DropEngine(bookmakers=value)
    with pytest.raises(ConfigError, match=r"^bookmakers: "):
        AlertFilter.build(bookmakers=value)
    with pytest.raises(ConfigError, match="bookmakers"):
        StreamQuery.build(bookmakers=value)
    with pytest.raises(ParamError, match="bookmakers"):
        parse_request({"bookmakers": value}, sport="basketball_nba")


@pytest.mark.parametrize(("args", "flag"), [
    (["watch", "--multi", "a,,b", "--base-url", "http://127.0.0.1:9"], "--multi"),
    (["serve", "--source", "upstream:http://127.0.0.1:9", "--sports", "a,,b", "--upstream-key", "k"], "--sports"),
    (["serve", "--source", "upstream:http://127.0.0.1:9", "--sports", ",", "--upstream-key", "k"], "--sports"),
    (["mock-upstream", "--replay", "fixtures/demo_nba_frames.ndjson", "--sports-extra", "a,,b"], "--sports-extra"),
])
def test_sport_lists_on_the_command_line_follow_the_one_list_rule(args: list[str], flag: str) -> None:
    """They split by hand and dropped empty items (watch --multi a,,b watched a and b)."""
    from click.testing import CliRunner

    from dropengine.cli import main

    result = CliRunner().invoke(main, args, env={"DROPENGINE_API_KEY": "k"})
    assert result.exit_code == 2, result.output
    assert flag in result.output and "empty" in result.output
