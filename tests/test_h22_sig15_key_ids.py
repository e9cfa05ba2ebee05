"""``kernel.key_ids`` numbers the (pair, book) ids in one pass where the pairs fit a lookup table
(session 15, sig15: four passes over the rows before). Its ids are pinned exactly, not only one
per triple: the signals pass and the state arrays are sized and indexed by them, and every
branch must give the ids the two-step numbering gives (a model here):

- pairs ``(a, c)`` numbered in order of first appearance;
- few pairs (``pairs * nb <= DIRECT_SLOTS``): the id is ``pair * nb + b``, ``pairs * nb`` of them;
- else the (pair, b) combinations numbered in order of first appearance, as many as there are;
- with so many combinations that they pass ``LOOKUP_SLOTS`` the one pass gives up half way and
  the hashing passes number them: the same ids.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import require_fast


def _model(a: np.ndarray, b: np.ndarray, c: np.ndarray, na: int, nb: int, nc: int) -> tuple[list[int], int]:
    from dropengine.fast import kernel

    if na * nc <= kernel.DIRECT_SLOTS and na * nc * nb <= kernel.DIRECT_SLOTS:
        return [(x * nc + z) * nb + y if z >= 0 else -1 for x, y, z in zip(a, b, c, strict=True)], na * nc * nb
    pairs: dict[tuple[int, int], int] = {}
    pair = [pairs.setdefault((x, z), len(pairs)) if z >= 0 else -1 for x, z in zip(a, c, strict=True)]
    if len(pairs) * nb <= kernel.DIRECT_SLOTS:
        return [p * nb + y if p >= 0 else -1 for p, y in zip(pair, b, strict=True)], len(pairs) * nb
    keys: dict[tuple[int, int], int] = {}
    return [keys.setdefault((p, y), len(keys)) if p >= 0 else -1 for p, y in zip(pair, b, strict=True)], len(keys)


# (na, nb, nc): direct arithmetic; pairs looked up, few of them (pair * nb + b); pairs looked up,
# combinations numbered; combinations past LOOKUP_SLOTS (the one pass gives up: hashed); pairs
# past LOOKUP_SLOTS (hashed, never the one pass); many books per pair (the old property's shape)
SHAPES = [(10, 5, 7), (400, 3, 300), (2000, 40, 50), (300, 6000, 5000), (3000, 4, 3000), (300, 2000, 5000)]


def _check(a: np.ndarray, b: np.ndarray, c: np.ndarray, na: int, nb: int, nc: int) -> None:
    from dropengine.fast import kernel

    ids, bound = kernel.key_ids(a, b, c, na, nb, nc)
    want, want_bound = _model(a.tolist(), b.tolist(), c.tolist(), na, nb, nc)
    assert ids.tolist() == want
    assert bound == want_bound


@pytest.mark.parametrize(("na", "nb", "nc"), SHAPES)
def test_key_ids_are_the_two_step_numbering_on_every_branch(na: int, nb: int, nc: int) -> None:
    require_fast()
    rng = np.random.default_rng(na * 7 + nb * 3 + nc)
    n = 8000
    a, b, c = rng.integers(0, na, n), rng.integers(0, nb, n), rng.integers(-1, nc, n)
    a[:2], b[:2], c[:2] = na - 1, nb - 1, nc - 1  # the largest codes present
    _check(a, b, c, na, nb, nc)


def test_the_one_pass_gives_up_past_the_lookup_table_and_the_ids_are_the_same() -> None:
    """More pairs than LOOKUP_SLOTS // nb: the one pass stops with its output half written; the
    hashing passes write every id again."""
    require_fast()
    from dropengine.fast import kernel

    nb = 5000
    n_pairs = kernel.LOOKUP_SLOTS // nb + 50
    a = np.arange(n_pairs, dtype=np.int64)
    c = np.zeros(n_pairs, np.int64)
    b = (np.arange(n_pairs, dtype=np.int64) * 7) % nb
    a, b, c = np.concatenate((a, a[::-1])), np.concatenate((b, b[::-1])), np.concatenate((c, c))
    _check(a, b, c, n_pairs, nb, 1)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(SHAPES),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(-1, 10**6)), min_size=1, max_size=300),
)
def test_key_ids_property(shape: tuple[int, int, int], raw: list[tuple[int, int, int]]) -> None:
    """Repeated triples, nulls (c = -1), codes at the ends of their ranges, on each branch."""
    require_fast()
    na, nb, nc = shape
    a = np.array([x % na for x, _, _ in raw], np.int64)
    b = np.array([y % nb for _, y, _ in raw], np.int64)
    c = np.array([z % nc if z >= 0 else -1 for _, _, z in raw], np.int64)
    _check(np.concatenate((a, a[::-1])), np.concatenate((b, b[::-1])), np.concatenate((c, c[::-1])), na, nb, nc)
