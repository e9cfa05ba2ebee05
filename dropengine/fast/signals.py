"""Compiled cooldown (SPEC 12) and steam (SPEC 11) over detected moves, in arrival order.

The stream engine routes each detected move through :class:`~dropengine.core.steam.SignalRouter`
(its :class:`~dropengine.core.steam.Cooldown` and :class:`~dropengine.core.steam.SteamTracker`),
one Python object per move. This module is the same routing as one pass over integer arrays,
compiled with numba (imported on first use only, never at ``import dropengine``), for the batch
engine's compiled path. Its contract is identity with the router: on any sequence of moves,
the same moves returned, the same cooldown count, the same steams (the same completing move,
``T`` and books in the same order), so the alerts built from it are the router's, byte for byte
(``tests/test_h14_steam_*`` compare them on adversarial move sequences and engine streams).

What the pass takes, per move in arrival order (a quote's price move before its line move), is
:class:`MoveArrays`; what it gives is :class:`Routed`. The rules it restates, each as the router
states it:

- cooldown (SPEC 12): per key (a price key and a line series are different keys), a move is
  suppressed when the key's last unsuppressed move is less than ``cooldown_ms`` older in
  ``last_update``; suppressed moves do not restart it, and still count for steam;
- returned: not suppressed, its type asked (``types``), and the filter accepts it; neither
  changes any state, so the caller applies them after the pass (``passes``, as polars or the
  filter computes it per move: :meth:`Routed.returned`);
- steam (SPEC 11): a move counts when its size crosses the steam floor
  (:func:`steam_counts`); per group ``(event_id, outcome, direction)`` each book's latest
  counted move (by arrival) is kept, ``T`` is the newest ``last_update`` among them, the window
  is ``[T - steam_window_ms, ...]``, a book group (``steam_groups``) counts once by its earliest
  move in the window, and a group that fired at ``T = F`` is quiet while ``T < F + window``.

The steams themselves (:class:`~dropengine.core.alerts.Steam` values, and whether the filter
accepts them) are built in Python from the moves the pass names (:func:`steam_alerts`): they are
few, and a steam's fields are its moves' fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..core.alerts import Drop, LineMove, Steam, SteamBook
from ..core.errors import ConfigError
from ..core.filters import AlertFilter
from ..core.options import DetectOptions
from ..core.rules import outcome_of, threshold_floor
from ..core.steam import LINE_TAG, PRICE_TAG, book_of, steam_alert
from ..core.steam import book_units as unit_names
from . import MAX_ROWS, _ro, _ro32, interruptible

__all__ = [
    "MoveArrays", "Routed", "alert_order", "arrival_order", "book_units", "compile_all", "move_arrays",
    "moves_in_order", "reads_keys", "route", "steam_alerts", "steam_counts",
]

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]
#: Indices and ids the passes take as they are (int32, int64, uint32: :func:`_index`) or write narrow
Ints = npt.NDArray[np.integer[Any]]
Move = Drop | LineMove

# --------------------------------------------------------------------------------------------
# The compiled passes. Plain Python/numpy (readable, and runnable without numba, slowly); jitted
# by _compiled() on first use. They call no other function of this module (numba would need it
# jitted first), and take only arrays and scalars.


#: The routing's per-group row (:func:`_route_py`): T, when the group last fired, whether it has, its books
_NEWEST, _FIRED, _HAS_FIRED, _SIZE = 0, 1, 2, 3
#: The routing's per-slot row: the book's latest counted move's time and index
_TIME, _MOVE = 0, 1


def _dense_ids_py(keys: I64) -> tuple[I64, int]:
    """Dense ids ``0..n-1`` for arbitrary int64 keys, in order of first appearance (an
    open-addressing hash table: one probe sequence per key, no sort)."""
    n = keys.shape[0]
    cap = 16
    while cap < 2 * n:
        cap *= 2
    mask = cap - 1
    table_key = np.empty(cap, np.int64)
    table_id = np.full(cap, -1, np.int64)
    out = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        k = keys[i]
        # splitmix64's finalizer spreads nearby keys (ids built as a * m + b) over the table
        h = np.uint64(k) * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(31)
        j = np.int64(h & np.uint64(mask))
        while True:
            tid = table_id[j]
            if tid < 0:
                table_key[j] = k
                table_id[j] = count
                out[i] = count
                count += 1
                break
            if table_key[j] == k:
                out[i] = tid
                break
            j = (j + 1) & mask
    return out, count


def _merge_py(a: Ints, b: Ints, kind: Any) -> Any:
    """Indices into ``[a..., b...]`` (each ascending) ordered by value, an ``a`` entry before a
    ``b`` entry of the same value: one linear merge. The indices are ``kind``'s type (an empty
    array: int32 where every index fits, :func:`arrival_order`)."""
    na = a.shape[0]
    nb = b.shape[0]
    out = np.empty(na + nb, kind.dtype)
    i = 0
    j = 0
    k = 0
    while i < na and j < nb:
        if a[i] <= b[j]:
            out[k] = i
            i += 1
        else:
            out[k] = na + j
            j += 1
        k += 1
    while i < na:
        out[k] = i
        i += 1
        k += 1
    while j < nb:
        out[k] = na + j
        j += 1
        k += 1
    return out


def _alerts_py(returned: Bools, fire_move: I64, steam_ok: Bools, at: Any, steam: Any) -> int:
    """The returned alerts in the router's order into ``at`` and ``steam`` (see :func:`alert_order`):
    per move, the move if ``returned``, then each steam it completed (``fire_move`` ascends) if
    ``steam_ok``. Returns how many were written."""
    n_steams = fire_move.shape[0]
    k = 0
    s = 0
    for i in range(returned.shape[0]):
        if returned[i]:
            at[k] = i
            steam[k] = -1
            k += 1
        while s < n_steams and fire_move[s] == i:
            if steam_ok[s]:
                at[k] = i
                steam[k] = s
                k += 1
            s += 1
    return k


def _moves_py(
    order: Ints, drop_rows: Ints, line_rows: Ints, drop_size: F64, line_size: F64, drop_lu: I64, line_lu: I64,
    row_side: Ints, over: Bools, row_event: Ints, outcome_of: I64, n_outcomes: int, row_key: Ints, n_keys: int,
    row_series: Ints, row_book: Ints, kind: Any, sizes: bool, cools: bool,
) -> tuple[bool, Any, Bools, F64, Any, Any, I64, Any]:
    """The :class:`MoveArrays` columns of the price moves ``drop_*`` and line moves ``line_*``
    (rows, sizes as written, times) put in ``order`` (:func:`arrival_order`), from per-row ids
    (``row_*``: each input row's side, event, price key, line series and book ids; per side its
    outcome id and whether it is an over side): ``(rows, is_line, size, group, cool_key,
    last_update, book)``. The group is ``(event, outcome, direction)``: a price move shortens
    (favorite) when its delta is negative, a line move when its points go up on an over side or
    down on any other; a line move's cooldown key is its series, after the ``n_keys`` price keys.
    Without ``sizes`` ``is_line`` and ``size`` are left empty, without ``cools`` ``cool_key`` (and
    ``row_key`` and ``row_series`` are not read).

    Rows and books are int32 (the per-row ids are: a row and a book id are below the rows); the
    group and cooldown key ids are ``kind``'s type (an empty array): with int32 the pass stops at the
    first id beyond it and returns ``False`` first (the caller passes again with int64), else
    ``True`` and the columns."""
    n = order.shape[0]
    na = drop_rows.shape[0]
    narrow = kind.itemsize == 4
    top = np.int64(2**31 - 1)  # (fast.MAX_ROWS: this source takes no module global but numba's)
    rows = np.empty(n, np.int32)
    is_line = np.empty(n if sizes else 0, np.bool_)
    size = np.empty(n if sizes else 0, np.float64)
    group = np.empty(n, kind.dtype)
    cool = np.empty(n if cools else 0, kind.dtype)
    lu = np.empty(n, np.int64)
    book = np.empty(n, np.int32)
    for k in range(n):
        j = order[k]
        line = j >= na
        if line:
            r = line_rows[j - na]
            x = line_size[j - na]
            t = line_lu[j - na]
        else:
            r = drop_rows[j]
            x = drop_size[j]
            t = drop_lu[j]
        sd = row_side[r]
        # (a line move: its points up on an over side or down on any other; a price move: its delta down)
        favorite = (x > 0 if over[sd] else x < 0) if line else x < 0
        g = (np.int64(row_event[r]) * n_outcomes + outcome_of[sd]) * 2 + (1 if favorite else 0)
        if narrow and (g > top or g < -top - 1):
            return False, rows, is_line, size, group, cool, lu, book
        if cools:
            c = np.int64(n_keys) + row_series[r] if line else np.int64(row_key[r])
            if narrow and (c > top or c < -top - 1):
                return False, rows, is_line, size, group, cool, lu, book
            cool[k] = c
        rows[k] = r
        if sizes:
            is_line[k] = line
            size[k] = x
        group[k] = g
        lu[k] = t
        book[k] = row_book[r]
    return True, rows, is_line, size, group, cool, lu, book


def _book_slots_py(counts: Bools, group: I64, book: I64, n_books: int, pair: I64, n_pairs: int, n_groups: int,
                   slot: Any) -> I64:
    """Where each counted move's (group, book) pair keeps its latest move: a group's books get
    consecutive slots ``group_start[g] ..`` in the order they first count in it, so the routing
    finds a book's slot in one step and scans a group's books in one contiguous run (no list
    walk, no pointer chase through memory). A move's (group, book) pair's id (``0 <= id <
    n_pairs``) is ``group * n_books + book``, or with ``pair`` not empty ``pair``'s entry (ids
    hashed dense: the product's range too wide). Writes per move its slot into ``slot`` (-1: not
    counted); returns ``group_start``. ``counts`` empty: every move counts."""
    n = group.shape[0]
    every = counts.shape[0] == 0
    by_product = pair.shape[0] == 0
    rank = np.full(max(n_pairs, 1), -1, np.int64)
    filled = np.zeros(max(n_groups, 1) + 1, np.int64)
    for i in range(n):
        if every or counts[i]:
            p = np.int64(group[i]) * n_books + book[i] if by_product else pair[i]
            if rank[p] < 0:
                g = group[i]
                rank[p] = filled[g + 1]
                filled[g + 1] += 1
    for g in range(1, filled.shape[0]):  # group_start: the running sum of each group's books
        filled[g] += filled[g - 1]
    for i in range(n):
        if every or counts[i]:
            p = np.int64(group[i]) * n_books + book[i] if by_product else pair[i]
            slot[i] = filled[group[i]] + rank[p]
        else:
            slot[i] = -1
    return filled


def _route_py(
    lu: I64, cool_key: I64, n_cool: int, counts: Bools, group: I64, n_groups: int, slot: I64, group_start: I64,
    book: I64, n_books: int, unit: I64, n_units: int, units_on: bool, cooldown_ms: int, steam_on: bool,
    steam_books: int, window: int, kind: Any,
) -> tuple[Bools, int, I64, I64, I64, Any]:
    """The routing pass (see the module docstring): ``(go, cooled, fire_move, fire_t,
    member_start, members)``. Each line restates :meth:`SignalRouter.route` /
    :meth:`SteamTracker.add` / :meth:`Cooldown.allow`; the arrival sequence of a counted move
    is its index ``i`` (moves are in arrival order). A group's books are the slots
    ``group_start[g] .. + size`` (:func:`_book_slots_py`; ``slot``: per counted move its book's).
    ``counts`` empty: every move counts (no steam threshold: no per-move array)."""
    n = lu.shape[0]
    go = np.ones(n, np.bool_)
    cooled = 0
    # Cooldown: the last unsuppressed last_update per key (read only with a cooldown: one entry without)
    keys = max(n_cool, 1) if cooldown_ms > 0 else 1
    last = np.zeros(keys, np.int64)
    has_last = np.zeros(keys, np.bool_)
    every = counts.shape[0] == 0
    nb = max(n_books, 1)
    # Steam groups, one row each (what a move reads of its group, together): T (SteamTracker's
    # _Group.newest, from -1), when it last fired, whether it has, how many books it holds
    ng = max(n_groups, 1) if steam_on else 1
    gs = np.zeros((ng, 4), np.int64)
    gs[:, _NEWEST] = -1
    # per slot (a group's first ``size`` slots: the books it holds) its book's latest counted move's time
    # and index
    ss = np.empty((max(group_start[-1], 1) if steam_on else 1, 2), np.int64)
    inside = np.empty(nb, np.int64)
    counted = np.empty(nb, np.int64)
    unit_seen = np.full(max(n_units, 1), -1, np.int64)  # stamped with the move's index: never cleared
    # steams fired: grown by doubling
    fire_move = np.empty(16, np.int64)
    fire_t = np.empty(16, np.int64)
    member_start = np.zeros(17, np.int64)
    members = np.empty(64, kind.dtype)  # (move indices: int32 while every one fits, ``kind``)
    n_fired = 0
    n_members = 0
    for i in range(n):
        x = lu[i]
        # SPEC 12 (Cooldown.allow): suppressed when the key's last alert is < cooldown_ms older
        if cooldown_ms > 0:
            k = cool_key[i]
            if has_last[k] and x - last[k] < cooldown_ms:
                go[i] = False
                cooled += 1
            else:
                has_last[k] = True
                last[k] = x
        if not steam_on or not (every or counts[i]):
            continue
        # SPEC 11 (SteamTracker.add): the book's latest move in its group
        g = group[i]
        s = slot[i]
        base = group_start[g]
        if s < base + gs[g, _SIZE]:  # the book is in the group: its move replaced
            old = ss[s, _TIME]
            ss[s, _TIME] = x
            ss[s, _MOVE] = i
            if old == gs[g, _NEWEST] and x < old:
                # the newest was replaced by an older one: T is taken again over the group
                t = x
                for r in range(base, base + gs[g, _SIZE]):
                    if ss[r, _TIME] > t:
                        t = ss[r, _TIME]
                gs[g, _NEWEST] = t
            elif x > gs[g, _NEWEST]:
                gs[g, _NEWEST] = x
        else:  # a new book (its slot is the group's next: slots are given in this order)
            ss[s, _TIME] = x
            ss[s, _MOVE] = i
            gs[g, _SIZE] += 1
            if x > gs[g, _NEWEST]:
                gs[g, _NEWEST] = x
        t = gs[g, _NEWEST]
        # (not t < fired + window: that wraps near 2**63, B23-6)
        if gs[g, _HAS_FIRED] != 0 and t - gs[g, _FIRED] < window:
            continue  # the group's cooldown: one window after its last firing
        if gs[g, _SIZE] < steam_books:
            continue
        low = t - window
        cnt = 0
        for r in range(base, base + gs[g, _SIZE]):
            if ss[r, _TIME] >= low:
                inside[cnt] = r
                cnt += 1
        if cnt < steam_books:
            continue
        # books in last_update order, ties by arrival (the move's index): insertion sort of
        # their slots, a window holds few books
        for a in range(1, cnt):
            r = inside[a]
            v = ss[r, _TIME]
            m = ss[r, _MOVE]
            c = a - 1
            while c >= 0 and (ss[inside[c], _TIME] > v or (ss[inside[c], _TIME] == v and ss[inside[c], _MOVE] > m)):
                inside[c + 1] = inside[c]
                c -= 1
            inside[c + 1] = r
        kept = 0
        if units_on:
            for a in range(cnt):  # earliest first: a book group counts by its earliest move
                m = ss[inside[a], _MOVE]
                u = unit[book[m]]
                if unit_seen[u] != i:
                    unit_seen[u] = i
                    counted[kept] = m
                    kept += 1
            if kept < steam_books:
                continue
        else:
            for a in range(cnt):
                counted[a] = ss[inside[a], _MOVE]
            kept = cnt
        gs[g, _FIRED] = t
        gs[g, _HAS_FIRED] = 1
        if n_fired == fire_move.shape[0]:
            grown = np.empty(2 * n_fired, np.int64)
            grown[:n_fired] = fire_move
            fire_move = grown
            grown = np.empty(2 * n_fired, np.int64)
            grown[:n_fired] = fire_t
            fire_t = grown
            grown = np.zeros(2 * n_fired + 1, np.int64)
            grown[:n_fired + 1] = member_start[:n_fired + 1]
            member_start = grown
        while n_members + kept > members.shape[0]:
            wider = np.empty(2 * members.shape[0], kind.dtype)
            wider[:n_members] = members[:n_members]
            members = wider
        for a in range(kept):
            members[n_members + a] = counted[a]
        n_members += kept
        fire_move[n_fired] = i
        fire_t[n_fired] = t
        n_fired += 1
        member_start[n_fired] = n_members
    # (the written fronts of the grown arrays, not copies: their pages past the front were never
    # touched, so they are no memory; 10M quotes' 459k steams: ~37 MB of copies not written)
    return go, cooled, fire_move[:n_fired], fire_t[:n_fired], member_start[:n_fired + 1], members[:n_members]


_JIT: dict[str, Callable[..., Any]] = {}
#: Up to this many (group, book) combinations (32 MB) a pair's id is the product itself.
_PAIR_TABLE = 1 << 22


def _compiled() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The jitted passes (numba imported here, on first use; compiled code cached beside this
    file, numba's default). ConfigError when numba is missing."""
    if not _JIT:
        try:
            import numba
        except ImportError:
            raise ConfigError("accel: 'fast' needs numba: pip install 'dropengine[fast]'") from None
        passes: dict[str, Callable[..., Any]] = {"dense": _dense_ids_py, "route": _route_py, "merge": _merge_py,
                                                 "slots": _book_slots_py, "moves": _moves_py, "alerts": _alerts_py}
        try:
            jitted = {k: numba.njit(cache=True, nogil=True)(f) for k, f in passes.items()}
        except RuntimeError:
            # numba finds no writable cache directory (read-only install, no usable HOME): compile
            # in memory on each first use rather than fail (breaker14a F2)
            jitted = {k: numba.njit(nogil=True)(f) for k, f in passes.items()}
        _JIT.update((k, interruptible(f)) for k, f in jitted.items())  # Ctrl-C as itself (B17-2)
    return _JIT["dense"], _JIT["route"]


def compile_all() -> None:
    """Compile (or load from numba's cache) both passes on a tiny input: for a warm-up thread
    (:func:`dropengine.fast.warm_up`) that overlaps it with reading the input."""
    dense, run = _compiled()
    # (with the types the batch path passes: int32 ids and order, the moves' rows as the kernel's uint32
    # (or int64), int64 times; the passes compile again for other types, e.g. move_arrays' int64 ids,
    # on their first use)
    z = _ro(np.zeros(1), np.int64)
    w = _ro(np.zeros(1), np.int32)
    _, k = dense(z)
    one = _ro(np.ones(1), np.bool_)
    slot = np.empty(1, np.int32)
    start = _JIT["slots"](one, w, w, 1, z[:0], 1, k, slot)
    run(z, w, 1, one, w, k, _ro(slot, np.int32), _ro(start, np.int64), w, 1, z, 1, True, 1, True, 1, 0, w[:0])
    alert_order(one, z, one)
    f = _ro(np.zeros(1), np.float64)
    for rows in (z, _ro(np.zeros(1), np.uint32)):  # (the moves' rows: the kernel's uint32, or int64)
        order = arrival_order(rows, rows[:0])
        moves_in_order(order, rows, rows[:0], f, f[:0], z, z[:0], w, one, w, z, 1, w, 1, w, w)


# --------------------------------------------------------------------------------------------
# The interface


@dataclass(frozen=True, slots=True)
class MoveArrays:
    """The detected moves (price moves and line moves, before cooldown and filters) in arrival
    order, a quote's price move before its line move (:func:`arrival_order` merges the two
    lists): one entry per move in each array.

    ``cool_key`` ids are dense (``0 <= id < n_cool_keys``) and a price key never shares one with a
    line series (e.g. line series ids offset by the number of price keys); ``group`` ids are any
    int64, equal for the same ``(event_id, outcome, direction)`` and different otherwise (dense
    when ``n_groups`` is given, else :func:`route` makes them dense); ``book`` ids index
    ``book_names`` (``0 <= id < len(book_names)``). The three id arrays are int32 or int64 (the
    routing reads them as they are when all are int32, else as int64). The columns :func:`route`
    does not read with its options may be empty: ``is_line`` and ``size`` without a steam threshold,
    ``cool_key`` without a cooldown (:func:`moves_in_order` given the options).
    """

    #: the move's ``last_update`` (data time, unix ms)
    last_update: I64
    #: the cooldown key: the price key ``(event_id, bookmaker, side)`` of a price move, the line
    #: series ``(event_id, bookmaker, line_side)`` of a line move
    cool_key: Ints
    n_cool_keys: int
    #: a line move (else a price move)
    is_line: Bools
    #: ``delta`` of a price move (cents, as written), ``points`` of a line move (as written)
    size: F64
    #: the steam group ``(event_id, outcome, direction)``; outcome = the side without its line
    #: (:func:`rules.outcome_of` of a price move's side; a line move's side is one already)
    group: Ints
    #: the bookmaker, an index into ``book_names``
    book: Ints
    book_names: Sequence[str]
    #: when set, ``group`` ids are already dense (``0 <= id < n_groups``)
    n_groups: int | None = None


@dataclass(frozen=True, slots=True)
class Routed:
    """What the routing did with each move (:func:`route`). Neither the filter nor ``types``
    changes the routing's state (SPEC 11, 12), so they are applied after it:
    a move is returned when ``go`` and the filter accepts it and its type is asked
    (:meth:`returned`), a steam when the filter accepts it (:func:`steam_alerts`)."""

    #: per move: not suppressed by the cooldown (always true without one)
    go: Bools
    #: moves a cooldown suppressed (the engines' ``cooled`` counter)
    cooled: int
    #: per steam fired, in firing order: the index of the move that completed it ...
    fire_move: I64
    #: ... its ``T`` (the steam's ``last_update``) ...
    fire_t: I64
    #: ... and its books: ``members[member_start[j]:member_start[j + 1]]`` are the indices of the
    #: counted moves, in the order of the steam's ``books`` (int32 while every move's index fits)
    member_start: I64
    members: Ints

    @property
    def steams(self) -> int:
        """Steams fired, before the filter (the engines' ``steam`` counter)."""
        return int(self.fire_move.shape[0])

    def members_of(self, j: int) -> Ints:
        """The move indices of steam ``j``'s books, in order."""
        return self.members[self.member_start[j]:self.member_start[j + 1]]

    def returned(self, passes: Bools) -> Bools:
        """Per move, whether it is returned, ``passes`` being per move whether its type is asked
        and the filter accepts it."""
        out: Bools = self.go & passes
        return out


def arrival_order(price_rows: Ints, line_rows: Ints, *, compiled: bool = True) -> Ints:
    """The arrival order of the price moves and line moves found at input rows ``price_rows``
    and ``line_rows`` (each ascending): indices into their concatenation ``[price moves...,
    line moves...]``, ordered by row, a row's price move before its line move (SPEC 11). One
    linear merge (compiled; ``compiled=False``: the same source interpreted). int32 where every
    index fits (the batch path's moves: 10M quotes, 7.6M moves, 30 MB instead of 60), else int64.
    The rows are taken as they are when uint32, int32 or int64 (the kernel writes uint32)."""
    a, b = _index(price_rows), _index(line_rows)
    kind = np.zeros(0, np.int32 if a.shape[0] + b.shape[0] <= MAX_ROWS else np.int64)
    if compiled:
        _compiled()
        order: Ints = _JIT["merge"](a, b, kind)
        return order
    merged: Ints = _merge_py(a, b, kind)
    return merged


def _index(a: Any) -> Any:
    """``a`` read-only as it is when of one of the types the passes take for indices and ids (int32,
    int64, uint32: the kernel's own), else as int64: no 10M-entry copy of the batch path's arrays
    (numba compiles a pass once per combination of types it is called with)."""
    a = np.asarray(a)
    return _ro(a, a.dtype if a.dtype in (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.uint32)) else np.int64)


