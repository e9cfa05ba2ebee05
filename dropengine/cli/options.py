"""The options every command shares, declared once: detection settings, signals and alert filters.

``replay``, ``backtest`` and ``watch`` take :func:`detect_options` (with the signal options of
SPEC 10-12: ``--types``, ``--line-threshold``, ``--steam-*``, ``--cooldown``, ``--key-numbers``);
``serve`` may take any of the signal options alone (:func:`signal_options`); ``record`` takes the
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
import decimal
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import click

from ..core.alerts import SIGNALS, by_signal_order
from ..core.errors import ConfigError
from ..core.filters import AlertFilter, parse_csv
from ..core.options import DEFAULT_KEY_NUMBERS, REFERENCES, UNITS, DetectOptions, KeyNumbers
from ..core.rules import DIRECTIONS, number_from_text
from ..formats.mapping import TableMapping, load_mapping
from ..io.inputs import BETFAIR_PRICES, ODDS_FORMATS, InputOptions
from ..io.recordings import FORMATS

__all__ = [
    "FLAGS", "SIGNAL_OPTIONS", "bad_parameter", "detect_options", "filter_options", "format_option", "input_options",
    "inputs_from", "INPUT_FLAGS",
    "quiet_option", "signal_error", "signal_keywords", "signal_options",
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
    # the signals (SPEC 10-12); the seconds flags feed the core's millisecond fields
    "types": "--types",
    "line_threshold": "--line-threshold",
    "steam_books": "--steam-books",
    "steam_window_ms": "--steam-window",
    "steam_threshold": "--steam-threshold",
    "steam_groups": "--steam-groups",
    "cooldown_ms": "--cooldown",
    "key_numbers": "--key-numbers",
    # the live commands' upstream settings (formats.query.StreamQuery, live.transport.UpstreamConfig)
    "since": "--since",
    "heartbeat_s": "--heartbeat-s",
    "base_url": "--base-url",
}

_FILTERS: Final = ("sports", "event_id", "bookmakers", "markets", "kinds")
_DETECTION: Final = ("threshold", "direction", "reference", "unit")
#: The signal options (SPEC 10-12), by click parameter name, in ``--help`` order.
SIGNAL_OPTIONS: Final = (
    "types", "line_threshold", "steam_books", "steam_window", "steam_threshold", "steam_groups", "cooldown",
    "key_numbers",
)
#: The options given in seconds and the core's millisecond field each feeds.
_SECONDS: Final[dict[str, str]] = {"steam_window": "steam_window_ms", "cooldown": "cooldown_ms"}


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


#: The core's defaults, which the signal options' help texts state (a flag not given leaves them).
_DEFAULT: Final = DetectOptions()
_DEFAULT_KEYS: Final = "; ".join(f"{sport} {market} {','.join(map(str, numbers))}"
                                 for sport, market, numbers in DEFAULT_KEY_NUMBERS.entries)


def _seconds_text(ms: int) -> str:
    return str(decimal.Decimal(ms) / 1000)


def _steam_threshold_help(base: DetectOptions) -> str:
    if base.steam_threshold is None:
        return "[default: --threshold]"
    return f"[default: {base.steam_threshold}, or --threshold when higher]"


def _line_threshold_help(base: DetectOptions) -> str:
    text = f"Minimum line move, in points (0.25 for quarter lines). [default: {base.line_threshold}]"
    if base.steam_line_threshold is not None:
        text += (f" Line moves count for steam from {base.steam_line_threshold} points (or --line-threshold "
                 "when higher).")
    return text


def _options_for(base: DetectOptions) -> dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """One click decorator per shared option, its default (and the default its help states)
    ``base``'s: the core's defaults for most commands, the server engine's for ``detect``."""
    return {
        "threshold": click.option(
            "--threshold", type=_Number(), default=base.threshold, show_default=True,
            help="Minimum move: American-odds cents (or probability points with --unit prob)."),
        "direction": click.option(
            "--direction", type=click.Choice(DIRECTIONS), default=base.filter.direction, show_default=True,
            help="Which moves to report: shortening (toward_favorite), drifting, or both."),
        "reference": click.option(
            "--reference", type=click.Choice(REFERENCES), default=base.reference, show_default=True,
            help="Measure against the previous price (last) or the price at priming/last alert (anchor)."),
        "unit": click.option(
            "--unit", type=click.Choice(UNITS), default=base.unit, show_default=True, help="Threshold unit."),
        "sports": click.option("--sports", metavar="KEYS", help="Only these sport keys (comma-separated)."),
        "event_id": click.option("--event-id", metavar="IDS", help="Only these event ids (comma-separated)."),
        "bookmakers": click.option("--bookmakers", metavar="KEYS", help="Only these bookmakers (comma-separated)."),
        "markets": click.option(
            "--markets", metavar="KEYS", help="Only these market keys (h2h,spreads,totals,player_points,...)."),
        "kinds": click.option("--kinds", metavar="KINDS", help="Only game lines or props: game, prop or game,prop."),
        # The signal options default to None ("not given"): only the given ones reach the core, whose
        # defaults are the ones the help texts state (so a command without them behaves as before).
        "types": click.option(
            "--types", metavar="TYPES",
            help=f"Alert types to report, comma-separated: {SIGNALS[0]} (price drops), {SIGNALS[1]} (spread/total/"
                 f"prop line moves), {SIGNALS[2]} (the same move at several books). "
                 f"[default: {','.join(by_signal_order(base.types))}]"),
        "line_threshold": click.option(
            "--line-threshold", type=_Number(), metavar="POINTS",
            help=_line_threshold_help(base)),
        "steam_books": click.option(
            "--steam-books", type=_Number(), metavar="N",
            help="Steam fires when this many books made the same move within --steam-window. "
                 f"[default: {base.steam_books}]"),
        "steam_window": click.option(
            "--steam-window", type=_Number(), metavar="SECONDS",
            help="The steam window in seconds of data time; also a group's steam cooldown. "
                 f"[default: {_seconds_text(base.steam_window_ms)}]"),
        "steam_threshold": click.option(
            "--steam-threshold", type=_Number(), metavar="CENTS",
            help="The price move (cents) that counts for steam; at least --threshold. Line moves count at "
                 f"--line-threshold. {_steam_threshold_help(base)}"),
        "steam_groups": click.option(
            "--steam-groups", metavar="GROUPS",
            help="Books that copy one feed and count once for steam: '+' joins a group, ',' separates groups "
                 "(e.g. 'betmgm+borgata,fanduel+fanatics')."),
        "cooldown": click.option(
            "--cooldown", type=_Number(), metavar="SECONDS",
            help="Suppress a price key's or line series' alert within this many seconds (data time) of its "
                 f"last one; 0 is off. [default: {_seconds_text(base.cooldown_ms)}]"),
        "key_numbers": click.option(
            "--key-numbers", metavar="SPEC",
            help="Key numbers per sport and market, ';'-separated 'SPORT:MARKET=N,N,...' entries; SPORT is a "
                 "key or a 'prefix_*' pattern; an empty list means none (e.g. "
                 "'americanfootball_nfl:spreads=3,7,10;basketball_*:spreads=5,7'). "
                 f"[default: {_DEFAULT_KEYS if base.key_numbers is None else base.key_numbers.as_text()}]"),
    }


