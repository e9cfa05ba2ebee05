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
