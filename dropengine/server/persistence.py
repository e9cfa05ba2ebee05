"""The server's persistence layer: ``--state`` saved periodically without stalling the
streams, restored at start, and alert ids reserved durably before use.

:class:`Persistence` extends :class:`~dropengine.server.ingest.Ingestion`: a save must see
the engine, the hub's ring and the source cursors at one instant, so it either forks (the
child writes its copy-on-write image while this process goes on) or holds ingestion while a
worker thread encodes. The file formats and the fork are :mod:`.state`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets as _secrets
import signal
import time
from dataclasses import fields
from typing import Any

from ..core.options import DetectOptions, KeyNumbers
from .hub import Hub, new_epoch
from .ingest import Ingestion, ServeConfig, Source
from .state import (
    encode_state,
    fork_save,
    ids_path,
    load_state,
    read_reservation,
    save_state,
    tmp_path,
    write_reservation,
)

__all__ = ["Persistence"]

log = logging.getLogger("dropengine.serve")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _differences(saved: DetectOptions, wanted: DetectOptions) -> str:
    """``name saved -> wanted`` for each detection setting that differs (for the restore line)."""

    def show(value: object) -> str:
        if isinstance(value, frozenset):
            return ",".join(sorted(map(str, value)))
        if isinstance(value, tuple):  # book groups
            return ",".join("+".join(sorted(g)) for g in value) or "none"
        if isinstance(value, KeyNumbers):
            return value.as_text() or "default"
        return "default" if value is None else str(value)

    names = [f.name for f in fields(DetectOptions)]
    return ", ".join(f"{n} {show(getattr(saved, n))} -> {show(getattr(wanted, n))}" for n in names
                     if getattr(saved, n) != getattr(wanted, n))


class Persistence(Ingestion):
    """Saves and restores the server's state (engine, alert ring, source cursors) and keeps
    the alert id reservation, so a restart never reuses an id."""

    def __init__(self, source: Source, config: ServeConfig) -> None:
        self.config = config
        #: Periodic saves from a forked child where ``fork`` exists (see :meth:`save_async`).
        self.fork_saves = config.state_fork
        self._ids = ids_path(config.state_path) if config.state_path is not None else None
        self._reserve_failing = False
        super().__init__(source, config, self._new_hub())
        #: The child process writing a periodic save, while one runs.
        self._saving_pid: int | None = None
        self._finished = False
        #: A saving child still running after this long is killed (a stalled disk must not
        #: stop every later save); the save is reported failed and tried again next period.
        self.save_timeout_s = max(120.0, 4 * config.state_every_s)
        self.restore_message = ""

    def _hub_settings(self) -> dict[str, Any]:
        return {"buffer_size": self.config.buffer_size, "buffer_age_ms": int(self.config.buffer_age_s * 1000),
                "max_pending": self.config.max_pending,
                "reserve": self._reserve if self._ids is not None else None}

    def _new_hub(self) -> Hub:
        return Hub(new_epoch(_secrets.randbits(60)), **self._hub_settings())

    def _reserve(self, upto: int) -> bool:
        """The hub's reservation hook: ids up to ``upto`` written durably before they are used
        (a few ms, once per block of ids). ``False`` when it could not be written (disk full,
        read-only): alerts keep flowing and the hub asks again at its next alert. The old file
        is removed meanwhile, since a restart that trusted it would reuse the ids issued past
        it; without it a restart starts a new epoch. Logged once per outage, not per alert."""
        assert self._ids is not None
        try:
            write_reservation(self._ids, self.hub.epoch, upto)
        except OSError as exc:
            if not self._reserve_failing:
                self._reserve_failing = True
                try:
                    self._ids.unlink(missing_ok=True)
                    after = "a restart before it is written again starts a new epoch"
                except OSError as gone:
                    after = f"and it cannot be removed either ({gone.strerror or gone}): a restart before " \
                            f"it is written again may reuse alert ids; remove {self._ids} before restarting"
                log.error("could not reserve alert ids in %s (%s); alerts go on, %s", self._ids,
                          exc.strerror or exc, after)
            return False
        if self._reserve_failing:
            self._reserve_failing = False
            log.warning("alert id reservation %s written again (ids up to %s)", self._ids, upto)
        return True


    # -- lifecycle -----------------------------------------------------------------------------
    def restore(self, now_ms: int) -> str:
        """Load ``--state`` if it is there and fresh enough; returns what happened."""
        path = self.config.state_path
        if path is None:
            self.restore_message = "no --state: starting empty"
            return self.restore_message
        state, message = load_state(path, now_ms, self.config.state_max_age_s, **self._hub_settings())
        if state is not None:
            wanted = self.config.detect_options()
            if state.engine.options == wanted:
                self.engine = state.engine
            else:
                # saved with other detection settings (other --steam-* flags, or a build whose
                # server detected price drops only): the engine goes on with the new settings,
                # keeping only the state whose rules did not change (DropEngine.with_options:
                # a drops-only state keeps its prices); the rest primes again, so no alert
                # compares across settings. The ring, the ids and the source position are kept.
                self.engine, kept = state.engine.with_options(wanted)
                what = ", ".join(kept) if kept else "nothing"
                message += f"; its detection settings differ ({_differences(state.engine.options, wanted)}): " \
                           f"kept {what} of its {state.engine.keys_held} keys' state, the rest primes again"
            hub = state.hub
            assert self._ids is not None
            reservation, why = read_reservation(self._ids)
            last = hub.next_seq - 1
            if reservation is None or reservation.epoch != hub.epoch or reservation.reserved < last:
                # which ids the last run issued is unknown: a new epoch, so none is ever reused
                # (the prices are kept; clients resuming the old epoch get a reset)
                why = why if reservation is None else f"for epoch {reservation.epoch} up to {reservation.reserved}"
                hub = self._new_hub()
                message += f"; alert id reservation {self._ids} {why}: new epoch {hub.epoch}"
            else:
                skipped = hub.skip_lost(reservation.reserved, now_ms)
                if skipped is not None:
                    message += f"; the last run stopped without its final save (killed or crashed): ids " \
                               f"{hub.epoch}-{skipped[0] + 1}..{skipped[1]} are skipped, a client resuming from " \
                               f"one of them gets a reset"
            self.hub = hub
            self.hub.trim(now_ms)
            self._cursors = state.cursors
        self.restore_message = message
        return message

    def _snapshot(self, now_ms: int | None = None, cursors: dict[str, int] | None = None) -> bytes:
        """The state file's bytes; the engine and hub must not change while it runs.
        ``cursors``: the source position, when taken earlier (on the loop, see save_async)."""
        if cursors is None:
            cursors = {**self._cursors, **self.source.cursors()}
        return encode_state(self.engine, self.hub.dump(), cursors, now_ms if now_ms is not None else _now_ms())

    def save(self, now_ms: int | None = None, *, final: bool = False) -> None:
        """Save now, blocking (shutdown, tests); the periodic saves use :meth:`save_async`.
        ``final``: this is the clean stop, so the id reservation is lowered to the last id
        issued (the next start continues right after it, no client gets a reset)."""
        path = self.config.state_path
        if path is None:
            return
        save_state(path, self._snapshot(now_ms))
        self.metrics.state_saves += 1
        if final and self._ids is not None:
            write_reservation(self._ids, self.hub.epoch, self.hub.next_seq - 1)
            self.hub.reserved = self.hub.next_seq - 1

    async def save_async(self) -> None:
        """Save without stalling the streams. Where ``fork`` exists a child process encodes
        and writes the snapshot from its copy-on-write image of this instant (the engine, the
        ring and the source cursors are one consistent moment) while this process goes on
        detecting and sending. Elsewhere ingestion waits (quotes held, in order) while the
        snapshot is encoded in a worker thread; the loop keeps sending queued alerts and
        heartbeats meanwhile. Raises :class:`OSError` when the save failed."""
        path = self.config.state_path
        if path is None or self._held is not None or self._saving_pid is not None:
            return
        pid = None
        if self.fork_saves and hasattr(os, "fork"):
            reason_r, reason_w = os.pipe()
            os.set_blocking(reason_r, False)  # read after the child is gone: never waits
            try:
                pid = fork_save(path, self._snapshot, report=reason_w)
            finally:
                os.close(reason_w)
                if pid is None:
                    os.close(reason_r)
        if pid is not None:
            self._saving_pid = pid
            waiter = asyncio.ensure_future(asyncio.to_thread(os.waitpid, pid, 0))
            why = ""
            try:
                try:
                    _, status = await asyncio.wait_for(asyncio.shield(waiter), self.save_timeout_s)
                except TimeoutError:  # hung (a stalled disk): killed, so the next save can run
                    why = f"it did not finish within {self.save_timeout_s:g} s and was killed"
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    _, status = await waiter
            except asyncio.CancelledError:  # shutting down: the final save is done in-process
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                await asyncio.gather(waiter, return_exceptions=True)
                with contextlib.suppress(OSError):
                    tmp_path(path, pid).unlink()
                raise
            finally:
                self._saving_pid = None
                with contextlib.suppress(OSError):
                    why = why or os.read(reason_r, 1024).decode(errors="replace").strip()
                os.close(reason_r)
            code = os.waitstatus_to_exitcode(status)
            if code != 0:  # killed (OOM, timeout) or failed: its temporary file must not stay behind
                with contextlib.suppress(OSError):
                    tmp_path(path, pid).unlink()
                raise OSError(why or f"the saving process exited with status {code}")
            self.metrics.state_saves += 1
            return
        # the source position is taken here, on the loop, as ingestion starts to wait: a source
        # goes on counting what it hands over while quotes are held, so read in the thread it
        # could run ahead of the engine being saved (a restart would then skip held quotes)
        cursors = {**self._cursors, **self.source.cursors()}
        self._held = []
        encoding = asyncio.ensure_future(asyncio.to_thread(self._snapshot, None, cursors))
        try:
            try:
                data = await asyncio.shield(encoding)
            except asyncio.CancelledError:  # shutting down: let the thread finish reading first
                await asyncio.gather(encoding, return_exceptions=True)
                raise
        finally:
            held, self._held = self._held, None
            for quotes, now_ms in held:
                self.ingest(quotes, now_ms)
        # shielded: cancelled at shutdown, the write finishes before the final save writes the
        # same temporary file (one pid, one name)
        writing = asyncio.ensure_future(asyncio.to_thread(save_state, path, data))
        try:
            await asyncio.shield(writing)
        except asyncio.CancelledError:
            await asyncio.gather(writing, return_exceptions=True)
            raise
        self.metrics.state_saves += 1

    def finish(self) -> None:
        """The final save of a clean stop, once: the lifespan's shutdown runs it, and ``serve``
        calls it again after uvicorn returns, since a second Ctrl-C makes uvicorn skip the
        lifespan's shutdown (the final save was lost: the next start took it for a crash and
        reset every resuming client). A saving child still running is killed first."""
        if self._finished:
            return
        self._finished = True
        pid, self._saving_pid = self._saving_pid, None
        if pid is not None:  # (uvicorn forced out while a periodic save ran)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            if self.config.state_path is not None:
                with contextlib.suppress(OSError):
                    tmp_path(self.config.state_path, pid).unlink()
        try:
            self.save(final=True)
        except OSError as exc:
            log.error("could not save the state: %s", exc)


    async def _save_periodically(self) -> None:
        """Save every ``state_every_s``. A failing save (disk full, read-only, a stalled disk)
        is logged once when the failures start and once when saving works again, not at every
        period; ``dropengine_state_save_failures_total`` counts them all. Serving goes on."""
        failing = False
        while True:
            await asyncio.sleep(self.config.state_every_s)
            try:
                await self.save_async()
            except OSError as exc:
                self.metrics.state_save_failures += 1
                if not failing:
                    log.error("could not save the state to %s: %s (serving goes on; tried again every %g s, "
                              "logged again when it works)", self.config.state_path, exc, self.config.state_every_s)
                failing = True
            else:
                if failing:
                    log.warning("state saved again to %s after %d failed saves", self.config.state_path,
                                self.metrics.state_save_failures)
                failing = False