# A decorator makes a new Option each time it is applied, so every command gets its own Option
# objects with the same declaration.
_OPTIONS: Final = _options_for(_DEFAULT)


def bad_parameter(exc: ConfigError) -> click.UsageError:
    """The click error for a core ConfigError: ``Invalid value for '--flag': message`` when the
    message names a field that is a flag, else the message as a usage error (exit status 2)."""
    field, sep, rest = str(exc).partition(": ")
    flag = FLAGS.get(field) if sep else None
    if flag is None:
        return click.UsageError(str(exc))
    # with the context, click prints the usage line and the --help hint, as for its own checks
    return click.BadParameter(rest, click.get_current_context(silent=True), param_hint=f"'{flag}'")


def _milliseconds(seconds: int | float, flag: str) -> int:
    """``seconds`` (as typed: an int or a plain float) in whole milliseconds. Whether the
    duration is allowed (not negative) is the core's judgement; this is only the unit."""
    # decimal from the repr: 0.3 s is 300 ms exactly (float arithmetic gives 300.00000000000006)
    ms = decimal.Decimal(repr(seconds)) * 1000
    if ms != ms.to_integral_value():
        raise click.BadParameter(f"{seconds!r} seconds is finer than a millisecond", param_hint=f"'{flag}'")
    return int(ms)