def moves_in_order(
    order: Ints, drop_rows: Ints, line_rows: Ints, drop_size: F64, line_size: F64, drop_lu: I64, line_lu: I64,
    row_side: Ints, over: Bools, row_event: Ints, outcome_of: I64, n_outcomes: int, row_key: Ints, n_keys: int,
    row_series: Ints, row_book: Ints, *, compiled: bool = True, options: DetectOptions | None = None,
) -> tuple[Ints, Bools, F64, Ints, Ints, I64, Ints]:
    """:func:`_moves_py` (one pass, compiled; ``compiled=False``: the same source interpreted). The
    per-row ids (``row_*``) are int32, as :mod:`dropengine.fast.kernel` writes them (wider ones
    are taken if they fit: no 10M-row copy for the batch path's own arrays); ``order`` and the
    moves' rows as they are (:func:`_index`).

    The rows and books come out int32, the groups and cooldown keys int32 where every one fits
    (else int64: a second pass): 10M quotes' 7.6M moves, 4 x 30 MB fewer first-touched and
    alive through the routing than as int64 (the routing reads them as they are).

    With ``options`` (those :func:`route` will route the moves with) the columns the routing does not
    read come back empty: ``is_line`` and ``size`` without a steam threshold, ``cool_key`` without a
    cooldown (then ``row_key`` and ``row_series`` are not read: they may be empty, or None). 10M quotes' 7.6M
    moves, steam: 99 MB not written, 0.16-0.20 -> 0.09-0.13 s CPU."""
    i64, f64 = np.int64, np.float64
    unread = () if options is None else _unread(options)
    sizes, cool_keys = "size" not in unread, "cool_key" not in unread
    args = (_index(order), _index(drop_rows), _index(line_rows), _ro(drop_size, f64), _ro(line_size, f64),
            _ro(drop_lu, i64), _ro(line_lu, i64), _ro32(row_side, "row_side"), _ro(over, np.bool_),
            _ro32(row_event, "row_event"), _ro(outcome_of, i64), int(n_outcomes),
            _ro32(row_key if cool_keys else np.zeros(0, np.int32), "row_key"), int(n_keys),
            _ro32(row_series if cool_keys else np.zeros(0, np.int32), "row_series"), _ro32(row_book, "row_book"))
    if compiled:
        _compiled()
    run = _JIT["moves"] if compiled else _moves_py
    for kind in (np.int32, np.int64):
        fits, rows, is_line, size, group, cool, lu, book = run(*args, np.zeros(0, kind), bool(sizes), bool(cool_keys))
        if fits:
            break
    return rows, is_line, size, group, cool, lu, book


