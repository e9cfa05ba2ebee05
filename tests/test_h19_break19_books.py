"""break19 (issue 14): trying to break steam16's compiled JSON writer (``fast.kernel.json_arrays``,
called by ``batch._books_compiled``): an Arrow array handed to polars through the C data
interface, its buffers one ``PyMem_RawMalloc`` block freed by a compiled ``release``.

- memory: the column reads the same as a plain polars column after every polars operation that
  may keep, share, copy or mutate its buffers (slices, concat, rechunk, extend, scatter, pickle,
  IPC/Parquet round trips, sort, casts, a lazy query, the Arrow stream export re-imported), from
  threads while the last Python reference goes; the block is freed exactly when the last
  reference goes (tracemalloc sees the raw domain), also on the error paths (the write
  interrupted, polars' import failing) and over many runs in threads (no leak, no double free);
  an interpreter exiting with columns alive (a global, a cycle, a daemon thread making them)
  exits cleanly;
- text: in ``detect``, the stream engine's alerts byte for byte, with the compiled writer taken,
  on steams whose books are odd (quotes, backslashes, unicode, control characters, U+2028) and
  whose numbers are at the edges (+-100, +-100000, fractional prices, 1e-9 off an int,
  probability points), Categorical and Enum keys, equal and stale times.
"""

from __future__ import annotations

import copy
import gc
import io
import pickle
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote, Steam
from dropengine.analysis import batch

from .conftest import require_fast
from .test_h12_batch_equivalence import frame_of

_ENC = msgspec.json.Encoder()
_PIECES = ['{"a":', ',"b":', '"\\u00fc\\"x"', "1.5e-300", "-0.0", "\u2028"]


def _column(n_groups: int, seed: int = 0) -> pl.Series:
    """A json_arrays column of ``n_groups`` arrays (0 to 3 objects each, ints and pieces)."""
    from dropengine.fast import kernel

    rng = np.random.default_rng(seed)
    start = np.concatenate(([0], np.cumsum(rng.integers(0, 4, n_groups)))).astype(np.int64)
    m = int(start[-1])
    number = rng.integers(-(2**63) + 1, 2**63 - 1, (m, 2), dtype=np.int64)
    text = rng.integers(-1, len(_PIECES), (m, 2)).astype(np.int64)
    got = pl.Series(kernel.json_arrays("books", start, _PIECES, np.zeros(m, np.int64), np.zeros(m, np.int64),
                                       np.array([[1]], np.int64), number, text))
    assert isinstance(got, pl.Series)
    return got


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_the_column_survives_every_polars_operation() -> None:
    require_fast()
    s = _column(3000)
    want = s.to_list()
    ref = pl.Series("books", want, dtype=pl.String)
    buf = io.BytesIO()
    s.to_frame().write_ipc(buf)
    ipc = pl.read_ipc(io.BytesIO(buf.getvalue())).get_column("books")
    buf = io.BytesIO()
    s.to_frame().write_parquet(buf)
    parquet = pl.read_parquet(io.BytesIO(buf.getvalue())).get_column("books")
    scattered = s.clone()
    scattered.scatter([0, 7], "x")

    class Stream:  # the column exported as an Arrow stream, imported again
        def __init__(self, column: pl.Series) -> None:
            self.column = column

        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            return self.column.__arrow_c_stream__()

    assert s.slice(5, 100).to_list() == want[5:105]
    assert pl.concat([s, ref, s.slice(3)]).rechunk().to_list() == want + want + want[3:]
    assert s.clone().extend(ref).to_list() == want * 2
    assert ref.clone().extend(s).to_list() == want * 2
    assert scattered.to_list() == ["x", *want[1:7], "x", *want[8:]] and s.to_list() == want
    assert pickle.loads(pickle.dumps(s)).to_list() == want
    assert copy.deepcopy(s).to_list() == want
    assert ipc.to_list() == want and parquet.to_list() == want
    assert s.to_frame().write_csv() == ref.to_frame().write_csv()
    assert s.to_frame().write_ndjson() == ref.to_frame().write_ndjson()
    assert s.equals(ref) and s.hash().equals(ref.hash())
    assert s.sort().to_list() == sorted(want)
    assert s.cast(pl.Categorical).cast(pl.String).to_list() == want
    assert s.to_frame().lazy().select(pl.col("books").str.slice(0, 3)).collect().get_column("books").to_list() == [
        w[:3] for w in want]
    assert pl.Series(Stream(s)).to_list() == want
    # read from threads while the last Python reference here goes
    seen: list[bool] = []

    def read(x: pl.Series) -> None:
        for _ in range(10):
            seen.append(x.slice(0, 50).to_list() == want[:50])

    threads = [threading.Thread(target=read, args=(s.slice(0),)) for _ in range(3)]
    for t in threads:
        t.start()
    del s, scattered
    gc.collect()
    for t in threads:
        t.join()
    assert seen == [True] * 30


