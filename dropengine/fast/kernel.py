"""The batch kernel: SPEC 3 (price keys) and SPEC 10 (line series) in one pass in arrival order
over integer key ids, compiled by numba.

The batch engine (:mod:`dropengine.analysis.batch`) turns its keys into dense integer ids once
(:func:`key_ids`: an open-addressing hash of the per-column codes, no sort), then
:func:`detect_pass` walks the rows once, keeping per key the *rows* that hold its state (the
row whose price is the stored price, the anchor's row, the newest time), exactly the state
machine of :class:`~dropengine.core.engine.DropEngine` step for step: stale, suspension and
re-priming, repeats (``+100`` equals ``-100``), reference ``last`` or ``anchor``, the move in
cents (written by :func:`rules.round_delta`) or in probability points (:func:`rules.prob_move`),
the threshold with its tolerance (:func:`rules.threshold_floor`); and per line series the
line's value, the price riding on it and its anchor (SPEC 10). It returns the detected moves as
row numbers (the move's row, its reference row, the row whose price rides on the reference
line); the caller gathers every column it writes from its rows, so text never enters the kernel.

The source is plain Python over numpy arrays (each formula marked with the :mod:`rules`
function it is, and a test holds both paths equal); numba compiles it on first use and caches
the machine code beside this file (``cache=True``). This module imports numba: load it only
when the compiled path is used (:func:`dropengine.fast.available`).

It also writes a text column the batch path would otherwise build with many polars passes (a
steam's ``books``, :func:`json_arrays`): the text pieces come from the caller (msgspec's), the
pass only joins them and writes ints' digits, and polars takes the result without a copy.
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, TypeVar, cast

import numba
import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]  # (numba's own dependency)
from numba.core import cgutils
from numba.extending import intrinsic

from ..core import rules
from ..core.errors import ConfigError
from . import MAX_ROWS, _ro, _ro32, interruptible

__all__ = ["MAX_ROWS", "Moves", "codes", "compile_all", "dense_codes", "detect_pass", "group_rows", "ids",
           "json_arrays", "key_ids", "round_decimals", "run"]



_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(fn: _F) -> _F:
    """numba's njit, machine code cached beside this file (numba's default locator, or its user
    cache directory); where no cache can be written (a read-only install and no writable home),
    compiled per process instead of failing."""
    try:
        return cast(_F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return cast(_F, numba.njit(nogil=True, error_model="numpy")(fn))


#: rules constants, bound as module globals (numba freezes them into the machine code)
_LO: Final = float(rules.MIN_ABS_PRICE)
_HI: Final = float(rules.MAX_ABS_PRICE)
_STEPS: Final = rules.EXACT_STEPS
_MARGIN: Final = rules.ROUNDING_MARGIN
_SCALE: Final = float(10**rules.DELTA_DECIMALS)
#: Veltkamp's splitter for doubles (2**27 + 1): a * _SPLIT splits a into two 26-bit halves
_SPLIT: Final = 134217729.0
#: From here on a double is its own rounding to 9 decimals (:func:`round_decimals`)
_KEEP: Final = float(2**23)

# Counter slots of the pass (the order of EngineCounters' price and line fields)
PRIMED, STALE, SUSPENDED, REPEATED, LINE_SEEN, LINE_PRIMED, LINE_STALE, LINE_SUSPENDED, LINE_REPEATED = range(9)
N_COUNTS: Final = 9


@_jit
def round_decimals(x: float) -> float:
    """Python's ``round(x, rules.DELTA_DECIMALS)``, bit for bit: the nearest double to ``x``'s
    exact value rounded half-even to 9 decimals. ``x * 10**9`` is taken exactly as a sum of two
    doubles (Dekker's product, Veltkamp's split), its integer rounded with the tail looked at
    only on a half, and ``N / 10**9`` is a correctly rounded division, as CPython's
    ``strtod`` of the correctly rounded decimal is.

    From :data:`_KEEP` (2**23) on, ``x`` is its own rounding: a double's spacing there (2**-29 and
    up) is wider than twice the largest distance to the nearest 9-decimal value (0.5e-9), so
    the double nearest that value is ``x`` (the grid of doubles is finer just below 2**23, but
    2**23 is an integer, its own 9-decimal value). Below it ``|x| * 10**9 < 2**53``: the split
    product is exact and ``rint`` of it an exact integer. (Was 4e6: ``x`` kept between 4e6 and
    2**23, where doubles are 2**-30 apart and ``round`` moves some, e.g. 4000000.0009765625.)"""
    if not np.isfinite(x) or abs(x) >= _KEEP:
        return x
    b = _SCALE
    p = x * b
    c = _SPLIT * x
    xh = c - (c - x)
    xl = x - xh
    c = _SPLIT * b
    bh = c - (c - b)
    bl = b - bh
    err = ((xh * bh - p) + xh * bl + xl * bh) + xl * bl  # x * b == p + err exactly
    q = np.rint(p)  # nearest integer, ties to even
    h = p - q  # exact
    if h == 0.5 and err > 0.0:  # above the half: up (on it exactly: q is the even one)
        q += 1.0
    elif h == -0.5 and err < 0.0:
        q -= 1.0
    r = float(q / b)
    if r == 0.0 and x < 0.0:
        return -0.0
    return r


@_jit
def _written_delta(d: float) -> float:
    """rules.round_delta of a float move: a multiple of 1/EXACT_STEPS stays, the rest rounded."""
    scaled = d * _STEPS
    if scaled == np.floor(scaled):
        return d
    return round_decimals(d)


@_jit
def _written_points(d: float) -> float:
    """rules.line_points' written value (rules.written_line): integral stays, the rest rounded."""
    if d == np.floor(d):
        return d
    return round_decimals(d)


#: How many rows ahead the passes ask for a key's state (:func:`_prefetch`): ~ a miss's latency
#: over a row's work
_AHEAD: Final = 16


