"""``dropengine ingest`` and ``dropengine detect``: partitioned detection over NATS JetStream.

``ingest`` reads today's sources (a recording replayed at ``--speed``, or the live upstream
through the fan-in) and publishes the quotes to ``--partitions P`` subjects, by
``crc32(event_id) % P``. ``detect --partition I/P`` runs one engine over partition ``I`` and
appends its alerts to the alert log that ``serve --bus`` frontends read. Both need the ``bus``
extra (``pip install 'dropengine[bus]'``); nats is imported only inside the commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final

import click

from ..core.errors import BusError, ConfigError, DropEngineError, FencedError, SnapshotError
from ..core.options import DetectOptions
from ..core.partition import MAX_PARTITIONS, parse_partition
from ..server.ingest import ServeConfig
from .extras import StartupError, require_extra
from .interrupt import CtrlC
from .options import detect_options
from .serve import source_from_spec, source_options

__all__ = ["DETECT_DEFAULTS", "EXIT_FENCED", "detect_cmd", "ingest_cmd"]

#: Exit status of a detector that another detector displaced (its lease or the log's fence).
EXIT_FENCED: Final = 3
#: ``detect``'s detection defaults: the single-process server engine's (every type, at the
#: lowest thresholds a connection may ask for, steam at ``serve``'s settings), so a ``serve
#: --bus`` frontend post-filters a connection's threshold, types, line threshold and direction
#: exactly as ``serve`` does. Derived from ServeConfig, not restated.
DETECT_DEFAULTS: Final = ServeConfig().detect_options()
_LOG_LEVELS: Final = ("debug", "info", "warning", "error")

log = logging.getLogger("dropengine.cli.bus")

#: The line after a Ctrl-C or SIGTERM while ``ingest`` or ``detect`` starts (the bus extra's import,
#: the bus modules', a replay's files): exit 130/143 (cli/interrupt.py), as any command's start; before,
#: click's "Aborted!" and 1, and SIGTERM killed it. From the event loop on (connecting included), the
#: loop's handlers stop the command cleanly: exit 0, as documented.
_NOT_STARTED: Final = " while starting: not connected to the bus, nothing published"


def _not_connected(bus_config: Any) -> str:
    """The line after a signal while the first connect is under way (:func:`_connect`), the
    start's too: nothing published."""
    return f" while connecting to the bus at {bus_config.display()}: nothing published"


#: The BusConfig field each stream flag sets.
_CONFIG_FIELD: Final = {"replicas": "replicas", "log_max_age": "log_max_age_s", "log_max_bytes": "log_max_bytes",
                        "quote_max_age": "quote_max_age_s", "quote_max_bytes": "quote_max_bytes",
                        "duplicate_window": "duplicate_window_s"}


