"""``dropengine serve``: the reference ``/v1/odds-drop`` server."""

from __future__ import annotations

import logging
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from ..core.errors import ConfigError, DropEngineError
from ..core.keys import KeyTable, Secret
from ..core.options import DetectOptions
from ..core.retry import RetryPolicy
from ..core.skips import printable
from ..deliver.options import SinkOptions
from ..formats.query import StreamQuery
from ..live.transport import TRANSPORTS, UpstreamConfig
from ..server.params import THRESHOLD_RANGE
from .extras import StartupError, require_extra
from .interrupt import CtrlC
from .live import evict_options
from .mock_upstream import _non_negative as non_negative_seconds
from .mock_upstream import speed_callback
from .options import name_list, signal_error, signal_options
from .sinks import sink_options

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..server.sources import ReplaySource, UpstreamSource

__all__ = ["ENV_PREFIX", "config_defaults", "serve_cmd", "source_from_spec", "source_options"]

#: ``serve``'s environment variables: ``DROPENGINE_SERVE_<OPTION>``, the long option name in
#: upper case with ``-`` as ``_`` (``--buffer-size``: ``DROPENGINE_SERVE_BUFFER_SIZE``). Chosen over
#: click's ``auto_envvar_prefix``, which names a variable after the parameter's Python name
#: (``--source`` would be ``..._SOURCE_SPEC``): here a flag, its config-file key and its variable
#: are spelled alike. ``--upstream-key`` keeps its documented DROPENGINE_UPSTREAM_KEY.
ENV_PREFIX: Final = "DROPENGINE_SERVE_"


#: Flags that mean something only with --source (an engine, a source, a state file): refused
#: with --bus when given, instead of silently doing nothing.
_SOURCE_ONLY: Final = ("speed", "max_gap", "upstream_key", "sports", "transport", "state_path", "state_every",
                       "state_max_age", "evict_idle", "evict_started", "steam_books", "steam_window",
                       "steam_groups", "key_numbers", "steam_threshold")


#: The largest --buffer-size / --max-pending: a count Python's containers can hold (a deque's
#: maxlen is a C ssize_t; beyond it the hub failed with an OverflowError traceback).
_MAX_COUNT: Final = sys.maxsize


def source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """How a ``--source`` is read (``--speed --max-gap`` for a replay, ``--upstream-key --sports
    --transport`` for the upstream), declared once for ``serve`` and ``ingest``; the command gets
    them as ``speed, max_gap, upstream_key, sports, transport`` (see :func:`source_from_spec`)."""
    for decorate in reversed((
        click.option("--speed", default="1", show_default=True, callback=speed_callback,
                     help="With replay: times the recorded pace, or 'max'."),
        # mock-upstream's check: a FloatRange lets NaN through (nan < 0 is False), and a NaN cap
        # is silently no cap (min(gap, nan) == gap)
        click.option("--max-gap", type=float, default=5.0, show_default=True, callback=non_negative_seconds,
                     help="With replay: longest pause between two recorded moments, in seconds."),
        click.option("--upstream-key", envvar="DROPENGINE_UPSTREAM_KEY", default=None, show_envvar=True,
                     help="With upstream: its API key (DROPENGINE_API_KEY also works)."),
        click.option("--sports", default="all", show_default=True,
                     help="With upstream: 'all' (every active sport, refreshed every 5 minutes) or a,b."),
        click.option("--transport", type=click.Choice(TRANSPORTS), default="sse", show_default=True,
                     help="With upstream: how to connect to it."),
    )):
        f = decorate(f)
    return f


