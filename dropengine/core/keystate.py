"""The stream engine's compact key state: every key's state, the recent ones as lists, the rest packed.

:class:`DropEngine` (``engine.py``) keeps one :class:`_Keys` per kind of series (prices of SPEC 3,
line series of SPEC 10). Its detection loops read a hot key's list straight from ``_Keys.hot``
and call :meth:`_Keys.warm` for the others (only while some key is cold), then :meth:`_Keys.add` for
a new one (line series; the price loop stores a new key in ``hot`` itself and calls
:meth:`_Keys.spill` past the limit: what ``add`` does); nothing here is a rule of SPEC:
it is storage, and a restored or copied engine holds the same states whatever is hot.

A caller may keep hot keys' lists in a list of its own, a state record (``_Keys.hold``: the fused
frames path's row identities, whose observations carry their record), valid while the record holds
the state's token: every record held is emptied wherever a list leaves the hot set (``cool``,
``remove``, ``load``), and at most the hot set's limit are held, so records keep no cold key's list
alive.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Iterator
from sys import intern
from typing import Any, Final

__all__: list[str] = []  # private to the engine (and its tests)

# Indexes into a key's state list. A list (not an object) keeps the hot loop cheap.
_PRICE, _SINCE, _NEWEST, _SUSP, _APRICE, _ASINCE = range(6)
# ... and into a line series' state list (SPEC 10)
_LINE, _LSINCE, _LNEWEST, _LSUSP, _ALINE, _ALSINCE, _CURP, _ANCP = range(8)

# -- compact key state ---------------------------------------------------------------------------
# A key's state is a list (the detection loops index it: the cheapest access CPython has). A list
# with its boxed times costs about 200 bytes a key, so only the keys quoted lately keep one: the
# most recent ``_HOT_KEYS`` of them, in a dict by key tuple (the loops' one lookup). Every other
# key's state is packed into one ``bytes`` (about 55 bytes; a price state as its first quote made
# it: one int of 32 bytes, ``_Codec.cold``) in a tree event -> bookmaker -> side (no key tuple per
# key; the strings interned once), and becomes a list again on its next quote.
# The tree holds every key, hot ones by their list, so its order is the snapshot order whichever
# keys are hot: a restored engine writes the same bytes. A new key goes into the hot dict alone
# and waits there for its place in the tree (a hot key missing from the tree is new; the hot dict
# keeps them in arrival order): it takes it when it goes cold, or, with every other waiting key
# in arrival order, before anything reads the tree (``_Keys._fill``). That is the place it would
# have taken on arrival: only new keys add places (a warmed or cooled key's value is replaced where
# it is) and every reader, remover or loader fills first. While no key is cold, a key that is not
# hot is new without a look at the tree, and the price loop stores it itself while the hot set has
# room (``DropEngine._detect``: one dict store per new key, as before the packed state).

#: Keys whose state stays a list (the loops' working set) at first; past it the oldest go cold in
#: batches of ``_SPILL``. When more than half of the keys that went hot since the last spill were
#: cold keys quoted again (``_GROW_AFTER``, not new keys), the working set is wider than the hot set, and cooling
#: would only churn (pack, then unpack on the next quote): the limit doubles instead. It never
#: shrinks, so an engine spends list memory on as many keys as its stream kept quoting at once;
#: keys that are quoted once (a wide universe, a restored snapshot) stay packed.
#: 163,840 (2.5 x 2^16; 2^16 before the 32-byte cold form) is what aim 3 of issue 14 affords: at
#: 1M keys quoted once, 105 bytes per key with snapshot and restore (benchmarks/state.py; 2^17: 99,
#: 3 x 2^16: 122, where CPython's dict of the hot keys reaches its next table size), and a
#: working set up to that wide never goes cold.
_HOT_KEYS: Final = 5 << 15
_SPILL: Final = 1 << 13
_GROW_AFTER: Final = _SPILL // 2

# What a state field holds, for packing: a price or line (None, int or float), a time (unix ms),
# a flag. The first time field is the key's newest time (``_NEWEST``); the others are packed as
# their distance below it when that fits 32 bits (it nearly always does).
_VALUE, _TIME, _FLAG = range(3)
#: The cold form of a price state still as its first quote made it (``_Codec.cold``): one int,
#: the time above 18 bits of ``price + _PRIMED_OFF``. Valid prices (at most 100,000 in absolute
#: value, SPEC 3) fit; an int of two 30-bit digits for times below 2**42 ms, the year 2109 (32 bytes, against 59 for
#: the packed ``bytes``), built and read back by three int operations instead of a struct call.
_PRIMED_OFF: Final = 1 << 17
_PRIMED_MASK: Final = (1 << 18) - 1
_I32 = 2**31
_U32 = 2**32


class _Codec:
    """Packs a state list into ``bytes`` and back, exactly: each value keeps its type (an int
    price stays an int, ``-0.0`` stays ``-0.0``). Layout: a header of 2 bits per value (None,
    int32, int64, float64) and 1 bit per other time (a 32-bit distance, or the time itself) and
    per flag, then the newest time, then the values and times in field order (little-endian)."""

    __slots__ = ("_head", "_kinds", "_layouts", "_newest")

    def __init__(self, kinds: tuple[int, ...], newest: int) -> None:
        self._kinds = kinds
        self._newest = newest
        bits = sum(2 if k == _VALUE else 0 if i == newest else 1 for i, k in enumerate(kinds))
        self._head = struct.Struct("<" + "BHI"[(bits > 8) + (bits > 16)])
        self._layouts: dict[int, tuple[struct.Struct, tuple[tuple[int, int], ...]]] = {}

    def _layout(self, code: int) -> tuple[struct.Struct, tuple[tuple[int, int], ...]]:
        """The struct after the header and, per field, how to read it back: (0, v) flag v,
        (1, j) value j of the struct, (2, j) newest minus value j, (3, 0) None."""
        fmt = [self._head.format[1:], "q"]
        plan: list[tuple[int, int]] = []
        bit = 0
        for i, kind in enumerate(self._kinds):
            if i == self._newest:
                plan.append((1, 1))
                continue
            if kind == _VALUE:
                c = (code >> bit) & 3
                bit += 2
                if c == 0:
                    plan.append((3, 0))
                    continue
                fmt.append("xiqd"[c])
                plan.append((1, len(fmt) - 1))
            elif kind == _TIME:
                far = (code >> bit) & 1
                bit += 1
                fmt.append("q" if far else "I")
                plan.append((1 if far else 2, len(fmt) - 1))
            else:
                plan.append((0, (code >> bit) & 1))
                bit += 1
        layout = (struct.Struct("<" + "".join(fmt)), tuple(plan))
        self._layouts[code] = layout
        return layout

    def pack(self, st: list[Any]) -> bytes:
        if self is _PRICE_CODEC:  # the common shape first: int prices, times close to the newest
            price, since, newest, susp, aprice, asince = st
            if (type(price) is int and type(aprice) is int and -_I32 <= price < _I32 and -_I32 <= aprice < _I32
                    and 0 <= newest - since < _U32 and 0 <= newest - asince < _U32):
                return _PRICE_INTS.pack(_PRICE_INTS_SUSP if susp else _PRICE_INTS_CODE,
                                        newest, price, newest - since, aprice, newest - asince)
        newest = st[self._newest]
        code = bit = 0
        vals: list[Any] = []
        for i, kind in enumerate(self._kinds):
            if i == self._newest:
                continue
            v = st[i]
            if kind == _VALUE:
                if v is not None:
                    if type(v) is float:
                        c = 3
                    elif -_I32 <= v < _I32:
                        c = 1
                    else:
                        c = 2
                    code |= c << bit
                    vals.append(v)
                bit += 2
            elif kind == _TIME:
                d = newest - v
                if 0 <= d < _U32:
                    vals.append(d)
                else:
                    code |= 1 << bit
                    vals.append(v)
                bit += 1
            else:
                if v:
                    code |= 1 << bit
                bit += 1
        layout = self._layouts.get(code) or self._layout(code)
        return layout[0].pack(code, newest, *vals)

    def cold(self, st: list[Any]) -> bytes | int:
        """A state's cold form: a price state still as its first quote made it (``[p, t, t, False,
        p, t]``, an int price) is one int, ``t << 18 | (p + 2**17)``; any other is :meth:`pack`'s."""
        if self is _PRICE_CODEC:
            price, since, newest, susp, aprice, asince = st
            if (type(price) is int and since == newest == asince and not susp and type(aprice) is int
                    and price == aprice and -_PRIMED_OFF <= price < _PRIMED_OFF):
                primed: int = newest << 18 | (price + _PRIMED_OFF)
                return primed
        return self.pack(st)

    def unpack(self, data: bytes | int) -> list[Any]:
        """A state list from its cold form (:meth:`cold`'s or :meth:`pack`'s)."""
        if type(data) is int:
            t = data >> 18
            price = (data & _PRIMED_MASK) - _PRIMED_OFF
            return [price, t, t, False, price, t]
        if self is _PRICE_CODEC:
            code = data[0]  # type: ignore[index]  # bytes here
            if code in (_PRICE_INTS_CODE, _PRICE_INTS_SUSP):
                _, newest, price, since, aprice, asince = _PRICE_INTS.unpack(data)  # type: ignore[arg-type]  # bytes here
                return [price, newest - since, newest, code == _PRICE_INTS_SUSP, aprice, newest - asince]
        else:
            code = self._head.unpack_from(data)[0]  # type: ignore[arg-type]
        layout = self._layouts.get(code) or self._layout(code)
        raw = layout[0].unpack(data)  # type: ignore[arg-type]
        newest = raw[1]
        out: list[Any] = []
        for how, j in layout[1]:
            if how == 1:
                out.append(raw[j])
            elif how == 2:
                out.append(newest - raw[j])
            elif how == 0:
                out.append(j == 1)
            else:
                out.append(None)
        return out

    def newest(self, data: bytes | int) -> int:
        if type(data) is int:
            return data >> 18
        t: int = struct.unpack_from("<q", data, self._head.size)[0]  # type: ignore[arg-type]  # bytes here
        return t