def steam_counts(size: F64, is_line: Bools, options: DetectOptions) -> Bools:
    """Per move, whether it counts for steam: ``|size|`` crosses ``steam_threshold`` (price
    moves) / ``steam_line_threshold`` (line moves), every detected move when unset (as
    :class:`SignalRouter` compares: ``size >= floor or -size >= floor``)."""
    out = np.ones(size.shape[0], np.bool_)
    for line, t in ((False, options.steam_threshold), (True, options.steam_line_threshold)):
        if t is None:
            continue
        floor = threshold_floor(t)
        of = is_line if line else ~is_line
        out[of] = (size[of] >= floor) | (-size[of] >= floor)
    return out


def _unread(options: DetectOptions) -> tuple[str, ...]:
    """The :class:`MoveArrays` columns :func:`route` does not read with ``options`` (they may be empty):
    the sizes without a steam threshold (every move counts), the cooldown keys without a cooldown
    (:func:`moves_in_order` with ``options`` leaves them out)."""
    steam = "steam" in options.types
    sizes = not steam or (options.steam_threshold is None and options.steam_line_threshold is None)
    return (*(("is_line", "size") if sizes else ()), *(("cool_key",) if options.cooldown_ms <= 0 else ()))


def reads_keys(options: DetectOptions) -> bool:
    """Whether :func:`moves_in_order` with ``options`` reads the rows' price key and line series ids
    (a move's cooldown key): with a cooldown only (:func:`_unread`). A caller holding them for it alone
    lets them go before the call otherwise (10M rows, two 40 MB arrays at the steams' peak)."""
    return "cool_key" not in _unread(options)


