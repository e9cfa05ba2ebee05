"""Any table to SPEC 2 quote rows: column mappings, wide-to-long, odds formats (issue 15).

A :class:`TableMapping` says where each SPEC 2 field of a quote comes from in a table with
other column names (``--columns``), how a table with one column per side becomes one quote
per side (``--wide``), which cell texts mean something else (``--recode``: ``EVEN`` is +100,
``0`` is "not offered") and which rows to keep (``--where``). It is parsed from the flag text
(:meth:`TableMapping.parse`, errors name the flag and the part) or from a TOML file
(:func:`load_mapping`), and applied to one row at a time (:meth:`TableMapping.apply`: row
dict -> SPEC 2 row dicts plus the errors of its bad cells), so every reader (CSV, Parquet,
NDJSON; the row engine and the batch loader) maps a row the same way. Pure: no I/O, no clock.

Prices in decimal or probability form become American through :mod:`dropengine.core.odds`
only (:func:`to_american`); an unmapped table with another odds format goes through
:func:`converted_row`, the same conversion.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from ..core.errors import ConfigError, FeedError
from ..core.odds import decimal_to_american, prob_to_american
from ..core.rules import number_from_text
from ..core.sides import format_line, h2h_side, join_line, parse_side, prop_side, spread_side, total_side
from .frames import coerce_line, coerce_price
from .tables import QUOTE_COLUMNS, REQUIRED_COLUMNS
from .theoddsapi import outcome_side as odds_api_side  # The Odds API's outcome rule: one rule, one place

__all__ = [
    "ABSENT", "LATEST_MS", "MAPPED_FIELDS", "ODDS_FORMAT_FIELD", "STARTING_PRICE_FIELD", "Condition", "Source",
    "TableMapping", "WideSide", "converted_row", "load_mapping", "time_ms", "to_american",
]

#: The per-row odds format field (a table column of that name decides its row's format).
ODDS_FORMAT_FIELD: Final = "odds_format"
#: The starting price (a close for ``backtest``), in the row's odds format.
STARTING_PRICE_FIELD: Final = "starting_price"
_OUTCOME: Final = "outcome"
#: Every field a mapping may give: SPEC 2's, the odds format, the starting price, and
#: ``outcome`` (a side from a team name / Over / Under by The Odds API's rule).
MAPPED_FIELDS: Final[tuple[str, ...]] = (*QUOTE_COLUMNS, ODDS_FORMAT_FIELD, STARTING_PRICE_FIELD, _OUTCOME)
_ODDS_FORMATS: Final = ("american", "decimal", "prob")
_TIME_FIELDS: Final = frozenset(("last_update", "commence_time"))
_PRICE_FIELDS: Final = frozenset(("price", STARTING_PRICE_FIELD))
_REQUIRED_TEXT: Final = ("sport_key", "event_id", "bookmaker")
#: A unix time below this is in seconds, at or above it in milliseconds (1e11 s is the year
#: 5138, 1e11 ms is 1973-03-03): what lets a mapped table give either.
_SECONDS_BELOW: Final = 1e11
#: The last ms a datetime holds (9999-12-31T23:59:59.999Z): a later time is no real time (a unix
#: µs or ns integer read as ms lands tens of thousands of years ahead) and no ISO text can say it.
LATEST_MS: Final = 253_402_300_799_999
_OFFSET = re.compile(r"([+-])(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CONDITION = re.compile(r"^(.+?)\s*(<=|>=|==|!=|<|>)\s*(.+)$")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class _Absent:
    """The recode value that makes a cell give no quote (``absent``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


#: A recoded cell that makes no quote (``--recode 0=absent``): not a suspension, nothing at all.
ABSENT: Final = _Absent()
Recoded = int | float | None | _Absent


# -- sources: where a field's value comes from -----------------------------------------------

@dataclass(frozen=True, slots=True)
class _Alt:
    """One alternative of a source: literal text and column placeholders, in order. A lone
    column (no literal) gives the cell as it is (its type kept); anything else gives text."""

    parts: tuple[tuple[str, str | None], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for _, c in self.parts if c is not None)

    def render(self, row: Mapping[str, Any]) -> Any:
        if len(self.parts) == 1 and self.parts[0][0] == "":
            return row.get(self.parts[0][1]) if self.parts[0][1] is not None else ""
        out: list[str] = []
        for literal, column in self.parts:
            out.append(literal)
            if column is not None:
                cell = row.get(column)
                if cell is None or cell == "":
                    return None  # a template with an empty cell is empty: no half-made id or time
                out.append(_text_of(cell))
        return "".join(out)


def _text_of(cell: Any) -> str:
    """A cell as key text (ids, template parts, sides): an integral float as an int
    (``240173947.0`` -> ``240173947``), and so the same cell written as text (a float column
    in a CSV: ``240173947.0``, ``12.00``), so that one table as CSV or Parquet gives the same
    keys. Other text is kept as it is (``1.132153978``, ``007``, ``1e5``)."""
    if type(cell) is float and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, Decimal) and cell == cell.to_integral_value():
        return str(int(cell))
    if type(cell) is str:
        m = _INTEGRAL_TEXT.fullmatch(cell)
        return m.group(1) if m is not None else cell
    return str(cell)


