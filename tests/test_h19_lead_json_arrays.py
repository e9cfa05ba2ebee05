"""The compiled books writer's two exits without a column (review19 S16-1, S16-2).

- A polars that takes no Arrow PyCapsule in ``pl.Series`` (before 1.3, which ``polars>=1.0``
  allows) makes ``json_arrays`` decline (``None``: the caller writes the books the polars way)
  and free its block, instead of failing every ``detect`` with a steam.
- An exception inside the pass (Ctrl-C: the call is interruptible) frees the block only after
  every view of it is gone: no frame of the traceback still holds one (a debugger or
  ``pytest --showlocals`` would read freed memory).
"""
from __future__ import annotations

import gc
import tracemalloc
import weakref
from typing import Any

import numpy as np
import polars as pl
import pytest

from .conftest import require_fast

_OK = {"opening": np.zeros(1, np.int64), "kind": np.zeros(1, np.int64), "keys": np.zeros((1, 1), np.int64),
       "number": np.zeros((1, 2), np.int64), "text": np.full((1, 2), -1, np.int64)}


def _traced_blocks(run: Any) -> int:
    """Bytes still allocated (tracemalloc sees Python's raw allocator too) after ``run`` and a
    collection, against before it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_polars_without_the_capsule_import_declines() -> None:
    require_fast()
    from dropengine.analysis import batch
    from dropengine.fast import kernel

    assert kernel.json_arrays("b", np.array([0, 1]), ["{"], **_OK) is not None  # (compiled before tracing)
    gc.collect()
    tracemalloc.start()
    try:  # a column nobody took: its block goes with it
        before = tracemalloc.get_traced_memory()[0]
        exported = kernel.json_arrays("b", np.array([0, 1]), ["{" + "x" * 100_000], **_OK)
        assert exported is not None
        held = tracemalloc.get_traced_memory()[0] - before
        del exported
        left = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held > 100_000 and left < 50_000, f"{held} bytes held, {left} after: the block was not freed"
    real = pl.Series

    def old_series(*args: Any, **kwargs: Any) -> Any:
        if args and hasattr(args[0], "__arrow_c_array__"):
            raise TypeError(f"Series constructor called with unsupported type {type(args[0]).__name__!r}")
        return real(*args, **kwargs)

    drops = pl.DataFrame({"_rpint": [True], "_pint": [True], "_rp": [-110.0], "_p": [-120.0], "_d": [10.0]})
    args = (np.array([0, 1]), np.array([0]), 1, np.zeros(1, np.int64), np.zeros(1, np.int64),
            np.array([1], np.int64), drops, None, ["b" * 100_000], ["h2h_home"])
    assert batch._books_compiled(*args) is not None  # (taken where polars imports it)
    got: list[Any] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pl, "Series", old_series)
        left = _traced_blocks(lambda: got.append(batch._books_compiled(*args)))
    assert got == [None]  # declined: the books the polars way
    assert left < 50_000, f"{left} bytes left allocated: the block was not freed"


def test_an_interrupted_pass_leaves_no_view_of_the_freed_block() -> None:
    require_fast()
    from dropengine.fast import kernel

    views: list[weakref.ref[Any]] = []

    def interrupted(*args: Any) -> int:
        views.append(weakref.ref(args[-1]))  # the block's text, as the pass receives it
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernel, "_json_array_write_call", interrupted)
        with pytest.raises(KeyboardInterrupt) as caught:
            kernel.json_arrays("b", np.array([0, 1]), ["{"], **_OK)
    assert caught.value.__traceback__ is not None  # the exception (and its frames) still alive here
    gc.collect()
    assert len(views) == 1 and views[0]() is None, "a frame of the traceback still holds a view of the freed block"


def test_callbacks_that_cannot_be_built_are_tried_once() -> None:
    """Where numba cannot build the release callbacks, the books go the polars way, and later calls
    do not pay the (seconds long) attempt again (review19 S16-4)."""
    require_fast()
    from dropengine.fast import kernel

    tries: list[int] = []

    def cannot() -> list[int]:
        tries.append(1)
        raise RuntimeError("no compiler here")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernel, "_RELEASE", [])
        mp.setattr(kernel, "_RELEASE_ERROR", [])
        mp.setattr(kernel, "_built_releases", cannot)
        got = [kernel.json_arrays("b", np.array([0, 1]), ["{"], **_OK) for _ in range(3)]
    assert got == [None, None, None] and tries == [1]
    assert kernel.json_arrays("b", np.array([0, 1]), ["{"], **_OK) is not None  # restored