def signal_keywords(raw: dict[str, Any]) -> dict[str, Any]:
    """The :meth:`DetectOptions.build` keywords of the signal options given (``raw`` holds the
    click values by parameter name; ``None`` means not given and is left out, so the core's
    defaults apply): seconds become the core's milliseconds, ``--key-numbers`` text a
    :class:`~dropengine.core.options.KeyNumbers`. Raises a click error naming the flag."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if name in _SECONDS:
            out[_SECONDS[name]] = _milliseconds(value, f"--{name.replace('_', '-')}")
        elif name == "key_numbers":
            try:
                out[name] = KeyNumbers.parse(value)
            except ConfigError as exc:
                raise bad_parameter(exc) from None
        else:
            out[name] = value
    return out


def signal_error(exc: ConfigError) -> click.UsageError:
    """:func:`bad_parameter` for an error of options that include the signal options: a
    millisecond field's message also shows the value in the seconds its flag takes."""
    field, sep, rest = str(exc).partition(": ")
    if sep and field in _SECONDS.values():
        value, sep2, tail = rest.partition(" ")
        with contextlib.suppress(decimal.InvalidOperation):
            seconds = decimal.Decimal(value) / 1000
            return bad_parameter(ConfigError(f"{field}: {seconds.normalize():f} seconds ({value} ms){sep2}{tail}"))
    return bad_parameter(exc)


def _declare(f: Callable[..., Any], names: list[str],
             options: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = _OPTIONS) -> Callable[..., Any]:
    """Apply the shared options ``names`` to ``f``; ``--help`` lists them in this order."""
    for name in reversed(names):
        f = options[name](f)
    return f


#: The :meth:`DetectOptions.build` keywords of the signals (as :meth:`DetectOptions.as_dict`
#: names them), which a command's own defaults (``detect_options(defaults=)``) may set.
_SIGNAL_KEYWORDS: Final = frozenset({*(_SECONDS.get(n, n) for n in SIGNAL_OPTIONS), "steam_line_threshold"})


def _signal_defaults(base: DetectOptions, threshold: float, line_threshold: float | None, unit: str,
                     given: dict[str, Any]) -> dict[str, Any]:
    """``base``'s signal settings for the signal flags not given. A steam threshold of
    ``base`` yields (to "the detection threshold", the core's ``None``) where the threshold
    given is higher, or the unit is not cents: only detected moves can count for steam, and
    the price one is in cents only."""
    out = {k: v for k, v in base.as_dict().items() if k in _SIGNAL_KEYWORDS and k not in given}
    st = out.get("steam_threshold")
    if st is not None and (unit != "cents" or threshold > st):
        del out["steam_threshold"]
    slt = out.get("steam_line_threshold")
    line = line_threshold if line_threshold is not None else out.get("line_threshold", DetectOptions().line_threshold)
    if slt is not None and line > slt:
        del out["steam_line_threshold"]
    return out


