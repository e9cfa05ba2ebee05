"""Issue 12: the live page shows line moves and steam, distinctly from price drops, and its
checkboxes choose the types. Headless Chromium against a real ``serve`` app (uvicorn on
loopback); skipped without Chromium unless DROPENGINE_REQUIRE_BROWSER=1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from dropengine import Quote
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.asgi import BackgroundServer

from ._browser import find_chromium
from .test_h10_edges_page import STATUS, Browser
from .test_h12_server_signals import KEY, KEYS, NFL, Source

ROWS = """Array.from(document.querySelectorAll('tr.alert')).map(r => ({
    cls: r.className, cells: Array.from(r.cells).map(c => c.textContent),
    marks: Array.from(r.querySelectorAll('mark.key')).map(m => m.textContent),
    keys: Array.from(r.querySelectorAll('span.key')).map(m => m.textContent),
    leader: Array.from(r.querySelectorAll('b.leader')).map(m => m.textContent)}))"""


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, DropServer, Source]]:
    source = Source()
    srv = DropServer(source, ServeConfig(keys=KEYS, buffer_age_s=10**9))  # alerts stamped a year ago stay
    with BackgroundServer(srv.app, secrets=KEYS.keys()) as url:
        yield url, srv, source


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, served: Any) -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None:
        reason = "no Chromium found (apt install chromium)"
        if os.environ.get("DROPENGINE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + "; DROPENGINE_REQUIRE_BROWSER=1 makes this a failure")
        pytest.skip(reason)
    b = Browser(binary, tmp_path_factory.mktemp("chromium"))
    try:
        yield b
    finally:
        b.close()


def page(url: str, **params: str) -> str:
    return f"{url}/?" + urlencode({"autostart": "1", "sport": "all", "since": "0", "apiKey": KEY, **params})


def test_line_moves_and_steam_rows_are_shown_distinctly(
    browser: Browser, served: tuple[str, DropServer, Source]
) -> None:
    url, _, src = served
    src.send(src.h2h("pinnacle", -110, event="p1"), src.h2h("pinnacle", -130, event="p1"))  # a drop
    for book in ("draftkings", "fanduel", "betmgm"):
        src.send(src.spread(book, -3, -110, event="p1"))
    src.send(src.spread("draftkings", -3.5, 100, event="p1", ms=2_000))  # onto -3.5 from the key number 3
    src.send(src.spread("fanduel", -3.5, -105, event="p1", ms=2_000))
    src.send(src.spread("betmgm", -2.5, -110, event="p1", ms=2_000))  # the other way: no steam with them
    src.send(src.spread("betmgm", -4, -110, event="p1", ms=41_500))  # through 3, onto... 4: the third book
    browser.open(page(url, types="line_move,steam", event_id="p1"))
    boxes = browser.evaluate("Array.from(document.querySelectorAll('input[name=types]')).map(b => b.checked)")
    assert boxes == [False, True, True]  # the page URL's types prefill the checkboxes
    rows = browser.wait(f"(() => {{ const r = {ROWS}; return r.length >= 5 ? r : null; }})()")
    # newest first: the steam, then betmgm's two line moves, fanduel's, draftkings'
    assert [r["cls"].split()[1] for r in rows] == ["steam", "line_move", "line_move", "line_move", "line_move"]
    steam, through, back, fanduel, draftkings = rows
    assert "-3 -> -3.5" in draftkings["cells"] and "-0.5" in draftkings["cells"]
    assert draftkings["marks"] == ["-3"] and draftkings["keys"] == ["key 3"]  # onto/off a key number: marked
    assert any("price -110 -> +100" in c for c in draftkings["cells"]), draftkings
    assert "Denver Broncos @ Kansas City Chiefs" in draftkings["cells"]
    assert "-2.5 -> -4" in through["cells"] and through["keys"] == ["key 3", "key 4"] and through["marks"] == ["-4"]
    assert "+0.5" in back["cells"] and "toward_dog" in back["cells"]
    assert "fanduel" in fanduel["cells"] and "-3 -> -3.5" in fanduel["cells"] and fanduel["keys"] == ["key 3"]
    assert "3 books" in steam["cells"] and steam["leader"] == ["draftkings"]
    assert "draftkings \u2192 fanduel \u2192 betmgm" in steam["cells"], steam  # the order they moved in
    assert "lag 45.5 s" in steam["cells"], steam  # 2 + 2 + 41.5 s from draftkings to betmgm
    detail = steam["cells"][-1]
    assert detail.startswith("leader draftkings: draftkings -3 -> -3.5") and "betmgm -2.5 -> -4" in detail, detail
    assert not any("drop" in r["cls"] for r in rows)  # the drop was not asked for


def test_the_checkboxes_choose_the_types_the_stream_asks_for(
    browser: Browser, served: tuple[str, DropServer, Source]
) -> None:
    url, _, src = served
    src.send(src.h2h("pinnacle", -110, event="p2"), src.h2h("pinnacle", -125, event="p2"))
    src.send(Quote(NFL, "p2", "pinnacle", "total_over@44.5", -110, src.tick()),
             Quote(NFL, "p2", "pinnacle", "total_over@45.5", -110, src.tick()))
    browser.call("Network.enable")
    try:
        browser.events.clear()
        browser.open(page(url, event_id="p2"))  # default: price drops only, the URL without types
        rows = browser.wait(f"(() => {{ const r = {ROWS}; return r.length ? r : null; }})()")
        assert [r["cls"].split()[1] for r in rows] == ["odds_drop"]
        assert "-125" in rows[0]["cells"] and "-15" in rows[0]["cells"]
        browser.evaluate("document.querySelector('input[value=line_move]').checked = true;"
                         "document.querySelector('input[name=line_threshold]').value = '1';"
                         "document.getElementById('go').click()")
        rows = browser.wait(f"(() => {{ const r = {ROWS}; return r.length >= 2 ? r : null; }})()")
        assert [r["cls"].split()[1] for r in rows] == ["line_move", "odds_drop"]
        assert "44.5 -> 45.5" in rows[0]["cells"] and "+1" in rows[0]["cells"] and rows[0]["keys"] == []
        browser.evaluate("for (const b of document.querySelectorAll('input[name=types]')) b.checked = false;"
                         "document.getElementById('go').click()")
        status = browser.wait(f"(() => {{ const s = {STATUS}; return /alert type/.test(s) ? s : null; }})()")
    finally:
        browser.call("Network.disable")
    assert status == "choose at least one alert type"
    urls = [e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"
            and "/v1/odds-drop" in e["params"]["request"]["url"]]
    assert len(urls) == 2, urls  # none for the empty choice
    assert "types=" not in urls[0] and "line_threshold" not in urls[0]
    assert "types=odds_drop%2Cline_move" in urls[1] and "line_threshold=1" in urls[1]