def _prefetch_codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
    """LLVM's ``prefetch`` of the cache line holding ``array[at, 0, ...]``: for reading and writing,
    the highest locality, the data cache. A hint, never a fault: an index out of range costs
    nothing but the hint."""
    kind = signature.args[0]
    array = context.make_array(kind)(context, builder, args[0])
    intp = numba.types.intp
    at = [context.cast(builder, args[1], signature.args[1], intp)]
    at += [context.get_constant(intp, 0)] * (kind.ndim - 1)
    cg: Any = cgutils  # (numba's helpers are untyped)
    where = cg.get_item_pointer(context, builder, kind, array, at, wraparound=False)
    byte = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    # (the intrinsic's name carries its pointer type: "p0" with opaque pointers, "p0i8" with the typed
    # pointers of the LLVM under an older llvmlite (>= 0.43 is allowed): llvmlite spells it)
    fn = cg.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32]),
                                   "llvm.prefetch." + byte.intrinsic_name)
    builder.call(fn, [builder.bitcast(where, byte), ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
    return context.get_dummy_value()


if cast(Any, numba.config).DISABLE_JIT:  # (the kernel as plain Python, NUMBA_DISABLE_JIT=1: a hint is nothing)

    def _prefetch(table: Any, at: Any) -> None:
        """(interpreted: no hint)"""

else:

    @intrinsic
    def _prefetch(typingctx: Any, table: Any, at: Any) -> Any:
        """Ask the processor for the cache line of ``table[at]`` (the row ``at`` of a 2-d table) and go
        on: a pass reading one row of a large table per input row, at random (a key's state), asks
        for a later input row's now and finds it in cache when it gets there."""
        return numba.types.void(table, at), _prefetch_codegen


#: Bytes a piece is copied by (:func:`_copy_chunk`): the text's buffers have this many spare bytes at
#: their ends, so the last chunk of a piece may run past it
_CHUNK: Final = 16


def _copy_chunk_codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
    """LLVM's ``memcpy`` of :data:`_CHUNK` bytes from ``src[at]`` to ``dst[to]`` (a constant size:
    one unaligned vector load and store, no call)."""
    cg: Any = cgutils  # (numba's helpers are untyped)
    intp = numba.types.intp
    dst_kind, _, src_kind, _ = signature.args
    dst = context.make_array(dst_kind)(context, builder, args[0])
    src = context.make_array(src_kind)(context, builder, args[2])
    to = cg.get_item_pointer(context, builder, dst_kind, dst, [context.cast(builder, args[1], signature.args[1], intp)],
                             wraparound=False)
    at = cg.get_item_pointer(context, builder, src_kind, src, [context.cast(builder, args[3], signature.args[3], intp)],
                             wraparound=False)
    cg.raw_memcpy(builder, to, at, context.get_constant(numba.types.int64, _CHUNK), 1)
    return context.get_dummy_value()


if cast(Any, numba.config).DISABLE_JIT:

    def _copy_chunk(dst: Any, to: Any, src: Any, at: Any) -> None:
        """(interpreted)"""
        dst[int(to):int(to) + _CHUNK] = src[int(at):int(at) + _CHUNK]

else:

    @intrinsic
    def _copy_chunk(typingctx: Any, dst: Any, to: Any, src: Any, at: Any) -> Any:
        """Copy :data:`_CHUNK` bytes from ``src[at]`` to ``dst[to]`` (uint8 arrays; no bounds checked:
        the caller's buffers have the spare bytes)."""
        return numba.types.void(dst, to, src, at), _copy_chunk_codegen


@_jit
def _put(out: np.ndarray, pos: np.uint64, data: np.ndarray, a: np.uint64, size: np.uint64) -> None:
    """``data[a:a + size]`` written at ``out[pos]``, :data:`_CHUNK` bytes at a time (the last chunk
    runs past both ends by up to ``_CHUNK - 1`` bytes: the buffers' spare bytes; what it writes
    past ``pos + size`` the next piece overwrites). A byte at a time was ~1.6x the time (10M
    quotes' 427 MB of books: 0.23-0.28 s -> 0.15-0.16 s)."""
    b = np.uint64(0)
    step = np.uint64(_CHUNK)
    while b < size:
        _copy_chunk(out, pos + b, data, a + b)
        b += step


@_jit
def _dense_chunk(codes: np.ndarray, stop: int, table: np.ndarray, out: np.ndarray, at: int, first: np.ndarray,
                 k: int) -> int:
    """:func:`dense_codes`' pass over one run of rows, the rows ``at`` onwards (a column's
    chunk), numbering on from ``k`` with the caller's ``table``; returns the new count."""
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or c >= stop:
            out[at + i] = -1
            continue
        d = table[c]
        if d < 0:
            d = k
            table[c] = k
            first[k] = at + i
            k += 1
        out[at + i] = d
    return k


@_jit
def dense_codes(codes: np.ndarray, stop: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Codes ``0 <= c < stop`` (a code outside: none, -1) renumbered densely in order of
    first appearance, how many, and the row of each one's first appearance: a Categorical's
    physical codes index every string its categories ever held, the rows use a few of them.
    One pass through a lookup table."""
    n = codes.shape[0]
    table = np.full(max(stop, 1), -1, np.int64)
    out = np.empty(n, np.int32)
    first = np.empty(min(n, max(stop, 1)), np.int64)
    k = _dense_chunk(codes, stop, table, out, 0, first, 0)
    return out, k, first[:k]


#: Up to this many slots (4 MB of state) the key id is the code arithmetic ``(a * nb + b) * nc + c``
#: itself (the state arrays hold a slot per combination); beyond it the combinations present are
#: numbered densely: through a lookup table up to :data:`LOOKUP_SLOTS` combinations (one random
#: access per row), else an open-addressing hash.
DIRECT_SLOTS: Final = 1 << 16
LOOKUP_SLOTS: Final = 1 << 22


@_jit
def _renumber(comp: np.ndarray, stop: int) -> tuple[np.ndarray, int]:
    """Dense ids of the values ``comp`` (``0 <= v < stop``; -1: none) and how many: through a
    lookup table, or hashed when ``stop`` is -1 (more than :data:`LOOKUP_SLOTS` values)."""
    if 0 <= stop <= LOOKUP_SLOTS:
        ids, k, _ = dense_codes(comp, stop)
        return ids, k
    # (the one open-addressing table of the kernel: a value is its own group of four, -1 none)
    hashed, k, _ = _group_rows(comp, comp, comp, comp, True)
    return hashed.astype(np.int32), k


@_jit
def key_ids(a: np.ndarray, b: np.ndarray, c: np.ndarray, na: int, nb: int, nc: int) -> tuple[np.ndarray, int]:
    """Ids of the triples ``(a, b, c)`` of dense codes (``0 <= a < na`` ...; a row with
    ``c < 0`` has no key: id -1), and how many ids there can be. Few combinations: the
    arithmetic on the codes; else dense ids, the pair ``(a, c)`` first (so no product of code
    ranges can overflow), then that pair's id times ``nb`` plus ``b``.

    Why ``(a, c)`` first: for price keys ``(event, book, side)`` the sides are sparse per event
    (each event spells its own lines and players) and the books dense (a few, quoting most
    events), so the pairs ``(event, side)`` present times the books is a small range, numbered
    through a lookup table; ``(event, book)`` pairs times every side ever seen is not (10M
    quotes of 1,480 events, 8 books and 682 sides: 8M combinations, hashed, 5x slower)."""
    n = a.shape[0]
    out = np.empty(n, np.int32)  # (an id is below the rows or DIRECT_SLOTS: int32, half of int64's memory)
    if _fits(na, nc, DIRECT_SLOTS) and _fits(na * nc, nb, DIRECT_SLOTS):
        for i in range(n):
            out[i] = (np.int64(a[i]) * nc + c[i]) * nb + b[i] if c[i] >= 0 else -1
        return out, na * nc * nb
    if _fits(na, nc, LOOKUP_SLOTS):
        k, npairs, pair_of = _pairs_then_books(a, b, c, na, nb, nc, out)
        if k >= 0:
            if _fits(npairs, nb, DIRECT_SLOTS):  # few pairs: the id is the arithmetic pair * nb + book
                for i in range(n):
                    if out[i] >= 0:
                        out[i] = pair_of[out[i]] * nb + b[i]
                return out, npairs * nb
            return out, k
        # (more (pair, book) combinations than LOOKUP_SLOTS: the passes below hash them)
    # (the combinations as int64: a pair's code arithmetic may pass int32)
    comp = np.empty(n, np.int64)
    for i in range(n):
        comp[i] = np.int64(a[i]) * nc + c[i] if c[i] >= 0 else -1
    pair, npairs = _renumber(comp, na * nc if _fits(na, nc, LOOKUP_SLOTS) else -1)
    for i in range(n):
        comp[i] = np.int64(pair[i]) * nb + b[i] if c[i] >= 0 else -1
    if _fits(npairs, nb, DIRECT_SLOTS):
        for i in range(n):
            out[i] = comp[i]
        return out, npairs * nb
    return _renumber(comp, npairs * nb if _fits(npairs, nb, LOOKUP_SLOTS) else -1)


@_jit
def _pairs_then_books(a: np.ndarray, b: np.ndarray, c: np.ndarray, na: int, nb: int, nc: int,
                      out: np.ndarray) -> tuple[int, int, np.ndarray]:
    """:func:`key_ids`' dense ids in one pass where the pairs ``(a, c)`` fit a lookup table: each
    row's pair numbered through it, then ``(pair, b)`` through a second table that grows a pair's
    ``nb`` slots at a time (pairs are numbered in order, so it only ever appends). The same ids,
    first appearance of the triple, as numbering the pairs then ``pair * nb + b`` in two passes
    each (four passes over ``n`` rows before: 10M quotes 0.18 s, most of it memory traffic).
    Writes the ids into ``out``; returns how many (-1: the pairs times ``nb`` passed
    :data:`LOOKUP_SLOTS`, ``out`` half written, the caller's hashing passes take over), the pairs,
    and each id's pair for the first :data:`DIRECT_SLOTS` ids (the arithmetic ids of few pairs)."""
    n = a.shape[0]
    pair_table = np.full(max(na * nc, 1), -1, np.int32)  # (pairs and ids are below n: int32, half the memory)
    # room for every pair there can be, up to LOOKUP_SLOTS slots: np.empty, so only the pages of
    # the pairs met are ever touched (a pair's nb slots are set to -1 when it is numbered; no
    # growing: an array reassigned in the loop costs numba reference counting on every row)
    most = min(n, max(na * nc, 1), LOOKUP_SLOTS // max(nb, 1))
    key_table = np.empty(max(most * nb, 1), np.int32)
    pair_of = np.empty(DIRECT_SLOTS, np.int64)
    npairs = 0
    k = 0
    for i in range(n):
        # both tables are read at random (10M rows: 8 and 19 MB): a later row's pair asked for
        # now, and the (pair, book) slot of a nearer one whose pair is known by then
        if i + 2 * _AHEAD < n:
            _prefetch(pair_table, np.int64(a[i + 2 * _AHEAD]) * nc + c[i + 2 * _AHEAD])
        if i + _AHEAD < n:
            near = pair_table[np.int64(a[i + _AHEAD]) * nc + c[i + _AHEAD]] if c[i + _AHEAD] >= 0 else -1
            if near >= 0:
                _prefetch(key_table, np.int64(near) * nb + b[i + _AHEAD])
        ci = c[i]
        if ci < 0:
            out[i] = -1
            continue
        j = a[i] * nc + ci
        p = pair_table[j]
        if p < 0:
            if npairs == most:
                return -1, npairs, pair_of
            p = npairs
            pair_table[j] = p
            npairs += 1
            key_table[p * nb:(p + 1) * nb] = -1
        j = p * nb + b[i]
        q = key_table[j]
        if q < 0:
            q = k
            key_table[j] = q
            if k < DIRECT_SLOTS:
                pair_of[k] = p
            k += 1
        out[i] = q
    return k, npairs, pair_of


@_jit
def _mix4(a: np.int64, b: np.int64, x: np.int64, y: np.int64) -> np.uint64:
    """The four values of a group mixed into one hash (Fibonacci hashing: the table's slot is its
    top bits): the one spelling for inserting a group and for rehashing it."""
    mix = np.uint64(0x9E3779B97F4A7C15)
    return ((((np.uint64(a) * mix) ^ np.uint64(b)) * mix ^ np.uint64(x)) * mix ^ np.uint64(y)) * mix


@_jit
def _group_rows(a: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray,
                none_below_zero: bool) -> tuple[np.ndarray, int, np.ndarray]:
    """Dense ids ``0..k-1`` (first appearance order) of the rows' quadruples ``(a, b, x, y)``
    (any int64 values; with ``none_below_zero`` a row whose ``a`` is negative has none: id -1,
    not counted), how many, and each id's first row. An open-addressing hash table (linear
    probing, Fibonacci hashing over the four values mixed) holding each group's values (a probe
    compares them in the table, not at a row far back: a cache miss each) and id; it doubles at
    half load. The kernel's one hash table: :func:`group_rows`' groups and :func:`key_ids`' ids
    past its lookup tables (one value, passed as all four) both come from it."""
    n = a.shape[0]
    cap = 1024
    shift = np.uint64(64 - 10)
    keys = np.empty((cap, 4), np.int64)
    slot_id = np.full(cap, -1, np.int64)  # -1: an empty slot
    ids = np.empty(n, np.int64)
    first = np.empty(n, np.int64)  # (at most n groups: no growing; the first k are returned)
    k = 0
    for i in range(n):
        ai, bi, xi, yi = a[i], b[i], x[i], y[i]
        if none_below_zero and ai < 0:
            ids[i] = -1
            continue
        h = np.int64(_mix4(ai, bi, xi, yi) >> shift)
        while True:
            g = slot_id[h]
            if g < 0:
                keys[h, 0], keys[h, 1], keys[h, 2], keys[h, 3] = ai, bi, xi, yi
                slot_id[h] = k
                ids[i] = k
                first[k] = i
                k += 1
                if 2 * k > cap:  # grow: every group rehashed into a table twice the size
                    old_keys, old_id = keys, slot_id
                    cap *= 2
                    shift = np.uint64(shift - np.uint64(1))
                    keys = np.empty((cap, 4), np.int64)
                    slot_id = np.full(cap, -1, np.int64)
                    for j in range(old_id.shape[0]):
                        if old_id[j] >= 0:
                            q = np.int64(_mix4(old_keys[j, 0], old_keys[j, 1], old_keys[j, 2], old_keys[j, 3]) >> shift)
                            while slot_id[q] >= 0:
                                q = (q + 1) & (cap - 1)
                            keys[q, :] = old_keys[j, :]
                            slot_id[q] = old_id[j]
                break
            if keys[h, 0] == ai and keys[h, 1] == bi and keys[h, 2] == xi and keys[h, 3] == yi:
                ids[i] = g
                break
            h = (h + 1) & (cap - 1)
    return ids, k, first[:k].copy()


@_jit
def _fits(x: int, y: int, limit: int) -> bool:
    """``x * y <= limit`` for non-negative ``x``, ``y``, without computing a product that
    could overflow int64."""
    return y == 0 or x <= limit // y


# Slots of a price key's state (one row of 8 int64 per key: a cache line's 64 bytes, not aligned on
# one: aligned rows measured within noise with the prefetch, session 19; prices are stored as
# float64 bits through a view of the same memory): 0 unseen / 1 priced / 2 suspended after a
# price / 3 suspended never priced; the newest accepted time; the rows of the stored price's
# first observation and of the anchor's; the stored and the anchor price; (a price key's) the
# times of those two rows (a move's reference time is written from them: no gather by row later).
_ST, _NEWEST, _CUR, _ANC, _CURP, _ANCP, _CURL, _ANCL = range(8)
_CURT, _ANCT = _CURL, _ANCL  # (a line series' slots 6 and 7 hold its lines; a price key's its times)
# A line series' further slots: the times of the rows that set its current and its anchor line, and
# the prices riding on them (float64 bits, NaN: none), so a line move's reference time and price are
# written from its series' state (no row far back gathered later: a cache miss each)
_LCURT, _LANCT, _LCURV, _LANCV = 8, 9, 10, 11
_LINE_SLOTS: Final = 12


@_jit
def _pass_rows(
    start: int, kid: np.ndarray, lid: np.ndarray, nseries: int, lu: np.ndarray, price: np.ndarray,
    null: np.ndarray, invalid: np.ndarray, line_only: np.ndarray, line: np.ndarray,
    reprime: bool, anchor: bool, prob: bool, thr: float, line_thr: float, line_by_key: bool,
    price_values: bool, line_values: bool, counts: np.ndarray, ks: np.ndarray, ls: np.ndarray, ends: np.ndarray,
    moves: np.ndarray, refs: np.ndarray, ref_lu: np.ndarray, ref_price: np.ndarray, move_lu: np.ndarray,
    move_price: np.ndarray, lmoves: np.ndarray, lrefs: np.ndarray, lprices: np.ndarray, lref_line: np.ndarray,
    lnew: np.ndarray, lkey: np.ndarray, lmove_lu: np.ndarray, lmove_price: np.ndarray, lref_lu: np.ndarray,
    lref_price: np.ndarray,
) -> None:
    """:func:`detect_pass` over the rows ``start .. start + len(lu)``: ``lu`` and ``price`` are
    those rows' (a chunk of the caller's columns, read where they are), every other per-row array
    the whole column's. The state (``counts``, the keys' ``ks``, the series' ``ls``) and the moves
    written so far (``ends``: how many price and line moves) carry from one call to the next."""
    kf = ks.view(np.float64)
    lf = ls.view(np.float64)
    nm = ends[0]
    nl = ends[1]
    sure = thr + _MARGIN
    near = thr - _MARGIN
    lsure = line_thr + _MARGIN
    lnear = line_thr - _MARGIN
    prices = thr < np.inf  # (the line series alone otherwise: the caller's line pass)
    rows = null.shape[0]
    for j in range(lu.shape[0]):
        i = start + j
        # the state rows a later row will touch, asked for now (a key's row is a miss at random:
        # 10M rows over 1.8M keys' 115 MB); the rows' ids are read in order, so cheaply
        ahead = i + _AHEAD
        if ahead < rows:
            if prices:
                _prefetch(ks, kid[ahead])
            if nseries > 0:
                _prefetch(ls, lid[ahead])
        if invalid[i]:
            continue  # SPEC 10: skipped whole (counted when the rows were loaded)
        t = lu[j]
        is_null = null[i]
        if prices and not line_only[i]:
            # -- SPEC 3: the price key ---------------------------------------------------------------
            k = kid[i]
            s = ks[k, _ST]
            if s == 0:
                ks[k, _NEWEST] = t
                if is_null:
                    counts[SUSPENDED] += 1
                    ks[k, _ST] = 3
                else:
                    counts[PRIMED] += 1
                    ks[k, _ST] = 1
                    ks[k, _CUR] = i
                    ks[k, _ANC] = i
                    kf[k, _CURP] = price[j]
                    kf[k, _ANCP] = price[j]
                    ks[k, _CURT] = t
                    ks[k, _ANCT] = t
            elif t < ks[k, _NEWEST]:
                counts[STALE] += 1
            else:
                ks[k, _NEWEST] = t
                if is_null:
                    counts[SUSPENDED] += 1
                    if s == 1:
                        ks[k, _ST] = 2
                elif s != 1 and (reprime or s == 3):
                    counts[PRIMED] += 1
                    ks[k, _ST] = 1
                    ks[k, _CUR] = i
                    ks[k, _ANC] = i
                    kf[k, _CURP] = price[j]
                    kf[k, _ANCP] = price[j]
                    ks[k, _CURT] = t
                    ks[k, _ANCT] = t
                else:
                    ks[k, _ST] = 1
                    p = price[j]
                    old = kf[k, _CURP]
                    # rules.same_price
                    if p == old or (p + old == 0.0 and (p == 100.0 or p == -100.0)):
                        counts[REPEATED] += 1
                    else:
                        if anchor:
                            r = ks[k, _ANC]
                            ref = kf[k, _ANCP]
                            rt = ks[k, _ANCT]
                        else:
                            r = ks[k, _CUR]
                            ref = old
                            rt = ks[k, _CURT]
                        ks[k, _CUR] = i
                        kf[k, _CURP] = p
                        ks[k, _CURT] = t
                        fired = False
                        if prob:  # rules.prob_move, rules.crosses
                            pn = 100.0 / (p + 100.0) if p > 0 else -p / (100.0 - p)
                            pr = 100.0 / (ref + 100.0) if ref > 0 else -ref / (100.0 - ref)
                            move = (pn - pr) * -100.0
                            fired = move >= thr or -move >= thr
                        else:  # rules.cents_move written by rules.round_delta, rules.crosses
                            d = (p - 100.0 if p > 0 else p + 100.0) - (ref - 100.0 if ref > 0 else ref + 100.0)
                            if d >= near or -d >= near:
                                if d < sure and -d < sure:
                                    d = _written_delta(d)
                                fired = d >= thr or -d >= thr
                        if fired:
                            moves[nm] = i
                            if price_values:
                                refs[nm] = r
                                ref_lu[nm] = rt
                                ref_price[nm] = ref
                                move_lu[nm] = t
                                move_price[nm] = p
                            nm += 1
                            if anchor:
                                ks[k, _ANC] = i
                                kf[k, _ANCP] = p
                                ks[k, _ANCT] = t
        # -- SPEC 10: the line series ------------------------------------------------------------------
        if nseries == 0:
            continue  # no line series (``lid`` may then hold a single -1)
        g = lid[i]
        if g < 0:
            continue
        counts[LINE_SEEN] += 1
        x = line[kid[i]] if line_by_key else line[i]
        susp = is_null and not line_only[i]
        pv = np.nan if is_null else price[j]  # the price riding on this row's line (NaN: none)
        s = ls[g, _ST]
        if s == 0:
            ls[g, _NEWEST] = t
            if susp:
                counts[LINE_SUSPENDED] += 1
                ls[g, _ST] = 3
                ls[g, _CURP] = -1
                ls[g, _ANCP] = -1
                lf[g, _LCURV] = np.nan
                lf[g, _LANCV] = np.nan
            else:
                counts[LINE_PRIMED] += 1
                ls[g, _ST] = 1
                ls[g, _CUR] = i
                ls[g, _ANC] = i
                ls[g, _CURP] = i
                ls[g, _ANCP] = i
                lf[g, _CURL] = x
                lf[g, _ANCL] = x
                ls[g, _LCURT] = t
                ls[g, _LANCT] = t
                lf[g, _LCURV] = pv
                lf[g, _LANCV] = pv
            continue
        if t < ls[g, _NEWEST]:
            counts[LINE_STALE] += 1
            continue
        ls[g, _NEWEST] = t
        if susp:
            counts[LINE_SUSPENDED] += 1
            if s != 3:  # a suspension at a line is its latest observation, without a price
                if s == 1:
                    ls[g, _ST] = 2
                if x == lf[g, _CURL]:
                    ls[g, _CURP] = i
                    lf[g, _LCURV] = np.nan
                if x == lf[g, _ANCL]:
                    ls[g, _ANCP] = i
                    lf[g, _LANCV] = np.nan
            continue
        if s != 1 and (reprime or s == 3):
            counts[LINE_PRIMED] += 1
            ls[g, _ST] = 1
            ls[g, _CUR] = i
            ls[g, _ANC] = i
            ls[g, _CURP] = i
            ls[g, _ANCP] = i
            lf[g, _CURL] = x
            lf[g, _ANCL] = x
            ls[g, _LCURT] = t
            ls[g, _LANCT] = t
            lf[g, _LCURV] = pv
            lf[g, _LANCV] = pv
            continue
        ls[g, _ST] = 1
        at_anchor = x == lf[g, _ANCL]
        if x == lf[g, _CURL]:  # a repeat refreshes, and updates the price riding on the line
            counts[LINE_REPEATED] += 1
            ls[g, _CURP] = i
            lf[g, _LCURV] = pv
            if at_anchor:
                ls[g, _ANCP] = i
                lf[g, _LANCV] = pv
            continue
        if anchor:
            r = ls[g, _ANC]
            rp = ls[g, _ANCP]
            ref = lf[g, _ANCL]
            rt = ls[g, _LANCT]
            rv = lf[g, _LANCV]
        else:
            r = ls[g, _CUR]
            rp = ls[g, _CURP]
            ref = lf[g, _CURL]
            rt = ls[g, _LCURT]
            rv = lf[g, _LCURV]
        ls[g, _CUR] = i
        ls[g, _CURP] = i
        lf[g, _CURL] = x
        ls[g, _LCURT] = t
        lf[g, _LCURV] = pv
        if at_anchor:
            ls[g, _ANCP] = i
            lf[g, _LANCV] = pv
        d = x - ref  # rules.line_points, rules.crosses
        if (lnear < d < lsure) or (lnear < -d < lsure):
            d = _written_points(d)
        if d >= line_thr or -d >= line_thr:
            lmoves[nl] = i
            lprices[nl] = rp
            lref_line[nl] = ref
            if not line_values:
                lrefs[nl] = r
            else:  # (the reference's time and price written instead of its row)
                lnew[nl] = x
                lkey[nl] = kid[i]
                lmove_lu[nl] = t
                lmove_price[nl] = pv
                lref_lu[nl] = rt
                lref_price[nl] = rv
            nl += 1
            if anchor:
                ls[g, _ANC] = i
                ls[g, _ANCP] = i
                lf[g, _ANCL] = x
                ls[g, _LANCT] = t
                lf[g, _LANCV] = pv
    ends[0] = nm
    ends[1] = nl


class Moves(NamedTuple):
    """What :func:`detect_pass` found: the price moves (rows, uint32 as polars' row indices are, in
    row order) and, when asked (``price_values``), per price move its reference row (int32), the
    reference's time and price and the move's own time and price; the line moves (rows, uint32),
    their price rows (the latest observation at the reference line, -1 for none) and reference
    lines, and either (without ``line_values``) their reference rows (the reference line's first
    observation or anchoring) or (with it) per line move its new line, its key id (with
    ``line_by_key``: the canonical side's), its time and price (NaN: none), its reference's time
    and the price riding on the reference line (NaN: none), what a caller reads at those rows;
    and the counters (:data:`N_COUNTS` slots). Arrays not asked for are empty."""

    moves: np.ndarray
    refs: np.ndarray
    ref_lu: np.ndarray
    ref_price: np.ndarray
    move_lu: np.ndarray
    move_price: np.ndarray
    lmoves: np.ndarray
    lrefs: np.ndarray
    lprices: np.ndarray
    lref_line: np.ndarray
    lnew: np.ndarray
    lkey: np.ndarray
    lmove_lu: np.ndarray
    lmove_price: np.ndarray
    lref_lu: np.ndarray
    lref_price: np.ndarray
    counts: np.ndarray


_pass_rows_call = interruptible(_pass_rows)


@_jit
def _buffers(mp: int, mv: int, ml: int, mlr: int, mlv: int) -> tuple[np.ndarray, ...]:
    """:func:`detect_pass`'s move buffers (the :class:`Moves` arrays but the counters), allocated
    here, by numba's allocator: numpy's asks the kernel for huge pages on arrays of 4 MB and more
    (``madvise``), and on a VM a huge page's first touch can cost milliseconds of compaction (the
    buffers are 10M-row arrays of which the moves' fronts are written)."""
    return (np.empty(mp, np.uint32), np.empty(mv, np.int32), np.empty(mv, np.int64), np.empty(mv, np.float64),
            np.empty(mv, np.int64), np.empty(mv, np.float64), np.empty(ml, np.uint32), np.empty(mlr, np.int32),
            np.empty(ml, np.int32), np.empty(ml, np.float64), np.empty(mlv, np.float64), np.empty(mlv, np.int32),
            np.empty(mlv, np.int64), np.empty(mlv, np.float64), np.empty(mlv, np.int64), np.empty(mlv, np.float64))


@_jit
def _empty_i32(n: int) -> np.ndarray:
    """An int32 buffer of ``n`` by numba's allocator (no huge pages asked for: :func:`_buffers`)."""
    return np.empty(n, np.int32)


def detect_pass(
    kid: Any, nkeys: int, lid: Any, nseries: int, lu: Sequence[Any], price: Sequence[Any], null: Any, invalid: Any,
    line_only: Any, line: Any, reprime: bool, anchor: bool, prob: bool, thr: float, line_thr: float,
    line_by_key: bool = False, price_values: bool = True, line_values: bool = False,
) -> Moves:
    """One pass in arrival order over the rows (SPEC 3 on ``kid``, SPEC 10 on ``lid``).

    Per row: ``kid`` its price key id (``nkeys`` ids), ``lid`` its line series id (-1: none;
    ``nseries`` ids), ``lu`` its time, ``price`` (any value where ``null``), ``null`` a null
    price, ``invalid`` an invalid price (the row observes nothing), ``line_only`` a line-only
    observation (no price key; its null price is no suspension), ``line`` its series line
    (``lid`` and ``line`` are not read when ``nseries`` is 0: they may hold one entry); with
    ``line_by_key`` ``line`` is per key id, not per row: a row's line is ``line[kid[i]]`` (the line
    pass's keys are the canonical sides, whose series line is one per side: no per-row array).
    ``thr`` and ``line_thr`` are the thresholds' floors (:func:`rules.threshold_floor`); an
    infinite ``thr`` (a threshold is finite) asks for the line series alone: no price key is
    followed (``kid`` is not read for prices, the price counters stay 0; the line part reads no
    price state; ``kid`` is per row all the same with ``line_by_key`` or ``line_values``, which read it).

    ``lu`` and ``price`` are lists of chunks (int64 and float64 arrays, e.g. a polars column's
    chunks, each read where it is: no copy into one array), the same rows in all; ``kid`` and
    ``lid`` int32 (int64 is taken if every value fits), at most :data:`MAX_ROWS` rows.
    The moves' values (:class:`Moves`) are written by the pass as it holds them: the caller
    gathers no row for them (far back: a cache miss each; 10M quotes, 2.5M drops and 5M line
    moves), and only the pages of the moves written are memory at all (np.empty buffers)."""
    i64, f64, b1 = np.int64, np.float64, np.bool_
    kid, lid = _ro32(kid, "kid"), _ro32(lid, "lid")
    null, invalid, line_only = _ro(null, b1), _ro(invalid, b1), _ro(line_only, b1)
    line = _ro(line, f64)
    n = null.shape[0]
    lus = [_ro(c, i64) for c in lu]
    prices = [_ro(c, f64) for c in price]
    if n > MAX_ROWS:
        raise ConfigError(f"quotes: {n} rows; the compiled pass takes at most {MAX_ROWS}")
    nseries = int(nseries)
    # the per-row columns the pass reads, with their lengths (kid and lid only where read)
    lengths = {"null": n, "invalid": invalid.shape[0], "line_only": line_only.shape[0],
               "lu": sum(c.shape[0] for c in lus), "price": sum(c.shape[0] for c in prices)}
    if math.isfinite(thr) or line_by_key or line_values:
        lengths["kid"] = kid.shape[0]
    if nseries > 0:
        lengths["lid"] = lid.shape[0]
    if any(length != n for length in lengths.values()):
        each = ", ".join(f"{name} {length}" for name, length in lengths.items())
        raise ConfigError(f"detect_pass: per-row columns of different lengths ({each}): each must have null's {n}")
    counts = np.zeros(N_COUNTS, i64)
    ks = np.zeros((max(int(nkeys), 1) if math.isfinite(thr) else 1, 8), i64)
    ls = np.zeros((max(nseries, 1), _LINE_SLOTS), i64)
    ends = np.zeros(2, i64)
    mp = n if math.isfinite(thr) else 0
    mv = mp if price_values else 0
    ml = n if nseries > 0 else 0
    mlv = ml if line_values else 0
    out = _buffers(mp, mv, ml, 0 if line_values else ml, mlv)
    flags = (bool(reprime), bool(anchor), bool(prob), float(thr), float(line_thr), bool(line_by_key),
             bool(price_values), bool(line_values))
    start = 0
    a = b = 0  # the chunk of ``lu`` and of ``price`` the rows ``start`` onwards are in
    oa = ob = 0  # (where those chunks begin)
    while start < n:
        while lus[a].shape[0] <= start - oa:
            oa += lus[a].shape[0]
            a += 1
        while prices[b].shape[0] <= start - ob:
            ob += prices[b].shape[0]
            b += 1
        stop = min(oa + lus[a].shape[0], ob + prices[b].shape[0])
        _pass_rows_call(start, kid, lid, nseries, lus[a][start - oa:stop - oa], prices[b][start - ob:stop - ob],
                        null, invalid, line_only, line, *flags, counts, ks, ls, ends, *out)
        start = stop
    nm, nl = int(ends[0]), int(ends[1])
    return Moves._make([*(o[:nm] for o in out[:6]), *(o[:nl] for o in out[6:]), counts])


#: The code :func:`codes` reads as none (a null): beyond any Categorical's physical code.
NO_CODE: Final = 2**32 - 1


_dense_codes_call = interruptible(dense_codes)
_dense_chunk_call = interruptible(_dense_chunk)


def codes(physical: Any, stop: int) -> tuple[Any, int, Any]:
    """:func:`dense_codes` of uint32 codes (a Categorical's physical codes as polars holds them:
    no conversion; a null is :data:`NO_CODE`), in one array or a list of chunks (a Parquet
    file's row groups, each read where polars holds it: 10M rows in 40 chunks, three key
    columns, 0.09-0.13 s CPU of copies into one array saved)."""
    if not isinstance(physical, list):
        return _dense_codes_call(_ro(physical, np.uint32), int(stop))
    chunks = [_ro(c, np.uint32) for c in physical]
    n = sum(c.shape[0] for c in chunks)
    size = max(int(stop), 1)
    table = np.full(size, -1, np.int64)
    out = _empty_i32(n)
    first = np.empty(min(n, size), np.int64)
    k = at = 0
    for c in chunks:
        k = _dense_chunk_call(c, int(stop), table, out, at, first, k)
        at += c.shape[0]
    return out, k, first[:k]


def _rows(name: str, *columns: Any, dtype: Any = np.int64) -> list[Any]:
    """The columns as read-only arrays of ``dtype`` (int64 or int32), checked to be one length:
    the compiled passes check no bounds (numba's default), so a shorter column would be read past
    its end."""
    out = [_ro32(c, name) if dtype is np.int32 else _ro(c, np.int64) for c in columns]
    lengths = {c.shape[0] for c in out}
    if len(lengths) > 1:
        raise ConfigError(f"{name}: columns of different lengths {[c.shape[0] for c in out]}")
    return out


@interruptible
def ids(a: Any, b: Any, c: Any, na: int, nb: int, nc: int) -> tuple[Any, int]:
    """:func:`key_ids` of int32 codes (:func:`codes`'; wider ones are taken if they fit)."""
    ra, rb, rc = _rows("ids", a, b, c, dtype=np.int32)
    return key_ids(ra, rb, rc, int(na), int(nb), int(nc))


@interruptible
def group_rows(a: Any, b: Any, x: Any, y: Any) -> tuple[Any, int, Any]:
    """:func:`_group_rows` of four int64 columns (a float column as its bits: the caller's)."""
    ra, rb, rx, ry = _rows("group_rows", a, b, x, y)
    return _group_rows(ra, rb, rx, ry, False)


def run(
    kid: Any, nkeys: int, lid: Any, nseries: int, lu: Any, price: Any, null: Any, invalid: Any, line_only: Any,
    line: Any, reprime: bool, anchor: bool, prob: bool, thr: float, line_thr: float, line_by_key: bool = False,
) -> tuple[Any, Any, Any, Any, Any, Any, Any, Any, Any]:
    """:func:`detect_pass` over whole columns ``lu`` and ``price``: the price moves, their
    reference rows, the line moves, their reference and price rows, the counters, the price
    moves' reference times and prices, the line moves' reference lines."""
    m = detect_pass(kid, nkeys, lid, nseries, [lu], [price], null, invalid, line_only, line, reprime, anchor, prob,
                    thr, line_thr, line_by_key)
    return m.moves, m.refs, m.lmoves, m.lrefs, m.lprices, m.counts, m.ref_lu, m.ref_price, m.lref_line


# --------------------------------------------------------------------------------------------
# Text columns of JSON arrays (a steam's ``books``): written in one compiled pass from pieces of
# text, handed to polars as an Arrow array (no Python text per cell, no copy).


@_jit
def _json_array_ends(start: np.ndarray, piece_start: np.ndarray, opening: np.ndarray, kind: np.ndarray,
                     keys: np.ndarray, number: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Where each array of :func:`_json_array_write` ends in its buffer (the offsets, 0 first):
    the same walk, counting what it writes (in unsigned arithmetic, as the writer)."""
    n = start.shape[0] - 1
    ends = np.zeros(n + 1, np.int64)
    one = np.uint64(1)
    ten = np.uint64(10)
    pos = np.uint64(0)
    for j in range(n):
        pos += np.uint64(2)  # [ ]
        for i in range(start[j], start[j + 1]):
            if i > start[j]:
                pos += one  # ,
            for slot in range(keys.shape[1] + 1):
                q = opening[i] if slot == 0 else keys[kind[i], slot - 1]
                pos += np.uint64(piece_start[q + 1] - piece_start[q])
                q = text[i, slot]
                if q >= 0:
                    pos += np.uint64(piece_start[q + 1] - piece_start[q])
                    continue
                x = number[i, slot]
                if x < 0:
                    pos += one  # -
                    x = -x
                u = np.uint64(x)
                pos += one
                while u >= ten:
                    u //= ten
                    pos += one
            pos += one  # }
        ends[j + 1] = pos
    return ends


@_jit
def _json_array_write(start: np.ndarray, piece_data: np.ndarray, piece_start: np.ndarray, opening: np.ndarray,
                      kind: np.ndarray, keys: np.ndarray, number: np.ndarray, text: np.ndarray,
                      out: np.ndarray) -> int:
    """Array ``j`` is ``[`` + its objects ``start[j]:start[j + 1]`` joined by commas + ``]``;
    object ``i`` is its opening piece, the int ``number[i, 0]``, then per field ``k`` the key piece
    of its kind and its value (the piece ``text[i, k + 1]``, or with none the int
    ``number[i, k + 1]``), then ``}``. Only the ints' digits are written here; every other byte is
    a piece's (copied by :func:`_put`: ``piece_data`` and ``out`` have :data:`_CHUNK` spare bytes
    past their ends). Returns the bytes written (:func:`_json_array_ends` counted them: ``out``'s
    size less the spare bytes).

    (Positions are unsigned: numba then indexes without the negative-index test, and the byte
    copies run ~3x faster: 20 MB of books at 1M quotes in ~15 ms instead of ~40.)"""
    one = np.uint64(1)
    ten = np.uint64(10)
    pos = np.uint64(0)
    for j in range(start.shape[0] - 1):
        out[pos] = 91  # [
        pos += one
        for i in range(start[j], start[j + 1]):
            if i > start[j]:
                out[pos] = 44  # ,
                pos += one
            for slot in range(keys.shape[1] + 1):
                q = opening[i] if slot == 0 else keys[kind[i], slot - 1]
                a = np.uint64(piece_start[q])
                size = np.uint64(piece_start[q + 1]) - a
                _put(out, pos, piece_data, a, size)
                pos += size
                q = text[i, slot]
                if q >= 0:
                    a = np.uint64(piece_start[q])
                    size = np.uint64(piece_start[q + 1]) - a
                    _put(out, pos, piece_data, a, size)
                    pos += size
                    continue
                x = number[i, slot]
                if x < 0:
                    out[pos] = 45  # -
                    pos += one
                    x = -x
                u = np.uint64(x)
                width = one
                t = u
                while t >= ten:
                    t //= ten
                    width += one
                at = pos + width
                while at > pos:  # the digits, last first
                    at -= one
                    out[at] = np.uint8(np.uint64(48) + u % ten)
                    u //= ten
                pos += width
            out[pos] = 125  # }
            pos += one
        out[pos] = 93  # ]
        pos += one
    return int(pos)


#: (Ctrl-C as itself during the calls: :func:`dropengine.fast.interruptible`)
_json_array_ends_call = interruptible(_json_array_ends)
_json_array_write_call = interruptible(_json_array_write)


class _ArrowSchema(ctypes.Structure):
    """The Arrow C data interface's ``struct ArrowSchema``."""

    _fields_ = [("format", ctypes.c_char_p), ("name", ctypes.c_char_p), ("metadata", ctypes.c_char_p),
                ("flags", ctypes.c_int64), ("n_children", ctypes.c_int64), ("children", ctypes.c_void_p),
                ("dictionary", ctypes.c_void_p), ("release", ctypes.c_void_p), ("private_data", ctypes.c_void_p)]


class _ArrowArray(ctypes.Structure):
    """The Arrow C data interface's ``struct ArrowArray``."""

    _fields_ = [("length", ctypes.c_int64), ("null_count", ctypes.c_int64), ("offset", ctypes.c_int64),
                ("n_buffers", ctypes.c_int64), ("n_children", ctypes.c_int64), ("buffers", ctypes.c_void_p),
                ("children", ctypes.c_void_p), ("dictionary", ctypes.c_void_p), ("release", ctypes.c_void_p),
                ("private_data", ctypes.c_void_p)]


_capsule = ctypes.pythonapi.PyCapsule_New
_capsule.restype = ctypes.py_object
_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_raw_malloc = ctypes.pythonapi.PyMem_RawMalloc
_raw_malloc.restype = ctypes.c_void_p
_raw_malloc.argtypes = [ctypes.c_size_t]


class ArrowText:
    """A String column as an Arrow array (large UTF-8) in one block of Python's raw allocator,
    offered by the PyCapsule interface (``__arrow_c_array__``; e.g. ``pl.Series(text)`` takes it
    without a copy). A consumer imports it by moving the struct (its ``release`` is then the
    consumer's to call); until one does, this object owns the block and frees it when it goes."""

    def __init__(self, name: str, n: int, release_array: int, release_schema: int) -> None:
        self.array = _ArrowArray(n, 0, 0, 3, 0, None, None, None, release_array, None)
        self.schema = _ArrowSchema(b"U", name.encode(), None, 2, 0, None, None, release_schema, None)

    def __arrow_c_array__(self, requested_schema: object = None) -> tuple[object, object]:
        return (_capsule(ctypes.addressof(self.schema), b"arrow_schema", None),
                _capsule(ctypes.addressof(self.array), b"arrow_array", None))

    def free(self) -> None:
        """Free the block unless a consumer took it (then its ``release`` is NULL here)."""
        release = self.array.release
        if release:
            ctypes.CFUNCTYPE(None, ctypes.c_void_p)(release)(ctypes.addressof(self.array))

    def __del__(self) -> None:
        self.free()


def _release_array_py(array: Any) -> None:
    """The ``release`` of an exported array (a C callback, compiled: polars calls it from any
    thread, without the GIL, when its last reference goes): frees the one block holding the
    buffers (``private_data``: slot 9; ``release``: slot 8, NULL once released)."""
    block = array[9]
    if block != 0:
        array[9] = 0
        _raw_free(block)
    array[8] = 0


def _release_schema_py(schema: Any) -> None:
    """The ``release`` of an exported schema: it owns nothing (``release``: slot 7)."""
    schema[7] = 0


_raw_free = numba.types.ExternalFunction("PyMem_RawFree", numba.types.void(numba.types.int64))
#: the release callbacks' addresses (compiled on first use, cached like the kernel)
_RELEASE: list[int] = []
#: Why the callbacks could not be built here (tried once per process: it costs seconds).
_RELEASE_ERROR: list[Exception] = []
_RELEASE_LOCK = threading.Lock()


def _releases() -> tuple[int, int]:
    """The addresses of the compiled release callbacks (the array's, the schema's). Their code must
    outlive every column holding them, up to the interpreter's very end (a column alive then is
    let go last): the compiled functions are made immortal (one reference never given back)."""
    with _RELEASE_LOCK:
        if _RELEASE_ERROR:
            raise RuntimeError("the release callbacks cannot be built here") from _RELEASE_ERROR[0]
        if not _RELEASE:
            try:
                _RELEASE.extend(_built_releases())
            except Exception as exc:
                _RELEASE_ERROR.append(exc)
                raise
    return _RELEASE[0], _RELEASE[1]


def _built_releases() -> list[int]:
    """Compile (or load from the cache) the release callbacks; their addresses."""
    # the allocator's free, named for the compiled code wherever the platform's loader
    # would not find it among the process's symbols (and for code loaded from the cache)
    from llvmlite import binding  # (numba's own dependency: untyped, as ``ir`` above)

    binding.add_symbol("PyMem_RawFree", cast(int, ctypes.cast(ctypes.pythonapi.PyMem_RawFree,
                                                              ctypes.c_void_p).value))
    nt: Any = numba.types  # (numba's types are untyped)
    sig = nt.void(nt.CPointer(nt.int64))
    made: list[Any] = []
    for py in (_release_array_py, _release_schema_py):
        try:
            made.append(numba.cfunc(sig, cache=True)(py))
        except RuntimeError:  # no cache directory (as _jit)
            made.append(numba.cfunc(sig)(py))
    for c in made:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(c))
    return [int(c.address) for c in made]


#: Above this many bytes the arrays are left to the caller's way (polars holds a string's bytes
#: by 32-bit offsets into a buffer).
JSON_ARRAYS_LIMIT: Final = 1 << 31


def json_arrays(name: str, start: Any, pieces: Sequence[str], opening: Any, kind: Any, keys: Any, number: Any,
                text: Any) -> ArrowText | None:
    """A String column of JSON arrays of objects (a steam's ``books``), written by
    :func:`_json_array_write` from ``pieces`` (every text in it; the caller writes them, e.g. with
    msgspec) and per object its pieces and ints: ``start`` (int64, groups + 1) where each array's
    objects begin; per object ``opening`` (its first piece), ``kind`` (its row of ``keys``: per
    field the key piece, e.g. ``,"prev":``), ``number`` (int64, object x 1 + fields: its ints, the
    first written right after the opening) and ``text`` (int64, the same shape: a piece written
    instead of the int; -1: the int). No int may be int64's minimum.

    The column is an :class:`ArrowText` (the Arrow C data interface: ``pl.Series(it)`` takes it
    without a copy) whose buffers live in one block of Python's raw allocator, freed by a
    compiled ``release`` the consumer calls whenever it lets the column go (any thread, no GIL
    needed). ``None`` when the text would reach :data:`JSON_ARRAYS_LIMIT` bytes, or where numba
    cannot build the callbacks."""
    encoded = [p.encode() for p in pieces]
    # (with _CHUNK spare bytes: a piece's last chunk is read whole, _put)
    piece_data = np.frombuffer(b"".join(encoded) + bytes(_CHUNK), np.uint8)
    piece_start = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(p) for p in encoded], out=piece_start[1:])
    i64 = np.int64
    args = (_ro(opening, i64), _ro(kind, i64), _ro(keys, i64), _ro(number, i64), _ro(text, i64))
    start = _ro(start, i64)
    # (the passes write into a raw block without bounds checks: every index is checked here)
    opening, kind, keys, number, text = args
    n_objects, n_pieces = opening.shape[0], len(pieces)
    if not (start.ndim == 1 and start.shape[0] >= 1 and start[0] == 0 and start[-1] == n_objects
            and bool((np.diff(start) >= 0).all()) and kind.shape == (n_objects,) and keys.ndim == 2
            and number.shape == text.shape == (n_objects, keys.shape[1] + 1)):
        raise ValueError("json_arrays: inconsistent shapes")
    def within(a: Any, low: int, high: int) -> bool:
        return a.size == 0 or bool(a.min() >= low and a.max() < high)

    if not (within(opening, 0, n_pieces) and within(kind, 0, keys.shape[0]) and within(keys, 0, n_pieces)
            and within(text, -1, n_pieces) and (number.size == 0 or number.min() > np.iinfo(np.int64).min)):
        raise ValueError("json_arrays: an index out of range, or int64's minimum")
    ends = _json_array_ends_call(start, _ro(piece_start, i64), *args)
    n = start.shape[0] - 1
    total = int(ends[-1])
    if total >= JSON_ARRAYS_LIMIT:
        return None
    try:
        release_array, release_schema = _releases()
    except Exception:  # numba could not build the callbacks here: the caller's way
        return None
    at_offsets = 32  # (the three buffer pointers first, then 8-byte aligned offsets, then the text)
    at_data = at_offsets + 8 * (n + 1)
    size = at_data + total + _CHUNK  # (the text's spare bytes: _put's last chunk of a piece may run past its end)
    out = ArrowText(name, n, release_array, release_schema)
    try:  # (from before the block exists: a Ctrl-C right after the malloc still frees it)
        out.array.private_data = out.array.buffers = block = _raw_malloc(size)
        if not block:
            raise MemoryError(f"{size} bytes for the column {name}")
        raw: Any = None
        try:
            raw = np.frombuffer((ctypes.c_uint8 * size).from_address(block), np.uint8)
            raw[:24].view(np.int64)[:] = (0, block + at_offsets, block + at_data)
            raw[at_offsets:at_data].view(np.int64)[:] = ends
            written = _json_array_write_call(start, _ro(piece_data, np.uint8), _ro(piece_start, i64), *args,
                                             raw[at_data:])
        except BaseException as exc:  # e.g. Ctrl-C while the block is filled: it is freed below, so
            # no view of it may outlive this frame: not ``raw``, not the call's arguments the
            # traceback's frames hold (a debugger or ``--showlocals`` would read freed memory)
            raw = None
            exc.__context__ = None  # (fast.interruptible raises Ctrl-C from numba's SystemError: its frames too)
            raise exc.with_traceback(None) from None
        raw = None
        if written != total:  # (a detector, not a guard: the writes are checked before they run)
            raise RuntimeError(f"json_arrays: {total} bytes counted, {written} written")
    except BaseException:
        out.free()
        raise
    return out


def compile_all() -> None:
    """Compile (or load from the cache) every kernel function, on a tiny input."""
    z = np.zeros(1, np.int64)
    f = np.zeros(1, np.bool_)
    codes(z, 1)
    codes([z.astype(np.uint32)], 1)
    k, n = ids(z, z, z, 1, 1, 1)
    group_rows(z, z, z, z)
    run(k, n, k, n, z, np.full(1, 100.0), f, f, f, np.zeros(1), True, False, False, 10.0, 0.5)
    round_decimals(0.1)
    one = np.ones((1, 2), np.int64)
    json_arrays("x", np.array([0, 1]), ["{", ",", "1"], z, z, z[None, :], one, -one)
