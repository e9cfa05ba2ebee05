"""``dropengine watch`` and ``dropengine record``: live upstream streams at the command line.

Both are the same loop: a :class:`~dropengine.live.fanin.FanIn` of one, several
(``--multi``) or every (``--all``) sport streams, decoded once. ``watch`` feeds the quotes
to a :class:`~dropengine.core.engine.DropEngine` and prints alerts as JSON lines (the same lines
``replay`` prints); ``record`` writes every frame as received, one per line, so that
``dropengine replay FILE`` later gives the same alerts. ``watch --record FILE`` does both.
Status (connections, reconnects, quotes/s, keys held) goes to stderr. ``watch`` forgets
keys by age (:class:`Evictor`), so that a long run holds a bounded number of keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any, Final

import click
from rich.console import Console
from rich.text import Text

from ..core.alerts import by_signal_order
from ..core.engine import DropEngine
from ..core.errors import AuthError, ConfigError, UpstreamError
from ..core.filters import AlertFilter
from ..core.keys import Secret, redact
from ..core.options import DetectOptions
from ..core.retry import RetryPolicy
from ..core.skips import printable
from ..deliver.base import Sink
from ..deliver.ndjson import NdjsonSink
from ..formats.frames import FrameDecoder
from ..io.sinks import AlertWriter
from ..live.fanin import FanIn
from ..live.transport import AUTH_MODES, TRANSPORTS, UpstreamConfig
from ..live.upstream import LiveStats
from ..live.watch import EVICT_IDLE_S, EVICT_STARTED_S, Evictor, upstream_query
from .extras import StartupError, require_extra
from .options import bad_parameter, detect_options, filter_options, name_list
from .sinks import SinkOptions, sink_options, sinks_from_options, sinks_summary

__all__ = ["EVICT_IDLE_S", "EVICT_STARTED_S", "EXIT_NEVER_CONNECTED", "RECORD_SUFFIXES", "Evictor", "evict_options",
           "record_cmd", "watch_cmd"]

#: What ``record`` writes (one frame per line) and ``replay`` reads back; ``.gz`` compresses.
RECORD_SUFFIXES: Final = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
#: Exit status of a run during which no connection to the upstream ever opened.
EXIT_NEVER_CONNECTED: Final = 5


def _sport_list(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not any(v.strip() for v in value.split(",")):
        raise click.BadParameter("give at least one comma-separated value", ctx, param)
    return value


def _source_options(f: Any) -> Any:
    options = [
        click.option("--sport", help="One sport key, e.g. basketball_nba."),
        click.option("--all", "all_sports", is_flag=True,
                     help="Every active sport of GET /v1/sports, refreshed every 5 minutes."),
        click.option("--multi", callback=_sport_list, help="A fixed list of sport keys, comma-separated."),
        click.option("--base-url", envvar="DROPENGINE_BASE_URL", required=True,
                     help="The upstream, e.g. https://parlay-api.com or http://127.0.0.1:8081 "
                          "(env DROPENGINE_BASE_URL)."),
        click.option("--api-key", envvar="DROPENGINE_API_KEY", required=True, show_envvar=True,
                     help="The upstream API key; prefer the environment variable (a flag shows in ps)."),
        click.option("--auth", type=click.Choice(AUTH_MODES), default="header", show_default=True,
                     help="How the key is sent: X-API-Key header, ?apiKey= query, or (ws) the "
                          "Sec-WebSocket-Protocol apikey.<key>."),
        click.option("--transport", type=click.Choice(TRANSPORTS), default="sse", show_default=True,
                     help="Server-Sent Events (/v1/sse/odds/...) or WebSocket (/ws/odds/...)."),
        click.option("--since", type=click.IntRange(min=0), default=None,
                     help="Start from this unix-ms cursor (the upstream replays rows since then)."),
        click.option("--heartbeat-s", type=click.IntRange(1, 30), default=None,
                     help="Heartbeat interval to ask for; no frame for twice it means a dead connection "
                          "[default: 5 for sse, 30 for ws]."),
        click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Stop after this many seconds."),
        click.option("--status-every", type=click.FloatRange(min=0), default=5.0, show_default=True,
                     help="Seconds between status lines on stderr (0: none)."),
        click.option("--retry-scale", type=click.FloatRange(min=0.001, max=1.0), default=1.0, hidden=True,
                     help="Scale every retry delay (tests and demos)."),
        click.option("--quiet", "-q", is_flag=True, help="No status or connection messages on stderr."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _config(base_url: str, api_key: str, auth: str, transport: str, since: int | None, heartbeat_s: int | None,
            flt: AlertFilter, retry_scale: float, command: str) -> UpstreamConfig:
    if transport == "ws":
        require_extra("live", f"dropengine {command} --transport ws")
    # the filters narrow the upstream's stream too (one rule: live.watch's, the library's watch)
    query = upstream_query(flt, since)
    return UpstreamConfig(
        base_url, Secret(api_key), transport, auth, query,  # type: ignore[arg-type]
        float(heartbeat_s) if heartbeat_s is not None else None, RetryPolicy().scaled(retry_scale),
    )


def _record_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None and not value.name.lower().endswith(RECORD_SUFFIXES):
        raise click.BadParameter(
            f"{str(value)!r}: a recording is one frame per line, which replay reads back from "
            f"{', '.join(RECORD_SUFFIXES)}", ctx, param)
    return value


def evict_options(f: Any) -> Any:
    """``--evict-idle`` and ``--evict-started``: shared by ``watch`` and ``serve``."""
    options = [
        click.option("--evict-idle", type=click.FloatRange(min=0), default=EVICT_IDLE_S, show_default=True,
                     help="Forget a key (event, book, side) not updated for this many seconds of data time "
                          "(the newest last_update seen); 0 never. A forgotten key primes again."),
        click.option("--evict-started", type=click.FloatRange(min=0), default=EVICT_STARTED_S, show_default=True,
                     help="Forget every key of an event that started (commence_time) this many seconds "
                          "before the newest last_update seen; 0 never."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _sports(sport: str | None, all_sports: bool, multi: str | None) -> list[str] | None:
    given = sum([sport is not None, all_sports, multi is not None])
    if given != 1:
        raise click.UsageError("give exactly one of --sport KEY, --all, --multi a,b")
    if sport is not None:
        return [sport.strip()]
    if multi is not None:
        return name_list(multi, "--multi")
    return None


class _Recorder:
    """Frames as received, one per line; ``.gz`` compresses. Flushed about once a second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0
        self._last_flush = time.monotonic()
        try:
            self._fh: IO[bytes] = (
                gzip.open(path, "wb") if path.name.lower().endswith(".gz") else open(path, "wb")  # type: ignore[assignment]  # noqa: SIM115
            )
        except OSError as exc:
            raise ConfigError(f"--out/--record: cannot write {str(path)!r}: {exc.strerror or exc}") from None

    def write(self, text: str) -> None:
        self._fh.write(text.encode() + b"\n")
        self.frames += 1
        now = time.monotonic()
        if now - self._last_flush >= 1.0:
            self._fh.flush()
            self._last_flush = now

    def close(self) -> None:
        self._fh.close()


