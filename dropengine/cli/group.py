"""The ``dropengine`` command group: one module per command, registered here.

``replay`` (:mod:`.replay`), ``simulate`` (:mod:`.simulate`), ``backtest`` (:mod:`.backtest`),
``watch`` and ``record`` (:mod:`.live`), ``serve`` (:mod:`.serve`), ``mock-upstream``
(:mod:`.mock_upstream`), ``ingest`` and ``detect`` (:mod:`.bus`, nats imported only when they
run). The options they share are declared once, in :mod:`.options`.

A command's module is imported when that command is looked up (to run it, or to show its help),
not when the group is: ``dropengine replay`` does not pay for the server, the live clients or
the bus (starlette, httpx, nats) it never uses.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator, MutableMapping

import click

from .. import __version__
from .interrupt import launched, launching, tail_end

__all__ = ["COMMANDS", "main", "run"]

#: Each command's name and where it is defined (``module:attribute``, relative to this package),
#: in the order ``dropengine --help`` lists them before sorting.
COMMANDS: dict[str, str] = {
    "replay": ".replay:replay_cmd",
    "simulate": ".simulate:simulate_cmd",
    "backtest": ".backtest:backtest_cmd",
    "serve": ".serve:serve_cmd",
    "watch": ".live:watch_cmd",
    "record": ".live:record_cmd",
    "mock-upstream": ".mock_upstream:mock_upstream",
    "ingest": ".bus:ingest_cmd",
    "detect": ".bus:detect_cmd",
}


class _LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands by name; a command's module is imported on its first lookup."""

    def __init__(self, where: dict[str, str]) -> None:
        self._where = dict(where)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        command = self._loaded.get(name)
        if command is None:
            module, _, attr = self._where[name].partition(":")  # KeyError: no such command
            try:
                command = getattr(importlib.import_module(module, __package__), attr)
            except KeyError as exc:  # a bug inside the module, not "No such command" (Mapping.get swallows KeyError)
                raise RuntimeError(f"loading the {name!r} command ({module}) failed: KeyError {exc}") from exc
            if not isinstance(command, click.Command) or command.name != name:
                raise TypeError(f"{self._where[name]} is not the {name!r} command")
            self._loaded[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._where.setdefault(name, "")
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._where[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dropengine")
def main() -> None:
    """dropengine: price-drop (line-move, steam) alerts from sports-betting odds streams."""
    # Click calls this once the command to run is loaded, before its own options are parsed: the
    # executable's start guard, if on, hands over to the command's own signal policy. Not at a
    # command's lookup: `dropengine --help` loads every command's module to list them, and the
    # guard must hold through all of them (break24's B24-6).
    launched()


main.commands = _LazyCommands(COMMANDS)


def run() -> None:
    """The ``dropengine`` executable (and ``python -m dropengine``): :func:`main` as a whole process.

    When the command is done (returned, failed or interrupted), every object left is moved to the
    collector's permanent generation (``gc.freeze``) before the interpreter shuts down: its final
    collections then do not walk the heap that polars and numba leave behind (~0.27 s CPU of every
    ``replay --engine batch`` process, ~10% of one over 10M quotes; measured in
    benchmarks/README.md). Nothing else changes: atexit handlers and ``finally`` blocks run, the
    exit code is the command's (but after a signal held from a successful run's end: its 130/143,
    :func:`.interrupt.tail_end`), and each command closes its own files and connections (none is left
    to a collector). Not in :func:`main`: a caller running commands in its own process (tests, a
    notebook) keeps its collector as it was.

    A Ctrl-C or SIGTERM before the command's module is loaded (:func:`.interrupt.launching`: its
    import, click's parsing of the group's options) ends the process as one while a command starts:
    one line, exit 130 (143), no traceback and no "Aborted!"; the command's own policy from there."""
    try:
        with launching():
            main()
    finally:
        gc.freeze()
        tail_end()
