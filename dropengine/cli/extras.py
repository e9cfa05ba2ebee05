"""Optional extras and start-up failures of the command line, as one plain line each.

The core install (``pip install dropengine``) reads recordings and watches the live feed
over SSE; ``serve``/``mock-upstream`` need the ``server`` extra, the WebSocket transport
the ``live`` extra, backtest charts the ``report`` extra, ``detect``/``ingest``/``serve --bus``
the ``bus`` extra, ``--workers``/``--scheduler`` the ``cluster`` extra. A command that needs a missing
one stops at once with the ``pip install`` to run, instead of a ``ModuleNotFoundError``
traceback on first use. The line goes through click, never through rich, whose markup
would swallow ``[server]``.
"""

from __future__ import annotations

import importlib
from typing import Final

import click

__all__ = ["EXTRAS", "StartupError", "require_extra"]

#: The importable modules of each extra of pyproject.toml, checked in this order.
EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "server": ("starlette", "sse_starlette", "uvicorn", "websockets", "prometheus_client"),
    "live": ("websockets",),
    "report": ("matplotlib",),
    "bus": ("nats",),
    "cluster": ("dask", "distributed"),
}


class StartupError(click.ClickException):
    """A command cannot start (a missing extra, a busy port, an unusable input file):
    ``Error: <message>`` on one line, exit status 2."""

    exit_code = 2


def require_extra(extra: str, what: str) -> None:
    """Import every module of ``extra``; raise :class:`StartupError` naming the ``pip install``
    to run when one is missing. ``what`` names the command, e.g. ``dropengine serve``."""
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            missing = (exc.name or module).split(".")[0]
            raise StartupError(
                f"{what} needs the {extra} extra ({missing} is not installed): pip install 'dropengine[{extra}]'"
            ) from None