class _Status:
    """The stderr status line and connection messages."""

    def __init__(self, err: Console, stats: LiveStats, every: float, quiet: bool,
                 evictor: Evictor | None = None) -> None:
        self.err, self.stats, self.every, self.quiet = err, stats, every, quiet
        self.evictor = evictor
        self.alerts = 0
        #: With signals (``--types`` beyond price drops): the alerts written by type, in the order of
        #: these types (the writer's counts); ``None`` keeps today's status line.
        self.by_type: tuple[tuple[str, ...], dict[str, int]] | None = None
        self._t0 = self._last = time.monotonic()
        self._quotes_then = 0

    def _line(self, text: str) -> None:
        # a Text, not markup: an upstream's message may hold brackets
        self.err.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), " ", text), highlight=False,
                       soft_wrap=True)

    def event(self, text: str) -> None:
        if not self.quiet:
            self._line(text)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or self.every <= 0 or (not force and now - self._last < self.every):
            return
        quotes = self.stats.quotes
        rate = (quotes - self._quotes_then) / max(now - self._last, 1e-9)
        self._last, self._quotes_then = now, quotes
        streams = self.stats.streams.values()
        failed = sum(1 for s in streams if s.state == "failed")
        line = (f"streams {self.stats.open}/{len(self.stats.streams)} open"
                + (f" ({failed} failed)" if failed else "")
                + f" · reconnects {self.stats.reconnects} · {rate:,.0f} quotes/s · quotes {quotes:,}"
                + f" · alerts {self.alerts:,}")
        if self.by_type is not None:
            types, counts = self.by_type
            line += " (" + ", ".join(f"{t} {counts.get(t, 0):,}" for t in types) + ")"
        if self.evictor is not None:
            line += f" · keys {self.evictor.engine.keys_held:,}"
            if self.evictor.evicted:
                line += f" (evicted {self.evictor.evicted:,})"
        if self.stats.skips:
            line += f" · skipped {self.stats.skips.total}"
        self._line(line)


