"""critic22's C22-2: a compiled detection of price drops alone without a cooldown (the CLI's default)
never loads ``dropengine.fast.signals``: bbb2e7c had the passes' caller import it on every compiled run
(~9 ms). A run with line moves (the signals path, whose plain routing is the module's ``Routed``), a
cooldown or steam loads it, as before. Run in a child process: the module may be loaded in this one
already."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import require_fast

_CHILD = textwrap.dedent(
    """
    import sys
    import polars as pl
    from dropengine.analysis.batch import detect_counted

    quotes = pl.DataFrame({
        "sport_key": ["s"] * 4, "event_id": ["e"] * 4, "bookmaker": ["b"] * 4,
        "side": ["h2h_home", "spread_home@-3", "h2h_home", "spread_home@-4"], "price": [-110, -110, -150, -110],
        "last_update": [1, 1, 2, 2], "kind": ["game"] * 4, "market_key": ["h2h", "spreads", "h2h", "spreads"],
        "line": [None, -3.0, None, -4.0],
    })
    got = detect_counted(quotes, accel="fast", threshold=10, types=sys.argv[1], cooldown_ms=int(sys.argv[2]))
    print(got.counters.detected + got.counters.line_detected, "dropengine.fast.signals" in sys.modules)
    """
)


@pytest.mark.parametrize(
    ("types", "cooldown", "loaded"),
    [
        ("odds_drop", 0, False),
        ("line_move", 0, True),
        ("odds_drop,line_move", 0, True),
        ("odds_drop", 60, True),
        ("steam", 0, True),
    ],
)
def test_the_signals_pass_is_loaded_only_where_moves_are_routed(types: str, cooldown: int, loaded: bool) -> None:
    require_fast()
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, types, str(cooldown)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    fired, signals_loaded = done.stdout.split()
    assert int(fired) >= 1 and signals_loaded == str(loaded), done.stdout
