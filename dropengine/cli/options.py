"""The options every command shares, declared once: detection settings and alert filters.

``replay``, ``backtest`` and ``watch`` take :func:`detect_options`; ``record`` takes the
filters alone (:func:`filter_options`, sent to the upstream as the stream's query). Each
decorator declares the click options and hands the command ONE validated value instead of
the raw flags: a :class:`~dropengine.core.options.DetectOptions` (``detect=``) or an
:class:`~dropengine.core.filters.AlertFilter` (``alert_filter=``). The checks are the core's
(:meth:`DetectOptions.build`, which builds its filter with :meth:`AlertFilter.build`), so a
bad value gets the same message from every command and from the Python API;
:func:`bad_parameter` turns the core's ``field: message`` into click's
``Invalid value for '--flag': message`` (exit status 2).

Click parses only what it must: numbers (``--threshold``) and the closed choices
(``--direction``, ``--reference``, ``--unit``, whose values come from the core's
:data:`~dropengine.core.rules.DIRECTIONS`, :data:`~dropengine.core.options.REFERENCES` and
:data:`~dropengine.core.options.UNITS`); everything else (positive and finite thresholds, at
most 100 probability points, non-empty lists, the row kinds) is judged by the core.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import click

from ..core.errors import ConfigError
from ..core.filters import AlertFilter, parse_csv
from ..core.options import REFERENCES, UNITS, DetectOptions
from ..core.rules import DIRECTIONS, number_from_text
from ..io.recordings import FORMATS

__all__ = [
    "FLAGS", "bad_parameter", "detect_options", "filter_options", "format_option", "input_options", "quiet_option",
]

#: The flag of each field a core ConfigError may name (``"event_id: ..."`` is ``--event-id``).
FLAGS: Final[dict[str, str]] = {
    "threshold": "--threshold",
    "direction": "--direction",
    "reference": "--reference",
    "unit": "--unit",
    "sports": "--sports",
    "event_id": "--event-id",
    "event_ids": "--event-id",
    "bookmakers": "--bookmakers",
    "markets": "--markets",
    "kinds": "--kinds",
    # the live commands' upstream settings (formats.query.StreamQuery, live.transport.UpstreamConfig)
    "since": "--since",
    "heartbeat_s": "--heartbeat-s",
    "base_url": "--base-url",
}

_FILTERS: Final = ("sports", "event_id", "bookmakers", "markets", "kinds")
_DETECTION: Final = ("threshold", "direction", "reference", "unit")


class _Number(click.ParamType[int | float, Any]):
    """A number as typed: ``10`` stays the int 10 (alerts and reports echo it so), ``2.5`` a float.

    Only the parse is here; whether the number is a usable threshold is the core's question.
    """

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number: float = value
        else:
            # The one plain-number rule (core.rules), not float(): float() also reads '1_0', 'infinity'
            # and non-ASCII digits, and '1e309' would reach the core as inf, the typed value lost.
            number_or_none = number_from_text(str(value))
            if number_or_none is None:
                self.fail(f"{value!r} is not a plain finite number", param, ctx)
            number = number_or_none
        if isinstance(number, int):
            return number  # an int too large for a float is the core's to refuse (no float() here)
        return int(number) if number.is_integer() else number


# One click decorator per shared option; a decorator makes a new Option each time it is applied,
# so every command gets its own Option objects with the same declaration.
_OPTIONS: Final[dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = {
    "threshold": click.option(
        "--threshold", type=_Number(), default=10, show_default=True,
        help="Minimum move: American-odds cents (or probability points with --unit prob)."),
    "direction": click.option(
        "--direction", type=click.Choice(DIRECTIONS), default="both", show_default=True,
        help="Which moves to report: shortening (toward_favorite), drifting, or both."),
    "reference": click.option(
        "--reference", type=click.Choice(REFERENCES), default="last", show_default=True,
        help="Measure against the previous price (last) or the price at priming/last alert (anchor)."),
    "unit": click.option(
        "--unit", type=click.Choice(UNITS), default="cents", show_default=True, help="Threshold unit."),
    "sports": click.option("--sports", metavar="KEYS", help="Only these sport keys (comma-separated)."),
    "event_id": click.option("--event-id", metavar="IDS", help="Only these event ids (comma-separated)."),
    "bookmakers": click.option("--bookmakers", metavar="KEYS", help="Only these bookmakers (comma-separated)."),
    "markets": click.option(
        "--markets", metavar="KEYS", help="Only these market keys (h2h,spreads,totals,player_points,...)."),
    "kinds": click.option("--kinds", metavar="KINDS", help="Only game lines or props: game, prop or game,prop."),
}


def bad_parameter(exc: ConfigError) -> click.UsageError:
    """The click error for a core ConfigError: ``Invalid value for '--flag': message`` when the
    message names a field that is a flag, else the message as a usage error (exit status 2)."""
    field, sep, rest = str(exc).partition(": ")
    flag = FLAGS.get(field) if sep else None
    if flag is None:
        return click.UsageError(str(exc))
    # with the context, click prints the usage line and the --help hint, as for its own checks
    return click.BadParameter(rest, click.get_current_context(silent=True), param_hint=f"'{flag}'")


def _declare(f: Callable[..., Any], names: list[str]) -> Callable[..., Any]:
    """Apply the shared options ``names`` to ``f``; ``--help`` lists them in this order."""
    for name in reversed(names):
        f = _OPTIONS[name](f)
    return f


def detect_options(*, sports: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare ``--threshold --direction --reference --unit`` and the filters; the command
    gets ``detect: DetectOptions`` instead of them.

    ``sports=False`` leaves out ``--sports`` (``watch`` picks its sports with
    ``--sport/--multi/--all``, the streams it opens).
    """
    names = [n for n in _FILTERS if sports or n != "sports"]

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def command(**kwargs: Any) -> Any:
            raw = {n: kwargs.pop(n) for n in (*_DETECTION, *names)}
            try:
                kwargs["detect"] = DetectOptions.build(
                    raw.pop("threshold"), raw.pop("direction"), raw.pop("reference"), raw.pop("unit"), **raw
                )
            except ConfigError as exc:
                raise bad_parameter(exc) from None
            return f(**kwargs)

        return _declare(command, [*_DETECTION, *names])

    return decorate


def filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Declare ``--event-id --bookmakers --markets --kinds``; the command gets
    ``alert_filter: AlertFilter`` (checked as :func:`detect_options` checks them)."""
    names = [n for n in _FILTERS if n != "sports"]

    @functools.wraps(f)
    def command(**kwargs: Any) -> Any:
        raw = {n: kwargs.pop(n) for n in names}
        try:
            kwargs["alert_filter"] = AlertFilter.build(**raw)
        except ConfigError as exc:
            raise bad_parameter(exc) from None
        return f(**kwargs)

    return _declare(command, names)


def _open_file_room(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> tuple[Path, ...]:
    """Raise the soft open-file limit toward the hard one when the recordings need it.

    Every recording (each file of a directory too) is open while the merge runs; past the
    soft limit (256 by default on macOS, 1024 on Linux) further files could not be read.
    """
    try:
        import resource
    except ImportError:  # not on this platform
        return value
    need = 64 + sum(sum(1 for _ in p.iterdir()) if p.is_dir() else 1 for p in value)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(need, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return value


def format_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--format`` of the recordings read (``replay``, ``backtest``, ``mock-upstream``)."""
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
                        help="Input format; auto decides from the extension, else by a vote of the first lines.")(f)


def input_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``PATHS...`` and ``--format``: the recordings ``replay`` and ``backtest`` read."""
    f = format_option(f)
    return click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path),
                          callback=_open_file_room)(f)


def quiet_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--quiet/-q`` of the commands that read recordings: no summary on stderr."""
    return click.option("--quiet", "-q", is_flag=True, help="No summary on stderr.")(f)


def name_list(value: str, flag: str) -> list[str]:
    """A comma-separated list of names given on the command line, in the order given, without
    repeats; judged by the one list rule (:func:`~dropengine.core.filters.parse_csv`: an empty
    item is refused), the error naming ``flag``."""
    try:
        parse_csv(value, flag)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix(f"{flag}: "), param_hint=flag) from None
    return list(dict.fromkeys(item.strip() for item in value.split(",")))