def detect_options(*, sports: bool = True, signals: bool = True,
                   defaults: DetectOptions | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare ``--threshold --direction --reference --unit``, the signal options
    (:data:`SIGNAL_OPTIONS`) and the filters; the command gets ``detect: DetectOptions``
    instead of them.

    ``sports=False`` leaves out ``--sports`` (``watch`` picks its sports with
    ``--sport/--multi/--all``, the streams it opens); ``signals=False`` the signal options.
    ``defaults``: the detection settings a flag not given takes (and ``--help`` states)
    instead of the core's (``detect``: the server engine's); its filters are not used.
    """
    names = [n for n in _FILTERS if sports or n != "sports"]
    sig = list(SIGNAL_OPTIONS) if signals else []
    declared = _OPTIONS if defaults is None else _options_for(defaults)

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def command(**kwargs: Any) -> Any:
            raw = {n: kwargs.pop(n) for n in (*_DETECTION, *names)}
            raw_signals = {n: kwargs.pop(n) for n in sig}
            given = signal_keywords(raw_signals)
            if defaults is not None:
                raw.update(_signal_defaults(defaults, raw["threshold"], given.get("line_threshold"), raw["unit"],
                                            given))
            raw.update(given)
            try:
                kwargs["detect"] = DetectOptions.build(
                    raw.pop("threshold"), raw.pop("direction"), raw.pop("reference"), raw.pop("unit"), **raw
                )
            except ConfigError as exc:
                raise signal_error(exc) from None
            return f(**kwargs)

        return _declare(command, [*_DETECTION, *sig, *names], declared)

    return decorate


def signal_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the signal options ``names`` (of :data:`SIGNAL_OPTIONS`, all when none are given)
    alone, for a command that builds its own options (``serve``). The command gets
    ``signals: dict[str, Any]``: the :meth:`DetectOptions.build` keywords of the options given
    (seconds already in milliseconds), to pass on with its other settings. The core judges
    them when the command builds its options (a steam threshold is judged against the
    command's own threshold); :func:`signal_error` reports its error naming the flag."""
    chosen = list(names or SIGNAL_OPTIONS)
    unknown = [n for n in chosen if n not in SIGNAL_OPTIONS]
    if unknown:
        raise ValueError(f"not signal options: {unknown}")

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def command(**kwargs: Any) -> Any:
            raw = {n: kwargs.pop(n) for n in chosen}
            kwargs["signals"] = signal_keywords(raw)
            return f(**kwargs)

        return _declare(command, chosen)

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


#: The click parameters of :func:`input_options` that :func:`inputs_from` turns into an InputOptions.
INPUT_FLAGS: Final = ("odds_format", "betfair_price", "columns", "wide", "recode", "where", "mapping_file")
_INPUT_HELP: Final = {
    "odds_format": "How the price (and starting_price) cells of quote tables are written: american (-110, +150), "
                   "decimal (1.91, 2.5) or prob (0.52, implied probability). decimal and prob become American "
                   "(fractional, e.g. -109.89); a decimal <= 1, a prob outside (0,1), or one outside the American "
                   "range is a skipped cell. A table with an odds_format column decides per row; a ';'-separated "
                   "table may write decimal commas (1,91). Quote tables only: with The Odds API responses or vendor "
                   "frames (American by their format) decimal or prob is an error.",
    "betfair_price": "The quote of a Betfair stream recording: ltp (last traded price) or back (best available "
                     "back price).",
    "columns": "Where each quote field comes from in a table with other column names, as FIELD=COLUMN, "
               "FIELD==VALUE (a fixed value), FIELD={COL} text {COL} (a template) or FIELD=A|B (the first "
               "non-empty); time fields may add an offset (date-1d, +12h, -5m). Times: unix s (below 1e11) or "
               "ms, or ISO dates, from 1970 to the end of 9999 (unix us/ns are refused). Fields: the SPEC 2 "
               "quote fields, odds_format, starting_price, outcome. Example: "
               "--columns 'event_id=game_id,bookmaker==bovada,sport_key==baseball_mlb,last_update=cur_time'. "
               "Repeatable; a file lacking a named column is skipped whole (the message lists its columns).",
    "wide": "One column per side: each SIDE=PRICE_COLUMN[@LINE][/TIME] item makes one quote per row, in the "
            "order given. LINE: a line column or a number; TIME: the quote's last_update (default the "
            "last_update field). A SIDE without {COLUMN} must be a side (spreads and totals need @LINE). "
            "Example: --wide 'h2h_home=h_ml,h2h_away=a_ml,spread_home=h_odds_ps@h_hcap_ps,"
            "total_over@2.5=over_2.5,h2h_home=home_close_ml/date+12h'. Repeatable.",
    "recode": "Cell texts of a mapped table's price, line and starting_price cells that mean something else: "
              "TEXT=NUMBER, TEXT=null (suspended) or TEXT=absent (no quote). Example: --recode 'EVEN=100,0=absent' "
              "('=absent': an empty cell makes no quote instead of a suspension).",
    "where": "Keep only the rows of a mapped table where every condition holds: COLUMN OP COLUMN|NUMBER, OP one "
             "of < <= > >= == != (numbers as numbers, else times). Example: --where 'cur_time<game_start_time'.",
    "mapping_file": "A TOML file with the same mapping ([columns], wide, [recode], where; any column names): "
                    "flags given too override it field by field (docs/datasets.md has one per data set).",
}