def _config_callback(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """``--config FILE``: its keys become the defaults of this run (click's ``default_map``), so a
    flag and an environment variable still win over the file, and the file over the defaults."""
    if value is not None:
        assert isinstance(ctx.command, click.Command)
        ctx.default_map = {**(ctx.default_map or {}), **config_defaults(ctx, ctx.command, value)}
        ctx.meta[_CONFIG_META] = value
    return value


#: Where ``--config`` keeps the file it read (``ctx.meta``), for messages naming it.
_CONFIG_META: Final = "dropengine.serve.config"


def _file_name(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A path option that names a file to write: an empty value (a blank template value,
    ``state = ""``) reads as ``Path('.')``, which names no file (the state lock failed with a
    ValueError traceback)."""
    if value is not None and value.name == "":
        raise click.BadParameter("an empty file name (it must name a file)", ctx, param)
    return value


def _cors_callback(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        return value  # nothing to check: and without the server extra, its own message comes later
    require_extra("server", "dropengine serve")
    from ..server.app import cors_origins

    try:
        return cors_origins(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("cors_origin: "), ctx, param) from None


#: The sink flags with --sink-query (server-wide sinks), typed for the decorator stack.
_server_sink_options: Callable[[Callable[..., Any]], Callable[..., Any]] = sink_options(server=True)


@click.command("serve")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, is_eager=True, expose_value=False, callback=_config_callback, metavar="FILE",
              help="A TOML file of settings: its keys are the long option names (buffer-size or buffer_size), "
                   "e.g. port = 8080, cors-origin = [\"https://a.example\"]. A flag wins over an environment "
                   "variable (DROPENGINE_SERVE_<OPTION>), which wins over the file, which wins over the "
                   "defaults. Paths in it are read from the current directory, as the flags'. An unknown key "
                   "or a value of the wrong type is an error naming the key and the file.")
@click.option("--source", "source_spec", default=None,
              help="replay:FILE[,FILE...] (a recording replayed at --speed) or upstream:BASE_URL (the live feed). "
                   "Exactly one of --source and --bus.")
@click.option("--bus", "bus_url", default=None, metavar="URL[,URL...]",
              help="Serve the alert log of this NATS bus instead (nats://HOST:PORT; comma-separated for several): "
                   "a stateless frontend, no engine. Alerts come from `dropengine detect`; ids are the log's, the "
                   "same on every frontend, so clients may resume on any. Needs the bus extra.")
@click.option("--bus-prefix", default="dropengine", show_default=True, metavar="NAME",
              help="With --bus: the deployment's prefix (its log is the stream {PREFIX}_ALERTS).")
@source_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0 picks a free port.")
@click.option("--keys", "keys_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Keys file: 'KEY TIER [CAP]' per line. Without it any non-empty key is accepted (cap 100).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              callback=_file_name,
              help="Save the engine and the alert buffer here periodically and at shutdown; restore at start.")
@click.option("--state-every", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds between state saves.")
@click.option("--state-max-age", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="A state older than this many seconds is ignored (prices too old to compare with).")
@click.option("--buffer-size", type=click.IntRange(1, _MAX_COUNT), default=10_000, show_default=True,
              help="Alerts kept for clients that reconnect with Last-Event-ID.")
@click.option("--buffer-age", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="...and for at most this many seconds.")
@click.option("--max-pending", type=click.IntRange(1, _MAX_COUNT), default=2_000, show_default=True,
              help="A connection further behind than this many alerts is cut (it can resume).")
@click.option("--send-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="A connection whose socket accepts nothing for this long is cut.")
@evict_options
@signal_options("steam_books", "steam_window", "steam_groups", "key_numbers")
@click.option("--steam-threshold", type=click.FloatRange(min=THRESHOLD_RANGE[0]), default=DetectOptions().threshold,
              show_default=True, metavar="CENTS",
              help="The price move (cents) that counts for steam; line moves count from 0.5 points. Detection "
                   "itself runs at 1 cent and 0.25 points; each connection filters (threshold, line_threshold).")
@_server_sink_options
@click.option("--cors-origin", "cors_origin", multiple=True, metavar="ORIGIN", callback=_cors_callback,
              help="Let pages of this origin (scheme://host[:port], e.g. https://odds.example.com; * for any) "
                   "read the streams and the JSON endpoints from a browser (CORS; preflight OPTIONS answered). "
                   "Repeatable; in the environment, space-separated. Without it no CORS header is sent.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True, help="How much the server logs.")
def serve_cmd(source_spec: str | None, bus_url: str | None, bus_prefix: str, speed: float | None, max_gap: float,
              upstream_key: str | None, sports: str,
              transport: str, host: str, port: int, keys_path: Path | None, state_path: Path | None,
              state_every: float, state_max_age: float, buffer_size: int, buffer_age: float, max_pending: int,
              send_timeout: float, evict_idle: float, evict_started: float, signals: dict[str, Any],
              steam_threshold: float, sinks: SinkOptions, cors_origin: tuple[str, ...], log_level: str) -> None:
    """Serve /v1/odds-drop (SPEC section 7): drop, line-move and steam alerts as Server-Sent Events.

    GET /v1/odds-drop/{sport_key}, /v1/odds-drop/all and /v1/odds-drop/multi?sports=a,b
    with types (odds_drop,line_move,steam; default odds_drop), threshold, line_threshold,
    direction, event_id, bookmakers, markets, kinds, heartbeat_s, since and last_event_id
    (or the Last-Event-ID header). Detection runs once (steam with the --steam-* settings);
    each connection only filters. Alerts carry an id; a client that reconnects with it gets
    every alert it missed (or a `reset` frame when they are no longer buffered, or the id is
    malformed). Also:
    GET / (a live page), /healthz, /metrics. Needs the server extra:
    pip install 'dropengine[server]'.

    With --bus instead of --source: a stateless frontend of the alert log (no engine, no
    state). Ids are the log's sequence, so any number of frontends behind a load balancer
    give an alert the same id; a client resumes with Last-Event-ID on any of them and gets
    exactly what it missed while the log holds it (older than the ring: read from the log),
    or a `reset` (trimmed from the log, another epoch, ahead of the log; a hole in the log).
    A request the detectors' recorded options do not cover (a type they do not detect, a
    threshold or line_threshold below theirs, a direction or filter outside theirs) is a 400
    naming the parameter and their value, never served short; steam settings are echoed
    when the detectors agree. /healthz is degraded while the bus is unreachable.

    --sink delivers every alert the server detects (once, before any connection's filter;
    chosen by --sink-query, a /v1/odds-drop/all query such as
    'threshold=20&types=odds_drop,steam') to webhooks (signed), Discord, Telegram or an
    NDJSON file, with retries, a bounded queue and --dead-letter; the delivery id is the
    alert's SSE id. (With --source; a frontend on the bus does not deliver: give --sink to
    one process.)

    Settings come from flags, the environment (DROPENGINE_SERVE_<OPTION>, e.g.
    DROPENGINE_SERVE_PORT=8080) and --config FILE (TOML; keys are the long option
    names), in that order of precedence, then the defaults. deploy/serve.example.toml
    shows every key.

    Exit status: 0 after SIGINT/SIGTERM once it serves (and while it waits for a --bus
    that does not answer); 130 after Ctrl-C and 143 after SIGTERM while it is still
    starting (its imports, the port, the --state restore): one line, nothing served, the
    --state file as it was (a stop before the start is not the clean stop 0 reports, which
    saves the state; the same status as any command's start); 2 when it cannot start (a
    bad flag, a missing extra, a busy port, a replay file that is missing, unreadable or of
    no known format, a --bus that does not answer within 5 s or holds no alert log yet).

    \b
    Examples:
      dropengine serve --source replay:fixtures/demo_nba_frames.ndjson --speed 60
      dropengine serve --bus nats://127.0.0.1:4222 --keys keys.txt --port 8081
      DROPENGINE_UPSTREAM_KEY=... dropengine serve --source upstream:https://parlay-api.com \\
          --sports all --keys keys.txt --state serve.state --port 8080
    """
    # Ctrl-C and SIGTERM while it starts (cli/interrupt.py; the server extra's import ~0.3 s, a large
    # state's restore): one line and 130/143, nothing served, the state file as it was; before, click's
    # "Aborted!" and 1, and SIGTERM killed it. A stop before the start is no clean stop (that is 0: the
    # alerts served and the state saved): the status says it did not start, as for any command's start.
    # From run_foreground's own handlers on, its and uvicorn's make a stop a clean one (exit 0); the guard's
    # stay until then (handed over before it, a signal in its ~7-17 ms before its handlers was "Aborted!" or
    # death, after a final save of a state nothing had changed).
    kept = f", --state {printable(str(state_path))} as it was" if state_path is not None and bus_url is None else ""
    what = f" while starting: nothing served{kept}"
    guard = CtrlC()
    serving: Callable[[], None] | None
    with guard:
        with guard.starting(what):
            if (source_spec is None) == (bus_url is None):
                raise click.UsageError("give exactly one of --source (an engine fed here) and --bus (a frontend of "
                                       "the alert log)")
            if bus_url is not None:
                if sinks.specs:
                    raise click.UsageError("--sink and --bus: a frontend on the bus does not deliver to sinks (several "
                                           "frontends would each deliver every alert); give --sink to a serve "
                                           "--source or a watch process")
                _check_source_only(click.get_current_context())
                serving = _serve_bus(bus_url, bus_prefix, host, port, keys_path, buffer_size, buffer_age, max_pending,
                                     send_timeout, cors_origin, log_level, guard)
            else:
                assert source_spec is not None
                serving = _serve_source(source_spec, speed, max_gap, upstream_key, sports, transport, host, port,
                                        keys_path, state_path, state_every, state_max_age, buffer_size, buffer_age,
                                        max_pending, send_timeout, evict_idle, evict_started, signals, steam_threshold,
                                        sinks, cors_origin, log_level, guard)
        if serving is not None:  # (None: stopped while waiting for the bus, a clean stop as documented)
            try:
                serving()
            except KeyboardInterrupt:  # (the guard's only: before run_foreground's handlers, nothing served)
                guard.end(what)


def _serve_source(source_spec: str, speed: float | None, max_gap: float, upstream_key: str | None, sports: str,
                  transport: str, host: str, port: int, keys_path: Path | None, state_path: Path | None,
                  state_every: float, state_max_age: float, buffer_size: int, buffer_age: float, max_pending: int,
                  send_timeout: float, evict_idle: float, evict_started: float, signals: dict[str, Any],
                  steam_threshold: float, sinks: SinkOptions, cors_origin: tuple[str, ...],
                  log_level: str, guard: CtrlC) -> Callable[[], None]:
    """``serve --source``'s start (the server extra, the flags, the port, the state's lock and
    restore), under ``guard`` (the caller's start guard); returns what serves it until stopped."""
    require_extra("server", "dropengine serve")
    from ..server.app import DropServer, ServeConfig
    from ..server.asgi import bind, run_foreground
    try:
        keys = KeyTable.parse(keys_path.read_text(), str(keys_path)) if keys_path is not None else None
        source = source_from_spec(source_spec, speed, max_gap, upstream_key, sports, transport, "dropengine serve")
        config = ServeConfig(keys, buffer_size, buffer_age, max_pending, send_timeout, 5, state_path, state_every,
                             state_max_age, evict_idle_s=evict_idle, evict_started_s=evict_started,
                             steam_threshold=int(steam_threshold) if steam_threshold.is_integer() else steam_threshold,
                             **signals)
    except ConfigError as exc:
        raise signal_error(exc) from None  # names the flag (--steam-books, ...) where it has one
    try:
        sock = bind(host, port)  # before the state is read: a busy port fails at once
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    if state_path is not None:  # one server per state file (kept locked until exit)
        from ..server.state import StateLocked, lock_state

        try:
            lock_state(state_path)
        except StateLocked as exc:
            raise StartupError(f"--state {state_path}: {exc}") from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = DropServer(source, config)
    server.allow_origins(cors_origin)
    if sinks.specs:  # started and drained by the server's lifespan
        from ..server.delivery import ServerDelivery
        from .sinks import sinks_from_options

        try:
            server.delivery = ServerDelivery(sinks_from_options(sinks), sinks.query or "", drain_s=sinks.drain_s)
        except ConfigError as exc:  # a bad --sink-query: the message names it
            raise click.UsageError(str(exc)) from None
    message = server.restore(_now())
    secrets = [*(keys.keys() if keys is not None else []), *sinks.secrets()]
    from ..server.sources import UpstreamSource as _Upstream  # (the name above is for type checking only)

    if isinstance(source, _Upstream):
        secrets.append(source.config.api_key.reveal())

    def ready(url: str) -> None:
        print(f"dropengine serve: {source.name} at {url} ({message})", file=sys.stderr, flush=True)
        if keys is None:
            print("dropengine serve: no --keys: any non-empty key is accepted", file=sys.stderr, flush=True)

    def serve() -> None:
        try:
            run_foreground(server.app, sock=sock, secrets=secrets, log_level=log_level, on_ready=ready)
        except KeyboardInterrupt:  # (the start guard's: uvicorn never ran) no final save, the state as it was
            raise
        except BaseException:
            guard.defer = True
            server.finish()
            raise
        guard.defer = True  # (a signal during the final save is held: the stop is under way, exit 0)
        server.finish()  # a no-op after the lifespan's; the final save when a 2nd Ctrl-C skipped it

    return serve


def _check_source_only(ctx: click.Context) -> None:
    """With ``--bus``: a setting that means something only with a source (:data:`_SOURCE_ONLY`)
    is refused when given, instead of silently doing nothing. Except in a ``--config`` file that
    sets ``bus`` itself: such a file is a deployment's settings switched between the two modes
    (deploy/serve.example.toml: comment ``source``, uncomment ``bus``), so its source settings are
    named on stderr as not used, not refused. A file that does not choose the mode was written for
    a source: its settings are refused with a ``--bus`` given elsewhere, naming the file."""
    from_file = click.core.ParameterSource.DEFAULT_MAP
    given = [p for p in ctx.command.params if p.name in _SOURCE_ONLY
             and ctx.get_parameter_source(p.name) not in (None, click.core.ParameterSource.DEFAULT)]
    config = ctx.meta.get(_CONFIG_META)
    if "bus_url" in (ctx.default_map or {}):  # the file chose the bus: its source settings are kept for --source
        unused = [p for p in given if ctx.get_parameter_source(p.name) == from_file]
        given = [p for p in given if p not in unused]
        if unused:
            keys = ", ".join(_long_name(p).replace("_", "-") for p in unused)
            print(f"dropengine serve: --config {config}: {keys}: settings of a source, not used by a frontend on "
                  f"the bus", file=sys.stderr, flush=True)
    if given:
        flags = ", ".join(p.opts[0] for p in given)
        in_file = [p.opts[0] for p in given if ctx.get_parameter_source(p.name) == from_file]
        where = f" ({', '.join(in_file)}: set by --config {config})" if in_file else ""
        raise click.UsageError(f"{flags} and --bus: a frontend on the bus has no source, engine or state "
                               f"(the detectors have them; the alert log is the state){where}")


def _serve_bus(bus_url: str, prefix: str, host: str, port: int, keys_path: Path | None, buffer_size: int,
               buffer_age: float, max_pending: int, send_timeout: float, cors: tuple[str, ...],
               log_level: str, guard: CtrlC) -> Callable[[], None] | None:
    """``serve --bus``'s start, under ``guard`` (the caller's start guard): check the flags and
    that the log can be read (a wrong --bus or a log no detector created yet: exit 2 at once; a
    bus that does not answer, e.g. during a leader election, is waited for until SIGINT/SIGTERM:
    then ``None``, a clean stop); returns what serves :class:`BusServer` until stopped."""
    require_extra("server", "dropengine serve")
    require_extra("bus", "dropengine serve --bus")
    import asyncio

    from ..bus.config import BusConfig
    from ..server.asgi import bind, run_foreground
    from ..server.busfeed import BusServer, probe
    from ..server.ingest import ServeConfig

    try:
        bus_config = BusConfig.parse(bus_url, prefix=prefix)
    except ConfigError as exc:
        field = str(exc).partition(": ")[0]
        raise click.BadParameter(str(exc).partition(": ")[2] or str(exc),
                                 param_hint="'--bus-prefix'" if field == "prefix" else "'--bus'") from None
    try:
        keys = KeyTable.parse(keys_path.read_text(), str(keys_path)) if keys_path is not None else None
        config = ServeConfig(keys, buffer_size, buffer_age, max_pending, send_timeout, 5)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        sock = bind(host, port)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    guard.__exit__()  # (the probe's loop sets its own handlers: a stop while it waits is a clean one)
    try:
        where = asyncio.run(_probe_until_stopped(probe, bus_config))
    except DropEngineError as exc:  # definite: no server answers the first connect, or no alert log there yet
        sock.close()
        raise StartupError(f"--bus {bus_config.display()}: {exc}") from None
    if where is None:  # SIGINT/SIGTERM while waiting for a bus that does not answer: a clean stop
        sock.close()
        return None
    guard.__enter__()  # (the start again until the caller hands over to run_foreground)
    server = BusServer(bus_config, config)
    server.allow_origins(cors)
    secrets = keys.keys() if keys is not None else []

    def ready(url: str) -> None:
        print(f"dropengine serve: bus:{bus_config.alert_stream}@{bus_config.display()} at {url} (a frontend of the "
              f"alert log: {where})", file=sys.stderr, flush=True)
        if keys is None:
            print("dropengine serve: no --keys: any non-empty key is accepted", file=sys.stderr, flush=True)

    def serve() -> None:
        run_foreground(server.app, sock=sock, secrets=secrets, log_level=log_level, on_ready=ready)

    return serve


def _name_envvars(command: click.Command) -> None:
    """Give every option of ``command`` that has no variable of its own its
    ``DROPENGINE_SERVE_<OPTION>`` (:data:`ENV_PREFIX`). The rule is stated once in the
    command's help, not after each option (where it would crowd out the defaults)."""
    for p in command.params:
        if isinstance(p, click.Option) and p.envvar is None:
            p.envvar = ENV_PREFIX + _long_name(p).upper()


def _long_name(p: click.Parameter) -> str:
    """An option's long name as a config key (``--buffer-size``: ``buffer_size``)."""
    return next(o for o in p.opts if o.startswith("--"))[2:].replace("-", "_")


_name_envvars(serve_cmd)


def config_defaults(ctx: click.Context, command: click.Command, path: Path) -> dict[str, Any]:
    """The settings of the TOML file ``path`` as ``command``'s ``default_map`` (by parameter
    name), each checked as its flag is: a key must be a long option name of ``command`` (with
    ``-`` or ``_``), once; its value of the TOML type the option takes (a string, an integer, a
    number, a boolean; a list, or one value, for a repeatable option) and accepted by the
    option's own check. Anything else is a :class:`click.UsageError` naming the file and the key."""
    where = f"--config {path}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.UsageError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    # A UTF-8 byte order mark (Windows editors save one) is no TOML, but the file is: skip it.
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise click.UsageError(f"{where}: not valid TOML: not UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise click.UsageError(f"{where}: not valid TOML: {exc}") from None
    options = {_long_name(p): p for p in command.params
               if isinstance(p, click.Option) and p.expose_value and any(o.startswith("--") for o in p.opts)}
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for key, value in doc.items():
        name = key.replace("-", "_")
        param = options.get(name)
        if param is None:
            known = ", ".join(sorted(n.replace("_", "-") for n in options))
            raise click.UsageError(f"{where}: unknown key {key!r} (the keys are serve's long option names: {known})")
        if name in seen:
            raise click.UsageError(f"{where}: {seen[name]!r} and {key!r} are the same setting: give it once")
        seen[name] = key
        value = _toml_value(where, key, param, value)
        try:
            param.process_value(ctx, value)  # the option's own type, range and callback check
        except click.BadParameter as exc:
            raise click.UsageError(f"{where}: {key}: {exc.message}") from None  # (click's own text names a flag)
        assert param.name is not None
        out[param.name] = value
    return out


#: Options that hold a secret: a config value of theirs is never echoed in an error (a key typed
#: as a TOML number or put in a list is still the key).
_SECRET_OPTIONS: Final = frozenset({"upstream_key", "webhook_secret", "telegram_token"})
#: Options whose value may hold one: a URL with a token in its path or query (a Discord
#: webhook), or a user:password. Their checks redact what they echo; a value of the wrong TOML
#: type is not shown either.
_MAY_HOLD_SECRETS: Final = frozenset({"sink", "source_spec", "bus_url", "telegram_base_url"})

#: Text options that take a number or a word (``speed = 60`` or ``speed = "max"``).
_NUMBER_OR_WORD: Final = frozenset({"speed"})


def _toml_value(where: str, key: str, param: click.Option, value: Any) -> Any:
    """``value`` when its TOML type suits ``param`` (a list, or one value, for a repeatable
    option), else a UsageError naming the key and the file."""
    if param.multiple:
        return [_toml_scalar(where, key, param, v, " (or a list of them)")
                for v in (value if isinstance(value, list) else [value])]
    return _toml_scalar(where, key, param, value, "")


def _toml_scalar(where: str, key: str, param: click.Option, value: Any, or_list: str) -> Any:
    kind = param.type
    if param.is_flag or isinstance(kind, click.types.BoolParamType):
        ok, wanted = isinstance(value, bool), "true or false"
    elif isinstance(kind, click.types.IntParamType):
        ok, wanted = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(kind, click.types.FloatParamType):
        ok, wanted = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(kind, click.types.StringParamType | click.Choice | click.Path | click.File) \
            and param.name not in _NUMBER_OR_WORD:
        ok, wanted = isinstance(value, str), "a string"
    else:  # a number the option reads from text (speed = 60 or "max"; steam-books = 3)
        ok, wanted = isinstance(value, (str, int, float)) and not isinstance(value, bool), "a string or a number"
    if not ok:
        if param.name in _SECRET_OPTIONS or param.name in _MAY_HOLD_SECRETS:
            raise click.UsageError(f"{where}: {key}: the value is {_toml_type(value)}; it takes {wanted}{or_list} "
                                   f"(the value is not shown)")
        raise click.UsageError(f"{where}: {key}: {value!r} is {_toml_type(value)}; it takes {wanted}{or_list}")
    return value


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"  # dates and times


async def _probe_until_stopped(probe: Callable[..., Awaitable[str | None]], bus_config: Any) -> str | None:
    """``probe(bus_config, stop)`` with SIGINT/SIGTERM setting ``stop`` (it waits for a bus
    that does not answer; ``None`` when stopped)."""
    import asyncio
    import contextlib
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    try:
        return await probe(bus_config, stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


def source_from_spec(spec: str, speed: float | None, max_gap: float, upstream_key: str | None, sports: str,
                     transport: str, what: str) -> ReplaySource | UpstreamSource:
    """The source ``--source`` names (``replay:FILE[,FILE...]`` or ``upstream:BASE_URL``), as
    ``serve`` and ``ingest`` both build it: the same checks, the same messages."""
    from ..server.sources import ReplaySource, UpstreamSource

    kind, _, target = spec.partition(":")
    try:
        if kind == "replay" and target:
            paths = [p.strip() for p in target.split(",")]
            for p in paths:
                _check_replay_file(p)
            return ReplaySource(paths, speed, max_gap)
        if kind == "upstream" and target:
            if transport == "ws":
                require_extra("live", f"{what} --transport ws")
            key = upstream_key or os.environ.get("DROPENGINE_API_KEY")
            if not key:
                raise click.BadParameter("upstream needs a key: --upstream-key or DROPENGINE_UPSTREAM_KEY",
                                         param_hint="--upstream-key")
            cfg = UpstreamConfig(target, Secret(key), transport, "header", StreamQuery(),  # type: ignore[arg-type]
                                 None, RetryPolicy())
            wanted = None if sports.strip() == "all" else name_list(sports, "--sports")
            return UpstreamSource(cfg, wanted)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--source") from None
    raise click.BadParameter(f"{spec!r}: use replay:FILE[,FILE...] or upstream:BASE_URL", param_hint="--source")


def _check_replay_file(path: str) -> None:
    """A replay source must be readable and of a known format, or ``serve`` does not start
    (it would serve nothing while looking healthy)."""
    from ..io.recordings import detect_format

    where = f"--source replay:{path}"
    if not path:
        raise StartupError(f"{where}: an empty file name")
    if not Path(path).exists():
        raise StartupError(f"{where}: no such file")
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise StartupError(f"{where}: the file is empty")
    try:
        detect_format(path)
    except DropEngineError as exc:  # ConfigError or FeedError (unreadable, format unknown)
        reason = str(exc).removeprefix("path: ").split("; pass --format")[0]
        raise StartupError(f"{where}: {reason}") from None


def _now() -> int:
    import time

    return int(time.time() * 1000)
