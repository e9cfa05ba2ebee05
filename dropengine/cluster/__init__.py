"""Sharded batch work on Dask distributed (the ``cluster`` extra): ``dropengine replay --engine
batch`` and ``dropengine backtest`` with ``--workers N`` or ``--scheduler ADDRESS``.

The input is split by ``event_id`` with :func:`dropengine.core.partition.partition_of` (the
bus's rule); state never crosses events, so each shard's alerts are exactly those one process
finds for its events, and the merge by input position restores the single-process order. See
:mod:`dropengine.cluster.shard`. Importing this package loads neither dask nor polars: the
names of :mod:`~dropengine.cluster.shard` load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .inputs import expand_parquet_dirs, parquet_shard_dir

if TYPE_CHECKING:
    from .shard import ShardedBacktest, ShardedDetect, backtest_sharded, detect_sharded, open_client

__all__ = [
    "ShardedBacktest",
    "ShardedDetect",
    "backtest_sharded",
    "detect_sharded",
    "expand_parquet_dirs",
    "open_client",
    "parquet_shard_dir",
]

_LAZY = frozenset({"ShardedBacktest", "ShardedDetect", "backtest_sharded", "detect_sharded", "open_client"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(".shard", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
