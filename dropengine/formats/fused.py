"""The fused frames path: vendor envelopes decoded into typed rows and straight into detection.

:class:`~.frames.FrameDecoder` turns every price of every row into a :class:`Quote`, checked
field by field, which the engine then reads back. For the common line of a recording (an
``odds_update`` or ``initial_state`` envelope of well-formed rows) that is most of the
replay's time. Here the line is decoded by ``msgspec`` against a typed schema (:class:`Row`,
``UNSET`` for an absent field: absent and null differ for prices), and each price of a row
becomes a light observation ``(key, price, last_update, market_key, line, info)`` with one
:class:`~dropengine.core.quote.QuoteInfo` per row, which the engine applies through its one
detection step (``DropEngine._observe_prices``). A ``Drop`` is built only on an alert.

Everything the typed schema or the checks below do not take goes to the general decoder,
so alerts, counters and skips (reason and position) are the same as the general path's:

- a line the schema does not take whole (not JSON, a field the schema does not name, a value
  of another type) is decoded the general way (:func:`~.jsonline.decode_line`: its skip is the
  general path's). The schema forbids unknown fields because ``msgspec`` skips them *without
  validating them*: a number out of range such as ``1e400``, invalid UTF-8, in a value or a
  key, is JSON the general decoder rejects (``bad json``). The decoded line's known fields are
  then converted to the schema (:func:`typed_envelope`), so the fused path reads the very
  values the general path reads; when they are not of the schema either (a string or a bool
  for a price, a non-object row, a text field of another type, ...), the whole line goes to
  :meth:`FrameDecoder.feed`;
- envelopes other than ``odds_update`` / ``initial_state``, and an ``initial_state`` that
  resumes a stream (SPEC 8, the decoder drops the rows it has seen);
- a row with anything unusual (``_diff``, a missing or empty identifier, an unknown kind, no
  sport): that row, converted back to the dict the general decoder would have had, through
  :meth:`FrameDecoder.feed_row`. (A time or an integer line out of int64's range is not of the
  schema: its whole line is decoded the general way, which tells a bad time or line.)

The decoder's state is shared: the fused path stores its rows as ``_diff`` bases (from a line the
schema took whole, short or within a budget of long ones, the line and the row's index, see
``_LAZY_BYTES`` and ``_LAZY_LONG_BYTES``; else the typed row; decoded or converted when a ``_diff``
row merges into one) and moves the resume cursor with the
envelope's line kept for the frontier (:class:`~.frames.LazyRows`), or with its decoded rows
when the line was decoded the general way. A line kept as :class:`~.frames.LazyRows` is one
the schema took whole: every value in it is a scalar of a field the schema validated, so
decoding it again the general way (only if the stream resumes) cannot fail and gives the rows
the general path holds. A resumed ``initial_state`` is not applied here: the caller feeds it
to the general decoder (:meth:`FusedFrames.envelope` returns ``False``).

Which rows yield which quotes (SPEC 5) is the vendor table :data:`~.vendor.GAME_FIELDS`,
the side spellings are :mod:`dropengine.core.sides`' and the line text cache is the
decoder's; ``tests/test_h14_frames_*`` and ``tests/test_h14_framesfix_*`` hold this path
equal to the general one on adversarial streams and hostile JSON.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Annotated, Any, Final

import msgspec
from msgspec import UNSET, UnsetType

from ..core.errors import FeedError
from ..core.quote import MAX_MS, Quote, QuoteInfo
from ..core.sides import format_line, join_prop
from ..core.skips import SkipLog
from .frames import _LONG_SCAN, FrameDecoder, LazyRows, _line_side
from .jsonline import decode_json
from .vendor import GAME_FIELDS

__all__ = [
    "Envelope", "FusedFrames", "Row", "StrictEnvelope", "StrictRow", "TypedEnvelope", "as_quotes", "decode_envelope",
    "decode_strict", "envelope_top", "typed_envelope",
]

_Text = str | UnsetType | None
_Number = int | float | UnsetType | None
# An int64 for a time (in range: MAX_MS) and for a line (every int64 converts to a float, as the
# general decoder's float(line) does): msgspec checks these bounds while it decodes, so a row
# needs no Python test of them (a line with a value past them is decoded the general way).
_Time = Annotated[int, msgspec.Meta(ge=0, le=MAX_MS)] | UnsetType
_Line = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | float | UnsetType | None


class Row(msgspec.Struct, gc=False):
    """A vendor row as the fused path takes it (SPEC 5). A field of another type than these
    makes the line one for the general decoder. Unknown fields are ignored here: this is the
    type rows are converted to from a line decoded the general way (:func:`typed_envelope`);
    a line's bytes are decoded against :class:`StrictRow`, which forbids them."""

    # The fields in the order rows spell them (the vendor's OddsRow: identifiers, a prop's texts
    # and line, teams, time, then prices and lines, the spreads' prices after their lines):
    # msgspec looks a key up from the field after the last one matched, so a row in this order
    # costs one comparison per key (the order rows were first written in cost ~4 per key).
    kind: _Text = UNSET
    event_id: _Text = UNSET
    bookmaker: _Text = UNSET
    sport_key: _Text = UNSET
    player: _Text = UNSET
    market_key: _Text = UNSET
    market: _Text = UNSET
    line: _Line = UNSET
    home_team: _Text = UNSET
    away_team: _Text = UNSET
    commence_time: _Text = UNSET
    last_update: _Time = UNSET
    diff: bool | UnsetType | None = msgspec.field(default=UNSET, name="_diff")
    home_ml: _Number = UNSET
    away_ml: _Number = UNSET
    draw_ml: _Number = UNSET
    home_spread: _Line = UNSET
    away_spread: _Line = UNSET
    home_spread_price: _Number = UNSET
    away_spread_price: _Number = UNSET
    total: _Line = UNSET
    over_price: _Number = UNSET
    under_price: _Number = UNSET

    def as_dict(self) -> dict[str, Any]:
        """The row as the general decoder sees it: the fields present, by their JSON names."""
        return {name: value for name, value in zip(_JSON_NAMES, msgspec.structs.astuple(self), strict=True)
                if value is not UNSET}


