"""review13 fixes without a server: checkpoint options judged as DetectOptions (#12), the
bus codec's quote-epoch ids and sources (#2), detect's defaults are the serve engine's (#1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.bus import checkpoint as ckpt
from dropengine.core.alerts import SIGNALS
from dropengine.core.engine import DropEngine
from dropengine.core.errors import ConfigError, SnapshotError
from dropengine.core.options import DetectOptions

options_st = st.builds(
    lambda threshold, types, line, books: DetectOptions.build(
        threshold=threshold, types=types, line_threshold=line, steam_books=books),
    st.sampled_from([1, 10, 10.0, 12]),
    st.lists(st.sampled_from(sorted(SIGNALS)), min_size=1, unique=True).map(",".join),
    st.sampled_from([0.25, 0.5]),
    st.sampled_from([2, 3]),
)


def _cp(options: dict[str, object]) -> ckpt.Checkpoint:
    return ckpt.Checkpoint(1, 0, 2, 5, DropEngine().snapshot(), options, 0)


@settings(max_examples=60, deadline=None)
@given(saved=options_st, now=options_st)
def test_a_checkpoint_is_used_exactly_when_its_options_are_the_same(saved: DetectOptions, now: DetectOptions) -> None:
    cp = _cp(saved.as_dict())
    if saved == now:
        ckpt.check_options(cp, now)
    else:
        with pytest.raises(ConfigError, match="in the checkpoint"):
            ckpt.check_options(cp, now)


def test_options_are_compared_as_the_core_reads_them() -> None:
    """The same options written in another order (or spelled as the core normalises them)
    are the same options; an unreadable options field names the checkpoint."""
    now = DetectOptions.build(types="odds_drop,steam")
    ckpt.check_options(_cp({**now.as_dict(), "types": ["steam", "odds_drop"]}), now)
    with pytest.raises(SnapshotError, match=r"checkpoint p0\.2.*not readable"):
        ckpt.check_options(_cp({"threshold": 10, "bogus": 1}), DetectOptions())


def _detect_with(*args: str) -> DetectOptions | str:
    """The DetectOptions ``detect``'s flags build from ``args`` (or click's error text)."""
    import click
    from click.testing import CliRunner

    from dropengine.cli.bus import DETECT_DEFAULTS
    from dropengine.cli.options import detect_options

    got: list[DetectOptions] = []

    @click.command()
    @detect_options(defaults=DETECT_DEFAULTS)
    def cmd(detect: DetectOptions) -> None:
        got.append(detect)

    res = CliRunner().invoke(cmd, list(args))
    return got[0] if res.exit_code == 0 else res.output


def test_detect_defaults_are_the_serve_engines_and_other_commands_keep_the_cores() -> None:
    """review13 #1: a detector at its defaults detects exactly what `serve`'s engine does, so a
    `serve --bus` frontend can post-filter as `serve` does; replay's defaults are unchanged."""
    from click.testing import CliRunner

    from dropengine.cli.group import main
    from dropengine.server.ingest import ServeConfig

    serve = ServeConfig().detect_options()
    assert _detect_with() == serve
    assert _detect_with("--threshold", "25", "--types", "odds_drop") == DetectOptions.build(
        threshold=25, types="odds_drop", line_threshold=serve.line_threshold,
        steam_line_threshold=serve.steam_line_threshold)  # serve's steam threshold yields to a higher one
    assert _detect_with("--line-threshold", "1") == DetectOptions.build(
        threshold=serve.threshold, types=",".join(serve.types), line_threshold=1,
        steam_threshold=serve.steam_threshold)
    assert isinstance(_detect_with("--unit", "prob", "--threshold", "2"), DetectOptions)
    from dropengine.cli.bus import detect_cmd

    declared = {p.name: p.default for p in detect_cmd.params}
    assert (declared["threshold"], declared["direction"], declared["reference"]) == (
        serve.threshold, serve.filter.direction, serve.reference)
    text = CliRunner().invoke(main, ["detect", "--help"]).output
    assert "'dropengine serve'" in text and "post-filters" in text and "[default: 1]" in text
    assert "[default: 10]" in CliRunner().invoke(main, ["replay", "--help"]).output


@settings(max_examples=60, deadline=None)
@given(qseq=st.integers(1, 2**63 - 1), k=st.integers(0, 10**9 - 1),
       qepoch=st.none() | st.text("0123456789abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12))
def test_source_positions_round_trip_with_their_quote_epoch(qseq: int, k: int, qepoch: str | None) -> None:
    """review13 #2: the source header and message id carry the quote stream's epoch; a header
    without one (written before) still reads as (qseq, k)."""
    from dropengine.bus.codec import msg_id, parse_source, parse_source_epoch, source_header

    text = source_header(qseq, k, qepoch=qepoch)
    assert parse_source_epoch(text) == (qepoch, (qseq, k))
    assert parse_source(text) == (qseq, k)
    assert msg_id(1, 3, qseq, k, qepoch=qepoch) == f"p1.3.{text}"
    if qepoch is not None:  # ids of two quote epochs never collide in the duplicate window
        other = ("1" if qepoch[0] == "0" else "0") + qepoch[1:]
        assert msg_id(1, 3, qseq, k, qepoch=qepoch) != msg_id(1, 3, qseq, k, qepoch=other)
    with pytest.raises(ConfigError, match="qepoch"):
        source_header(qseq, k, qepoch="Not-an-epoch")