async def _run(feed: FanIn, engine: DropEngine | None, out: NdjsonSink | None, recorder: _Recorder | None,
               status: _Status, duration: float | None, stamp: str, max_alerts: int | None,
               sinks: tuple[Sink, ...] = ()) -> None:
    evictor = status.evictor
    deadline = time.monotonic() + duration if duration is not None else None
    frames = feed.frames()
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            timeout = None
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return
            if status.every > 0:
                timeout = min(timeout, status.every) if timeout is not None else status.every
            if pending is None:
                # one pending read at a time: a timeout here must not cancel the feed
                pending = asyncio.ensure_future(anext(frames))
            done, _ = await asyncio.wait({pending}, timeout=timeout)
            if not done:
                status.tick()
                continue
            try:
                received = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            if recorder is not None:
                recorder.write(received.text)
            if engine is not None and out is not None and received.quotes:
                now = received.received_ms if stamp == "receipt" else None
                alerts = engine.observe_many(received.quotes, now)
                if evictor is not None:
                    evictor.observe(received.quotes, received.received_ms)
                if alerts:
                    out.offer_many(alerts)  # stdout, as before sinks
                    for sink in sinks:  # never blocks: a full queue drops (counted, dead-lettered)
                        for a in alerts:
                            sink.offer(a)
                    status.alerts += len(alerts)
                    if max_alerts is not None and status.alerts >= max_alerts:
                        return
            status.tick()
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await frames.aclose()


async def _with_sinks(sinks: tuple[Sink, ...], drain_s: float, run: Any) -> None:
    """Start ``sinks``, run ``run`` (a coroutine), then drain the sinks for up to ``drain_s``
    whatever ended the run (a stop, Ctrl-C, an error)."""
    started: list[Sink] = []
    try:
        for sink in sinks:
            await sink.start()
            started.append(sink)
        await run
    finally:
        if len(started) < len(sinks):
            run.close()  # never started: no "never awaited" warning
        if started:
            # one sink's close error (a file that cannot be written) must not cut the others' drain short
            results = await asyncio.gather(*(s.aclose(drain_s) for s in started), return_exceptions=True)
            for sink, result in zip(started, results, strict=True):
                if isinstance(result, Exception):
                    click.echo(printable(f"dropengine: sink {sink.name}: close failed: {type(result).__name__}: "
                                         f"{result}"), err=True)