class StrictRow(Row, gc=False, forbid_unknown_fields=True):
    """:class:`Row` as a line's bytes are decoded: an unknown field fails the decode, since
    msgspec skips an unknown field without validating it (a number out of range, invalid
    UTF-8: JSON the general decoder rejects). Such a line is decoded the general way."""


_JSON_NAMES: Final = tuple(f.encode_name for f in msgspec.structs.fields(Row))


class Envelope(msgspec.Struct, gc=False):
    """An envelope as the fused path takes it: a string ``type``, ``data`` a list of :class:`Row`
    (unknown fields ignored: the type a line decoded the general way is converted to)."""

    type: str
    sport_key: _Text = UNSET
    data: list[Row] | UnsetType = UNSET


class StrictEnvelope(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """:class:`Envelope` as a line's bytes are decoded (:func:`decode_strict`), rows as
    :class:`StrictRow`. Unknown fields are forbidden, so the vendor's other envelope fields are
    named here with the types the vendor documents (reference/001: ``timestamp``, ``count``,
    ``since``, ``truncated``, ``coalesced``), to be validated and dropped; any other field (a
    Betfair ``op`` included) makes the line one for :func:`typed_envelope`. Only scalars: a
    line this schema takes is never nested deeper than its rows' fields."""

    type: str
    sport_key: _Text = UNSET
    data: list[StrictRow] | UnsetType = UNSET
    timestamp: int | UnsetType = UNSET
    count: int | UnsetType = UNSET
    since: int | UnsetType | None = UNSET
    truncated: bool | UnsetType = UNSET
    coalesced: bool | UnsetType = UNSET


#: What the fused path applies: a line decoded whole, or a line's known fields converted.
TypedEnvelope = Envelope | StrictEnvelope

_decode = msgspec.json.Decoder(StrictEnvelope).decode
_DATA: Final = frozenset({"initial_state", "odds_update"})
# the line an identity's keys are for before a row gives one: equal to no line
_NO_LINE: Final = math.nan
# row identities whose keys FusedFrames remembers (a recording has thousands): all forgotten past it
_MAX_IDENTITIES: Final = 1 << 18
# The state entries of an identity's record (core.keystate._Keys.hold): a game's seven GAME_FIELDS
# keys, a prop's over and under; each observation carries its record and its key's entry.
_GAME_STATES: Final = (4, 6, 8, 11, 14, 17, 19)
_PROP_STATES: Final = (5, 7)
# rows between two calls of FusedFrames.envelope's ``flush``: at most 7 observations a row, so
# at most ~230 observation tuples live at once (33 rows before the first call), fewer than the
# 700 allocations that start a young collection (see envelope). 8, 64, 128: no better (fused17)
_FLUSH_ROWS: Final = 32
# The decoder's row of an identity (a later ``_diff`` row's base; FrameDecoder.forget), from a line
# the schema took whole, is that line (LazyRows, kept for the resume frontier anyway) and the row's
# index, in the identity's record (its last two entries: two writes per row, no object; the decoder's
# dict is written only when the record is not already its row). The typed row and its ~16 field
# objects then die with their envelope, young, where a stored one lived on and was freed cold when
# the identity's next row replaced it (fused17: 28% of the 30k replay's last-level cache misses).
# A line of at most this many bytes is always kept so: an identity keeps at most this much alive.
_LAZY_BYTES: Final = 8192
# A longer line (an initial_state: a snapshot of thousands of rows; a large odds_update) is kept so
# too while the longer lines a FusedFrames has kept come to at most this many bytes in all (a budget,
# never given back; past it such a line stores its typed rows). Its typed rows took ~5x its bytes,
# and each was freed cold at its identity's first update (benchmarks/engine.py's 30k rows: a 1.5 MB
# initial_state, 5,000 rows of ~17 objects; the replay's CPU 0.93-0.97 without them). One identity
# still unquoted keeps the whole line alive, so the budget bounds what a stream of long lines each
# leaving such an identity can hold. A _diff row merging into such a row scans the line once for
# all of them (a line longer than frames._LONG_SCAN keeps its scan: LazyRows.scans, ~56 B a row,
# not charged to the budget: up to ~1.6x the budget with rows of ~100 bytes; review26's R26-9).
# The budget is per FusedFrames: one per replay() call (the command has one; a library running N
# replays at once holds N budgets).
_LAZY_LONG_BYTES: Final = 32 << 20


def decode_strict(line: bytes | str) -> StrictEnvelope | None:
    """The typed envelope of a data line the schema takes whole, or ``None``: then the line is
    decoded the general way (:func:`~.jsonline.decode_line`) and given to :func:`typed_envelope`.

    Whatever this takes, the general decoder takes too, with the same values: every field is
    one the schema validates (unknown fields are forbidden, as msgspec does not check what it
    skips), each a string, number, bool or null, which both decoders read alike (last of a
    repeated key, escapes, UTF-8, number range)."""
    try:
        env = _decode(line)
    except Exception:  # not JSON, not of the schema, an unknown field, nested too deeply: decoded the general way
        return None
    if env.type not in _DATA or env.data is UNSET:
        return None
    return env


def decode_envelope(line: bytes | str) -> TypedEnvelope | None:
    """The typed envelope of a data line the fused path takes (:func:`decode_strict`, else the
    line decoded the general way and :func:`typed_envelope`), or ``None``: the general path's line.
    (The replay's reader makes these two steps itself, to record a skip of the second.)"""
    env = decode_strict(line)
    if env is not None:
        return env
    try:
        obj = decode_json(line)
    except FeedError:
        return None
    return typed_envelope(obj)


def typed_envelope(obj: Any) -> Envelope | None:
    """The typed envelope of a line decoded the general way (a JSON object ``obj`` that
    :func:`decode_envelope` did not take), or ``None`` when it is one for the general decoder.

    Its known fields are converted to the schema from ``obj`` itself, so the fused path reads
    exactly the values the general decoder reads; unknown fields (which no quote reads) are
    ignored, at both levels. An envelope with an ``op`` is never taken (a string ``op`` may
    make it a Betfair message: :func:`~.jsonline.line_format`), nor one whose ``sport_key``,
    ``data`` or rows are not of the schema."""
    if type(obj) is not dict or "op" in obj:
        return None
    etype = obj.get("type")
    if type(etype) is not str or etype not in _DATA or type(obj.get("data")) is not list:
        return None
    try:
        return msgspec.convert(obj, Envelope)
    except Exception:  # a value not of the schema (a string price, a row that is no object, ...)
        return None


def envelope_top(env: TypedEnvelope, clock: int) -> int:
    """:func:`~.frames.envelope_clock` of a typed envelope (the newest integer ``last_update``)."""
    assert not isinstance(env.data, UnsetType)
    for row in env.data:
        lu = row.last_update
        if type(lu) is int and lu > clock:
            clock = lu
    return clock


class FusedFrames:
    """Applies typed envelopes to a :class:`FrameDecoder`'s state, producing observations.

    :meth:`envelope` appends to ``out`` the observations of the envelope's prices (tuples for
    ``DropEngine._observe_prices``) and the :class:`Quote` objects of the rows the general
    decoder decoded, in row and field order: the order of the general path's quotes.
    """

    def __init__(self, decoder: FrameDecoder) -> None:
        self.decoder = decoder
        self._prop_text: dict[float | int, str] = {}
        # line -> side text, one table per line prefix (spread_home, spread_away, total_over, total_under)
        self._sides: tuple[dict[float | int, str], ...] = ({}, {}, {}, {})
        # A row identity's engine keys, built once and handed to the engine every time (its hot
        # dict then finds a key by identity: no tuple built, hashed twice and compared per price),
        # keyed by the identity tuple the decoder stores the row under (one object for both):
        # ("g", event, book) -> [token, _GAME_STATES, that tuple, h2h home key, its state entry, away
        # key, entry, draw key, entry, home spread line, its key, entry, away spread line, its key,
        # entry, total, its over key, entry, under key, entry, kept line, row index]; ("p", event,
        # book, market key, player) -> [token, _PROP_STATES, that tuple, line, over key, entry, under
        # key, entry, kept line, row index]. A line is NaN (_NO_LINE) until a row has one. The last
        # two entries are the identity's last row while the record is the decoder's row for it
        # (FrameDecoder._rows, _LAZY_BYTES), else None. The list is a state record
        # (core.keystate._Keys.hold): the engine keeps a key's hot list in the entry after it and
        # writes the token and the entries; here an entry is emptied when its key changes (a new line).
        self._keys: dict[tuple[Any, ...], list[Any]] = {}
        # bytes of lines longer than _LAZY_BYTES the records may still be given (_LAZY_LONG_BYTES)
        self._long_left = _LAZY_LONG_BYTES

    def envelope(
        self, env: TypedEnvelope, line: bytes | str, where: str, skips: SkipLog, out: list[Any],
        rows: list[Any] | None = None, flush: Callable[[], None] | None = None,
    ) -> bool:
        """Apply ``env`` (decoded from ``line``) into ``out``; ``False`` (nothing done) when it is
        an ``initial_state`` that resumes its stream (SPEC 8): the caller feeds that one to the
        general decoder, which drops the rows it has processed. ``rows`` are the envelope's raw
        rows when the line was decoded the general way (:func:`typed_envelope`), else the line is
        kept for the resume frontier (:class:`~.frames.LazyRows`, decoded only on a resume).

        ``flush``, when given, is called after every ``_FLUSH_ROWS`` rows of the envelope (rows this
        path takes; one handed to the general decoder is not counted); it applies what ``out`` holds
        and empties that same list (in place: the rows after it go on being appended to it). An
        ``initial_state`` of thousands of rows then never holds all its observation tuples at once:
        tracked by the collector (each holds its identity's record), they outlived several young
        collections and were traversed by each; and the engine's new state lists are allocated
        beside the rows' records (benchmarks/engine.py's 30k rows: the priming line 0.84 of the CPU
        with this alone, the replay 0.97)."""
        dec = self.decoder
        etype = env.type
        sk = env.sport_key
        sport = sk if type(sk) is str and sk else dec.sport_key
        if etype == "initial_state" and dec.resuming(sport):
            # fed by the caller, at the general path's stack depth: a row nested close to the
            # recursion limit is fingerprinted (frames._fingerprint) as the general path does
            return False
        data = env.data
        assert not isinstance(data, UnsetType)
        dec.envelopes[etype] = dec.envelopes.get(etype, 0) + 1
        dec.rows += len(data)
        stored = dec._rows
        known = self._keys.get
        top = -1
        ident: tuple[Any, ...]
        # module globals as locals (read per row and per price)
        unset = UNSET
        quote_info = QuoteInfo
        # after every _FLUSH_ROWS rows, ``flush`` (given) applies what ``out`` holds (see the docstring)
        flush_at = _FLUSH_ROWS if flush is not None else len(data)
        # the line kept for the resume frontier, and for the rows' identities (_LAZY_BYTES, _LAZY_LONG_BYTES)
        kept: LazyRows | list[Any] = (
            LazyRows(line, len(data), [] if len(line) > _LONG_SCAN else None) if rows is None else rows)
        lazy: LazyRows | None = None
        if type(kept) is LazyRows and type(env) is StrictEnvelope:
            size = len(line)
            if size <= _LAZY_BYTES:
                lazy = kept
            elif size <= self._long_left:  # a long line, while the budget lasts (_LAZY_LONG_BYTES)
                self._long_left -= size
                lazy = kept
        for i, row in enumerate(data):
            eid = row.event_id
            book = row.bookmaker
            lu = row.last_update
            # A time is an int in range or UNSET (the schema's _Time). An unusable event or book
            # (None, UNSET or '') is told below, where its identity is not known.
            if lu is unset or row.diff is True:
                lu = dec.feed_row(row.as_dict(), sport, out, skips, where, i)
                if lu > top:
                    top = lu
                continue
            # a text field is a str, None or UNSET (all three falsy but a non-empty str): ``or``
            # gives the usable one, as ``x if type(x) is str and x else y`` would, in fewer bytecodes
            sport_key = row.sport_key or sport
            kind = row.kind
            # vendor.row_kind: "game", or no kind, no player and no market key (read only then)
            if kind == "game" or ((kind is None or kind is unset) and (row.player is None or row.player is unset)
                                  and (row.market_key is None or row.market_key is unset)):
                if sport_key is None:
                    lu = dec.feed_row(row.as_dict(), sport, out, skips, where, i)
                    if lu > top:
                        top = lu
                    continue
                ident = ("g", eid, book)
                keys = known(ident)
                if keys is None:
                    # the schema's text is a str, None or UNSET (falsy): ``not`` tells an unusable one
                    if not eid or not book:
                        lu = dec.feed_row(row.as_dict(), sport, out, skips, where, i)
                        if lu > top:
                            top = lu
                        continue
                    keys = self._game_keys(eid, book)
                # the identity's own tuple: the decoder's dict finds it by identity
                # (the record's token and state entries are the engine's)
                (_, _, ident, home, _, away, _, draw, _, home_line, home_key, _, away_line, away_key, _, total,
                 over_key, _, under_key, _, held, _) = keys
                # the decoder's row for the identity (see _LAZY_BYTES): the record, stored once; its
                # last two entries are the line and its index (None while it is not the decoder's: new,
                # or replaced there). One text with the prop's block below: change both.
                if lazy is not None:
                    if held is None:
                        stored[ident] = keys
                    keys[-2] = lazy
                    keys[-1] = i
                else:
                    stored[ident] = row
                    keys[-2] = None
                hs = row.home_spread
                as_ = row.away_spread
                tot = row.total
                info = quote_info(sport_key, "game", None, None, row.home_team or None, row.away_team or None,
                                  row.commence_time or None)
                # vendor.GAME_FIELDS, in its order (unrolled: one attribute read per field)
                p = row.home_ml
                if p is not unset:
                    out.append((home, p, lu, "h2h", None, info, keys, 4))
                p = row.away_ml
                if p is not unset:
                    out.append((away, p, lu, "h2h", None, info, keys, 6))
                p = row.draw_ml
                if p is not unset:
                    out.append((draw, p, lu, "h2h", None, info, keys, 8))
                # A line side's key is the identity's while its line is equal (``==`` tells lines as
                # a dict does: the side's text is the same for 5 and 5.0, frames._line_side). A line
                # remembered is a number and NaN before one is: a line equal to it is a number, and
                # only one that is not (None, UNSET: no side) is tested further.
                p = row.home_spread_price
                if p is not unset and (hs == home_line or (hs is not None and hs is not unset and (
                        home_key := self._line_key(keys, 9, "spread_home", hs)))):
                    out.append((home_key, p, lu, "spreads", float(hs), info, keys, 11))  # type: ignore[arg-type]
                p = row.away_spread_price
                if p is not unset and (as_ == away_line or (as_ is not None and as_ is not unset and (
                        away_key := self._line_key(keys, 12, "spread_away", as_)))):
                    out.append((away_key, p, lu, "spreads", float(as_), info, keys, 14))  # type: ignore[arg-type]
                if tot == total or (tot is not None and tot is not unset and (
                        over_key := self._line_key(keys, 15, "total_over", tot)) and (under_key := keys[18])):
                    ftot = float(tot)  # type: ignore[arg-type]  # a number (equal to a remembered line)
                    p = row.over_price
                    if p is not unset:
                        out.append((over_key, p, lu, "totals", ftot, info, keys, 17))
                    p = row.under_price
                    if p is not unset:
                        out.append((under_key, p, lu, "totals", ftot, info, keys, 19))
            else:
                mk = row.market_key
                player = row.player
                pline = row.line
                # a prop (given, or a player or a market key) with both texts and no ':' in its market
                # key (it would make another side's text); else the row is the general decoder's
                if sport_key is None or (kind != "prop" and kind is not None and kind is not unset):
                    lu = dec.feed_row(row.as_dict(), sport, out, skips, where, i)
                    if lu > top:
                        top = lu
                    continue
                ident = ("p", eid, book, mk, player)
                keys = known(ident)
                if keys is None:
                    # (texts: a str, None or UNSET: ``not`` tells an unusable one, as for a game)
                    if not eid or not book or not mk or not player or ":" in mk:
                        lu = dec.feed_row(row.as_dict(), sport, out, skips, where, i)
                        if lu > top:
                            top = lu
                        continue
                    keys = self._prop_keys(eid, book, mk, player)
                _, _, ident, prop_line, over_key, _, under_key, _, held, _ = keys
                # the decoder's row for the identity (see _LAZY_BYTES): the record, stored once; its
                # last two entries are the line and its index (None while it is not the decoder's: new,
                # or replaced there). One text with the game's block above: change both.
                if lazy is not None:
                    if held is None:
                        stored[ident] = keys
                    keys[-2] = lazy
                    keys[-1] = i
                else:
                    stored[ident] = row
                    keys[-2] = None
                # the identity's keys while its line is equal (as a game's lines, above)
                if pline == prop_line or (pline is not None and pline is not unset and (
                        over_key := self._prop_line(keys, pline)) and (under_key := keys[6])):
                    info = quote_info(sport_key, "prop", row.market or None, player,  # type: ignore[arg-type]
                                      row.home_team or None, row.away_team or None, row.commence_time or None)
                    fline = float(pline)  # type: ignore[arg-type]  # a number (equal to a remembered line)
                    p = row.over_price
                    if p is not unset:
                        out.append((over_key, p, lu, mk, fline, info, keys, 5))
                    p = row.under_price
                    if p is not unset:
                        out.append((under_key, p, lu, mk, fline, info, keys, 7))
            if lu > top:
                top = lu
            if i >= flush_at:
                flush()  # type: ignore[misc]  # (flush_at < len(data) only with one)
                flush_at = i + _FLUSH_ROWS
        dec.advance(sport, top, kept)
        return True

    def _game_keys(self, eid: str, book: str) -> list[Any]:
        """A new game identity's keys (see ``_keys``), remembered."""
        known = self._keys
        if len(known) >= _MAX_IDENTITIES:  # a bound on what is remembered (rebuilt as rows come)
            known.clear()
        # one string object per event and book: the keys' tuples (here, in the stored rows and
        # in the engine's dicts) then compare them by identity, not by their characters
        eid = sys.intern(eid)
        book = sys.intern(book)
        ident = ("g", eid, book)
        keys = known[ident] = [None, _GAME_STATES, ident, (eid, book, "h2h_home"), None, (eid, book, "h2h_away"),
                               None, (eid, book, "h2h_draw"), None, _NO_LINE, None, None, _NO_LINE, None, None,
                               _NO_LINE, None, None, None, None, None, None]
        return keys

    def _line_key(self, keys: list[Any], at: int, prefix: str, line: float | int) -> tuple[str, str, str]:
        """A game identity's line ``keys[at]`` set to ``line`` and its side's key (both sides' for a
        total: ``keys[16]``, ``keys[18]``): the side's text by line, per prefix (frames._line_side
        builds and caches it). The key's state entry, after it, is emptied (it held the old key's)."""
        _, eid, book = keys[2]
        keys[at] = line
        sides = self._sides[(at - 9) // 3]
        key = keys[at + 1] = (eid, book, sides.get(line) or _side(sides, prefix, line))
        keys[at + 2] = None
        if at == 15:
            under = self._sides[3]
            keys[18] = (eid, book, under.get(line) or _side(under, "total_under", line))
            keys[19] = None
        return key

    def _prop_keys(self, eid: str, book: str, mk: str, player: str) -> list[Any]:
        """A new prop identity's keys (see ``_keys``), remembered."""
        known = self._keys
        if len(known) >= _MAX_IDENTITIES:
            known.clear()
        ident = ("p", sys.intern(eid), sys.intern(book), mk, player)
        keys = known[ident] = [None, _PROP_STATES, ident, _NO_LINE, None, None, None, None, None, None]
        return keys

    def _prop_line(self, keys: list[Any], line: float | int) -> tuple[str, str, str]:
        """A prop identity's line set to ``line`` and its over and under keys; the over key."""
        prop_text = self._prop_text
        text = prop_text.get(line)
        if text is None:
            text = format_line(line)
            if len(prop_text) < 10_000:
                prop_text[line] = text
        _, eid, book, mk, player = keys[2]
        keys[3] = line
        over = keys[4] = (eid, book, join_prop(mk, player, "over", text))
        keys[6] = (eid, book, join_prop(mk, player, "under", text))
        keys[5] = keys[7] = None  # the old keys' lists (their state entries)
        return over


def _side(table: dict[float | int, str], prefix: str, line: float | int) -> str:
    """``prefix``'s side at ``line`` (:func:`.frames._line_side`), remembered in ``table``."""
    side = _line_side(prefix, line)
    if len(table) < 10_000:
        table[line] = side
    return side


def as_quotes(items: list[Any]) -> list[Quote]:
    """The :class:`Quote` objects the observations stand for (what the general decoder builds;
    tests compare the two)."""
    out: list[Quote] = []
    for item in items:
        if type(item) is tuple:
            key, price, lu, mk, line, info = item[:6]  # (a state record and entry after them: the engine's)
            out.append(Quote(
                info.sport_key, key[0], key[1], key[2], price, lu, info.kind, mk, info.market, info.player, line,
                info.home_team, info.away_team, info.commence_time,
            ))
        else:
            out.append(item)
    return out


assert [tuple(f) for f in GAME_FIELDS] == [
    ("home_ml", None, "h2h_home", "h2h"), ("away_ml", None, "h2h_away", "h2h"), ("draw_ml", None, "h2h_draw", "h2h"),
    ("home_spread_price", "home_spread", "spread_home", "spreads"),
    ("away_spread_price", "away_spread", "spread_away", "spreads"),
    ("over_price", "total", "total_over", "totals"), ("under_price", "total", "total_under", "totals"),
], "FusedFrames.envelope unrolls vendor.GAME_FIELDS: keep the two in step"