def book_units(book_names: Sequence[str], options: DetectOptions) -> tuple[I64, int] | None:
    """Per book id, its counting unit's id (a ``steam_groups`` group counts once), and how many
    units; ``None`` without groups. The unit is :class:`SteamTracker`'s own (its name: the group's
    sorted books, or the book itself), so a book named like a group's name is that unit too."""
    if not options.steam_groups:
        return None
    unit = unit_names(options.steam_groups)  # the one definition of a book's unit
    ids: dict[str, int] = {}
    out = np.array([ids.setdefault(unit.get(b, b), len(ids)) for b in book_names], dtype=np.int64)
    return out, len(ids)


def route(moves: MoveArrays, options: DetectOptions, *, compiled: bool = True) -> Routed:
    """Cooldown and steam over ``moves`` (in arrival order), as
    :class:`~dropengine.core.steam.SignalRouter` routes them: the compiled pass (numba, loaded on
    first use; ConfigError without it). ``compiled=False`` runs the same source interpreted
    (slow: for tests of the source itself)."""
    dense, run = _compiled() if compiled else (_dense_ids_py, _route_py)
    slots = _JIT["slots"] if compiled else _book_slots_py
    n = moves.last_update.shape[0]
    for name in ("cool_key", "is_line", "size", "group", "book"):
        got = getattr(moves, name).shape[0]
        if got != n and not (got == 0 and name in _unread(options)):
            raise ConfigError(f"{name}: {got} entries, last_update has {n}")
    lu = _ro(moves.last_update, np.int64)
    # the moves' ids as they are when every one is int32 (the batch path's: moves_in_order), else as
    # int64 (one compiled routing per kind of ids, not per combination)
    narrow = n <= MAX_ROWS and all(np.asarray(a).dtype == np.int32 for a in (moves.cool_key, moves.group, moves.book))
    kind = np.int32 if narrow else np.int64
    cool, book = _ro(moves.cool_key, kind), _ro(moves.book, kind)
    steam_on = "steam" in options.types
    # (the pass reads ``counts`` per move only with a steam threshold: empty, every move counts)
    counts = np.zeros(0, np.bool_)
    slot, group_start = np.zeros(0, np.int32), np.zeros(1, np.int64)
    if steam_on:
        if moves.n_groups is None:
            group, n_groups = dense(_ro(moves.group, np.int64))
            group = _ro(group, kind)  # (dense ids are below the moves: they fit int32 where the moves' index does)
        else:
            group, n_groups = _ro(moves.group, kind), moves.n_groups
        if "size" not in _unread(options):  # (the one decision of whether sizes are read: _unread)
            counts = steam_counts(np.asarray(moves.size, dtype=np.float64), np.asarray(moves.is_line, np.bool_),
                                  options)
        # (group, book) pairs: the product itself while it indexes a small table (computed in the
        # pass: no per-move array), else hashed dense
        n_books = max(len(moves.book_names), 1)
        if int(n_groups) * n_books <= _PAIR_TABLE:
            pair, n_pairs = np.zeros(0, np.int64), int(n_groups) * n_books
        else:
            pair, n_pairs = dense(_ro(np.asarray(group, np.int64) * n_books + np.asarray(book, np.int64), np.int64))
        # per move its book's slot: int32 while every move's index fits (8M moves: 32 MB, not 64)
        slot = np.empty(n, np.int32 if n <= MAX_ROWS else np.int64)
        group_start = slots(_ro(counts, np.bool_), group, book, n_books, _ro(pair, np.int64), int(n_pairs),
                            int(n_groups), slot)
    else:
        # (the pass reads a move's group only with steam on: one entry)
        group, n_groups = _ro(np.zeros(1, kind), kind), 1
    units = book_units(moves.book_names, options) if steam_on else None
    unit, n_units = units if units is not None else (np.zeros(1, np.int64), 1)
    go, cooled, fire_move, fire_t, member_start, members = run(
        lu, cool, int(moves.n_cool_keys), _ro(counts, np.bool_), group,
        int(n_groups), _ro(slot, slot.dtype), _ro(group_start, np.int64), book,
        len(moves.book_names), _ro(unit, np.int64),
        int(n_units), units is not None, int(options.cooldown_ms), steam_on, int(options.steam_books),
        int(options.steam_window_ms), _ro(np.zeros(0), np.int32 if n <= MAX_ROWS else np.int64),
    )
    return Routed(go, int(cooled), fire_move, fire_t, member_start, members)