def _live(sports: list[str] | None, config: UpstreamConfig, engine: DropEngine | None, record: Path | None,
          duration: float | None, status_every: float, quiet: bool, stamp: str, max_alerts: int | None,
          evictor: Evictor | None = None, sink_opts: SinkOptions | None = None) -> None:
    err = Console(stderr=True)
    stats = LiveStats()
    status = _Status(err, stats, status_every, quiet, evictor)
    # line-only books (SPEC 10: a spread or total without its price) are decoded only when
    # the engine detects lines; otherwise the decoder is today's
    decoder = FrameDecoder(line_only=engine is not None and engine.options.detects_lines)
    try:
        feed = FanIn(config, sports, decoder=decoder, stats=stats, on_event=status.event)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    # the sinks before the recorder: a bad --dead-letter is a usage error with nothing opened yet
    sinks = tuple(sinks_from_options(sink_opts)) if sink_opts is not None and engine is not None else ()
    try:
        recorder = _Recorder(record) if record is not None else None
    except ConfigError as exc:  # a directory that does not exist, no permission: before connecting
        raise StartupError(printable(str(exc))) from None
    writer = AlertWriter(None, types=engine.options.types) if engine is not None else None
    out = NdjsonSink(writer) if writer is not None else None
    if writer is not None and engine is not None and engine.options.signals:
        status.by_type = (by_signal_order(engine.options.types), writer.counts)
    code = 0
    error: UpstreamError | None = None
    try:
        run = _run(feed, engine, out, recorder, status, duration, stamp, max_alerts, sinks)
        code = _loop_until_signal(_with_sinks(sinks, sink_opts.drain_s, run) if sink_opts is not None and sinks
                                  else run)
    except AuthError as exc:
        error, code = exc, 3
    except UpstreamError as exc:
        error, code = exc, 4
    except BrokenPipeError:
        sys.stderr.close()
        return
    finally:
        if recorder is not None:
            recorder.close()
        if writer is not None:
            with contextlib.suppress(BrokenPipeError):
                writer.close()
    status.tick(force=True)
    # each stop is reported once: the stream's own "stopped: ..." message (not with --quiet),
    # else one line here; the line that explains the exit status is never hidden by --quiet
    shown = {st.error for st in stats.streams.values() if st.error} if not quiet else set()
    for sport, failure in feed.failures.items():
        if str(failure) not in shown and failure is not error:
            shown.add(str(failure))
            status.event(f"{sport}: {failure}")
    if error is not None and str(error) not in shown:
        _plain(err, f"dropengine: {error}")
    if not code and not any(st.connections for st in stats.streams.values()):
        last = [st.last_outcome for st in stats.streams.values() if st.last_outcome]
        code = EXIT_NEVER_CONNECTED
        _plain(err, redact(f"dropengine: never connected to {config.base_url} during the run"
                           + (f" (last: {last[0]})" if last else ""), [config.api_key.reveal()]))
    if not quiet and stats.skips.first:
        _plain(err, f"skipped {stats.skips.total}: " + ", ".join(f"{k} {v}" for k, v in stats.skips.counts.items()))
        for s in stats.skips.first[:10]:
            _plain(err, f"  {s}")
    if recorder is not None and not quiet:
        _plain(err, f"recorded {recorder.frames:,} frames to {recorder.path}")
    for sink, line in zip(sinks, sinks_summary(list(sinks)), strict=True):
        lost = sink.counters.failed or sink.counters.dropped
        if lost or not quiet:  # an alert not delivered is reported even with --quiet
            _plain(err, line)
    dead = sink_opts.dead_letter if sink_opts is not None else None
    if dead is not None and any(s.counters.dead_lettered for s in sinks):
        _plain(err, f"undelivered alerts: {dead}")
    if code:
        sys.exit(code)


def _plain(err: Console, text: str) -> None:
    """One line as is: no rich markup (``[live]`` would vanish), no highlighting, no wrapping."""
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def _loop_until_signal(coro: Any) -> int:
    """Run ``coro``; SIGINT/SIGTERM stop it cleanly (files closed, summary printed)."""

    async def main() -> int:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        stopped = False

        def stop() -> None:
            nonlocal stopped
            stopped = True
            task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop)
        try:
            await task
        except asyncio.CancelledError:
            if not stopped:
                raise
            return 0
        return 0

    return asyncio.run(main())


@click.command("watch")
@_source_options
@detect_options(sports=False)
@click.option("--stamp", type=click.Choice(["receipt", "data"]), default="receipt", show_default=True,
              help="Alert timestamp: when the frame arrived, or the quote's last_update (what a replay of "
                   "the recording prints, byte for byte).")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), default=None, callback=_record_path,
              help="Also write every frame as received to FILE (.ndjson or .jsonl; .gz compresses).")
