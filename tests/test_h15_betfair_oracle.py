"""The Betfair decoder's market state against betfairlightweight's processed output.

``BASIC-1.132153978-processed.json.gz`` holds one MarketBook per input line of the BASIC file
(betfairlightweight's own expected output), so after every message our reconstructed state
must match it: market status, in-play, and per runner its status, last traded price,
removal date and (at the end) starting price. The PRO file has full ladders: its best back
is checked against the ladder rebuilt independently here.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import msgspec

from dropengine.core.odds import decimal_to_american
from dropengine.core.skips import SkipLog
from dropengine.formats.betfair import BetfairDecoder, MarketView

from .conftest import require_data

MARKET = "1.132153978"


def _messages(path: Path) -> list[Any]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines() if line.strip()]


def _state(view: MarketView) -> dict[str, Any]:
    return {
        "status": view.status,
        "inplay": view.in_play,
        "runners": {r.selection_id: (r.status, r.ltp, r.removal_date) for r in view.runners},
    }


def _oracle_state(book: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": book["status"],
        "inplay": book["inplay"],
        "runners": {r["selectionId"]: (r["status"], r["lastPriceTraded"], r["removalDate"]) for r in book["runners"]},
    }


def test_basic_file_state_matches_betfairlightweight_after_every_line() -> None:
    path = require_data("betfair_stream", "BASIC-1.132153978")
    with gzip.open(require_data("betfair_stream", "BASIC-1.132153978-processed.json.gz")) as fh:
        books = json.load(fh)
    messages = _messages(path)
    assert len(messages) == len(books) == 480
    decoder, skips = BetfairDecoder("ltp"), SkipLog()
    statuses = set()
    for lineno, (msg, book) in enumerate(zip(messages, books, strict=True), 1):
        decoder.feed(msg, f"BASIC:{lineno}", skips)
        view = decoder.market(MARKET)
        assert view is not None
        assert _state(view) == _oracle_state(book), f"line {lineno}"
        statuses.add((view.status, view.in_play))
    assert not skips
    # the file goes through every transition the decoder handles
    assert statuses == {("OPEN", False), ("OPEN", True), ("SUSPENDED", True), ("CLOSED", True)}
    final = decoder.market(MARKET)
    assert final is not None
    bsp = {r.selection_id: r.bsp for r in final.runners}
    assert bsp == {r["selectionId"]: r["sp"]["actualSP"] for r in books[-1]["runners"]}
    assert sum(v is None for v in bsp.values()) == 2  # the two non-runners have no starting price
    removed = [r.selection_id for r in final.runners if r.status == "REMOVED"]
    assert sorted(removed) == [9606433, 11198538]


def test_basic_file_quotes_follow_the_state() -> None:
    """Each emitted quote is the runner's ltp (as American) at that line while the market is
    open and the runner active; every runner withdrawn (removed, suspended) got a null quote."""
    path = require_data("betfair_stream", "BASIC-1.132153978")
    decoder, skips = BetfairDecoder("ltp"), SkipLog()
    nulls: dict[str, int] = {}
    priced = 0
    for lineno, msg in enumerate(_messages(path), 1):
        for q in decoder.feed(msg, f"BASIC:{lineno}", skips):
            view = decoder.market(MARKET)
            assert view is not None and q.event_id == MARKET and q.bookmaker == "betfair"
            assert q.last_update == msg["pt"] and q.sport_key == "horse_racing" and q.market_key == "win"
            runner = next(r for r in view.runners if f"win:{r.selection_id}" == q.side)
            if q.price is None:
                nulls[q.side] = nulls.get(q.side, 0) + 1
            else:
                priced += 1
                assert view.status == "OPEN" and runner.status == "ACTIVE"
                assert runner.ltp is not None and q.price == decimal_to_american(runner.ltp)
    # removed runners: one null each, and silence afterwards; the 12 others: the off (in-play
    # boundary) and the suspension before the close
    assert nulls["win:11198538"] == 1 and nulls["win:9606433"] == 1
    assert sorted(n for s, n in nulls.items() if s not in ("win:11198538", "win:9606433")) == [2] * 12
    # 1,208 ltp updates, minus repeats of the same price; no pre-off price is quoted again at the off
    assert priced == 1197


def _best_back(ladder: dict[float, float]) -> float | None:
    live = [p for p, s in ladder.items() if s > 0]
    return max(live) if live else None


def test_pro_file_best_back_is_the_top_of_the_rebuilt_atb_ladder() -> None:
    path = require_data("betfair_stream", "PRO-greyhound-1.197931750")
    decoder, skips = BetfairDecoder("back"), SkipLog()
    ladders: dict[int, dict[float, float]] = {}
    checked = 0
    quotes = 0
    for lineno, msg in enumerate(_messages(path), 1):
        out = decoder.feed(msg, f"PRO:{lineno}", skips)
        quotes += sum(q.price is not None for q in out)
        for mc in msg["mc"]:
            for rc in mc.get("rc", []):
                ladder = ladders.setdefault(rc["id"], {})
                for price, size in rc.get("atb", []):
                    ladder[price] = size
        view = decoder.market("1.197931750")
        assert view is not None
        for r in view.runners:
            assert r.best_back == _best_back(ladders.get(r.selection_id, {})), f"line {lineno} runner {r.selection_id}"
            checked += 1
    assert not skips
    assert checked == 166 * 6 and quotes > 100
    final = decoder.market("1.197931750")
    assert final is not None and final.status == "CLOSED" and not final.in_play
    assert [r.bsp for r in final.runners] == [85.0, 25.0, 6.8, 9.9, 16.56, 1.55]
    assert [r.status for r in final.runners].count("WINNER") == 1
