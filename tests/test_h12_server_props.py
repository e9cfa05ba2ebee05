"""Issue 12, as properties: the server detects once (every type at 1 cent and 0.25 points, steam
with its own settings) and each connection filters, and that equals one engine per connection
with that connection's settings, for every type (SPEC 7: "Detection runs once ... each connection
only filters"); a connection cut anywhere and resumed with its last id gets exactly what one that
never left got, whatever its types. Pure (the server's ingest and hub, no sockets): the
uvicorn tests are tests/test_h12_server_signals.py."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine import DropEngine, Quote
from dropengine.core.alerts import SIGNALS
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.hub import Cursor, Entry
from dropengine.server.params import parse_request
from dropengine.server.sources import ManualSource

from .strategies import quote_streams, server_options

NOW = 1_747_000_000_500
TYPE_SETS = [frozenset(s) for s in (("odds_drop",), ("line_move",), ("steam",), ("odds_drop", "line_move"),
                                    ("line_move", "steam"), ("odds_drop", "steam"), SIGNALS)]


@st.composite
def connections(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A connection's settings as engine keywords, and whether its query names the default
    types. The server's steam counts price moves of 10 cents and line moves of 0.5 points; an
    engine expresses that only with a threshold (and a line threshold) at most those, so a
    connection asking for steam draws them so."""
    opts = draw(server_options())
    opts.pop("reference"), opts.pop("reprime_after_suspension")  # the server's: last, re-priming
    types = draw(st.sampled_from(TYPE_SETS))
    opts["types"] = types
    opts["line_threshold"] = draw(st.sampled_from((0.25, 0.5, 0.5, 1, 3.5) if "steam" not in types else (0.25, 0.5)))
    if "steam" in types:
        opts["threshold"] = draw(st.sampled_from((1, 2, 5, 9, 10)))
    return opts, draw(st.booleans())


def query(opts: dict[str, Any], explicit: bool) -> tuple[list[tuple[str, str]], bool]:
    """The connection's query string pairs (and whether it is ``/multi``); the default types
    are named only when ``explicit``."""
    pairs = [("threshold", str(opts["threshold"])), ("direction", opts["direction"]),
             ("line_threshold", str(opts["line_threshold"]))]
    if opts["types"] != frozenset({"odds_drop"}) or explicit:
        pairs.append(("types", ",".join(sorted(opts["types"]))))
    for name in ("event_id", "bookmakers", "markets", "kinds", "sports"):
        if name in opts:
            pairs.append((name, ",".join(sorted(opts[name]))))
    return pairs, "sports" in opts


def own_engine(opts: dict[str, Any]) -> DropEngine:
    keywords = dict(opts)
    if "steam" in opts["types"]:  # the server's steam settings (ServeConfig's defaults)
        keywords.update(steam_threshold=10, steam_line_threshold=0.5)
    return DropEngine(**keywords)


#: Line series, their lines in order (half and whole points, the key numbers 3 and 7, a quarter line).
LINE_SERIES: dict[str, tuple[float, ...]] = {
    "spread_home": (-7, -4, -3.5, -3.25, -3, -2.5), "total_over": (44, 44.5, 45, 45.5),
    "player_points:A:B@C:over": (24.5, 25.5),
}
LADDER = (-130, -120, -115, -110, -105, 100, 105, 110, 120)


@st.composite
def line_streams(draw: st.DrawFn, max_len: int = 40) -> list[Quote]:
    """Quotes of one event at four books on a few line series and the moneyline. Each book's
    line walks its series with a drift the stream draws (so several books often move the same
    way: steam), and every line-series rule is met on the way: moves of a quarter, half and
    whole point, moves back, repeats, suspensions, line-only observations, invalid prices,
    stale and equal times."""
    books = ("pinnacle", "draftkings", "fanduel", "betmgm")
    series = ("spread_home",) * 4 + (*LINE_SERIES, "h2h_home")
    drift = draw(st.sampled_from((1, -1)))
    at: dict[tuple[str, str], int] = {}
    t, out = 1_747_000_000_000, []
    for _ in range(draw(st.integers(0, max_len))):
        book, name = draw(st.sampled_from(books)), draw(st.sampled_from(series))
        what = draw(st.sampled_from(("price",) * 6 + ("null", "line_only", "invalid")))
        t += draw(st.sampled_from((1_000, 1_000, 1_000, 0, 30_000, -5_000, 400_000)))
        price: float | None = draw(st.sampled_from(LADDER)) if what == "price" else 50 if what == "invalid" else None
        if name == "h2h_home":
            out.append(Quote("americanfootball_nfl", "g", book, name, price, t))
            continue
        lines = LINE_SERIES[name]
        i = at.get((book, name), len(lines) // 2) + draw(st.sampled_from((0, drift, drift, -drift)))
        at[book, name] = i = min(max(i, 0), len(lines) - 1)
        out.append(Quote("americanfootball_nfl", "g", book, f"{name}@{lines[i]:g}", price, t,
                         line_only=what == "line_only"))
    return out


#: Streams of every kind (quote_streams: prices at many keys) and, twice as often, line streams.
STREAMS = st.one_of(quote_streams(max_len=30), line_streams(), line_streams())


@settings(max_examples=100, deadline=None)
@given(STREAMS, st.lists(connections(), min_size=1, max_size=3), st.data())
def test_detecting_once_and_filtering_equals_an_engine_per_connection(
    quotes: list[Quote], conns: list[tuple[dict[str, Any], bool]], data: st.DataObject
) -> None:
    srv = DropServer(ManualSource(), ServeConfig(evict_idle_s=0, evict_started_s=0))
    steady = []
    for opts, explicit in conns:
        pairs, multi = query(opts, explicit)
        req = parse_request(pairs, multi=multi)
        steady.append((req.filter, srv.hub.subscribe(req.filter)[0]))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(quotes)), max_size=4)))  # the source's batches
    for lo, hi in zip([0, *cuts], [*cuts, len(quotes)], strict=True):
        srv.ingest(quotes[lo:hi], NOW)
    for (opts, _), (flt, sub) in zip(conns, steady, strict=True):
        got = [e.alert for e in srv.hub.take(sub, 10_000)]
        assert got == own_engine(opts).observe_many(quotes, NOW), opts
        # cut after any alert it got (or before the first) and resumed with that id: the rest, exactly
        entries: list[Entry] = [e for e in srv.hub.buffer if flt.accepts(e.alert)]
        assert [e.alert for e in entries] == got
        at = data.draw(st.integers(0, len(entries)))
        cursor = Cursor(srv.hub.epoch, entries[at - 1].seq if at else 0)
        again, reset = srv.hub.subscribe(flt, cursor)
        assert reset is None
        assert [e.alert for e in srv.hub.take(again, 10_000)] == got[at:]
