"""Directories of Parquet shards as input (pure path handling: no polars, no dask, so the
stream engine's ``replay`` can use it without loading either)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["expand_parquet_dirs", "parquet_shard_dir"]


def parquet_shard_dir(path: Path) -> list[Path] | None:
    """The Parquet files of a directory of Parquet shards, sorted by name, or ``None`` when
    ``path`` is not one: not a directory, or holding anything but ``.parquet`` files (hidden
    files and markers such as ``.crc``, ``_SUCCESS`` and ``_metadata`` aside), so a directory of
    The Odds API files is still read as one."""
    if not path.is_dir():
        return None
    files: list[Path] = []
    for f in sorted(path.iterdir()):
        if f.name.startswith((".", "_")):
            continue
        if not (f.is_file() and f.name.lower().endswith(".parquet")):
            return None
        files.append(f)
    return files or None


def expand_parquet_dirs(paths: Sequence[Path]) -> list[Path]:
    """``paths`` with each directory of Parquet shards replaced by its files (sorted by name):
    the shards are read as if given one by one (merged by ``last_update``, ties in name order).
    Other paths (files, directories of The Odds API files) are kept as given."""
    out: list[Path] = []
    for p in paths:
        files = parquet_shard_dir(p)
        out.extend(files if files is not None else [p])
    return out
