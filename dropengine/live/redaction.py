"""Key redaction in log records: a logging filter built on :func:`dropengine.core.keys.redact`.

Attaching a filter to a named logger changes process-wide logging state, so this lives with
the applications, not in the pure core: the live clients install it on ``httpx`` and
``websockets``, the servers (``serve``, ``mock-upstream``) on uvicorn's loggers, the delivery
sinks (``dropengine.deliver``) on ``httpx`` while a sink is open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from urllib.parse import unquote_plus

from ..core.keys import redact

__all__ = ["RedactingFilter", "install_redaction"]


class RedactingFilter(logging.Filter):
    """A logging filter that masks keys in a record's final message (third-party loggers
    such as ``httpx``, ``websockets`` and ``uvicorn.access`` print request lines with them)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: list[str] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str) -> None:
        """Mask ``secret`` too; the longest first, so a whole URL goes before a token inside it."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def discard(self, secret: str) -> None:
        """Stop masking ``secret`` (a sink that closed)."""
        if secret in self._secrets:
            self._secrets.remove(secret)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        # Redact in place, keeping msg and args apart: formatters such as uvicorn's access
        # formatter read record.args themselves.
        if isinstance(record.msg, str):
            record.msg = redact(record.msg, self._secrets)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(self._arg(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: self._arg(v) for k, v in args.items()}
        return True

    def _arg(self, value: object) -> object:
        if isinstance(value, (int, float)) or value is None:
            return value
        text = str(value)  # httpx logs URL objects: their text carries ?apiKey=
        if "%" in text:  # a client may percent-encode the name or the key (api%4Bey=...)
            decoded = unquote_plus(text)
            if redact(decoded, self._secrets) != decoded:
                return redact(decoded, self._secrets)
        clean = redact(text, self._secrets)
        return clean if clean != text else value


def install_redaction(logger_names: Iterable[str], secrets: Iterable[str] = ()) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to each named logger (idempotent per logger)."""
    filt = RedactingFilter(secrets)
    for name in logger_names:
        lg = logging.getLogger(name)
        existing = next((f for f in lg.filters if isinstance(f, RedactingFilter)), None)
        if existing is not None:
            for s in filt._secrets:
                existing.add(s)
        else:
            lg.addFilter(filt)
    return filt