def test_the_block_is_freed_once_when_the_last_reference_goes() -> None:
    require_fast()
    from dropengine.fast import kernel

    _column(10)  # compiled (or loaded) before tracing
    tracemalloc.start()
    try:
        base = _traced()
        s = _column(20000)
        held = _traced() - base
        assert held > 20000 * 8  # the block (offsets and text) is polars', not copied and freed
        tail = s.slice(19990)
        del s
        assert _traced() - base > 20000 * 8  # a slice holds the whole block
        del tail
        assert _traced() - base < held // 10
        # error paths: the write interrupted, polars' import failing: freed here, once
        def interrupted(*args: Any) -> int:
            raise KeyboardInterrupt

        class Refused(Exception):
            pass

        real_series = pl.Series

        def refusing(*args: Any, **kwargs: Any) -> pl.Series:
            if args and hasattr(args[0], "__arrow_c_array__"):
                raise Refused
            return real_series(*args, **kwargs)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(kernel, "_json_array_write_call", interrupted)
            for _ in range(20):
                with pytest.raises(KeyboardInterrupt):
                    _column(2000)
            mp.undo()
            mp.setattr(pl, "Series", refusing)
            for _ in range(20):
                with pytest.raises(Refused):
                    _column(2000)
        # many runs, in threads, columns concatenated and dropped
        def work() -> None:
            for k in range(60):
                a = _column(300, k)
                b = pl.concat([a.slice(1), a])
                del a, b

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # 40 + 180 blocks of ~7-60 kB each: a leak of any would show
        assert _traced() - base < held // 10
    finally:
        tracemalloc.stop()


