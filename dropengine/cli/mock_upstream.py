"""``dropengine mock-upstream``: serve recordings as the vendor's live odds streams.

The click command is registered on ``dropengine``'s group by ``dropengine.cli.group``; this module
can also run on its own (``python -m dropengine.cli.mock_upstream``). Starlette and uvicorn (the
``server`` extra) are imported only when the command runs.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

from ..core.errors import ConfigError
from ..core.keys import KeyTable
from ..core.skips import printable
from ..io.replay import ReplayStats
from ..mock.faults import Fault, parse_fault
from ..mock.timeline import load_timeline
from .extras import StartupError, require_extra
from .options import format_option, name_list

__all__ = ["mock_upstream"]

_EPILOG = """\b
Examples:
  dropengine mock-upstream --replay fixtures/demo_nba_frames.ndjson --port 8080
  dropengine mock-upstream --replay nba.ndjson --replay nfl.ndjson --speed max --port 0
  dropengine mock-upstream --replay quotes.csv --keys keys.txt --fault cut,after=5,conn=1-3 \\
      --fault http=503,conn=4,retry_after=2 --fault close=1012,transport=ws,conn=5

\b
Endpoints (key by ?apiKey=, X-API-Key, or on WebSocket Sec-WebSocket-Protocol: apikey.KEY):
  GET /v1/sports                          the sports of the recording (+ --sports-extra)
  GET /v1/usage                           the key's name, tier, cap and open connections
  GET /v1/sse/odds/{sport}, /v1/sse/hot/{sport}   SSE: connected, hot_feed_status,
                                          initial_state, odds_update..., heartbeat
  WS  /ws/odds/{sport}, /v1/ws/odds/{sport}       same frames minus hot_feed_status;
                                          subscribe/unsubscribe commands
  Query: event_id, bookmakers, markets, kinds, heartbeat_s (1..30), since (unix ms), diff.

\b
Faults: KIND[=VALUE][,after=N][,conn=RANGE][,sport=KEY][,transport=sse|ws][,retry_after=S]
  KIND: cut | stall | flap | http=STATUS | close=CODE ; RANGE: * | 3 | 1-3 | 4- | 1+3+5-6
  Connections are numbered from 1 per sport, over both transports, refused ones included.
  See docs/mock-upstream.md.
"""


def speed_callback(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    """``--speed N|max`` (shared with ``serve``): a positive multiplier, or ``None`` for max."""
    if value.strip().lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} must be a positive number or max", ctx, param) from None
    if not (speed > 0 and math.isfinite(speed)):
        raise click.BadParameter(f"{value!r} must be a positive number or max", ctx, param)
    return speed


def _faults(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[Fault, ...]:
    try:
        return tuple(parse_fault(v) for v in value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _non_negative(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not (value >= 0 and math.isfinite(value)):
        raise click.BadParameter(f"{value!r} must be a non-negative number of seconds", ctx, param)
    return value


@click.command("mock-upstream", epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--replay", "paths", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="Recording to serve (frames, SSE capture, quote table, The Odds API); repeatable, merged by clock.")
@format_option
@click.option("--speed", default="1", show_default=True, callback=speed_callback,
              help="Replay-clock multiplier (a positive number), or max to release without waiting.")
@click.option("--max-gap", type=float, default=5.0, show_default=True, callback=_non_negative,
              help="Longest wait between two releases, in seconds (quiet stretches are shortened).")
@click.option("--start", type=click.Choice(["on-connect", "now"]), default="on-connect", show_default=True,
              help="Start the replay clock at the first stream connection, or at startup.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on (0: any free port; the URL is printed on stderr).")
@click.option("--keys", "keys_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Keys file ('KEY TIER [CAP]' per line). Without it any non-empty key is business, cap 100.")
@click.option("--sport", default=None, help="Sport key for envelopes that name none.")
@click.option("--sports-extra", default="", help="Comma-separated sports listed by /v1/sports with no data.")
@click.option("--fault", "faults", multiple=True, callback=_faults, metavar="SPEC",
              help="Inject a fault into matching connections (grammar below); repeatable, first match wins.")
@click.option("--retry-after", type=float, default=1.0, show_default=True, callback=_non_negative,
              help="Retry-After seconds of 429 answers (and of http=429/503 faults without retry_after).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="info", show_default=True, help="uvicorn's log level (keys are redacted).")
def mock_upstream(
    paths: tuple[Path, ...],
    fmt: str,
    speed: float | None,
    max_gap: float,
    start: str,
    host: str,
    port: int,
    keys_file: Path | None,
    sport: str | None,
    sports_extra: str,
    faults: tuple[Fault, ...],
    retry_after: float,
    log_level: str,
) -> None:
    """Serve recordings as the vendor's live odds streams (SSE and WebSocket), with faults.

    A vendor-compatible fake upstream for trying clients without a key or a live game, and
    for testing reconnects: releases go out on a replay clock (--speed), every connection
    gets connected/initial_state/odds_update/heartbeat frames, and --fault cuts, stalls,
    flaps, refuses or closes chosen connections. Stop with Ctrl-C (SIGINT) or SIGTERM.
    """
    require_extra("server", "dropengine mock-upstream")
    from ..mock.app import MockUpstream
    from ..server.asgi import run_foreground

    # Start-up failures (an unreadable keys file, nothing servable, a busy port) are one
    # line and exit status 2 (StartupError), without click's usage block: the flags were
    # well-formed, what they point at cannot be used.
    try:
        keys = None
        if keys_file is not None:
            keys = KeyTable.parse(keys_file.read_text(encoding="utf-8"), source=f"--keys {str(keys_file)!r}")
        timeline = load_timeline(list(paths), fmt, sport)
        if not timeline.releases:  # serving nothing is no use: say why, the one way replay says it
            why = ReplayStats(quotes=timeline.rows, skips=timeline.skips).unusable_reason()
            raise ConfigError(f"--replay: nothing to serve; {why or 'the recordings hold no odds rows'}")
        extra = name_list(sports_extra, "--sports-extra") if sports_extra.strip() else []
        mock = MockUpstream(
            timeline, keys=keys, speed=speed, start=start, max_gap=max_gap, faults=faults,
            retry_after=retry_after, sports_extra=extra,
        )
    except ConfigError as exc:
        raise StartupError(printable(str(exc), 2000)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(printable(f"--keys: cannot read {str(keys_file)!r}: {exc}")) from None
    if timeline.skips:
        sk = timeline.skips
        by_reason = ", ".join(f"{n} {reason}" for reason, n in sorted(sk.counts.items()))
        click.echo(f"mock-upstream: skipped {sk.total} input item(s): {by_reason}", err=True)
        for skip in sk.first:
            click.echo(f"  {skip}", err=True)
    names = ", ".join(printable(str(p)) for p in paths)

    def ready(url: str) -> None:
        click.echo(
            f"mock-upstream: serving {len(timeline.releases)} releases of {len(timeline.sports)} sports "
            f"from {names} at {url}",
            err=True,
        )
        sys.stderr.flush()

    try:
        run_foreground(mock.app, host, port, secrets=mock.secrets(), log_level=log_level, on_ready=ready)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None


if __name__ == "__main__":
    mock_upstream(prog_name="dropengine mock-upstream")
