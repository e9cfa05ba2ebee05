"""The ``dropengine`` command group: one module per command, registered here.

``replay`` (:mod:`.replay`), ``simulate`` (:mod:`.simulate`), ``backtest`` (:mod:`.backtest`),
``watch`` and ``record`` (:mod:`.live`), ``serve`` (:mod:`.serve`), ``mock-upstream``
(:mod:`.mock_upstream`), ``ingest`` and ``detect`` (:mod:`.bus`, nats imported only when they
run). The options they share are declared once, in :mod:`.options`.
"""

from __future__ import annotations

import click

from .. import __version__
from .backtest import backtest_cmd
from .bus import detect_cmd, ingest_cmd
from .live import record_cmd, watch_cmd
from .mock_upstream import mock_upstream
from .replay import replay_cmd
from .serve import serve_cmd
from .simulate import simulate_cmd

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dropengine")
def main() -> None:
    """dropengine: price-drop (line-move, steam) alerts from sports-betting odds streams."""


for _command in (replay_cmd, simulate_cmd, backtest_cmd, serve_cmd, watch_cmd, record_cmd, mock_upstream, ingest_cmd,
                 detect_cmd):
    main.add_command(_command)