def input_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``PATHS...``, ``--format`` and the input flags (``--odds-format``, ``--betfair-price``,
    the mapping flags ``--columns --wide --recode --where --mapping``): the recordings
    ``replay`` and ``backtest`` read and how. The command gets ``inputs: InputOptions``
    (:func:`inputs_from`) instead of the input flags."""

    @functools.wraps(f)
    def command(**kwargs: Any) -> Any:
        kwargs["inputs"] = inputs_from(kwargs)
        return f(**kwargs)

    g: Callable[..., Any] = command
    many = {"multiple": True, "default": ()}
    for decl, extra in reversed((
        (("--odds-format", "odds_format"), {"type": click.Choice(ODDS_FORMATS), "default": "american",
                                            "show_default": True}),
        (("--betfair-price", "betfair_price"), {"type": click.Choice(BETFAIR_PRICES), "default": "ltp",
                                                "show_default": True}),
        (("--columns", "columns"), {**many, "metavar": "FIELD=SOURCE,..."}),
        (("--wide", "wide"), {**many, "metavar": "SIDE=PRICE[@LINE][/TIME],..."}),
        (("--recode", "recode"), {**many, "metavar": "TEXT=VALUE,..."}),
        (("--where", "where"), {**many, "metavar": "COL<COL,..."}),
        (("--mapping", "mapping_file"), {"type": click.Path(exists=True, dir_okay=False, path_type=Path),
                                         "default": None, "metavar": "FILE.toml"}),
    )):
        g = click.option(*decl, help=_INPUT_HELP[decl[1]], **extra)(g)
    g = format_option(g)
    return click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path),
                          callback=_open_file_room)(g)


def inputs_from(kwargs: dict[str, Any]) -> InputOptions:
    """Pop the input flags of :func:`input_options` from a command's ``kwargs`` and build the
    one :class:`InputOptions` value; a bad value is a click UsageError naming the flag, the
    item and what is wrong (exit status 2)."""
    raw = {n: kwargs.pop(n, None) for n in INPUT_FLAGS}
    base = None
    file = raw["mapping_file"]
    try:
        if file is not None:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"--mapping: cannot read {str(file)!r}: {exc}") from None
            base = load_mapping(text, f"--mapping {Path(file).name}")
        lists = {n: tuple(raw[n] or ()) for n in ("columns", "wide", "recode", "where")}
        mapping = (TableMapping.parse(**lists, base=base) if base is not None or any(lists.values()) else None)
        return InputOptions(odds_format=raw["odds_format"] or "american", betfair_price=raw["betfair_price"] or "ltp",
                            mapping=mapping)
    except ConfigError as exc:
        text = str(exc)
        flag = text.split(":", 1)[0].split(" ", 1)[0] if text.startswith("--") else "--columns"
        raise click.BadParameter(text.removeprefix(f"{flag}: "), param_hint=f"'{flag}'") from None


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