_Key = tuple[str, str, str]


_Tree = dict[str, dict[str, dict[str, "list[Any] | bytes | int"]]]
_NO_BOOKS: Final[dict[str, dict[str, list[Any] | bytes | int]]] = {}
_NO_SIDES: Final[dict[str, list[Any] | bytes | int]] = {}


def _sides_of(tree: _Tree, e: str, b: str) -> dict[str, list[Any] | bytes | int]:
    """The sides of ``(e, b)`` in the tree, its event and book added (interned) where new: the one
    way a key takes its place (``_Keys.cool`` and ``_Keys._fill``)."""
    books = tree.get(e)
    if books is None:
        books = tree[intern(e)] = {}
    sides = books.get(b)
    if sides is None:
        sides = books[intern(b)] = {}
    return sides


class _Keys:
    """The state of every key of one kind (prices, or line series): ``hot`` maps key -> list for
    the loops; ``tree`` holds every key but the new ones still waiting (hot keys it lacks), a hot
    one by the same list, a cold one packed. Every key is hot or cold: ``len(hot) + ncold``."""

    __slots__ = ("cap", "codec", "filled", "held", "hot", "ncold", "spare", "token", "tree", "warmed")

    def __init__(self, codec: _Codec) -> None:
        self.codec = codec
        self.hot: dict[_Key, list[Any]] = {}
        self.tree: _Tree = {}
        #: how many hot keys are in the tree: the others (``len(hot) - filled``) are new, waiting
        self.filled = 0
        #: how many keys are cold (packed in the tree): while none is, a key that is not hot is new
        self.ncold = 0
        #: emptied lists of price keys that went cold (at most ``_SPILL``), for primed keys warmed
        #: again (``warm``): a list made anew per warmed key is one more container the collector
        #: moves to its oldest generation, and a warm/cool churn brought its full collections sooner
        self.spare: list[list[Any]] = []
        #: the hot set's limit (grows, see ``_HOT_KEYS``) and the cold keys warmed since the last spill
        self.cap = _HOT_KEYS
        self.warmed = 0
        #: the state records it holds (:meth:`hold`), each with ``token`` and hot keys' lists
        self.token = object()
        self.held: list[list[Any]] = []

    def __len__(self) -> int:
        return len(self.hot) + self.ncold

    def _fill(self) -> None:
        """The new keys waiting in the hot dict into the tree, in arrival order (their places on
        arrival): first in every method that reads, removes or loads keys of the tree."""
        hot = self.hot
        waiting = len(hot) - self.filled
        if not waiting:
            return
        tree = self.tree
        # The waiting keys are the hot keys the tree lacks, in the hot dict's (arrival) order; a
        # warmed key after them is in the tree already. From the newest back to the oldest waiting
        # one: a reader between observations (evict_iter's steps) meets a few keys, not the hot set.
        found: list[tuple[_Key, list[Any]]] = []
        for key, st in reversed(hot.items()):
            e, b, s = key
            books = tree.get(e)
            if books is not None:
                sides = books.get(b)
                if sides is not None and s in sides:
                    continue
            found.append((key, st))
            if len(found) == waiting:
                break
        for (e, b, s), st in reversed(found):
            _sides_of(tree, e, b)[intern(s)] = st
        self.filled = len(hot)

    def __iter__(self) -> Iterator[_Key]:
        """Every key, in the tree's (the snapshot's) order."""
        self._fill()
        for e, books in self.tree.items():
            for b, sides in books.items():
                for s in sides:
                    yield (e, b, s)

    def __eq__(self, other: object) -> bool:
        """Same keys with the same state (in any order), as two dicts of them compare."""
        if not isinstance(other, _Keys):
            return NotImplemented
        return len(self) == len(other) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # mutable

    def items(self) -> Iterator[tuple[_Key, list[Any]]]:
        """Every key and its state (a cold key's unpacked: a copy), in the tree's order."""
        self._fill()
        unpack = self.codec.unpack
        for e, books in self.tree.items():
            for b, sides in books.items():
                for s, v in sides.items():
                    yield (e, b, s), (v if type(v) is list else unpack(v))  # type: ignore[arg-type]

    def newest_items(self) -> Iterator[tuple[_Key, int]]:
        """Every key and its newest time (``_NEWEST``/``_LNEWEST``: index 2), without unpacking."""
        self._fill()
        newest = self.codec.newest
        for e, books in self.tree.items():
            for b, sides in books.items():
                for s, v in sides.items():
                    yield (e, b, s), (v[2] if type(v) is list else newest(v))  # type: ignore[arg-type]

    def _cold(self, key: _Key) -> bytes | int | None:
        """A key's packed state (when it is not hot), or None (a waiting new key is hot: no fill)."""
        v = self.tree.get(key[0], _NO_BOOKS).get(key[1], _NO_SIDES).get(key[2])
        return None if v is None or type(v) is list else v  # type: ignore[return-value]  # not a list

    def newest_of(self, key: _Key) -> int | None:
        """A key's newest time, or None when it is not held."""
        st = self.hot.get(key)
        if st is not None:
            t: int = st[2]
            return t
        v = self._cold(key)
        return None if v is None else self.codec.newest(v)

    def peek(self, key: _Key) -> list[Any] | None:
        """A key's state without making it hot (a cold key's: an unpacked copy), or None."""
        st = self.hot.get(key)
        if st is not None:
            return st
        v = self._cold(key)
        return None if v is None else self.codec.unpack(v)

    def warm(self, key: _Key) -> list[Any] | None:
        """A key that is not hot: its state made a list again (hot), or None when it is unknown.
        The price loop calls it for each cold key quoted again, while some key is cold: one call
        (the primed form read here, as ``_Codec.unpack``'s first branch: no second call)."""
        if not self.ncold:  # nothing is cold: a key that is not hot is not held
            return None
        sides = self.tree.get(key[0], _NO_BOOKS).get(key[1], _NO_SIDES)
        side = key[2]
        v = sides.get(side)
        if v is None:
            return None
        hot = self.hot
        if type(v) is int:  # the primed form (_Codec.cold)
            t = v >> 18
            price = (v & _PRIMED_MASK) - _PRIMED_OFF
            if self.spare:
                st = sides[side] = self.spare.pop()
                st += (price, t, t, False, price, t)
            else:
                st = sides[side] = [price, t, t, False, price, t]
        else:  # not hot, so packed
            st = sides[side] = self.codec.unpack(v)  # type: ignore[arg-type]
        hot[key] = st
        self.ncold -= 1
        self.filled += 1
        self.warmed += 1
        if len(hot) > self.cap:
            self.spill()
        return st

    def add(self, key: _Key, st: list[Any]) -> None:
        """A new key (not held), hot; its place in the tree waits (see ``_fill``). The tree keeps each
        string once, interned (a side's text is shared by every bookmaker and event that quotes
        it); the hot dict keeps the caller's key (the next quotes' strings are often the same
        objects: compared by identity)."""
        hot = self.hot
        hot[key] = st
        if len(hot) > self.cap:
            self.spill()

    def hold(self, rec: list[Any], at: int, key: _Key, st: list[Any]) -> None:
        """Keep hot ``key``'s list ``st`` at ``rec[at]``, in a caller's state record, for the caller's
        next look at the key (``DropEngine._detect``'s observations with a record: no lookup).

        A record is a list: ``rec[0]`` the token of the state it is held by (or None), ``rec[1]``
        the indexes of its entries, each after its key (``rec[at - 1]``: the caller may put another
        key there, and empties the entry then); the rest is the caller's. The record is this
        state's while ``rec[0] is token``, and is then in ``held``; an entry is filled only for the
        key before it. Wherever a list leaves the hot set, :meth:`_release` empties every held
        record, so an entry of a record with the token, read for the key before it, is that key's
        hot list, and no record keeps a list that left the hot set alive."""
        if rec[at - 1] is not key:  # the record has moved to another key (a new line) since
            return
        if rec[0] is not self.token:
            held = self.held
            # a bound: each held record names a hot key (more are records their owner dropped: a
            # decoder's identities forgotten, or taken by another engine); past the limit all go
            if len(held) >= self.cap:
                self._release()
            if rec[0] is not None:  # another state's (another engine's): its entries are not ours
                for i in rec[1]:
                    rec[i] = None
            rec[0] = self.token
            held.append(rec)
        rec[at] = st

    def _release(self) -> None:
        """A hot list leaves the hot set (cooled, removed, replaced by a restored state): every held
        record is emptied, so none holds a list that is no longer its key's hot one."""
        held = self.held
        if held:
            for rec in held:
                rec[0] = None
                for i in rec[1]:
                    rec[i] = None
            held.clear()

    def spill(self) -> None:
        """The hot set is over its limit: cool the oldest ``_SPILL`` keys, or, when the keys that
        went hot since the last spill were mostly cold keys quoted again, double the limit.

        Never the newest key: it is the one :meth:`warm` or :meth:`add` just made hot, whose list
        the caller is about to update (packing it would lose that update). Only a spill as large
        as the hot set could reach it (not the defaults; a test's smaller limits can)."""
        if self.warmed > _GROW_AFTER:
            self.cap *= 2
        else:
            self.cool(min(_SPILL, len(self.hot) - 1))
        self.warmed = 0

    def load(self, key: _Key, st: list[Any]) -> bool:
        """A restored key's state, packed (cold); True when the key was not held before."""
        self._fill()
        e, b, s = intern(key[0]), intern(key[1]), intern(key[2])
        sides = self.tree.setdefault(e, {}).setdefault(b, {})
        new = s not in sides
        was_hot = self.hot.pop((e, b, s), None) is not None
        if was_hot:
            self._release()
        sides[s] = self.codec.cold(st)
        self.filled -= was_hot
        self.ncold += new or was_hot
        return new

    def cool(self, n: int) -> None:
        """Pack the ``n`` keys that went hot longest ago (the hot dict's first). A new key among
        them takes its place in the tree now; the new keys stay in the hot dict where they went
        hot, so they go in arrival order."""
        hot = self.hot
        tree = self.tree
        pack = self.codec.cold
        going = list(itertools.islice(hot, n))
        if going:
            self._release()
        filled = self.filled
        spare = self.spare
        keep = _SPILL - len(spare) if self.codec is _PRICE_CODEC else 0  # (only prices have the int form)
        # the keys of one bookmaker of one event mostly went hot one after the other (a vendor row,
        # a priming pass): their sides are looked up once per run of them, not once per key
        last_e: str | None = None
        last_b: str | None = None
        sides = _NO_SIDES
        for key in going:
            st = hot.pop(key)
            v = pack(st)
            if keep > 0:
                st.clear()
                spare.append(st)
                keep -= 1
            e, b, s = key
            if b != last_b or e != last_e:
                sides = _sides_of(tree, e, b)
                last_e, last_b = e, b
            if s in sides:
                sides[s] = v
                filled -= 1
            else:
                sides[intern(s)] = v
        self.filled = filled
        self.ncold += len(going)

    def remove(self, keys: Iterable[_Key]) -> None:
        """Forget ``keys`` (each held); a bookmaker or event left with no key goes from the tree."""
        if not keys:  # (a sized one: evict_iter's steps that drop nothing fill nothing)
            return
        self._fill()
        tree = self.tree
        hot = self.hot
        for e, b, s in keys:
            if hot.pop((e, b, s), None) is None:
                self.ncold -= 1
            else:
                self.filled -= 1
                self._release()
            books = tree[e]
            sides = books[b]
            del sides[s]
            if not sides:
                del books[b]
                if not books:
                    del tree[e]

    def copy(self) -> _Keys:
        """An independent copy (packed states are immutable and shared)."""
        self._fill()
        new = _Keys(self.codec)
        hot = new.hot
        for e, books in self.tree.items():
            nb: dict[str, dict[str, list[Any] | bytes | int]] = {}
            for b, sides in books.items():
                ns: dict[str, list[Any] | bytes | int] = {}
                for s, v in sides.items():
                    if type(v) is list:
                        v = hot[(e, b, s)] = list(v)
                    ns[s] = v
                nb[b] = ns
            new.tree[e] = nb
        new.filled, new.ncold = len(hot), self.ncold
        new.cap, new.warmed = self.cap, self.warmed
        return new


_PRICE_CODEC: Final = _Codec((_VALUE, _TIME, _TIME, _FLAG, _VALUE, _TIME), _NEWEST)
# The price codec's layout for int32 prices and near times (what _Codec.pack writes for them),
# packed and unpacked without the per-field loop: header bits price=int32 (1), since near (0),
# susp, aprice=int32 (1 << 4), asince near (0).
_PRICE_INTS_CODE: Final = 1 | 1 << 4
_PRICE_INTS_SUSP: Final = _PRICE_INTS_CODE | 1 << 3
_PRICE_INTS: Final = struct.Struct("<BqiIiI")
_LINE_CODEC: Final = _Codec((_VALUE, _TIME, _TIME, _FLAG, _VALUE, _TIME, _VALUE, _VALUE), _LNEWEST)
