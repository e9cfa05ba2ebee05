"""``dropengine serve``: the reference ``/v1/odds-drop`` server."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from ..core.errors import ConfigError, DropEngineError
from ..core.keys import KeyTable, Secret
from ..core.options import DetectOptions
from ..core.retry import RetryPolicy
from ..formats.query import StreamQuery
from ..live.transport import TRANSPORTS, UpstreamConfig
from ..server.params import THRESHOLD_RANGE
from .extras import StartupError, require_extra
from .live import evict_options
from .mock_upstream import speed_callback
from .options import name_list, signal_error, signal_options

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..server.sources import ReplaySource, UpstreamSource

__all__ = ["serve_cmd", "source_from_spec", "source_options"]


#: Flags that mean something only with --source (an engine, a source, a state file): refused
#: with --bus when given, instead of silently doing nothing.
_SOURCE_ONLY: Final = ("speed", "max_gap", "upstream_key", "sports", "transport", "state_path", "state_every",
                       "state_max_age", "evict_idle", "evict_started", "steam_books", "steam_window",
                       "steam_groups", "key_numbers", "steam_threshold")


def source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """How a ``--source`` is read (``--speed --max-gap`` for a replay, ``--upstream-key --sports
    --transport`` for the upstream), declared once for ``serve`` and ``ingest``; the command gets
    them as ``speed, max_gap, upstream_key, sports, transport`` (see :func:`source_from_spec`)."""
    for decorate in reversed((
        click.option("--speed", default="1", show_default=True, callback=speed_callback,
                     help="With replay: times the recorded pace, or 'max'."),
        click.option("--max-gap", type=click.FloatRange(min=0), default=5.0, show_default=True,
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


@click.command("serve")
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
              help="Save the engine and the alert buffer here periodically and at shutdown; restore at start.")
@click.option("--state-every", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds between state saves.")
@click.option("--state-max-age", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="A state older than this many seconds is ignored (prices too old to compare with).")
@click.option("--buffer-size", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Alerts kept for clients that reconnect with Last-Event-ID.")
@click.option("--buffer-age", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="...and for at most this many seconds.")
@click.option("--max-pending", type=click.IntRange(min=1), default=2_000, show_default=True,
              help="A connection further behind than this many alerts is cut (it can resume).")
@click.option("--send-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="A connection whose socket accepts nothing for this long is cut.")
@evict_options
@signal_options("steam_books", "steam_window", "steam_groups", "key_numbers")
@click.option("--steam-threshold", type=click.FloatRange(min=THRESHOLD_RANGE[0]), default=DetectOptions().threshold,
              show_default=True, metavar="CENTS",
              help="The price move (cents) that counts for steam; line moves count from 0.5 points. Detection "
                   "itself runs at 1 cent and 0.25 points; each connection filters (threshold, line_threshold).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
def serve_cmd(source_spec: str | None, bus_url: str | None, bus_prefix: str, speed: float | None, max_gap: float,
              upstream_key: str | None, sports: str,
              transport: str, host: str, port: int, keys_path: Path | None, state_path: Path | None,
              state_every: float, state_max_age: float, buffer_size: int, buffer_age: float, max_pending: int,
              send_timeout: float, evict_idle: float, evict_started: float, signals: dict[str, Any],
              steam_threshold: float, log_level: str) -> None:
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

    Exit status: 0 after SIGINT/SIGTERM; 2 when it cannot start (a bad flag, a missing
    extra, a busy port, a replay file that is missing, unreadable or of no known format,
    a --bus that does not answer within 5 s or holds no alert log yet).

    \b
    Examples:
      dropengine serve --source replay:fixtures/demo_nba_frames.ndjson --speed 60
      dropengine serve --bus nats://127.0.0.1:4222 --keys keys.txt --port 8081
      DROPENGINE_UPSTREAM_KEY=... dropengine serve --source upstream:https://parlay-api.com \\
          --sports all --keys keys.txt --state serve.state --port 8080
    """
    if (source_spec is None) == (bus_url is None):
        raise click.UsageError("give exactly one of --source (an engine fed here) and --bus (a frontend of the "
                               "alert log)")
    if bus_url is not None:
        ctx = click.get_current_context()
        given = [p for p in ctx.command.params if p.name in _SOURCE_ONLY
                 and ctx.get_parameter_source(p.name) not in (None, click.core.ParameterSource.DEFAULT)]
        if given:
            flags = ", ".join(p.opts[0] for p in given)
            raise click.UsageError(f"{flags} and --bus: a frontend on the bus has no source, engine or state "
                                   f"(the detectors have them; the alert log is the state)")
        _serve_bus(bus_url, bus_prefix, host, port, keys_path, buffer_size, buffer_age, max_pending, send_timeout,
                   log_level)
        return
    assert source_spec is not None
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
    message = server.restore(_now())
    secrets = keys.keys() if keys is not None else []
    from ..server.sources import UpstreamSource as _Upstream  # (the name above is for type checking only)

    if isinstance(source, _Upstream):
        secrets.append(source.config.api_key.reveal())

    def ready(url: str) -> None:
        print(f"dropengine serve: {source.name} at {url} ({message})", file=sys.stderr, flush=True)
        if keys is None:
            print("dropengine serve: no --keys: any non-empty key is accepted", file=sys.stderr, flush=True)

    try:
        run_foreground(server.app, sock=sock, secrets=secrets, log_level=log_level, on_ready=ready)
    finally:
        server.finish()  # a no-op after the lifespan's; the final save when a 2nd Ctrl-C skipped it


def _serve_bus(bus_url: str, prefix: str, host: str, port: int, keys_path: Path | None, buffer_size: int,
               buffer_age: float, max_pending: int, send_timeout: float, log_level: str) -> None:
    """``serve --bus``: check the flags and that the log can be read (a wrong --bus or a log
    no detector created yet: exit 2 at once; a bus that does not answer, e.g. during a
    leader election, is waited for until SIGINT/SIGTERM), then serve :class:`BusServer`
    until stopped."""
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
    try:
        where = asyncio.run(_probe_until_stopped(probe, bus_config))
    except DropEngineError as exc:  # definite: no server answers the first connect, or no alert log there yet
        sock.close()
        raise StartupError(f"--bus {bus_config.display()}: {exc}") from None
    if where is None:  # SIGINT/SIGTERM while waiting for a bus that does not answer: a clean stop
        sock.close()
        return
    server = BusServer(bus_config, config)
    secrets = keys.keys() if keys is not None else []

    def ready(url: str) -> None:
        print(f"dropengine serve: bus:{bus_config.alert_stream}@{bus_config.display()} at {url} (a frontend of the "
              f"alert log: {where})", file=sys.stderr, flush=True)
        if keys is None:
            print("dropengine serve: no --keys: any non-empty key is accepted", file=sys.stderr, flush=True)

    run_foreground(server.app, sock=sock, secrets=secrets, log_level=log_level, on_ready=ready)


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
