"""Issue 12, lead: small pieces outside the helpers' files."""

from __future__ import annotations

import pytest

from dropengine.core.alerts import SIGNALS
from dropengine.formats.jsonline import line_format


@pytest.mark.parametrize("kind", SIGNALS)
def test_every_alert_type_reads_as_alerts_not_frames(kind: str) -> None:
    # a saved stream of line moves or steam is dropengine's own output, not vendor frames
    assert line_format({"type": kind, "sport_key": "americanfootball_nfl"}) == ("alerts", True)


def test_vendor_envelopes_stay_frames() -> None:
    assert line_format({"type": "odds_update", "data": []}) == ("frames", True)


def test_backtest_terminal_writes_line_clv_in_points_not_percent() -> None:
    # review finding 3: 0.152 points of line CLV printed as "+15.20%"
    from dropengine.cli.backtest import _cell

    assert _cell(0.152, "mean_line_clv") == "+0.15"
    assert _cell(0.152, "mean_clv") == "+15.20%"