def test_an_interpreter_exits_cleanly_with_columns_alive() -> None:
    require_fast()
    script = textwrap.dedent("""
        import threading, time
        import numpy as np, polars as pl
        from dropengine.fast import kernel

        def make(n):
            z = np.zeros(n, np.int64)
            number = np.stack([np.arange(n), -np.arange(n)], 1).astype(np.int64)
            return pl.Series(kernel.json_arrays("books", np.arange(n + 1, dtype=np.int64), ['{"a":', ',"b":'], z, z,
                                                np.array([[1]], np.int64), number, np.full((n, 2), -1, np.int64)))

        KEEP = make(1000)
        FRAME = pl.DataFrame([make(300)]).lazy().with_columns(pl.col("books").str.len_bytes().alias("n"))

        class Cycle:
            pass

        c = Cycle()
        c.self, c.books = c, make(200)
        del c

        def churn():
            while True:
                s = make(100)
                time.sleep(0.0005)

        threading.Thread(target=churn, daemon=True).start()
        time.sleep(0.1)
        print(KEEP[999])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == '[{"a":999,"b":-999}]\n'


# -- the text, against the stream engine ------------------------------------------------------

_BOOKS = ("pin", 'b"q', "b\\s", "\u00fcn\u00ef", "\u2028x", "\x01c", "a/b", "dk")
_PRICES = (-100, 100, -100000, 100000, -110, 150, -110.5, 150.25, 101.3, -100.0, 99999.5, -105, 120,
           -99999.75, 333.333333333, 100.000000001, -109.89)
_SIDES = ("h2h_home", "h2h_away", "spread_home@-0.5", "spread_home@3.25", "spread_home@100.5",
          "total_over@41.5", "total_over@0.5", "total_over@1000000")


@st.composite
def _odd_steams(draw: st.DrawFn) -> list[Quote]:
    books = _BOOKS[:draw(st.integers(2, len(_BOOKS)))]
    t = draw(st.sampled_from((10, 1_747_000_000_000, 2**53)))
    out: list[Quote] = []
    step = st.tuples(st.sampled_from((0, 0, 1, 1000, 15_000, -1, 300_000)), st.sampled_from(("e1", "e2")),
                     st.sampled_from(books), st.sampled_from(_SIDES), st.sampled_from((*_PRICES, None)))
    for _ in range(draw(st.integers(1, 50))):
        dt, event, book, side, price = draw(step)
        t += dt
        market = side.split("_")[0].replace("spread", "spreads").replace("total", "totals")
        out.append(Quote("americanfootball_nfl", event, book, side, price, t, market_key=market))
    return out


@st.composite
def _options(draw: st.DrawFn) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "reference": draw(st.sampled_from(("last", "anchor"))),
        "types": draw(st.sampled_from(("steam", "odds_drop,steam", "line_move,steam", "odds_drop,line_move,steam"))),
        "steam_books": draw(st.integers(1, 3)),
        "steam_window_ms": draw(st.sampled_from((0, 1000, 300_000))),
        "cooldown_ms": draw(st.sampled_from((0, 1000))),
    }
    if draw(st.booleans()):
        opts.update(unit="prob", threshold=draw(st.sampled_from((0.1, 0.5, 1))))
    else:
        opts["threshold"] = draw(st.sampled_from((1, 5, 10)))
    if draw(st.booleans()):
        opts["steam_line_threshold"] = draw(st.sampled_from((0.5, 1)))
    return opts


def _keys_as(frame: pl.DataFrame, how: str) -> pl.DataFrame:
    if how == "categorical":
        return frame.with_columns(pl.col("bookmaker", "side", "event_id").cast(pl.Categorical))
    if how == "enum":  # (categories in another order than the books', one unused)
        books = sorted(set(frame.get_column("bookmaker").to_list()), reverse=True)
        return frame.with_columns(pl.col("bookmaker").cast(pl.Enum([*books, "zz_unused"])),
                                  pl.col("side").cast(pl.Enum(sorted(set(frame.get_column("side").to_list())))))
    return frame


def _books_are_the_stream_engines(res: batch.BatchResult, alerts: list[Any]) -> None:
    """The steams' ``books`` cells of the table (what the compiled writer wrote: the values are
    rebuilt from the moves, so comparing them alone cannot see the writer) == the stream engine's
    steams' books as JSON (review19 B19T-1)."""
    want = [_ENC.encode(a.books).decode() for a in alerts if isinstance(a, Steam)]
    if "books" not in res.alerts.columns:
        assert not want
        return
    got = res.alerts.filter(pl.col("type") == "steam").get_column("books").cast(pl.String).to_list()
    assert got == want


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_odd_steams(), _options(), st.sampled_from(("string", "categorical", "enum")))
def test_odd_books_and_edge_numbers_are_the_stream_engines(quotes: list[Quote], opts: dict[str, Any],
                                                           keys: str) -> None:
    require_fast()
    eng = DropEngine(**opts)
    alerts = eng.observe_many(quotes)
    want = [_ENC.encode(a) for a in alerts]
    taken: list[bool] = []
    real = batch._books_compiled

    def spy(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        taken.append(got is not None)
        return got

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "_books_compiled", spy)
        mp.setattr(batch, "_BOOKS_SPLIT", 1)  # (two halves, each in a thread of its own: steams alone)
        res = batch.detect_counted(_keys_as(frame_of(quotes), keys), accel="fast", **opts)
    assert [_ENC.encode(a) for a in res.alert_values()] == want
    assert res.counters == eng.counters
    _books_are_the_stream_engines(res, alerts)
    # the compiled writer wrote every steam's books (in two halves where the steams alone are asked)
    halves = 0 if not res.counters.steam else 2 if opts["types"] == "steam" and res.counters.steam > 1 else 1
    assert taken == [True] * halves


def test_a_ctrl_c_through_interruptible_leaves_no_view_of_the_freed_block() -> None:
    """The pass as Ctrl-C really leaves it: numba's dispatcher returns from a nogil call with the
    KeyboardInterrupt pending, CPython raises a SystemError caused by it (the dispatcher has no
    Python frame), and :func:`dropengine.fast.interruptible` (which wraps the pass) raises the
    KeyboardInterrupt. With the exception alive (a debugger, ``--showlocals``, a REPL's
    ``sys.last_value``), nothing reachable from it may be a view of the block ``json_arrays``
    freed: reading it reads freed memory (break19 B19-1 read allocator garbage through it; fixed in
    deaff1c)."""
    require_fast()
    import weakref

    from dropengine.fast import interruptible, kernel

    views: list[weakref.ref[Any]] = []

    def dispatcher(*args: Any) -> int:
        views.append(weakref.ref(args[-1]))  # the block's text, as the pass receives it
        del args
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as pending:
            raise SystemError("<CPUDispatcher> returned a result with an exception set") from pending

    ok = {"opening": np.zeros(1, np.int64), "kind": np.zeros(1, np.int64), "keys": np.zeros((1, 1), np.int64),
          "number": np.zeros((1, 2), np.int64), "text": np.full((1, 2), -1, np.int64)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernel, "_json_array_write_call", interruptible(dispatcher))
        with pytest.raises(KeyboardInterrupt) as caught:
            kernel.json_arrays("b", np.array([0, 1]), ["{" + "x" * 1000], **ok)
    assert caught.value is not None  # (alive here, with everything it references)
    gc.collect()
    assert len(views) == 1 and views[0]() is None, "a view of the freed block is reachable from the exception"