@click.option("--max-alerts", type=click.IntRange(min=1), default=None, help="Stop after this many alerts.")
@evict_options
@sink_options
def watch_cmd(sport: str | None, all_sports: bool, multi: str | None, base_url: str, api_key: str, auth: str,
              transport: str, since: int | None, heartbeat_s: int | None, duration: float | None,
              status_every: float, retry_scale: float, quiet: bool, detect: DetectOptions, stamp: str,
              record: Path | None, max_alerts: int | None, evict_idle: float, evict_started: float,
              sinks: SinkOptions) -> None:
    """Print live alerts from the upstream odds stream, one JSON object per line.

    Connects to {base}/v1/sse/odds/{sport} (or /ws/odds/{sport} with --transport ws) for
    one sport, a list (--multi) or every active sport (--all), and keeps each stream alive:
    reconnects with backoff and jitter, resumes from the newest last_update seen (no
    re-priming, no duplicate alert), never retries a rejected key. Alerts are the lines
    `dropengine replay` prints; status goes to stderr every --status-every seconds.

    --types adds line moves and steam to the price drops (SPEC 10-12; the status line then
    counts the alerts of each type).

    --sink also delivers every alert elsewhere, never slowing detection: webhook:URL (the
    alert's JSON, signed: X-Dropengine-Signature), discord:URL, telegram:CHAT_ID (a readable
    line per alert, within the service's rate limit), ndjson:PATH. Each network sink retries
    5xx, timeouts and network errors with backoff, honours 429, holds a bounded queue, and
    writes what it could not deliver to --dead-letter; on stop it drains for --sink-drain
    seconds. A line per sink on stderr says what it delivered.

    Keys (event, book, side) are forgotten by age in data time (--evict-idle, --evict-started),
    so memory stays bounded on a long run; the status line shows the keys held.

    Exit status: 0 on a clean stop (Ctrl-C, --duration, --max-alerts) after at least one
    connection opened; 2 on a usage error (or a missing extra: --transport ws needs
    pip install 'dropengine[live]'); 3 when the key was rejected; 4 when every stream
    stopped for another reason; 5 when no connection ever opened during the run (the
    upstream was unreachable the whole time).
    """
    sports = _sports(sport, all_sports, multi)
    try:
        cfg = _config(base_url, api_key, auth, transport, since, heartbeat_s, detect.filter, retry_scale, "watch")
    except ConfigError as exc:
        raise bad_parameter(exc) from None  # names the flag: --since, --base-url, ...
    engine = DropEngine.from_options(detect)
    evictor = Evictor(engine, evict_idle, evict_started)
    _live(sports, cfg, engine, record, duration, status_every, quiet, stamp, max_alerts, evictor, sinks)


@click.command("record")
@_source_options
@filter_options
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True, callback=_record_path,
              help="FILE to write (.ndjson or .jsonl; .gz compresses): one frame per line, as received.")
def record_cmd(sport: str | None, all_sports: bool, multi: str | None, base_url: str, api_key: str, auth: str,
               transport: str, since: int | None, heartbeat_s: int | None, duration: float | None,
               status_every: float, retry_scale: float, quiet: bool, alert_filter: AlertFilter, out: Path) -> None:
    """Record the upstream odds stream to FILE, every frame as received.

    `dropengine replay FILE` then gives the alerts `dropengine watch` gave on the same
    stream (with --stamp data, byte for byte): reconnects are in the file as the
    upstream's `connected` frames, and the replay drops what a resumed connection sent
    again exactly as the live run did.

    Exit status: as for watch (5: the upstream was never reached, the file holds nothing).
    """
    sports = _sports(sport, all_sports, multi)
    try:
        cfg = _config(base_url, api_key, auth, transport, since, heartbeat_s, alert_filter, retry_scale, "record")
    except ConfigError as exc:
        raise bad_parameter(exc) from None  # names the flag: --since, --base-url, ...
    _live(sports, cfg, None, out, duration, status_every, quiet, "data", None)