# --------------------------------------------------------------------------------------------
# Values: steams from their moves, the order of the returned alerts


def steam_alerts(routed: Routed, move_of: Callable[[int], Move], flt: AlertFilter) -> tuple[list[Steam], Bools]:
    """The steams fired (in firing order), built from the moves ``move_of(index)`` gives, and
    per steam whether ``flt`` accepts it."""
    # plain lists (no numpy scalar per element), and one SteamBook per move however many steams
    # it is in (as SteamTracker builds one per counted move)
    fire_move, fire_t = routed.fire_move.tolist(), routed.fire_t.tolist()
    start, members = routed.member_start.tolist(), routed.members.tolist()
    entries: dict[int, SteamBook] = {}
    steams: list[Steam] = []
    for j, i in enumerate(fire_move):
        counted = []
        for m in members[start[j]:start[j + 1]]:
            entry = entries.get(m)
            if entry is None:
                entry = entries[m] = book_of(move_of(m))
            counted.append(entry)
        move = move_of(i)
        steams.append(steam_alert(move, counted, fire_t[j], move.timestamp))
    if flt.passes_all:
        return steams, np.ones(len(steams), np.bool_)
    return steams, np.array([flt.accepts(s) for s in steams], dtype=np.bool_)


def alert_order(returned: Bools, fire_move: I64, steam_ok: Bools, *, compiled: bool = True) -> tuple[Any, Any]:
    """The returned alerts in the order the router appends them (per move: the move if
    ``returned``, then the steam it completed if ``steam_ok``): per alert, the index of its
    move and the index of its steam (``-1``: the alert is the move itself); int32 where every
    index fits (the batch path keeps them so), else int64.

    One pass over the moves beside the steams' completing moves (both ascend: a move completes
    one steam at most, and steams fire in move order), writing the two columns and nothing else
    (:func:`_alerts_py`, compiled; ``compiled=False``: the same source interpreted). It was a
    merge of the returned moves and the steams' moves, then gathers of their concatenations:
    10M quotes, all types (7.6M moves, 459k steams), nine 8M-entry int64 arrays, ~0.58 GB first
    touched, 0.12 s alone; a sort by (move, steam) before that took 7-12 ms at 1M quotes."""
    returned = _ro(returned, np.bool_)
    fire = _ro(fire_move, np.int64)
    ok = _ro(steam_ok, np.bool_)
    if fire.shape[0] != ok.shape[0]:  # (the caller's arrays: its own routing's, so a defect as below)
        raise RuntimeError(f"alert_order: steam_ok has {ok.shape[0]} entries, fire_move {fire.shape[0]}")
    size = int(np.count_nonzero(returned)) + int(np.count_nonzero(ok))
    wide = max(returned.shape[0], fire.shape[0]) > MAX_ROWS
    kind = np.int64 if wide else np.int32
    at, steam = np.empty(size, kind), np.empty(size, kind)
    if compiled:
        _compiled()
        written = _JIT["alerts"](returned, fire, ok, at, steam)
    else:
        written = _alerts_py(returned, fire, ok, at, steam)
    if written != size:  # (a detector of a routing defect, not of a caller's option: json_arrays' class)
        raise RuntimeError(f"alert_order: fire_move not ascending or beyond the moves ({written} alerts placed, "
                           f"{size} returned)")
    return at, steam