def _bus_options(*, retention: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--bus``, ``--bus-prefix``, ``--replicas`` (and with ``retention`` the streams'
    limits); the command gets ``bus_config`` (a validated ``BusConfig``) instead, and with
    ``retention`` also ``bus_given``: the BusConfig fields whose flags were given."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        import functools

        names = ["bus_url", "bus_prefix", "replicas", "connect_timeout"]
        if retention:
            names += ["log_max_age", "log_max_bytes", "quote_max_age", "quote_max_bytes", "duplicate_window"]

        @functools.wraps(f)
        def command(**kwargs: Any) -> Any:
            raw = {n: kwargs.pop(n) for n in names}
            from ..bus.config import BusConfig  # pure (no nats): the flags are judged before the extra

            extra: dict[str, Any] = {"connect_timeout_s": raw["connect_timeout"]}
            if retention:
                extra |= {"log_max_age_s": raw["log_max_age"], "log_max_bytes": raw["log_max_bytes"],
                         "quote_max_age_s": raw["quote_max_age"], "quote_max_bytes": raw["quote_max_bytes"],
                         "duplicate_window_s": raw["duplicate_window"]}
            try:
                kwargs["bus_config"] = BusConfig.parse(raw["bus_url"], prefix=raw["bus_prefix"],
                                                       replicas=raw["replicas"], **extra)
            except ConfigError as exc:
                field, _, rest = str(exc).partition(": ")
                flag = {"bus": "--bus", "servers": "--bus", "prefix": "--bus-prefix", "replicas": "--replicas",
                        "log_max_age_s": "--log-max-age", "log_max_bytes": "--log-max-bytes",
                        "quote_max_age_s": "--quote-max-age", "quote_max_bytes": "--quote-max-bytes",
                        "duplicate_window_s": "--duplicate-window", "connect_timeout_s": "--connect-timeout"}.get(field)
                if flag is None:
                    raise click.UsageError(str(exc)) from None
                raise click.BadParameter(rest, param_hint=f"'{flag}'") from None
            if retention:  # which stream settings the user set (only those change existing streams)
                ctx = click.get_current_context()
                kwargs["bus_given"] = frozenset(
                    _CONFIG_FIELD[n] for n in names if n in _CONFIG_FIELD
                    and ctx.get_parameter_source(n) not in (None, click.core.ParameterSource.DEFAULT))
            return f(**kwargs)

        options = [
            click.option("--bus", "bus_url", required=True, envvar="DROPENGINE_BUS", show_envvar=True,
                         metavar="URL[,URL...]",
                         help="NATS servers of one cluster: nats://HOST:PORT (comma-separated for several)."),
            click.option("--bus-prefix", default="dropengine", show_default=True, metavar="NAME",
                         help="Names the streams ({PREFIX}_QUOTES, {PREFIX}_ALERTS), subjects and buckets; "
                              "deployments sharing one NATS cluster use different prefixes."),
            click.option("--replicas", type=click.IntRange(1, 5), default=1, show_default=True,
                         help="JetStream replicas of what this command creates (3 on a 3-node cluster)."),
            click.option("--connect-timeout", type=click.FloatRange(min=0.1, max=600), default=5.0, show_default=True,
                         metavar="SECONDS",
                         help="Give up starting when no bus server answers within this long (exit status 2). "
                              "Once connected, a lost connection is retried forever."),
        ]
        if retention:
            options += [
                click.option("--log-max-age", type=float, default=86400.0, show_default=True, metavar="SECONDS",
                             help="The alert log keeps alerts this long (older ones are trimmed)."),
                click.option("--log-max-bytes", type=int, default=1 << 30, show_default=True, metavar="BYTES",
                             help="...and at most this many bytes (the oldest go first)."),
                click.option("--quote-max-age", type=float, default=86400.0, show_default=True, metavar="SECONDS",
                             help="The quote stream keeps quotes this long: a detector restarted from an older "
                                  "checkpoint misses the quotes trimmed meanwhile."),
                click.option("--quote-max-bytes", type=int, default=1 << 30, show_default=True, metavar="BYTES",
                             help="...and at most this many bytes."),
                click.option("--duplicate-window", type=float, default=120.0, show_default=True, metavar="SECONDS",
                             help="How long the streams remember a message id (a republish inside it is dropped)."),
            ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _log_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--log-level", type=click.Choice(_LOG_LEVELS), default="info", show_default=True,
                        help="Log lines (stderr) from this level on.")(f)


def _status_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--status-every", type=click.FloatRange(min=0), default=10.0, show_default=True,
                        metavar="SECONDS", help="A status line on stderr this often; 0 never.")(f)


def _duration_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
                        help="Stop after this many seconds (default: run until SIGINT/SIGTERM).")(f)


