"""Steam (SPEC 11) and cooldown (SPEC 12): the two rules that act on detected moves.

Both are pure state machines fed moves in arrival order. The stream engine feeds them each
quote's moves as it detects them; the batch engine feeds them its detected moves merged in
arrival order. One implementation each, so the two engines cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Final

from .alerts import Alert, Drop, LineMove, Steam, SteamBook
from .options import DetectOptions
from .rules import outcome_of, threshold_floor

__all__ = ["Cooldown", "SignalRouter", "SteamTracker", "book_of", "book_units", "steam_alert"]

# A group's counted move of one book: (arrival sequence, last_update, the book's entry).
_Counted = tuple[int, int, SteamBook]


class _Group:
    """One ``(event_id, outcome, direction)`` group: each book's latest move, and ``T`` of
    its last firing (``None`` before it fired)."""

    __slots__ = ("fired", "moves", "newest")

    def __init__(self) -> None:
        self.moves: dict[str, _Counted] = {}
        self.fired: int | None = None
        self.newest = -1  # T: the newest last_update among the counted moves


def book_of(move: Drop | LineMove) -> SteamBook:
    """The :class:`SteamBook` a counted move contributes to a steam."""
    if isinstance(move, Drop):
        return SteamBook(move.bookmaker, "odds_drop", move.side, move.last_update,
                         prev=move.prev, new=move.new, delta=move.delta)
    return SteamBook(move.bookmaker, "line_move", move.side, move.last_update,
                     prev_line=move.prev_line, new_line=move.new_line, points=move.points)


def book_units(groups: tuple[frozenset[str], ...]) -> dict[str, str]:
    """A bookmaker's counting unit in steam (SPEC 11 ``steam_groups``): its group's name (the
    group's sorted books joined by ``+``), or, absent from the map, the book itself."""
    return {b: "+".join(sorted(g)) for g in groups for b in g}


def steam_alert(move: Drop | LineMove, counted: Sequence[SteamBook], t: int, timestamp: int) -> Steam:
    """The :class:`Steam` that ``move`` completed with the books ``counted`` (in order) at
    ``T = t``, stamped ``timestamp``: the one construction the stream engine and the compiled
    batch pass share."""
    books = tuple(counted)
    # a line move's side is its outcome already (a player's name may hold '@')
    outcome = move.side if isinstance(move, LineMove) else outcome_of(move.side)
    return Steam(
        move.sport_key, move.event_id, outcome, move.market_key, move.kind, move.direction,
        books, books[0].bookmaker, books[-1].last_update - books[0].last_update, t,
        timestamp, move.home_team, move.away_team, move.commence_time, move.player, move.market,
    )


def _arrival(c: _Counted) -> tuple[int, int]:
    """The order of ``books``: ``last_update``, ties by arrival."""
    return (c[1], c[0])


class SteamTracker:
    """Groups moves by ``(event_id, outcome, direction)`` and fires a :class:`Steam` when a
    window of ``window_ms`` holds ``books`` distinct books (a book group once), with a
    cooldown of one window per group (SPEC 11)."""

    __slots__ = ("_groups", "_seq", "_unit", "books", "window_ms")

    def __init__(self, books: int, window_ms: int, groups: tuple[frozenset[str], ...] = ()) -> None:
        self.books = books
        self.window_ms = window_ms
        self._unit = book_units(groups)
        self._groups: dict[tuple[str, str, str], _Group] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, move: Drop | LineMove, timestamp: int) -> Steam | None:
        """Count ``move`` (its book's latest in its group); the :class:`Steam` it completes,
        stamped ``timestamp``, or ``None``."""
        # a line move's side is its outcome already (a player's name may hold '@')
        outcome = move.side if isinstance(move, LineMove) else outcome_of(move.side)
        key = (move.event_id, outcome, move.direction)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        moves = group.moves
        book = move.bookmaker
        lu = move.last_update
        old = moves.get(book)
        moves[book] = (self._seq, lu, book_of(move))
        self._seq += 1
        # T is the newest among the counted moves: a book's newer move (by arrival) may be older
        # in data time than the one it replaces, so T is taken again when the newest was replaced
        if old is not None and old[1] == group.newest and lu < old[1]:
            group.newest = max(c[1] for c in moves.values())
        elif lu > group.newest:
            group.newest = lu
        t = group.newest
        window = self.window_ms
        if group.fired is not None and t < group.fired + window:
            return None  # the group's cooldown: one window after its last firing
        low = t - window
        inside = [c for c in moves.values() if c[1] >= low]
        if len(inside) < self.books:
            return None  # (moves hold one entry per book: fewer entries, fewer books)
        inside.sort(key=_arrival)
        unit = self._unit
        counted: list[SteamBook] = []
        if unit:
            units: set[str] = set()
            for _, _, entry in inside:  # earliest first: a group counts by its earliest move in the window
                u = unit.get(entry.bookmaker, entry.bookmaker)
                if u not in units:
                    units.add(u)
                    counted.append(entry)
            if len(counted) < self.books:
                return None
        else:
            counted = [c[2] for c in inside]
        group.fired = t
        return steam_alert(move, counted, t, timestamp)

    def load_firings(self, other: SteamTracker) -> None:
        """Take ``other``'s groups' last firings, without their counted moves (new settings:
        the windows start again, each group's cooldown of one window goes on)."""
        for k, g in other._groups.items():
            if g.fired is not None:
                mine = self._groups[k] = _Group()
                mine.fired = g.fired

    def evict(self, before_ms: int, events: AbstractSet[str] = frozenset()) -> int:
        """Forget groups whose newest move (or last firing) is older than ``before_ms`` or whose
        event is in ``events``; returns how many."""
        old = [k for k, g in self._groups.items()
               if max(g.newest, -1 if g.fired is None else g.fired) < before_ms or k[0] in events]
        for k in old:
            del self._groups[k]
        return len(old)

    # -- persistence (the engine's snapshot holds these rows) --------------------------------
    def rows(self) -> list[Any]:
        """The state as plain data: ``[seq, [[event, outcome, direction, fired, newest,
        [[book, seq, last_update, entry], ...]], ...]]``."""
        return [self._seq, [
            [*k, g.fired, g.newest, [[b, s, lu, entry] for b, (s, lu, entry) in g.moves.items()]]
            for k, g in self._groups.items()
        ]]

    def load(self, rows: list[Any]) -> None:
        """Restore :meth:`rows` (types checked by the snapshot decoder)."""
        seq, groups = rows
        self._seq = int(seq)
        for event, outcome, direction, fired, newest, moves in groups:
            g = _Group()
            g.fired = fired
            g.newest = newest
            for book, s, lu, entry in moves:
                g.moves[book] = (s, lu, entry)
            self._groups[(event, outcome, direction)] = g


