"""Cooldown (SPEC 12) and steam (SPEC 11) over a batch's detected moves: the Python routing the batch
engine runs today vs the compiled pass of :mod:`dropengine.fast.signals` (issue 14, aim 1).

Run from the repository root::

    .venv/bin/python benchmarks/batch_signals.py            # 1M quotes, best of 5
    .venv/bin/python benchmarks/batch_signals.py --quick    # 200k quotes, best of 3
    .venv/bin/python benchmarks/batch_signals.py --quotes 10000000 --profile

Input: benchmarks/batch_e2e.py's quotes (a ``dropengine simulate`` recording, NFL, 8 books with
their own line moves and steam, tiled to the size asked for; made once, ``--cache DIR`` keeps it).
The moves are every price and line move the engine detects there (``batch.detect_counted`` with
every type, no cooldown, the filter open: every move is returned), in arrival order.

Contestants, per configuration, on the same moves, in turns (round robin, best of N):

- ``python``: what ``analysis.batch._with_signals`` does with the moves today: one
  :class:`~dropengine.core.steam.SignalRouter` (with its ``Cooldown`` and ``SteamTracker``) fed
  every move value in arrival order;
- ``fast``: :func:`dropengine.fast.signals.route` over the moves' arrays (what the kernel hands
  over), then the values the router would append: the steams built from their moves
  (:func:`steam_alerts`), the order of the returned alerts (:func:`alert_order`);
- ``fast pass``: the compiled pass alone.

Both give the same alerts (checked here, byte for byte, every run). Figures: moves/s and the ratio
``python time / fast time``. For scale, the minimal polars ``shift().over(key)`` detector of
batch_e2e.py on the same quotes (in process, in memory) runs in the same rounds: the routing's time
as a share of it is what the routing costs against the issue's 2x-polars aim. The arrays are built
from the move values outside the timed region (the kernel builds them from its columns).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import polars_baseline  # type: ignore[import-not-found]
from _report import fmt_rate, load_average, table  # type: ignore[import-not-found]
from _report import machine as report_machine  # type: ignore[import-not-found]
from batch_e2e import make_input  # type: ignore[import-not-found]

from dropengine.analysis.batch import detect_counted
from dropengine.core.alerts import Alert, Drop, LineMove, Steam
from dropengine.core.options import DetectOptions
from dropengine.core.steam import Cooldown, SignalRouter, SteamTracker
from dropengine.fast import signals

#: the configurations measured: DetectOptions keywords (the detection threshold is the default 10)
CONFIGS: dict[str, dict[str, Any]] = {
    "cooldown 60s": {"types": "odds_drop,line_move", "cooldown_ms": 60_000},
    "steam": {"types": "steam"},
    "steam groups": {"types": "steam", "steam_groups": "draftkings+fanduel"},
    "all + cooldown": {"types": "odds_drop,line_move,steam", "cooldown_ms": 60_000},
    "all, 1 book, filter": {"types": "odds_drop,line_move,steam", "steam_books": 1, "steam_window_ms": 0,
                            "bookmakers": "pinnacle,betmgm"},
}
_ENC = msgspec.json.Encoder()


def polars_detector(df: pl.DataFrame) -> int:
    """The minimal ``shift().over(key)`` detector (benchmarks/polars_baseline.py), in memory."""
    return polars_baseline.detect(df).height


def moves_of(frame: pl.DataFrame) -> list[Drop | LineMove]:
    """Every detected move of ``frame``, in arrival order (every type, no cooldown, open filter)."""
    res = detect_counted(frame, types="odds_drop,line_move,steam", steam_books=99)
    return [a for a in res.alert_values() if not isinstance(a, Steam)]


def python_route(moves: list[Drop | LineMove], options: DetectOptions) -> list[Alert]:
    """Today's batch routing (analysis.batch._with_signals' loop, without its table bookkeeping)."""
    router = SignalRouter(options, Cooldown(options.cooldown_ms),
                          SteamTracker(options.steam_books, options.steam_window_ms, options.steam_groups))
    route = router.route
    out: list[Alert] = []
    for m in moves:
        route(m, out)
    return out


def fast_route(moves: list[Drop | LineMove], arrays: signals.MoveArrays, passes: Any,
               options: DetectOptions) -> list[Alert]:
    """The compiled pass, then the alerts the router would have appended."""
    routed = signals.route(arrays, options)
    steams, ok = signals.steam_alerts(routed, moves.__getitem__, options.filter)
    at, which = signals.alert_order(routed.returned(passes), routed.fire_move, ok)
    return [moves[a] if s < 0 else steams[s] for a, s in zip(at.tolist(), which.tolist(), strict=True)]


def race(rounds: int, fns: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, Any]]:
    """Best-of-``rounds`` wall time per function, called in turns."""
    best: dict[str, tuple[float, Any]] = {}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t
            if name not in best or dt < best[name][0]:
                best[name] = (dt, out)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quotes", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="200k quotes, 3 rounds")
    ap.add_argument("--cache", type=Path, help="keep the input files in DIR between runs")
    ap.add_argument("--profile", action="store_true", help="cProfile the python and fast routing of 'all + cooldown'")
    args = ap.parse_args()
    n, rounds = (200_000, 3) if args.quick else (args.quotes, args.rounds)
    workdir = args.cache or Path(tempfile.mkdtemp(prefix="dropengine-signals-"))
    workdir.mkdir(parents=True, exist_ok=True)
    frame = pl.read_parquet(make_input(workdir, n))
    t = time.perf_counter()
    moves = moves_of(frame)
    setup = time.perf_counter() - t
    signals.compile_all()  # numba's import and cache load: a once-per-process cost, not the pass's

    print("machine:", ", ".join(f"{k} {v}" for k, v in report_machine(numba=_numba_version()).items()))
    print(f"load average: {load_average()}")
    print(f"{frame.height:,} quotes, {len(moves):,} detected moves "
          f"({sum(isinstance(m, LineMove) for m in moves):,} line moves); best of {rounds}, in turns; "
          f"moves found by batch.detect_counted in {setup:.2f} s")
    rows: list[tuple[str, ...]] = []
    for label, keywords in CONFIGS.items():
        options = DetectOptions.build(**keywords)
        arrays, passes = signals.move_arrays(moves, options)
        best = race(rounds, {
            "polars": lambda: polars_detector(frame),
            "python": lambda: python_route(moves, options),  # noqa: B023  (called in this iteration)
            "fast": lambda: fast_route(moves, arrays, passes, options),  # noqa: B023
            "pass": lambda: signals.route(arrays, options),  # noqa: B023
        })
        want, got = best["python"][1], best["fast"][1]
        if [_ENC.encode(a) for a in want] != [_ENC.encode(a) for a in got]:
            raise SystemExit(f"{label}: the compiled routing's alerts differ from the router's")
        steams = sum(isinstance(a, Steam) for a in want)
        polars_s, py_s, fast_s, pass_s = (best[k][0] for k in ("polars", "python", "fast", "pass"))
        rows.append((
            label, f"{len(want):,}", f"{steams:,}",
            fmt_rate(len(moves) / py_s), fmt_rate(len(moves) / fast_s), fmt_rate(len(moves) / pass_s),
            f"{py_s / fast_s:.1f}x", f"{py_s / pass_s:.0f}x",
            f"{py_s / polars_s:.0%}", f"{fast_s / polars_s:.1%}", f"{pass_s / polars_s:.2%}",
        ))
    print(table(("config", "alerts", "steams", "python moves/s", "fast moves/s", "pass moves/s", "fast vs py",
                 "pass vs py", "py/polars", "fast/polars", "pass/polars"), rows))
    print("(x/polars: the routing's time as a share of the minimal polars detector's on the same quotes)")
    if args.profile:
        options = DetectOptions.build(**CONFIGS["all + cooldown"])
        arrays, passes = signals.move_arrays(moves, options)
        for name, fn in (("python", lambda: python_route(moves, options)),
                         ("fast", lambda: fast_route(moves, arrays, passes, options))):
            prof = cProfile.Profile()
            prof.runcall(fn)
            print(f"\n-- profile: {name} routing, 'all + cooldown'")
            pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(8)


def _numba_version() -> str:
    import numba

    return str(numba.__version__)


if __name__ == "__main__":
    main()