def move_arrays(moves: Sequence[Move], options: DetectOptions) -> tuple[MoveArrays, Bools]:
    """:class:`MoveArrays` of move values (what the compiled detection hands over as arrays),
    and per move whether its type is asked and the filter accepts it (``passes``): the
    reference encoding, used by the tests and the benchmark."""
    keys: dict[tuple[str, str, str, str], int] = {}
    groups: dict[tuple[str, str, str], int] = {}
    books: dict[str, int] = {}
    n = len(moves)
    lu = np.empty(n, np.int64)
    cool = np.empty(n, np.int64)
    passes = np.empty(n, np.bool_)
    is_line = np.empty(n, np.bool_)
    size = np.empty(n, np.float64)
    group = np.empty(n, np.int64)
    book = np.empty(n, np.int64)
    flt = options.filter
    open_filter = flt.passes_all
    wanted = {PRICE_TAG: "odds_drop" in options.types, LINE_TAG: "line_move" in options.types}
    for i, m in enumerate(moves):
        line = isinstance(m, LineMove)
        tag = LINE_TAG if line else PRICE_TAG
        lu[i] = m.last_update
        cool[i] = keys.setdefault((tag, m.event_id, m.bookmaker, m.side), len(keys))
        passes[i] = wanted[tag] and (open_filter or flt.accepts(m))
        is_line[i] = line
        size[i] = m.points if isinstance(m, LineMove) else m.delta
        outcome = m.side if line else outcome_of(m.side)
        group[i] = groups.setdefault((m.event_id, outcome, m.direction), len(groups))
        book[i] = books.setdefault(m.bookmaker, len(books))
    arrays = MoveArrays(lu, cool, len(keys), is_line, size, group, book, list(books), len(groups))
    return arrays, passes