def _say(text: str) -> None:
    click.echo(text, err=True)


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class _Stop(asyncio.Event):
    """A bus command's stop: set by SIGINT/SIGTERM (``signum``: the first of them) or --duration."""

    signum: int | None = None

    def signalled(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self.set()


class _StoppedConnecting(Exception):
    """A signal while the first connect was under way: the command never started (exit 130/143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


async def _connect(connect_unless: Callable[..., Awaitable[Any]], bus_config: Any, name: str,
                   stop: _Stop) -> Any | None:
    """The first connect (``connect_unless``: :func:`~dropengine.bus.connect.connect_unless`,
    imported by the start), given up as soon as ``stop`` is set: after a signal
    :class:`_StoppedConnecting` (the start's policy: 130/143, one line), after --duration ``None``
    (a clean stop). Before session 18 a stop waited for the connect (up to --connect-timeout,
    then exit 2 "cannot connect" when no server answered)."""
    try:
        bus = await connect_unless(bus_config, stop, name=name)
    except BusError as exc:
        raise StartupError(str(exc)) from None
    if bus is None and stop.signum is not None:
        raise _StoppedConnecting(stop.signum)
    return bus


async def _until_stopped(main: Awaitable[Any], duration: float | None, stop: _Stop) -> None:
    """SIGINT/SIGTERM and ``duration`` set ``stop``; ``main`` watches it."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.signalled, sig)
    timer = loop.call_later(duration, stop.set) if duration is not None else None
    try:
        await main
    finally:
        if timer is not None:
            timer.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


async def _status(every: float, line: Callable[[], str]) -> None:
    if every <= 0:
        return
    while True:
        await asyncio.sleep(every)
        _say(line())


# -- detect --------------------------------------------------------------------------------
def _partition(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    try:
        return parse_partition(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("partition: "), ctx, param) from None


@click.command("detect")
@_bus_options(retention=False)
@click.option("--partition", "part", required=True, metavar="I/P", callback=_partition,
              help="Detect partition I of P (0 <= I < P): the events with crc32(event_id) % P == I, as "
                   "'dropengine ingest --partitions P' publishes them.")
@detect_options(defaults=DETECT_DEFAULTS)
@click.option("--checkpoint-every", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
              metavar="SECONDS",
              help="Save the engine and the quote position to the bus this often (and at a clean stop).")
@click.option("--fresh", is_flag=True,
              help="Ignore a saved checkpoint: start an empty engine from the start of the retained quote "
                   "stream (alerts whose source position the log holds are still not published again).")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="When another detector holds the partition: wait as its standby and take over when its "
                   "lease expires (--wait), or exit at once with status 2 naming the holder (--no-wait).")
@click.option("--lease-ttl", type=click.FloatRange(min=0.5, max=3600), default=6.0, show_default=True,
              metavar="SECONDS",
              help="The partition lease's length, renewed every third of it: a standby takes over this long "
                   "after its holder died.")
@_duration_option
@_status_option
@_log_option
def detect_cmd(bus_config: Any, part: tuple[int, int], detect: DetectOptions, checkpoint_every: float, fresh: bool,
               wait: bool, lease_ttl: float, duration: float | None, status_every: float, log_level: str) -> None:
    """Detect one partition of the quote stream and append its alerts to the alert log.

    One engine over the quotes of partition I of P (published by 'dropengine ingest
    --partitions P'), with the detection options of 'dropengine replay'. Its alerts go to the
    alert log ({PREFIX}_ALERTS, subject {prefix}.alerts.I), which 'dropengine serve --bus'
    frontends serve. P detectors, one per partition, publish exactly the alerts one engine
    over all the quotes would (events never share state).

    The defaults are the engine of 'dropengine serve' (not replay's): every --types, at the
    lowest --threshold and --line-threshold a client may ask for, both directions,
    --reference last, steam at serve's settings (the values are listed below). So a 'serve --bus' frontend
    post-filters each client's threshold, types, line threshold and direction exactly as
    'serve' does; with higher thresholds or fewer types here, those clients get less. Each
    detector records its options in the bus ({prefix}_detectors) for the frontends.

    \b
    Guarantees:
      - one writer per partition: a lease in the bus ({prefix}_leases) plus an
        expected-last-sequence check on every publish. A second detector for a held
        partition waits as a standby (or exits with --no-wait); one whose lease another
        detector took, or whose log subject another writer appended to, stops at once
        (exit status 3) without publishing. Neither a renewal whose answer was lost
        (an election) nor a recreated or purged alert log counts as that: the first
        keeps the lease, the second is re-read (a warning naming its epochs) and
        publishing goes on.
      - the partition count is the one ingest recorded in the quote stream: another
        P is refused (exit 2, naming both).
      - exactly once across a crash (kill -9 included): every --checkpoint-every seconds
        the engine and its quote position go to the bus ({prefix}_checkpoints); a restart
        restores them, reads on from there and skips every alert whose source position
        the log already holds (and JetStream drops a repeated message id).
      - a checkpoint saved with another P, other detection options, or in a quote
        stream since deleted and recreated (another epoch) is refused, naming both
        (start with --fresh to discard it).
      - a quote message that cannot be decoded is skipped, counted and logged.

    Limits: quotes trimmed from the quote stream (--quote-max-age of ingest) before a
    stopped detector read them are lost to it; the lease compares wall clocks of hosts
    (the log's sequence check still refuses a second writer).

    A bus that does not answer (a timeout, no leader during an election), at start as while
    running, is waited for (a warning per outage) until SIGINT/SIGTERM or --duration.

    Exit status: 0 after SIGINT/SIGTERM or --duration; 130 after Ctrl-C and 143 after
    SIGTERM while it starts, before it connects (its imports): one line, nothing published;
    2 when it cannot start (a bad flag,
    the bus extra missing, no bus server answering the first connect within
    --connect-timeout, a refused checkpoint, another partition count, the partition held
    with --no-wait); 3 when another detector took the partition (above); 1 when the bus
    failed for good (the quote stream deleted or recreated while running).

    \b
    Example:
      dropengine detect --bus nats://127.0.0.1:4222 --partition 0/2
    """
    index, count = part
    guard = CtrlC()  # (the start's signal policy: _NOT_STARTED)
    with guard, guard.starting(_NOT_STARTED):
        require_extra("bus", "dropengine detect")
        from ..bus.connect import connect_unless
        from ..bus.detector import Detector
        from ..bus.lease import LeaseHeld

        _logging(log_level)

    async def body(stop: _Stop) -> None:
        bus = await _connect(connect_unless, bus_config, f"dropengine-detect-{index}.{count}", stop)
        if bus is None:
            return
        try:
            if not await _streams_ready(bus, stop):
                return

            def waiting(holder: Any) -> None:
                _say(f"dropengine detect: partition {index}/{count} is held by {holder.owner}; waiting as its "
                     "standby (--no-wait to exit instead)")

            def started(d: Detector) -> None:
                _say(f"dropengine detect: partition {index}/{count} on {bus_config.display()}: engine {d.origin}, "
                     f"reading quotes from message {d.start_seq}")

            detector = Detector(bus, index, count, detect, checkpoint_every_s=checkpoint_every,
                                lease_ttl_s=lease_ttl, fresh=fresh, wait=wait, on_wait=waiting, on_start=started)
            status = asyncio.ensure_future(_status(status_every, lambda: f"detect {index}/{count}: "
                                                   + detector.stats.line()))
            try:
                await detector.run(stop)
            finally:
                status.cancel()
                if detector.origin:  # it ran (was not refused at start)
                    _say(f"dropengine detect {index}/{count}: {detector.stats.line()}")
        finally:
            await bus.close()

    try:
        asyncio.run(_main(body, duration))
    except _StoppedConnecting as exc:
        guard.signum = exc.signum
        guard.end(_not_connected(bus_config))
    except LeaseHeld as exc:
        raise StartupError(f"partition {index}/{count}: {exc} (started with --no-wait)") from None
    except FencedError as exc:
        _say(f"Error: partition {index}/{count}: {exc}; stopped without publishing more")
        sys.exit(EXIT_FENCED)
    except (ConfigError, SnapshotError) as exc:
        raise StartupError(str(exc)) from None
    except DropEngineError as exc:  # the bus failed while running: exit status 1
        raise click.ClickException(str(exc)) from None


async def _main(body: Callable[[_Stop], Awaitable[None]], duration: float | None) -> None:
    """``body(stop)`` with SIGINT/SIGTERM and ``duration`` setting ``stop``."""
    stop = _Stop()
    await _until_stopped(body(stop), duration, stop)


async def _until_answered(what: str, call: Callable[[], Awaitable[Any]], stop: asyncio.Event) -> bool:
    """``await call()``, waiting out a bus that does not answer (see
    :func:`~dropengine.bus.connect.retry_unavailable`); False when ``stop`` comes first."""
    from ..bus.connect import retry_unavailable, unless_stopped

    trying = await unless_stopped(retry_unavailable(what, call, logger=log), stop)
    if trying is None:
        return False
    trying.result()
    return True


async def _streams_ready(bus: Any, stop: asyncio.Event) -> bool:
    """Wait until ingest has created both streams (their settings are ingest's); False when
    stopped first."""
    from ..bus.connect import BusUnavailable
    from ..bus.detector import missing_streams

    cfg = bus.config
    told = False
    outage = 0
    while True:
        try:
            missing = await missing_streams(bus)
        except BusUnavailable as exc:  # no answer (an election, a node down): wait, as while running
            if not outage:
                log.warning("detect: the bus does not answer (%s); retrying until it does", exc)
            outage += 1
            if stop.is_set():
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(2.0, 0.1 * 2 ** min(outage - 1, 5)))
            continue
        if outage:
            log.warning("detect: the bus answers again (after %d failed attempts)", outage)
            outage = 0
        if not missing:
            return True
        if not told:
            _say(f"dropengine detect: waiting for the streams {' and '.join(missing)} on {cfg.display()} "
                 "('dropengine ingest' creates them)")
            told = True
        if stop.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)