def test_a_ctrl_c_while_the_block_is_filled_leaves_no_view_of_it() -> None:
    """A KeyboardInterrupt arriving at a line of ``json_arrays`` that writes the offsets into the
    block (the signal handler runs at the line's calls; emulated by a trace function raising at
    that line, ``raw`` bound): the ``finally`` frees the block, and nothing reachable from the
    exception may still view it (break19 B19-2, fixed in deaff1c)."""
    require_fast()
    import inspect
    import weakref

    from dropengine.fast import kernel

    lines, first = inspect.getsourcelines(kernel.json_arrays)
    at = [first + k for k, text in enumerate(lines) if "raw[at_offsets:at_data]" in text]
    assert len(at) == 1  # (the line filling the offsets: the test must track json_arrays)
    code = kernel.json_arrays.__code__
    views: list[weakref.ref[Any]] = []

    def trace(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not code:
            return None
        if event == "line" and frame.f_lineno == at[0] and not views:
            views.append(weakref.ref(frame.f_locals["raw"]))
            raise KeyboardInterrupt
        return trace

    ok = {"opening": np.zeros(1, np.int64), "kind": np.zeros(1, np.int64), "keys": np.zeros((1, 1), np.int64),
          "number": np.zeros((1, 2), np.int64), "text": np.full((1, 2), -1, np.int64)}
    kernel.json_arrays("b", np.array([0, 1]), ["{"], **ok)  # (compiled before tracing)
    saved = sys.gettrace()
    sys.settrace(trace)
    try:
        with pytest.raises(KeyboardInterrupt) as caught:
            kernel.json_arrays("b", np.array([0, 1]), ["{" + "x" * 1000], **ok)
    finally:
        sys.settrace(saved)
    assert caught.value is not None and len(views) == 1
    # (the trace's calls left a snapshot of the frame's locals, taken before the finally ran: read
    # the frames' locals again, as a debugger would, so that they are what the frames hold now)
    tb = caught.value.__traceback__
    while tb is not None:
        assert isinstance(tb.tb_frame.f_locals, dict)
        tb = tb.tb_next
    gc.collect()
    assert views[0]() is None, "json_arrays' frame (in the traceback) still holds `raw`, a view of the freed block"


@pytest.mark.parametrize("limit", [None, 8])
def test_many_books_and_sides_and_the_size_limit(limit: int | None) -> None:
    """1,500 bookmakers x 800 sides (a pair range much wider than the steams' moves: the openings
    found by sorting, not by a lookup over the range), and (``limit``) books past
    ``JSON_ARRAYS_LIMIT``: declined, written the polars way. The stream engine's alerts either way."""
    require_fast()
    from dropengine.fast import kernel

    t = 1_747_000_000_000
    quotes = [Quote("nfl", "filler", f"book{i:05d}", "h2h_home", -110, t, market_key="h2h") for i in range(1500)]
    quotes += [Quote("nfl", "filler2", "bookX", f"player_points:P{i}:over@0.5", -110, t, market_key="player_points")
               for i in range(800)]
    for k in range(20):
        t += 1000
        for b in ("book00003", "book01400", "zz", 'q"b'):
            quotes.append(Quote("nfl", "e1", b, "h2h_home", -110 - 10 * k, t, market_key="h2h"))
            quotes.append(Quote("nfl", "e1", b, f"player_points:Star:over@{k % 3}.5", -110 - 7 * k, t,
                                market_key="player_points"))
    opts = {"types": "odds_drop,line_move,steam", "steam_books": 2, "threshold": 5}
    eng = DropEngine(**opts)
    alerts = eng.observe_many(quotes)
    want = [_ENC.encode(a) for a in alerts]
    taken: list[tuple[int, int, bool]] = []
    real = batch._books_compiled

    def spy(*args: Any, **kwargs: Any) -> Any:
        got = real(*args, **kwargs)
        taken.append((len(args[8]), len(args[9]), got is not None))
        return got

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "_books_compiled", spy)
        if limit is not None:
            mp.setattr(kernel, "JSON_ARRAYS_LIMIT", limit)
        res = batch.detect_counted(frame_of(quotes), accel="fast", **opts)
    assert [_ENC.encode(a) for a in res.alert_values()] == want and res.counters == eng.counters
    _books_are_the_stream_engines(res, alerts)
    assert res.counters.steam and len(taken) == 1
    books, sides, compiled = taken[0]
    assert books * sides > 4 * len(quotes) + (1 << 20) and compiled == (limit is None)
