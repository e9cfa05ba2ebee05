"""Turn ../shared/data/bovada_live_mlb (Bovada MLB polled every 15-30 s, 2019) into a quotes table.

One SPEC section 2 row per offered price per poll:
- ``h2h_away`` / ``h2h_home`` from ``a_ml`` / ``h_ml`` (``EVEN`` is +100);
- ``spread_away@{a_hcap_ps}`` / ``spread_home@{h_hcap_ps}`` from ``a_odds_ps`` / ``h_odds_ps``;
- ``total_over@{a_hcap_tot}`` / ``total_under@{h_hcap_tot}`` from ``a_odds_tot`` / ``h_odds_tot``
  (the file does not label the totals; the first column is taken as the over, an assumption);
- a ``0`` price or line means not offered: no row.
``last_update`` is ``last_mod_lines`` (when Bovada last changed the lines; the poll time
``cur_time`` where it is 0), so an unchanged poll is a re-observation. ``--pregame`` keeps
polls taken before ``game_start_time``.

    .venv/bin/python scripts/bovada_mlb_to_quotes.py ../shared/data/bovada_live_mlb/*.csv --pregame \\
        --out /tmp/bovada_pregame.parquet
"""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from dropengine.core.sides import format_line

_PAIRS = (
    ("a_ml", None, "h2h_away"), ("h_ml", None, "h2h_home"),
    ("a_odds_ps", "a_hcap_ps", "spread_away"), ("h_odds_ps", "h_hcap_ps", "spread_home"),
    ("a_odds_tot", "a_hcap_tot", "total_over"), ("h_odds_tot", "h_hcap_tot", "total_under"),
)


def _price(text: str) -> int | None:
    t = text.strip().upper()
    if t in ("", "0"):
        return None
    return 100 if t == "EVEN" else int(float(t))


def convert(path: Path, pregame: bool = True) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            now, start = float(r["cur_time"]), float(r["game_start_time"])
            if pregame and now >= start:
                continue
            mod = float(r["last_mod_lines"] or 0)
            base = {
                "sport_key": "baseball_mlb", "event_id": r["game_id"], "bookmaker": "bovada",
                "last_update": round((mod if mod > 0 else now) * 1000),
                "home_team": r["h_team"], "away_team": r["a_team"],
                "commence_time": datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for price_col, line_col, prefix in _PAIRS:
                price = _price(r[price_col])
                if price is None:
                    continue
                if line_col is None:
                    side = prefix
                else:
                    line = float(r[line_col])
                    if line == 0 and prefix.startswith("spread"):
                        continue  # no run line offered
                    side = f"{prefix}@{format_line(line)}"
                rows.append({**base, "side": side, "price": price})
    return pl.DataFrame(rows, schema={
        "sport_key": pl.String, "event_id": pl.String, "bookmaker": pl.String, "last_update": pl.Int64,
        "home_team": pl.String, "away_team": pl.String, "commence_time": pl.String, "side": pl.String,
        "price": pl.Int64,
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", type=Path)
    ap.add_argument("--pregame", action="store_true", help="keep only polls before game_start_time")
    ap.add_argument("--out", type=Path, required=True, help=".parquet or .csv")
    args = ap.parse_args()
    frame = convert(args.csv, args.pregame)
    if args.out.suffix == ".csv":
        frame.write_csv(args.out)
    else:
        frame.write_parquet(args.out)
    print(f"wrote {args.out}: {frame.height} quotes, {frame.get_column('event_id').n_unique()} games")


if __name__ == "__main__":
    main()