# -- ingest --------------------------------------------------------------------------------
@click.command("ingest")
@click.option("--source", "source_spec", required=True, metavar="replay:FILE[,FILE...]|upstream:BASE_URL",
              help="replay:FILE[,FILE...] (recordings replayed at --speed, merged by time) or upstream:BASE_URL "
                   "(the live feed through the fan-in, with its retry and resume).")
@_bus_options(retention=True)
@click.option("--partitions", type=click.IntRange(1, MAX_PARTITIONS), required=True, metavar="P",
              help="Publish to P partition subjects by crc32(event_id) % P; run one 'dropengine detect "
                   "--partition I/P' for each I.")
@click.option("--repartition", is_flag=True,
              help="Allow a --partitions other than the one the quote stream records (from an earlier ingest); "
                   "every detector must then be restarted with the new I/P.")
@click.option("--allow-shrink", is_flag=True,
              help="Allow --log-max-*/--quote-max-*/--replicas to LOWER the settings of existing streams "
                   "(trims what they hold at once, or removes copies). Without it that is refused (exit 2).")
@source_options
@_duration_option
@_status_option
@_log_option
def ingest_cmd(source_spec: str, bus_config: Any, bus_given: frozenset[str], partitions: int, repartition: bool,
               allow_shrink: bool, speed: float | None, max_gap: float, upstream_key: str | None, sports: str,
               transport: str, duration: float | None, status_every: float, log_level: str) -> None:
    """Publish quotes from a recording or the live upstream to the partitioned quote stream.

    Creates the quote stream {PREFIX}_QUOTES and the alert log {PREFIX}_ALERTS, or changes
    the settings of existing ones, but only those whose flags are given (--log-max-*,
    --quote-max-*, --duplicate-window, --replicas; lowering a limit or the replicas also needs
    --allow-shrink). The partition count is recorded in the quote stream: another
    --partitions is refused (exit 2, naming both) unless --repartition, and 'detect' refuses
    an I/P of another P. Each batch of quotes that arrived together becomes one message per
    partition (subject {prefix}.quotes.I, I = crc32(event_id) % P; a partition's quotes keep
    their order); the next batch is read only when the bus acknowledged the previous one.
    A replay ends at the end of its recordings (exit status 0); the live upstream runs until
    SIGINT/SIGTERM or --duration. A restarted ingest does not resume a replay (it publishes
    the recording again; detectors take the repeats as stale or unchanged prices) and asks
    the upstream for its current state.

    While the quote stream does not answer (no leader during an election, a node down) a
    message is retried with its own message id until the bus stores it (once), the source
    held back meanwhile (a warning per outage).

    Exit status: 0 when done or stopped; 130 after Ctrl-C and 143 after SIGTERM while it
    starts, before it connects (its imports, the replay files): one line, nothing
    published; 2 when it cannot start (a bad flag, the bus extra
    missing, the bus unreachable, a replay file missing or of no known format, another
    partition count or a lowered setting without its flag); 1 when the bus
    refused for good while publishing (a message too large, the stream deleted).

    \b
    Example:
      dropengine ingest --source replay:fixtures/demo_nba_frames.ndjson --speed 60 \\
          --bus nats://127.0.0.1:4222 --partitions 2
    """
    guard = CtrlC()  # (the start's signal policy: _NOT_STARTED)
    with guard, guard.starting(_NOT_STARTED):
        require_extra("bus", "dropengine ingest")
        from ..bus.connect import connect_unless, ensure_streams
        from ..bus.ingest import BusIngest

        source = source_from_spec(source_spec, speed, max_gap, upstream_key, sports, transport, "dropengine ingest")
        _logging(log_level)

    async def body(stop: _Stop) -> None:
        bus = await _connect(connect_unless, bus_config, "dropengine-ingest", stop)
        if bus is None:
            return
        try:
            try:
                if not await _until_answered("ingest: create the streams", lambda: ensure_streams(
                        bus, given=bus_given, shrink=allow_shrink, partitions=partitions, repartition=repartition),
                        stop):
                    return  # stopped while the bus did not answer
            except (BusError, ConfigError) as exc:  # a definite answer (another deployment's stream, ...)
                raise StartupError(str(exc)) from None
            publish = BusIngest(bus, partitions, record=False)  # ensure_streams recorded the count
            _say(f"dropengine ingest: {source.name} to {bus_config.display()} ({bus_config.quote_stream}, "
                 f"{partitions} partitions)")

            def line() -> str:
                s = publish.stats
                return (f"ingest: {s.quotes:,} quotes in {s.messages:,} messages ({s.bytes:,} bytes), "
                        f"quote stream at {s.last_seq:,}")

            running = asyncio.ensure_future(source.run(publish, {}))
            stopped = asyncio.ensure_future(stop.wait())
            status = asyncio.ensure_future(_status(status_every, line))
            try:
                await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                status.cancel()
                if not running.done():
                    running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running  # a source's own failure leaves here
                per = ", ".join(f"{i}: {n:,}" for i, n in enumerate(publish.per_partition))
                skipped = getattr(getattr(source, "stats", None), "skips", None)
                extra = f"; {skipped.total:,} input lines skipped" if skipped is not None and skipped.total else ""
                _say(f"dropengine ingest: {line()}; messages per partition {per}{extra}")
        finally:
            await bus.close()

    try:
        asyncio.run(_main(body, duration))
    except _StoppedConnecting as exc:
        guard.signum = exc.signum
        guard.end(_not_connected(bus_config))
    except DropEngineError as exc:  # the bus (or the upstream, for good) failed while running: exit status 1
        raise click.ClickException(str(exc)) from None