#: The cooldown's key for a line series, told apart from a price key with the same names.
LINE_TAG: Final = "line"
PRICE_TAG: Final = "price"


class Cooldown:
    """SPEC 12: an alert of a key is suppressed when the key's last unsuppressed alert came
    less than ``cooldown_ms`` earlier in data time; suppressed alerts do not restart it."""

    __slots__ = ("_last", "cooldown_ms")

    def __init__(self, cooldown_ms: int) -> None:
        self.cooldown_ms = cooldown_ms
        self._last: dict[tuple[str, str, str, str], int] = {}

    def __len__(self) -> int:
        return len(self._last)

    def allow(self, key: tuple[str, str, str, str], last_update: int) -> bool:
        """Whether an alert of ``key`` at ``last_update`` goes out (and, if so, restart the
        key's cooldown from it)."""
        last = self._last.get(key)
        if last is not None and last_update - last < self.cooldown_ms:
            return False
        self._last[key] = last_update
        return True

    def forget(self, key: tuple[str, str, str, str]) -> None:
        """Drop a key's cooldown (the key itself was evicted)."""
        self._last.pop(key, None)

    def rows(self) -> list[list[Any]]:
        """The state as plain data: ``[tag, event, book, side, last_update]`` per key."""
        return [[*k, v] for k, v in self._last.items()]

    def load(self, rows: list[Any]) -> None:
        """Restore :meth:`rows` (types checked by the snapshot decoder)."""
        for tag, e, b, s, v in rows:
            self._last[(tag, e, b, s)] = v


class SignalRouter:
    """What happens to each detected move, in arrival order (SPEC 11, 12 and the ``types``
    rule): the cooldown of its key, whether it is returned (its type asked, the filter passing),
    whether it counts for steam (at ``steam_threshold`` / ``steam_line_threshold``), and the
    steam it completes. The stream engine routes each quote's moves as it detects them, the
    batch engine its detected moves merged in arrival order: one routing for both."""

    __slots__ = ("_floors", "_open", "_wanted", "cooldown", "cooled", "filter", "steam", "steams")

    def __init__(self, options: DetectOptions, cooldown: Cooldown, steam: SteamTracker) -> None:
        types = options.types
        self.cooldown = cooldown if options.cooldown_ms > 0 else None
        self.steam = steam if "steam" in types else None
        self.filter = options.filter
        self._open = options.filter.passes_all
        self._wanted = {PRICE_TAG: "odds_drop" in types, LINE_TAG: "line_move" in types}
        # the move a price / line move needs to count for steam (None: every detected move)
        self._floors = {tag: None if t is None else threshold_floor(t)
                        for tag, t in ((PRICE_TAG, options.steam_threshold), (LINE_TAG, options.steam_line_threshold))}
        #: alerts a cooldown suppressed, steams fired (the engines' ``cooled`` and ``steam``)
        self.cooled = 0
        self.steams = 0

    def route(self, move: Drop | LineMove, out: list[Alert]) -> tuple[int, int]:
        """Route one detected move, appending what is returned to ``out``; the positions in
        ``out`` of the move and of the steam it completed (``-1``: not returned / none)."""
        if isinstance(move, Drop):
            tag, size = PRICE_TAG, move.delta
        else:
            tag, size = LINE_TAG, move.points
        cooldown = self.cooldown
        go = cooldown is None or cooldown.allow((tag, move.event_id, move.bookmaker, move.side), move.last_update)
        if not go:
            self.cooled += 1
        at = -1
        if go and self._wanted[tag] and (self._open or self.filter.accepts(move)):
            at = len(out)
            out.append(move)
        steam_at = -1
        steam = self.steam
        if steam is not None:
            floor = self._floors[tag]
            if floor is None or size >= floor or -size >= floor:  # rules.crosses
                fired = steam.add(move, move.timestamp)
                if fired is not None:
                    self.steams += 1
                    if self._open or self.filter.accepts(fired):
                        steam_at = len(out)
                        out.append(fired)
        return at, steam_at
