"""The minimal price-drop detector a polars user writes: the baseline of the batch benchmarks
(issue 14, aim 1: the batch path at >= 2x it). One definition, used in memory by
``batch_kernel.py`` and ``batch_signals.py`` and as a whole process by ``batch_e2e.py``::

    python benchmarks/polars_baseline.py quotes.parquet alerts.parquet

Per key (event, book, side) the previous price by ``shift().over(key)``, the move in
American-odds cents, a 10-cent threshold. No suspensions, stale rows, invalid prices,
anchors or signals: what SPEC 3 asks beyond this is the engine's extra work.
"""

from __future__ import annotations

import sys

import polars as pl

KEY = ["event_id", "bookmaker", "side"]


def detect(df: pl.DataFrame) -> pl.DataFrame:
    """The alerts of ``df`` (SPEC 2 quote columns)."""
    cents = pl.when(pl.col("price") > 0).then(pl.col("price") - 100).otherwise(pl.col("price") + 100)
    return (
        df.with_columns(cents.alias("_c"))
        .with_columns(
            pl.col("price").shift().over(KEY).alias("prev"),
            pl.col("_c").shift().over(KEY).alias("_pc"),
            pl.col("last_update").shift().over(KEY).alias("_plu"),
        )
        .with_columns((pl.col("_c") - pl.col("_pc")).alias("delta"))
        .filter(pl.col("delta").abs() >= 10)
        .select("sport_key", "event_id", "bookmaker", "side", "prev", pl.col("price").alias("new"), "delta",
                pl.when(pl.col("delta") < 0).then(pl.lit("toward_favorite")).otherwise(pl.lit("toward_dog"))
                .alias("direction"), "last_update", (pl.col("last_update") - pl.col("_plu")).alias("elapsed_ms"))
    )


def main(argv: list[str]) -> None:
    """Read a Parquet quote table, write its alerts to Parquet: the whole process a user runs."""
    src, dst = argv
    detect(pl.read_parquet(src)).write_parquet(dst)


if __name__ == "__main__":
    main(sys.argv[1:])
