"""The sink settings of ``watch`` and ``serve`` as one checked value (:class:`SinkOptions`) and
the sinks they build (:func:`build_sinks`). The click flags that fill it are
:mod:`dropengine.cli.sinks` (click stays in the cli layer).

Secrets (``DROPENGINE_WEBHOOK_SECRET``, ``DROPENGINE_TELEGRAM_TOKEN``) are held as
:class:`~dropengine.core.keys.Secret` and never printed; nor is a Discord URL (it holds a token).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..core.errors import ConfigError
from ..core.keys import Secret
from .base import DEFAULT_QUEUE, DeadLetterFile, Sink, name_apart
from .http import TELEGRAM_BASE_URL, DiscordSink, TelegramSink, WebhookSink
from .ndjson import NdjsonSink
from .rules import RetrySchedule, SinkSpec, drain_seconds

__all__ = ["DEFAULT_SCHEDULE", "SinkOptions", "build_sinks", "sinks_summary"]

#: The retry schedule the flags default to.
DEFAULT_SCHEDULE = RetrySchedule()


@dataclass(frozen=True, slots=True)
class SinkOptions:
    """The sink flags, checked. ``query``: the server-wide sinks' filter, written as a
    ``/v1/odds-drop/all`` query (``serve`` only; ``None`` elsewhere)."""

    specs: tuple[SinkSpec, ...] = ()
    webhook_secret: Secret | None = None
    telegram_token: Secret | None = None
    telegram_base_url: str = TELEGRAM_BASE_URL
    dead_letter: Path | None = None
    queue_size: int = DEFAULT_QUEUE
    schedule: RetrySchedule = DEFAULT_SCHEDULE
    drain_s: float = 10.0
    query: str | None = None

    def __post_init__(self) -> None:
        drain_seconds(self.drain_s, "--sink-drain")

    def secrets(self) -> list[str]:
        """Every secret these options hold, for a log redaction filter (``run_foreground(secrets=)``):
        the webhook secret, the Telegram token, each Discord URL (it holds its token), a webhook URL's
        password. Never print them."""
        out = [s.reveal() for s in (self.webhook_secret, self.telegram_token) if s is not None]
        out += [spec.target for spec in self.specs if spec.kind == "discord"]
        for spec in self.specs:  # a webhook's user:password@ (B15A-14)
            password = urlsplit(spec.target).password if spec.kind == "webhook" else None
            if password:
                out += list(dict.fromkeys((password, unquote(password))))
        return out

    def __repr__(self) -> str:
        return (f"SinkOptions(specs={list(self.specs)!r}, webhook_secret={'set' if self.webhook_secret else None}, "
                f"telegram_token={'set' if self.telegram_token else None}, dead_letter={self.dead_letter}, "
                f"queue_size={self.queue_size}, drain_s={self.drain_s})")


def build_sinks(options: SinkOptions) -> list[Sink]:
    """The sinks of ``options``, in flag order (one shared dead-letter file). Raises
    :class:`ConfigError` naming the flag when one cannot be built (a dead-letter file that
    cannot be written, an ndjson path of another kind, two of them on one file)."""
    _one_writer_per_file(options)
    dead = DeadLetterFile(options.dead_letter, "--dead-letter") if options.dead_letter is not None else None
    out: list[Sink] = []
    for spec in options.specs:
        common: dict[str, Any] = {"schedule": options.schedule, "queue_size": options.queue_size,
                                  "dead_letter": dead}
        if spec.kind == "webhook":
            out.append(WebhookSink(spec.target, options.webhook_secret, **common))
        elif spec.kind == "discord":
            out.append(DiscordSink(spec.target, **common))
        elif spec.kind == "telegram":
            if options.telegram_token is None:
                raise ConfigError("--telegram-token: a telegram sink needs the bot token "
                                  "(DROPENGINE_TELEGRAM_TOKEN)")
            out.append(TelegramSink(spec.target, options.telegram_token, base_url=options.telegram_base_url,
                                    **common))
        else:
            try:
                out.append(NdjsonSink(path=spec.target))
            except ConfigError as exc:
                raise ConfigError(f"--sink: ndjson: {str(exc).partition(': ')[2]}") from None
    name_apart(out)
    return out


def _one_writer_per_file(options: SinkOptions) -> None:
    """Two ndjson sinks on one file, or one on the dead-letter file, would each write it at
    their own offsets, overwriting each other's lines: refused, naming both."""
    seen: dict[Path, str] = {}
    named = [(Path(spec.target), f"--sink ndjson:{spec.target}") for spec in options.specs if spec.kind == "ndjson"]
    if options.dead_letter is not None:
        named.append((options.dead_letter, f"--dead-letter {options.dead_letter}"))
    for path, flag in named:
        key = path.expanduser().resolve()
        if key in seen:
            raise ConfigError(f"{flag}: the same file as {seen[key]}: each would overwrite the other's lines "
                              "(give each its own file)")
        seen[key] = flag


def sinks_summary(sinks: list[Sink]) -> list[str]:
    """One line per sink for a run's end: what it delivered, failed, dropped, retried."""
    out = []
    for s in sinks:
        c = s.counters
        line = f"{s.name}: delivered {c.delivered:,} of {c.offered:,}"
        if c.failed or c.dropped or c.retried:
            line += f" (failed {c.failed:,}, dropped {c.dropped:,}, retried {c.retried:,})"
        if c.dead_lettered:
            line += f", {c.dead_lettered:,} to the dead-letter file"
        error = getattr(s, "error", None)  # an ndjson file that could not be written (a full disk)
        if error:
            line += f"; cannot write: {error}"
        out.append(line)
    return out
