"""``dropengine simulate``: write a seeded, realistic odds recording (:mod:`dropengine.sim`)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ..core.errors import ConfigError
from ..sim.simfile import write_simulation
from ..sim.simulate import DEFAULT_START_MS, SPORTS, SimConfig
from .options import name_list

__all__ = ["simulate_cmd"]

#: The flag of each SimConfig field, for error messages (``events: ...`` is ``--events``).
_SIM_FLAGS = {
    "events": "--events", "books": "--books", "hours": "--hours", "seed": "--seed", "sport_key": "--sport",
    "start_ms": "--start-ms", "out": "--out", "format": "--format", "props": "--props",
    "line_moves": "--line-moves", "line_only": "--line-only",
}


@click.command("simulate")
@click.option("--events", type=int, default=8, show_default=True, help="Number of games (1-500).")
@click.option("--books", type=int, default=6, show_default=True,
              help="Bookmakers quoting them (1-12; the sharp book, pinnacle, first).")
@click.option("--hours", type=float, default=24.0, show_default=True, help="Length of the recording.")
@click.option("--props", is_flag=True, help="Add player props.")
@click.option("--seed", type=int, default=0, show_default=True, help="The only source of randomness.")
@click.option("--sport", default="americanfootball_nfl", show_default=True,
              type=click.Choice(sorted(SPORTS)), help="Sport profile (scoring, lines, in-play length).")
@click.option("--start-ms", type=int, default=DEFAULT_START_MS, show_default=True,
              help="Unix ms at which the recording starts.")
@click.option("--line-moves", type=float, default=0.0, show_default=True,
              help="A soft book's own half-point line moves per book-event-hour (rising towards kick-off); "
                   "0.05 matches the real NFL recording (docs/simulator.md); 0 keeps the recordings of before.")
@click.option("--line-only", "line_only", default=None, metavar="BOOKS",
              help="Books whose rows carry spread and total lines without prices (line-only books, SPEC 10), "
                   "comma-separated.")
@click.option("--format", "fmt", type=click.Choice(["frames", "sse", "quotes"]), default=None,
              help="Override the format the extension implies.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="FILE: .ndjson/.jsonl (vendor frames), .sse (raw SSE capture), .csv/.parquet (quotes); .gz too.")
def simulate_cmd(events: int, books: int, hours: float, props: bool, seed: int, sport: str, start_ms: int,
                 line_moves: float, line_only: str | None, fmt: str | None, out: Path) -> None:
    """Write a realistic simulated odds recording that `dropengine replay` reads.

    A fair probability per game random-walks with news jumps; a sharp book moves first and
    soft books follow with lags and their own vig, on the price ladders books quote; lines
    move, several books within minutes after sharp news (steam), and with --line-moves books also
    move their own lines; suspensions around jumps and kick-off; in play, fewer books and slower
    re-quotes.
    The same seed gives byte-identical output. The model and its calibration against real
    recordings: docs/simulator.md.
    """
    err = Console(stderr=True)
    try:
        only = tuple(name_list(line_only, "--line-only")) if line_only is not None else ()
        cfg = SimConfig(events=events, books=books, hours=hours, props=props, seed=seed, start_ms=start_ms,
                        sport_key=sport, line_moves=line_moves, line_only=only)
        with err.status(f"simulating {events} events x {books} books, {hours:g} h -> {out}"):
            counts = write_simulation(cfg, out, fmt)
    except ConfigError as exc:
        field, sep, rest = str(exc).partition(": ")
        if not sep or field not in _SIM_FLAGS:
            raise click.UsageError(str(exc)) from None
        # the flag once, quoted as click quotes its own: "Invalid value for '--hours': nan ..."
        raise click.BadParameter(rest, param_hint=f"'{_SIM_FLAGS[field]}'") from None
    err.print(f"wrote {out}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()),
              markup=False, highlight=False, soft_wrap=True)
