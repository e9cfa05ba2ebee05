"""The sink flags of ``watch`` and ``serve``: :func:`sink_options` declares them, the command
gets one :class:`~dropengine.deliver.options.SinkOptions`, and :func:`sinks_from_options`
builds the sinks (a usage error naming the flag when one cannot be built).

``--sink KIND:TARGET`` (repeatable): ``webhook:URL``, ``discord:URL``, ``telegram:CHAT_ID``,
``ndjson:PATH``. Secrets come from flags or, better (a flag shows in ``ps``), the environment:
``DROPENGINE_WEBHOOK_SECRET``, ``DROPENGINE_TELEGRAM_TOKEN``; they are never printed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..core.errors import ConfigError
from ..core.keys import Secret
from ..deliver.base import DEFAULT_QUEUE, Sink
from ..deliver.http import TELEGRAM_BASE_URL
from ..deliver.options import DEFAULT_SCHEDULE, SinkOptions, build_sinks, sinks_summary
from ..deliver.rules import RetrySchedule, SinkSpec, parse_sink_spec

__all__ = ["SinkOptions", "sink_options", "sinks_from_options", "sinks_summary"]


def _specs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[SinkSpec, ...]:
    out = []
    for text in value:
        try:
            out.append(parse_sink_spec(text))
        except ConfigError as exc:
            raise click.BadParameter(str(exc).partition(": ")[2], ctx, param) from None
    return tuple(out)


def _secret(ctx: click.Context, param: click.Parameter, value: str | None) -> Secret | None:
    if value is None or value == "":
        return None
    try:
        return Secret(value)
    except ConfigError:
        raise click.BadParameter("must be a non-empty string without whitespace (the value is not shown)",
                                 ctx, param) from None


def _base_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_sink_spec(f"webhook:{value}")
    except ConfigError:
        raise click.BadParameter(f"{value!r} must be an http:// or https:// URL", ctx, param) from None
    return value


def _seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    # click's FloatRange lets nan and inf through: no drain at all, or a stop that never ends
    if not math.isfinite(value):
        raise click.BadParameter(f"{value!r} must be a finite number of seconds", ctx, param)
    return value


_NAMES = ("sink", "webhook_secret", "telegram_token", "telegram_base_url", "dead_letter", "sink_queue",
          "sink_attempts", "sink_timeout", "sink_drain", "sink_retry_scale")


def sink_options(f: Callable[..., Any] | None = None, *, server: bool = False) -> Any:
    """Declare the sink flags; the command gets ``sinks: SinkOptions`` instead of them.
    ``server=True`` adds ``--sink-query`` (the server-wide sinks' filter)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        names = (*_NAMES, "sink_query") if server else _NAMES

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            raw = {n: kwargs.pop(n) for n in names}
            specs: tuple[SinkSpec, ...] = raw["sink"]
            if any(s.kind == "telegram" for s in specs) and raw["telegram_token"] is None:
                raise click.UsageError("--sink telegram:...: give the bot token with DROPENGINE_TELEGRAM_TOKEN "
                                       "(or --telegram-token)")
            try:
                schedule = RetrySchedule(attempts=raw["sink_attempts"], timeout_s=raw["sink_timeout"])
                if raw["sink_retry_scale"] != 1.0:
                    schedule = schedule.scaled(raw["sink_retry_scale"])
            except ConfigError as exc:  # (click's ranges hold these already)
                raise click.UsageError(f"sink retries: {exc}") from None
            kwargs["sinks"] = SinkOptions(
                specs, raw["webhook_secret"], raw["telegram_token"], raw["telegram_base_url"], raw["dead_letter"],
                raw["sink_queue"], schedule, raw["sink_drain"], raw.get("sink_query"))
            return func(**kwargs)

        options = [
            click.option("--sink", multiple=True, callback=_specs, metavar="KIND:TARGET",
                         help="Also deliver every alert to: webhook:URL (POST of the alert's JSON, signed with "
                              "--webhook-secret), discord:WEBHOOK_URL, telegram:CHAT_ID (a readable line per alert) "
                              "or ndjson:PATH (written anew each run; one file per sink). Repeatable."),
            click.option("--webhook-secret", envvar="DROPENGINE_WEBHOOK_SECRET", callback=_secret, default=None,
                         show_envvar=True,
                         help="HMAC-SHA256 key for the X-Dropengine-Signature header of webhook sinks; prefer the "
                              "environment variable (a flag shows in ps). Without it webhooks are unsigned."),
            click.option("--telegram-token", envvar="DROPENGINE_TELEGRAM_TOKEN", callback=_secret, default=None,
                         show_envvar=True, help="The Telegram bot token for telegram: sinks (prefer the env)."),
            click.option("--telegram-base-url", envvar="DROPENGINE_TELEGRAM_BASE_URL", callback=_base_url,
                         default=TELEGRAM_BASE_URL, show_default=True,
                         help="The Telegram Bot API (a local stand-in for tests)."),
            click.option("--dead-letter", type=click.Path(dir_okay=False, path_type=Path), default=None,
                         help="NDJSON FILE (appended) of alerts a sink could not deliver: the alert, the reason, "
                              "the attempts made. Without it they are only counted."),
            click.option("--sink-queue", type=click.IntRange(min=1), default=DEFAULT_QUEUE, show_default=True,
                         help="Alerts each network sink holds while delivering; when full, new alerts are dropped "
                              "(counted, dead-lettered) and detection never waits."),
            click.option("--sink-attempts", type=click.IntRange(1, 100), default=DEFAULT_SCHEDULE.attempts,
                         show_default=True,
                         help="Requests per alert before giving up (retries: 5xx, timeouts, network errors, 429)."),
            click.option("--sink-timeout", type=click.FloatRange(min=0, min_open=True), callback=_seconds,
                         default=DEFAULT_SCHEDULE.timeout_s, show_default=True,
                         help="Seconds per request, whole: connecting, sending and the answer."),
            click.option("--sink-drain", type=click.FloatRange(min=0), callback=_seconds, default=10.0,
                         show_default=True,
                         help="Seconds to deliver what is queued when stopping; the rest is dead-lettered. A second "
                              "Ctrl-C (or SIGTERM) cuts the drain short: everything left is dead-lettered at once."),
            click.option("--sink-retry-scale", type=click.FloatRange(min=0.0001, max=1.0), default=1.0, hidden=True,
                         help="Scale every retry wait (tests and demos)."),
        ]
        if server:
            options.append(click.option(
                "--sink-query", default="", metavar="QUERY",
                help="Which alerts the server-wide sinks get, as a /v1/odds-drop query: e.g. "
                     "'threshold=20&types=odds_drop,steam&bookmakers=pinnacle' (sports=a,b for some sports only; "
                     "default: what a connection without parameters gets, price drops of 10 cents and more)."))
        for option in reversed(options):
            command = option(command)
        return command

    return decorate(f) if f is not None else decorate


def sinks_from_options(options: SinkOptions) -> list[Sink]:
    """The sinks of ``options``, in flag order (:func:`~dropengine.deliver.options.build_sinks`);
    a click usage error naming the flag when one cannot be built (a dead-letter file that
    cannot be written, an ndjson path of another kind)."""
    try:
        return build_sinks(options)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
