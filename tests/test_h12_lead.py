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
