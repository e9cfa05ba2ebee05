"""The feed: the simulated games merged into the vendor's stream, on the vendor's clock.

Kick-off times, one seeded :class:`~dropengine.sim.market.EventSim` per game, and the
envelopes (SPEC section 5) the vendor would push: ``connected``, ``hot_feed_status``,
``initial_state``, then ``odds_update`` batches on the coalescing window and ``heartbeat``
frames in the quiet stretches. Also the same stream as SPEC section 2 quote rows.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..core.errors import ConfigError
from ..core.skips import SkipLog
from ..formats.frames import FrameDecoder
from ..formats.tables import table_row
from .config import SimConfig
from .market import EventSim
from .profiles import HOUR_MS, MINUTE_MS, SPORTS

__all__ = ["quote_rows_from_envelopes", "simulate_envelopes", "simulate_quote_rows"]

def _derive_seed(seed: int, label: str) -> int:
    """The seed of one random stream (the schedule, each event) of run ``seed``.

    The label keeps the module path the simulator had before it was split
    (``dropengine.sim.simulate``): changing it would change every simulated recording.
    """
    digest = hashlib.sha256(f"dropengine.sim.simulate/{seed}/{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _schedule(cfg: SimConfig, rng: random.Random) -> list[tuple[str, str, int]]:
    """``(home, away, commence_ms)`` per event: kick-offs bunched in a few slots in the window.

    Every fifth event (from the fifth on) starts after the recording ends, so it is only
    seen before the game, as in a real feed that carries next week's games too.
    """
    teams = list(SPORTS[cfg.sport_key].teams)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < cfg.events:
        rng.shuffle(teams)
        pairs.extend((teams[i], teams[i + 1]) for i in range(0, len(teams) - 1, 2))
    span = cfg.end_ms - cfg.start_ms
    step = 5 * MINUTE_MS

    def on_the_clock(t: float) -> int:  # kick-offs fall on whole five minutes, after the start
        return max(math.ceil((cfg.start_ms + 1) / step), round(t / step)) * step

    n_slots = max(1, min(4, math.ceil(cfg.events / 4)))
    slots = sorted(on_the_clock(cfg.start_ms + span * rng.uniform(0.3, 0.75)) for _ in range(n_slots))
    out = []
    for i in range(cfg.events):
        later = on_the_clock(cfg.end_ms + rng.uniform(2.0, 72.0) * HOUR_MS)
        out.append((pairs[i][0], pairs[i][1], later if i % 5 == 4 else slots[i % n_slots]))
    return out


def _events(cfg: SimConfig) -> list[EventSim]:
    rng = random.Random(_derive_seed(cfg.seed, "schedule"))
    return [
        EventSim(cfg, i, home, away, commence, random.Random(_derive_seed(cfg.seed, f"event/{i}")))
        for i, (home, away, commence) in enumerate(_schedule(cfg, rng))
    ]


def simulate_envelopes(cfg: SimConfig) -> Iterator[dict[str, Any]]:
    """The simulated stream: ``connected``, ``hot_feed_status``, ``initial_state``, then
    ``odds_update`` and ``heartbeat`` envelopes in time order until ``cfg.end_ms``.

    Rows are full vendor rows (SPEC section 5; no ``_diff``): game rows carry every price
    and line field, a suspension is a row whose prices are null. Lazy: events are simulated
    as the stream is consumed, so memory does not grow with ``hours``.
    """
    sims = _events(cfg)
    sport = cfg.sport_key
    start = cfg.start_ms
    yield {
        "type": "connected", "sport_key": sport, "tier": "business", "min_push_interval_s": cfg.push_interval_ms / 1000,
        "push_mode": "coalesced" if cfg.push_interval_ms else "raw", "diff_mode": False, "filters": {},
        "timestamp": start // 1000,
        "note": f"simulated by dropengine.sim.simulate (seed {cfg.seed}, {cfg.events} events, {cfg.books} books)",
    }
    initial = [row for sim in sims for row in sim.initial]
    latest: dict[str, int] = {}
    for row in initial:
        latest[row["bookmaker"]] = max(latest.get(row["bookmaker"], 0), row["last_update"])
    yield {
        "type": "hot_feed_status", "sport_key": sport,
        "sources": [
            {"bookmaker": b.key, "latest_ms": latest[b.key], "age_s": round((start - latest[b.key]) / 1000, 3),
             "rows_60s": sum(1 for r in initial if r["bookmaker"] == b.key and r["last_update"] >= start - MINUTE_MS)}
            for b in cfg.bookmakers if b.key in latest
        ],
        "timestamp": start,
    }
    yield {"type": "initial_state", "sport_key": sport, "timestamp": start, "count": len(initial), "data": initial}
    beat = cfg.heartbeat_s * 1000
    push = cfg.push_interval_ms
    last_frame = start
    end = cfg.end_ms

    def beats(until: int) -> Iterator[dict[str, Any]]:
        nonlocal last_frame
        while last_frame + beat < until:
            last_frame += beat
            yield {"type": "heartbeat", "sport_key": sport, "timestamp": last_frame}

    merged = heapq.merge(*(sim.updates() for sim in sims), key=lambda item: item[:3])
    batch: list[dict[str, Any]] = []
    window = -1
    for t, _, _, row in merged:
        w = t // push if push else t
        if w != window and batch:
            yield from _flush(batch, sport, push, beats)
            last_frame = _frame_time(batch, push)
            batch = []
        window = w
        batch.append(row)
    if batch:
        yield from _flush(batch, sport, push, beats)
        last_frame = _frame_time(batch, push)
    yield from beats(end + 1)


def _frame_time(batch: list[dict[str, Any]], push: int) -> int:
    """When the server pushes a batch: the end of its coalescing window."""
    t: int = batch[-1]["last_update"]
    return (t // push + 1) * push if push else t


def _flush(
    batch: list[dict[str, Any]], sport: str, push: int, beats: Any
) -> Iterator[dict[str, Any]]:
    ts = _frame_time(batch, push)
    yield from beats(ts)
    yield {
        "type": "odds_update", "sport_key": sport, "timestamp": ts, "count": len(batch),
        "coalesced": len({r["last_update"] for r in batch}) > 1, "data": list(batch),
    }


def quote_rows_from_envelopes(envelopes: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """SPEC section 2 quote rows (keys :data:`~dropengine.formats.tables.QUOTE_COLUMNS`) of a stream
    of vendor envelopes.

    Decoded by :class:`~dropengine.formats.frames.FrameDecoder`, exactly as a replay of the frames
    would, so a quote table and the frames it came from give the same alerts. Raises
    :class:`ConfigError` if an envelope does not decode cleanly (never the case for
    simulated ones). Line-only books' rows (SPEC 10) give line-only observations, which the
    table writers keep in their optional ``line_only`` column.
    """
    decoder = FrameDecoder(line_only=True)
    skips = SkipLog()
    for envelope in envelopes:
        quotes = decoder.feed(envelope, skips)
        if skips.total:
            raise ConfigError(f"envelopes: a row did not decode: {skips.first[0]}")
        for q in quotes:
            yield table_row(q)


def simulate_quote_rows(cfg: SimConfig) -> Iterator[dict[str, Any]]:
    """The same simulation as :func:`simulate_envelopes`, as SPEC section 2 quote rows.

    One row per price field of every vendor row (a null price is a suspended quote), in
    stream order; keys are :data:`~dropengine.formats.tables.QUOTE_COLUMNS`.
    """
    return quote_rows_from_envelopes(simulate_envelopes(cfg))
