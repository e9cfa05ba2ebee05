"""Where a reconnect resumes from (SPEC 7 and 8), as one pure state. No clock, no I/O.

Our server gives every alert, heartbeat and reset an SSE ``id``: the client sends the last one
it handed on as ``Last-Event-ID`` and the server answers with everything after it, or a
``reset`` when it cannot (SPEC 7: never a silent gap). The cursor moves only when an event has
been handed to the caller, so a reconnect neither loses nor repeats one. A fresh connection
(no cursor, no ``since``) starts "from now": its ``connected`` frame's ``id`` is where it
stands, and is taken as the cursor, so a disconnect before the first alert loses nothing.

A server that sends no ids (the vendor's documented stream resumes by ``since``, unix ms) is
resumed with ``since`` just below the newest alert ``timestamp`` handed on, and what comes
again is dropped: alerts older than that timestamp, and the very alerts already handed on at
it (compared by value). Whether the server counts ``since`` inclusively or not, nothing is
lost and nothing is handed on twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeGuard

from ..core.alerts import Alert

__all__ = ["AT_NEWEST_MAX", "Resume", "is_cursor"]

#: The most alerts remembered at the newest timestamp (a burst stamped in one millisecond: one
#: odds update that moved many lines). Far above a real burst; a bound against a server that
#: stamps everything alike. (It was 256: a larger burst was handed on again whole after a resume.)
AT_NEWEST_MAX: Final = 1 << 17


@dataclass(slots=True)
class Resume:
    """The resume cursor of one client (see the module docstring)."""

    #: The id of the last event handed on (``Last-Event-ID`` of the next connection).
    last_event_id: str | None = None
    #: No ids: the newest alert ``timestamp`` handed on, and the alerts handed on at it.
    newest_ms: int | None = None
    at_newest: set[Alert] = field(default_factory=set)
    #: This connection resumed by ``since`` (no ids): repeats are dropped.
    by_since: bool = False

    def __post_init__(self) -> None:
        if is_cursor(self.last_event_id):
            self.last_event_id = self.last_event_id.strip()

    def request(self, since: int | None) -> tuple[dict[str, str], int | None]:
        """The next connection's resume headers and ``since`` (``since``: the caller's own)."""
        self.by_since = False
        if self.last_event_id is not None:
            return {"Last-Event-ID": self.last_event_id}, since
        if self.newest_ms is not None:
            self.by_since = True
            return {}, max(since if since is not None else 0, self.newest_ms - 1)
        return {}, since

    def connected(self, event_id: str | None, sent_cursor: bool, sent_since: bool) -> None:
        """A ``connected`` frame: a stream started from now stands at its ``id``."""
        if not sent_cursor and not sent_since:
            self.seen(event_id)

    def seen(self, event_id: str | None) -> None:
        """An event with ``event_id`` was handed on (or skipped for good). An id that cannot
        be sent back as a header (empty, not printable ASCII) is no cursor. Blanks around it are
        dropped, as a browser's fetch normalizes a header value (HTTP refuses them there: an
        id such as ``"e1-1 "`` made every reconnect fail before it was sent)."""
        if is_cursor(event_id):
            self.last_event_id = event_id.strip()

    def fresh(self, alert: Alert) -> bool:
        """Whether ``alert`` is new (``False``: a repeat after a resume by ``since``); a new
        one is recorded as handed on."""
        ts = alert.timestamp
        newest = self.newest_ms
        if self.by_since and newest is not None and (ts < newest or (ts == newest and alert in self.at_newest)):
            return False
        if newest is None or ts > newest:
            self.newest_ms = ts
            self.at_newest = {alert}
        elif ts == newest and len(self.at_newest) < AT_NEWEST_MAX:
            self.at_newest.add(alert)  # (alerts are frozen: hashed by value)
        return True


def is_cursor(event_id: object) -> TypeGuard[str]:
    """Whether ``event_id`` can go back to the server as ``Last-Event-ID`` (printable ASCII;
    blanks around it are dropped when it is sent)."""
    return isinstance(event_id, str) and bool(event_id.strip()) and event_id.isascii() and event_id.isprintable()
