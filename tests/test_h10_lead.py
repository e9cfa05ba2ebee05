"""Small pieces the lead added while folding issue 10 together."""

from __future__ import annotations

import pytest

from dropengine.errors import ConfigError
from dropengine.server.sources import ManualSource


def test_pushing_to_a_server_that_is_not_running_names_the_problem() -> None:
    with pytest.raises(ConfigError, match="push: the server is not running"):
        ManualSource().push([], timeout_s=0.01)