#: text of an integral number with a zero fraction, as a float column is written (``12.0``)
_INTEGRAL_TEXT: Final = re.compile(r"([+-]?[0-9]+)\.0+")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a field comes from: alternatives (the first non-empty wins), an offset in ms
    (time fields), and the text as given (named in errors)."""

    alternatives: tuple[_Alt, ...]
    offset_ms: int = 0
    text: str = ""
    #: the columns it reads (computed once: asked for every row's labels)
    columns: tuple[str, ...] = field(default=(), init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(c for a in self.alternatives for c in a.columns))

    @property
    def fixed(self) -> bool:
        return not self.columns

    def label(self, name: str) -> str:
        """``field (column X)`` for errors; a fixed value names just the field."""
        cols = self.columns
        return f"{name} (column {'|'.join(cols)})" if cols else name

    def value(self, row: Mapping[str, Any], time: bool = False) -> Any:
        for alt in self.alternatives:
            v = alt.render(row)
            if v is None or v == "":
                continue
            if time and (v == 0 or (type(v) is str and number_from_text(v) == 0)):
                continue  # a time of 0 is no time: try the next alternative
            return v
        return None

    @staticmethod
    def parse(text: str, name: str, time: bool = False, literal: bool = False) -> Source:
        """A source from its text: ``COLUMN``, ``=VALUE`` (fixed), a template with ``{COLUMN}``,
        alternatives ``A|B``; a time source may end in an offset (``date-1d``). With
        ``literal`` (a ``--wide`` side) text is text and only ``{COLUMN}`` names a column.
        ConfigError naming ``name`` when it is empty or a placeholder is."""
        raw = text
        text = text.strip()
        offset = 0
        if time:
            m = _OFFSET.search(text)
            if m is not None and m.start() > 0:
                amount = float(m.group(2)) * _UNIT_MS[m.group(3)]
                offset = round(amount) * (-1 if m.group(1) == "-" else 1)
                text = text[: m.start()].rstrip()
        if literal and "{" not in text and "}" not in text:
            text = "=" + text
        if text.startswith("="):
            value = text[1:]
            if not value:
                raise ConfigError(f"{name}: {raw!r}: a fixed value ('=VALUE') is empty")
            return Source((_Alt(((value, None),)),), offset, raw)
        alts: list[_Alt] = []
        for alt_text in text.split("|"):
            alt_text = alt_text.strip()
            if not alt_text:
                raise ConfigError(f"{name}: {raw!r}: an empty column name")
            if "{" not in alt_text and "}" not in alt_text:
                alts.append(_Alt((("", alt_text),)))
                continue
            parts: list[tuple[str, str | None]] = []
            pos = 0
            for m in _PLACEHOLDER.finditer(alt_text):
                column = m.group(1).strip()
                if not column:
                    raise ConfigError(f"{name}: {raw!r}: an empty placeholder {{}}")
                parts.append((alt_text[pos:m.start()], column))
                pos = m.end()
            tail = alt_text[pos:]
            if "{" in tail or "}" in tail or any("{" in lit or "}" in lit for lit, _ in parts):
                raise ConfigError(f"{name}: {raw!r}: unbalanced braces (a template is text with {{COLUMN}} in it)")
            if tail:
                parts.append((tail, None))
            alts.append(_Alt(tuple(parts)))
        return Source(tuple(alts), offset, raw)


# -- values: times, prices ---------------------------------------------------------------------

def time_ms(value: Any, label: str) -> int | None:
    """A mapped table's time cell as unix ms, or None when empty: a number (or numeric text)
    is unix seconds below 1e11, else ms (rounded); text is ISO-8601 (a date alone is midnight
    UTC, a naive time is UTC); a datetime/date as is. FeedError (``bad time``) naming ``label``
    for anything else or a time outside 1970 .. :data:`LATEST_MS` (the end of 9999)."""
    if value is None or value == "":
        return None
    ms: int | None = None
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        ms = (dt - _EPOCH) // timedelta(milliseconds=1)
    elif isinstance(value, date):
        ms = (datetime(value.year, value.month, value.day, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
    elif isinstance(value, Decimal):
        return time_ms(float(value), label)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:  # an int of any size: no float is made of it (a 400-digit cell overflows one)
            ms = value * 1000 if value < _SECONDS_BELOW else value
    elif isinstance(value, float):
        if math.isfinite(value) and value >= 0:
            ms = round(value * 1000) if value < _SECONDS_BELOW else round(value)
    elif isinstance(value, str):
        number = number_from_text(value)
        if number is not None:
            return time_ms(number, label) if number >= 0 else _bad_time(value, label)
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            return _bad_time(value, label)
        return time_ms(dt, label)
    if ms is None:
        return _bad_time(value, label)
    if not 0 <= ms <= LATEST_MS:
        raise FeedError(f"{label}: {value!r} is out of range: a time lies between 1970 and the end of 9999 "
                        "(a number is unix seconds below 1e11, else ms; unix µs or ns are not read)", "bad time")
    return ms


def _bad_time(value: Any, label: str) -> int:
    raise FeedError(f"{label}: {value!r} is not a time (unix s or ms, or ISO-8601)", "bad time")


def _iso(ms: int) -> str:
    """ms (within 0..:data:`LATEST_MS`, as :func:`time_ms` and offsets keep it) as ISO text."""
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_american(value: Any, odds_format: str, label: str) -> int | float | None:
    """A price cell in ``odds_format`` as American odds (None stays None: suspended).

    ``american`` is read as the quote tables read prices (the engine judges validity);
    ``decimal`` and ``prob`` go through :func:`core.odds.decimal_to_american` /
    :func:`core.odds.prob_to_american`. FeedError naming ``label`` and the value: ``bad
    price`` for a decimal <= 1, a probability outside (0, 1), or one that maps outside SPEC 1's
    American range; ``invalid price`` (as every quote reader says) for a cell that is no number."""
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    # text that is no number is an `invalid price` in every odds format, as in every quote reader
    number = coerce_price(None if value == "" else value, label)
    if number is None or odds_format == "american":
        return number
    number = _float(number)  # a huge integer cell: an infinity, refused below (not an OverflowError)
    try:
        if odds_format == "decimal":
            return decimal_to_american(number)
        return prob_to_american(number)
    except ConfigError:
        if odds_format == "decimal":
            inside = math.isfinite(number) and number > 1
            what = (_OUT_OF_RANGE + " (decimal odds 1.001 to 1001)" if inside
                    else "decimal odds must be a finite number above 1")
        else:
            inside = 0 < number < 1
            what = (_OUT_OF_RANGE + " (probabilities 1/1001 to 1/1.001)" if inside
                    else "a probability must be strictly between 0 and 1")
        raise FeedError(f"{label}: {value!r}: {what}", "bad price") from None


_OUT_OF_RANGE: Final = "maps outside SPEC 1's valid American prices (100 <= |A| <= 100000)"


def _row_format(row: Mapping[str, Any], default: str, label: str) -> str:
    """A row's own odds format (its ``odds_format`` cell, read as loosely as a price cell:
    stripped, any case), or ``default`` when the cell is empty."""
    raw = row.get(ODDS_FORMAT_FIELD)
    fmt = raw.strip().lower() if isinstance(raw, str) else raw
    if fmt is None or fmt == "":
        return default
    if fmt not in _ODDS_FORMATS:
        raise FeedError(f"{label}: {raw!r} must be {', '.join(_ODDS_FORMATS)}", "bad field")
    return str(fmt)


def converted_row(row: Mapping[str, Any], default_format: str) -> tuple[dict[str, Any], list[FeedError]]:
    """An unmapped table row with its ``price`` (and ``starting_price``) made American, by
    the row's ``odds_format`` cell or else ``default_format``; the other cells as they are.
    A bad price or odds format raises FeedError (the row makes no quote); a bad starting
    price is returned as an error and left out (the quote goes on)."""
    fmt = _row_format(row, default_format, ODDS_FORMAT_FIELD)
    out = dict(row)
    if "price" in out:
        out["price"] = to_american(out["price"], fmt, "price")
    errors: list[FeedError] = []
    if STARTING_PRICE_FIELD in out:
        try:
            out[STARTING_PRICE_FIELD] = to_american(out[STARTING_PRICE_FIELD], fmt, STARTING_PRICE_FIELD)
        except FeedError as exc:
            errors.append(exc)
            out[STARTING_PRICE_FIELD] = None
    return out, errors


# -- the mapping -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WideSide:
    """One quote per row from one column (``--wide SIDE=PRICE[@LINE][/TIME]``): the side (a
    template), the price column, the line (a column, a number, or none) and the time (a
    source, or None: the mapping's ``last_update``)."""

    side: Source
    price: str
    line: str | float | None = None
    at: Source | None = None
    text: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        cols = [*self.side.columns, self.price]
        if isinstance(self.line, str):
            cols.append(self.line)
        if self.at is not None:
            cols.extend(self.at.columns)
        return tuple(cols)

    @staticmethod
    def parse(text: str, name: str = "--wide") -> WideSide:
        raw = text
        side, eq, rest = text.strip().partition("=")
        side, rest = side.strip(), rest.strip()
        if not eq or not side or not rest:
            raise ConfigError(f"{name}: {raw!r} is not SIDE=PRICE_COLUMN[@LINE][/TIME]")
        at: Source | None = None
        if "/" in rest:
            rest, _, at_text = rest.partition("/")
            at = Source.parse(at_text, f"{name}: {raw!r}: /TIME", time=True)
            rest = rest.strip()
        price, has_line, line_text = rest.partition("@")
        price = price.strip()
        if not price:
            raise ConfigError(f"{name}: {raw!r}: the price column is empty")
        line: str | float | None = None
        if has_line:
            line_text = line_text.strip()
            if not line_text:
                raise ConfigError(f"{name}: {raw!r}: the line after '@' is empty")
            number = number_from_text(line_text)
            line = _float(number) if number is not None else line_text
        if line is not None and "@" in side:
            raise ConfigError(f"{name}: {raw!r}: the side {side!r} has its line already; drop '@{line_text}'")
        if line is not None and side.startswith("h2h_"):
            raise ConfigError(f"{name}: {raw!r}: {side!r} has no line")
        return WideSide(Source.parse(side, f"{name}: {raw!r}: SIDE", literal=True), price, line, at, raw).checked(name)

    def checked(self, name: str) -> WideSide:
        """This item, after making sure a fixed side (no ``{COLUMN}`` in it) is a side once its
        line is built in: a typo (``h2h_hmoe``) or a spread/total without ``@LINE`` would make
        every row a ``bad side`` skip, so it is a ConfigError naming ``name`` and the item. A
        side templated from cells can only be judged row by row (a bad one: a skip)."""
        if not self.side.fixed:
            return self
        text = str(self.side.value({}))
        sample = 1.5 if isinstance(self.line, str) else self.line  # a line column: any line will do
        try:
            parse_side(_side_with_line(text, sample, "side"))
        except FeedError as exc:
            needs_line = text in ("spread_home", "spread_away", "total_over", "total_under") and self.line is None
            hint = " (a spread or total needs its line: SIDE=PRICE@LINE)" if needs_line else ""
            raise ConfigError(f"{name}: {self.text!r}: {exc}{hint}") from None
        return self


@dataclass(frozen=True, slots=True)
class Condition:
    """A row filter ``LEFT OP RIGHT`` (``--where cur_time<game_start_time``): each side a
    column or a number; numbers compare as numbers, anything else as times."""

    left: str | float
    op: str
    right: str | float
    text: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(x for x in (self.left, self.right) if isinstance(x, str))

    @staticmethod
    def parse(text: str, name: str = "--where") -> Condition:
        m = _CONDITION.match(text.strip())
        if m is None:
            raise ConfigError(f"{name}: {text!r} is not COLUMN OP COLUMN|NUMBER (OP: < <= > >= == !=)")

        def operand(t: str) -> str | float:
            n = number_from_text(t)
            return _float(n) if n is not None else t.strip()

        left, right = operand(m.group(1)), operand(m.group(3))
        if not isinstance(left, str) and not isinstance(right, str):
            raise ConfigError(f"{name}: {text!r} compares two numbers: name a column")
        return Condition(left, m.group(2), right, text)

    def holds(self, row: Mapping[str, Any]) -> bool:
        def cell(x: str | float) -> tuple[Any, str]:
            return (x, "") if not isinstance(x, str) else (row.get(x), x)

        (a, ca), (b, cb) = cell(self.left), cell(self.right)
        na, nb = _number(a), _number(b)
        if na is None or nb is None:
            try:
                ta = time_ms(a, f"{ca or a} (--where {self.text})")
                tb = time_ms(b, f"{cb or b} (--where {self.text})")
            except FeedError as exc:  # no number and no time: the cell cannot be compared
                raise FeedError(str(exc), "bad cell") from None
            if ta is None or tb is None:
                empty = ca if ta is None else cb
                raise FeedError(f"{empty} (--where {self.text}): empty cell", "bad cell")
            na, nb = ta, tb
        return bool(_OPS[self.op](na, nb))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        return _float(value)
    if isinstance(value, str):
        n = number_from_text(value)
        return None if n is None else _float(n)
    return None


def _float(n: int | float | Decimal) -> float:
    """``n`` as a float; an integer too large for one (``'9' * 400`` in a cell) is an
    infinity of its sign, which every check refuses, instead of an OverflowError."""
    try:
        return float(n)
    except OverflowError:
        return math.inf if n > 0 else -math.inf


_OPS: Final = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
               ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def _recode_value(text: str, name: str) -> Recoded:
    t = text.strip()
    if t == "absent":
        return ABSENT
    if t == "null":
        return None
    n = number_from_text(t)
    if n is None:
        raise ConfigError(f"{name}: {text!r} must be a number, null or absent")
    return n


@dataclass(frozen=True, slots=True)
class TableMapping:
    """How a table's rows become SPEC 2 quote rows (see the module docstring). Build it with
    :meth:`parse` (flag texts) or :func:`load_mapping` (a TOML file); apply it with
    :meth:`apply`. An empty mapping maps a table that already has SPEC 2's columns."""

    columns: tuple[tuple[str, Source], ...] = ()
    wide: tuple[WideSide, ...] = ()
    recode: tuple[tuple[str, Recoded], ...] = ()
    where: tuple[Condition, ...] = ()
    _by_field: dict[str, Source] = field(default_factory=dict, init=False, repr=False, compare=False)
    _recode_text: dict[str, Recoded] = field(default_factory=dict, init=False, repr=False, compare=False)
    _recode_num: dict[float, Recoded] = field(default_factory=dict, init=False, repr=False, compare=False)
    _recode_seen: dict[str, Recoded | _Keep] = field(default_factory=dict, init=False, repr=False, compare=False)
    _labels: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_field = dict(self.columns)
        for name in by_field:
            if name not in MAPPED_FIELDS:
                raise ConfigError(f"--columns: {name!r} is not a field (fields: {', '.join(MAPPED_FIELDS)})")
        if self.wide and any(f in by_field for f in ("side", "price", "line", _OUTCOME)):
            raise ConfigError("--columns: side/price/line/outcome come from --wide when it is given "
                              "(a line as SIDE=PRICE@LINE); drop them")
        if "side" in by_field and _OUTCOME in by_field:
            raise ConfigError("--columns: give side or outcome, not both")
        self._by_field.update(by_field)
        self._labels.update((name, src.label(name)) for name, src in by_field.items())
        for text, value in self.recode:
            self._recode_text[text.strip()] = value
            n = number_from_text(text)
            if n is not None:
                self._recode_num[_float(n)] = value

    # -- building --

    @staticmethod
    def parse(columns: Iterable[str] = (), wide: Iterable[str] = (), recode: Iterable[str] = (),
              where: Iterable[str] = (), base: TableMapping | None = None) -> TableMapping:
        """A mapping from flag texts (each comma-separated, as ``--columns`` etc. take them),
        on top of ``base`` (a mapping file): a field given here replaces the file's, ``wide``
        and ``where`` given here replace the file's lists, ``recode`` entries merge.
        ConfigError names the flag, the item and what is wrong with it."""
        fields = dict(base.columns) if base is not None else {}
        for n, item in _items(columns, "--columns"):
            name, eq, src = item.partition("=")
            name = name.strip()
            if not eq or not name:
                raise ConfigError(f"--columns: item {n} {item!r} is not FIELD=COLUMN (or FIELD==VALUE)")
            if name not in MAPPED_FIELDS:
                raise ConfigError(f"--columns: item {n} {item!r}: {name!r} is not a field "
                                  f"(fields: {', '.join(MAPPED_FIELDS)})")
            fields[name] = Source.parse(src, f"--columns: item {n} {item!r}", time=name in _TIME_FIELDS)
        wides = tuple(WideSide.parse(item, f"--wide: item {n}") for n, item in _items(wide, "--wide"))
        codes = dict(base.recode) if base is not None else {}
        for n, item in _items(recode, "--recode"):
            text, eq, value = item.partition("=")
            if not eq:
                raise ConfigError(f"--recode: item {n} {item!r} is not TEXT=VALUE (VALUE: a number, null or absent)")
            codes[text.strip()] = _recode_value(value, f"--recode: item {n} {item!r}")
        conds = tuple(Condition.parse(item, f"--where: item {n}") for n, item in _items(where, "--where"))
        return TableMapping(
            tuple(fields.items()),
            wides or (base.wide if base is not None else ()),
            tuple(codes.items()),
            conds or (base.where if base is not None else ()),
        )

    @property
    def starting_price(self) -> bool:
        """Whether the mapping gives a starting price."""
        return STARTING_PRICE_FIELD in self._by_field

    def used_columns(self) -> tuple[str, ...]:
        """Every column the mapping names, in order, once: a table must have them all."""
        cols: list[str] = []
        for _, src in self.columns:
            cols.extend(src.columns)
        for w in self.wide:
            cols.extend(w.columns)
        for c in self.where:
            cols.extend(c.columns)
        return tuple(dict.fromkeys(cols))

    def number_columns(self) -> frozenset[str]:
        """The columns whose cells the mapping reads as numbers or times (prices, lines,
        starting prices, times, ``--where`` operands), and the SPEC 2 columns of those fields
        read under their own name: what a reader may normalise as numbers (a decimal comma)."""
        cols: set[str] = {"price", "line", "last_update", STARTING_PRICE_FIELD}
        for name in ("price", "line", "last_update", "commence_time", STARTING_PRICE_FIELD):
            src = self._by_field.get(name)
            if src is not None:
                cols.update(src.columns)
        for w in self.wide:
            cols.add(w.price)
            if isinstance(w.line, str):
                cols.add(w.line)
            if w.at is not None:
                cols.update(w.at.columns)
        for c in self.where:
            cols.update(c.columns)
        return frozenset(cols)

    def required_columns(self) -> tuple[str, ...]:
        """The columns a table read with this mapping must have: those it names, and SPEC 2's
        required ones it does not give (they are read from the file's own column)."""
        given = set(self._by_field)
        if self.wide:
            given |= {"side", "price"}
            if all(w.at is not None for w in self.wide):
                given.add("last_update")
        if _OUTCOME in given:
            given.add("side")
        own = [c for c in REQUIRED_COLUMNS if c not in given]
        return tuple(dict.fromkeys((*self.used_columns(), *own)))

    def missing_columns(self, header: Iterable[str]) -> list[str]:
        """The columns the mapping names that ``header`` lacks (the readers make the file a
        whole-file skip naming them, so that one mapping can read many files)."""
        have = set(header)
        return [c for c in self.required_columns() if c not in have]

    # -- applying --

    def _source(self, name: str, row: Mapping[str, Any]) -> tuple[Any, str, Source | None]:
        """A field's raw value, its label for errors, and its source (None: the file's own
        column of that name, used when the mapping does not give the field)."""
        src = self._by_field.get(name)
        if src is None:
            return row.get(name), name, None
        return src.value(row, name in _TIME_FIELDS), self._labels[name], src

    def _recoded(self, cell: Any) -> Recoded | Any:
        """A price/line cell after ``--recode``: the cell itself when no entry matches."""
        if not self.recode:
            return cell
        if cell is None:
            return self._recode_text.get("", cell)
        if isinstance(cell, str):
            seen = self._recode_seen.get(cell, _UNSEEN)
            if seen is not _UNSEEN:
                return cell if isinstance(seen, _Keep) else seen
            t = cell.strip()
            out: Recoded | _Keep
            if t in self._recode_text:
                out = self._recode_text[t]
            else:
                n = number_from_text(t)
                out = self._recode_num.get(_float(n), _KEEP) if n is not None else _KEEP
            if len(self._recode_seen) < 65_536:  # cell texts repeat (prices, lines): remember them
                self._recode_seen[cell] = out
            return cell if isinstance(out, _Keep) else out
        n2 = _number(cell)
        return self._recode_num.get(n2, cell) if n2 is not None else cell

    def _time(self, name: str, row: Mapping[str, Any], src: Source | None = None) -> int | None:
        if src is None:
            raw, label, src = self._source(name, row)
        else:
            raw, label = src.value(row, True), src.label(name)
        ms = time_ms(raw, label)
        if ms is None or src is None or not src.offset_ms:
            return ms
        ms += src.offset_ms
        if not 0 <= ms <= LATEST_MS:  # before 1970 or past 9999 (no datetime holds it)
            raise FeedError(f"{label}: {raw!r} with the offset is out of range (1970 to the end of 9999)", "bad time")
        return ms

    def apply(self, row: Mapping[str, Any], default_format: str = "american", *,
              prices: bool = True) -> tuple[list[dict[str, Any]], list[FeedError]]:
        """The SPEC 2 rows of one table row (a ``--wide`` row gives one per side it offers)
        and the errors of its bad cells (each names the field, the column and the value; a
        bad cell loses its own quote, or the row's when the cell is row-wide: event_id ...).
        A row failing ``--where`` gives nothing. Prices are American (``default_format``, or
        the row's ``odds_format``); ``starting_price`` rides along when mapped.

        With ``prices=False`` the price cells are not read (each row's price is None): a
        side whose price is absent or bad is still given, with its starting price, so a
        runner that never traded keeps its starting price (the runners' devig needs all)."""
        errors: list[FeedError] = []
        try:
            for cond in self.where:
                if not cond.holds(row):
                    return [], []
            base, fmt, time_error = self._base(row, default_format, errors)
        except FeedError as exc:
            return [], [exc]
        if not self.wide:
            try:
                return [self._long(row, base, fmt, prices)], errors
            except FeedError as exc:
                return [], [*errors, exc]
            except _NoQuote:
                return [], errors
        out: list[dict[str, Any]] = []
        for w in self.wide:
            if time_error is not None and w.at is None:
                continue  # the row's last_update is bad: reported once, below, if an item needed it
            try:
                out.append(self._wide(row, base, fmt, w, prices))
            except FeedError as exc:
                errors.append(exc)
            except _NoQuote:
                continue
        if time_error is not None and any(w.at is None for w in self.wide):
            errors.append(time_error)
        return out, errors

    def _base(self, row: Mapping[str, Any], default_format: str,
              errors: list[FeedError]) -> tuple[dict[str, Any], str, FeedError | None]:
        """The row-wide fields: ids, teams, labels, times, odds format, starting price (a bad
        starting price goes to ``errors`` and is left out: the row's quotes go on), and the
        error of a bad row-level ``last_update`` when ``--wide`` items have their own
        ``/TIME``: it costs only the items that use it (all of them: it is raised)."""
        fmt_raw, fmt_label, _ = self._source(ODDS_FORMAT_FIELD, row)
        fmt = _row_format({ODDS_FORMAT_FIELD: fmt_raw}, default_format, fmt_label)
        base: dict[str, Any] = {}
        for name in QUOTE_COLUMNS:
            if name in ("side", "price", "line", "last_update", "commence_time"):
                continue
            raw, label, src = self._source(name, row)
            if raw is None or raw == "":
                if name in _REQUIRED_TEXT:
                    raise FeedError(f"{label}: missing", "missing field")
                continue
            base[name] = raw if src is None or src.fixed else _text_of(raw)
        time_error: FeedError | None = None
        try:
            lu = self._time("last_update", row)
        except FeedError as exc:
            if not any(w.at is not None for w in self.wide):
                raise  # every quote of the row needs it
            lu, time_error = None, exc
        if lu is not None:
            base["last_update"] = lu
        ct = self._time("commence_time", row)
        if ct is not None:
            base["commence_time"] = _iso(ct)
        if STARTING_PRICE_FIELD in self._by_field or STARTING_PRICE_FIELD in row:
            raw, label, _ = self._source(STARTING_PRICE_FIELD, row)
            sp = self._recoded(raw)
            try:
                base[STARTING_PRICE_FIELD] = None if sp is None or sp is ABSENT else to_american(sp, fmt, label)
            except FeedError as exc:
                errors.append(exc)
                base[STARTING_PRICE_FIELD] = None
        return base, fmt, time_error

    def _price(self, raw: Any, fmt: str, label: str) -> int | float | None:
        value = self._recoded(raw)
        if value is ABSENT:
            raise _NoQuote
        return to_american(value, fmt, label)

    def _line(self, raw: Any, label: str) -> float | None:
        value = self._recoded(raw)
        if value is ABSENT:
            raise _NoQuote
        try:
            line = coerce_line(None if value == "" else value, label)
        except OverflowError:  # an integer no float holds ('9' * 400): infinite, refused below
            line = math.inf
        if line is None:
            return None
        line = _float(line)
        if not math.isfinite(line):
            raise FeedError(f"{label}: {str(value)[:40]!r} is not finite", "bad line")
        return line

    def _long(self, row: Mapping[str, Any], base: dict[str, Any], fmt: str, prices: bool = True) -> dict[str, Any]:
        out = dict(base)
        raw, label, _ = self._source("price", row)
        if raw is None and "price" not in self._by_field and "price" not in row:
            raise FeedError("price: column missing (an empty cell means suspended)", "missing field")
        out["price"] = self._price(raw, fmt, label) if prices else None
        line_raw, line_label, _ = self._source("line", row)
        line = self._line(line_raw, line_label)
        if line is not None:
            out["line"] = line
        if _OUTCOME in self._by_field:
            out["side"] = self._outcome_side(row, base, line)
        else:
            side, side_label, _ = self._source("side", row)
            if side is None or side == "":
                raise FeedError(f"{side_label}: missing", "missing field")
            out["side"] = _side_with_line(_text_of(side) if not isinstance(side, str) else side, line, side_label)
        return out

    def _outcome_side(self, row: Mapping[str, Any], base: dict[str, Any], line: float | None) -> str:
        raw, label, _ = self._source(_OUTCOME, row)
        market = base.get("market_key")
        if raw is None or raw == "":
            raise FeedError(f"{label}: missing", "missing field")
        if market not in ("h2h", "spreads", "totals"):
            raise FeedError(f"market_key: {market!r} must be h2h, spreads or totals to read an outcome", "bad field")
        try:
            side = odds_api_side(market, {"name": raw, "point": line},
                                 str(base.get("home_team", "")), str(base.get("away_team", "")))
        except FeedError as exc:
            raise FeedError(f"{label}: {exc}", exc.reason) from None
        assert side is not None  # h2h, spreads and totals always map
        return side

    def _wide(self, row: Mapping[str, Any], base: dict[str, Any], fmt: str, w: WideSide,
              prices: bool = True) -> dict[str, Any]:
        out = dict(base)
        out["price"] = self._price(row.get(w.price), fmt, f"price (column {w.price})") if prices else None
        line: float | None
        if isinstance(w.line, str):
            line = self._line(row.get(w.line), f"line (column {w.line})")
            if line is None:
                raise _NoQuote  # no line, no side to quote at
        else:
            line = w.line
        side = w.side.value(row)
        if side is None or side == "":
            raise FeedError(f"{w.side.label('side')}: missing", "missing field")
        out["side"] = _side_with_line(_text_of(side), line, w.side.label("side"))
        if line is not None:
            out["line"] = line
        if w.at is not None:
            lu = self._time("last_update", row, w.at)
            if lu is None:
                raise FeedError(f"{w.at.label('last_update')}: missing", "missing field")
            out["last_update"] = lu
        return out


class _Keep:
    """A recode lookup that matched nothing: the cell stays as it is."""

    __slots__ = ()


_KEEP: Final = _Keep()
_UNSEEN: Final = _Keep()


class _NoQuote(Exception):
    """A cell recoded ``absent`` (or a wide side without its line): no quote, no error."""


def _side_with_line(side: str, line: float | None, label: str) -> str:
    """``side`` with ``line`` built in by core.sides (``spread_home`` + -1.5 ->
    ``spread_home@-1.5``); a side that has its line, or no line, as it is."""
    if line is None or "@" in side:
        return side
    try:
        if side in ("spread_home", "spread_away"):
            return spread_side("home" if side == "spread_home" else "away", line)
        if side in ("total_over", "total_under"):
            return total_side("over" if side == "total_over" else "under", line)
        if side.startswith("h2h_"):
            return h2h_side(side[4:])  # type: ignore[arg-type]  # checked by h2h_side
        market_key, sep, rest = side.partition(":")
        player, sep2, outcome = rest.rpartition(":")
        if sep and sep2 and outcome in ("over", "under"):
            return prop_side(market_key, player, outcome, line)  # type: ignore[arg-type]  # checked above
        return join_line(side, format_line(line))
    except ConfigError as exc:
        raise FeedError(f"{label}: {exc}", "bad side") from None


def _items(texts: Iterable[str], flag: str) -> list[tuple[int, str]]:
    """The comma-separated items of a flag given once or more, numbered from 1 across them."""
    out: list[tuple[int, str]] = []
    for text in texts:
        for item in text.split(","):
            stripped = item.strip()
            if not stripped:
                raise ConfigError(f"{flag}: {text!r} has an empty item")
            out.append((len(out) + 1, stripped))
    return out


# -- the mapping file --------------------------------------------------------------------------

def load_mapping(text: str, name: str = "--mapping") -> TableMapping:
    """A mapping from TOML text (the file of ``--mapping``): ``[columns]`` (FIELD = SOURCE as
    in ``--columns``), ``wide`` (a list of ``SIDE=PRICE[@LINE][/TIME]`` strings or
    ``[[wide]]`` tables with ``side``, ``price``, ``line``, ``at``), ``[recode]`` (TEXT =
    VALUE) and ``where`` (a list of conditions). Names with commas or ``=`` are fine here.
    ConfigError naming the file part for anything else."""
    try:
        doc = tomllib.loads(text.removeprefix("\ufeff"))  # a BOM: the file saved by Windows Notepad
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not TOML: {exc}") from None
    unknown = sorted(set(doc) - {"columns", "wide", "recode", "where"})
    if unknown:
        raise ConfigError(f"{name}: unknown key(s) {', '.join(unknown)} (keys: columns, wide, recode, where)")
    columns = doc.get("columns", {})
    if not isinstance(columns, dict):
        raise ConfigError(f"{name}: columns must be a table of FIELD = \"SOURCE\"")
    fields: list[tuple[str, Source]] = []
    for key, value in columns.items():
        if not isinstance(value, str):
            raise ConfigError(f"{name}: columns.{key} = {value!r} must be text")
        if key not in MAPPED_FIELDS:
            raise ConfigError(f"{name}: columns.{key}: not a field (fields: {', '.join(MAPPED_FIELDS)})")
        fields.append((key, Source.parse(value, f"{name}: columns.{key}", time=key in _TIME_FIELDS)))
    wides: list[WideSide] = []
    raw_wide = doc.get("wide", [])
    if not isinstance(raw_wide, list):
        raise ConfigError(f"{name}: wide must be a list")
    for i, item in enumerate(raw_wide, 1):
        where = f"{name}: wide[{i}]"
        if isinstance(item, str):
            wides.append(WideSide.parse(item, where))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("side"), str) or not isinstance(
                item.get("price"), str) or set(item) - {"side", "price", "line", "at"}:
            raise ConfigError(f"{where}: {item!r} must be text or a table with side, price (text), line, at")
        line = item.get("line")
        if line is not None and (isinstance(line, bool) or not isinstance(line, (str, int, float))):
            raise ConfigError(f"{where}: line = {line!r} must be a column name or a number")
        at = item.get("at")
        if at is not None and not isinstance(at, str):
            raise ConfigError(f"{where}: at = {at!r} must be text")
        side = Source.parse(item["side"], f"{where}: side", literal=True)
        wide = WideSide(side, item["price"], _float(line) if isinstance(line, (int, float)) else line,
                        None if at is None else Source.parse(at, f"{where}: at", time=True), str(item))
        if wide.line is not None and "@" in item["side"]:
            raise ConfigError(f"{where}: the side {item['side']!r} has its line already")
        wides.append(wide.checked(where))
    recode = doc.get("recode", {})
    if not isinstance(recode, dict):
        raise ConfigError(f"{name}: recode must be a table of \"TEXT\" = VALUE")
    codes: list[tuple[str, Recoded]] = []
    for key, value in recode.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"{name}: recode.{key} = {value!r} must be a number, \"null\" or \"absent\"")
        codes.append((key, _recode_value(str(value), f"{name}: recode.{key}")))
    raw_where = doc.get("where", [])
    if isinstance(raw_where, str):
        raw_where = [raw_where]
    if not isinstance(raw_where, list) or not all(isinstance(w, str) for w in raw_where):
        raise ConfigError(f"{name}: where must be a list of conditions (text)")
    conds = tuple(Condition.parse(w, f"{name}: where[{i}]") for i, w in enumerate(raw_where, 1))
    return TableMapping(tuple(fields), tuple(wides), tuple(codes), conds)

