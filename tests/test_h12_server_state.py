"""Issue 12: ``serve --state`` with line moves and steam: the ring keeps every alert type, the
engine snapshot its line series and steam windows, so a restart neither re-primes a line nor
forgets the books already moving; a state saved with other detection settings (another
``--steam-*``, or the price-drops-only server of issue 11) primes again instead of detecting
with settings nobody asked for; version 2 state files are read."""

from __future__ import annotations

import hashlib
import json
import struct
import time
from pathlib import Path

from dropengine import DropEngine, Quote
from dropengine.core.options import KeyNumbers
from dropengine.server.app import DropServer, ServeConfig
from dropengine.server.hub import Hub
from dropengine.server.sources import ManualSource
from dropengine.server.state import MAGIC, encode_state, load_state

from .test_h12_server_signals import NFL, Start, read, start

__all__ = ["start"]  # the fixture, shared with the signals tests (a name pytest finds here)


def _spread(book: str, line: float, lu: int) -> Quote:
    return Quote(NFL, "g1", book, f"spread_home@{line:g}", -110, lu)


def test_a_restart_keeps_the_ring_of_every_type_and_the_line_and_steam_state(start: Start, tmp_path: Path) -> None:
    state = tmp_path / "serve.state"
    # the alerts are stamped with the recording's time (a year ago): a ring kept by age keeps them
    config = {"state_path": state, "state_every_s": 600, "buffer_age_s": 10**9}
    url, srv, src = start(**config)
    src.send(src.h2h("pinnacle", -110), src.h2h("pinnacle", -125))  # alert 1: a drop
    for book in ("pinnacle", "draftkings", "fanduel"):
        src.send(src.spread(book, -3, -110))
    src.send(src.spread("pinnacle", -3.5, -110))  # alert 2: a line move; pinnacle counts for steam
    seen = read(url, 2, types="line_move", since="0")
    cursor = seen[1][0]
    src.send(src.spread("draftkings", -3.5, -110))  # alert 3: unseen; two books now, no steam yet
    before = [(e.seq, e.alert.to_json()) for e in srv.hub.buffer]
    srv.save(final=True)  # as at a clean stop

    url2, srv2, src2 = start(**config)
    assert srv2.hub.epoch == srv.hub.epoch
    assert [(e.seq, e.alert.to_json()) for e in srv2.hub.buffer] == before  # every type, byte for byte
    src2.clock = src.clock
    src2.send(src2.spread("fanduel", -3.5, -110))  # its series kept -3 (no re-priming); the third book
    frames = read(url2, 4, types="line_move,steam", last_event_id=cursor)
    alerts = [json.loads(d) for _, d in frames[1:]]
    assert [(a["type"], a.get("bookmaker")) for a in alerts] == [
        ("line_move", "draftkings"), ("line_move", "fanduel"), ("steam", None)]
    assert [b["bookmaker"] for b in alerts[2]["books"]] == ["pinnacle", "draftkings", "fanduel"]
    assert [i for i, _ in frames[1:]] == [f"{srv.hub.epoch}-{n}" for n in (3, 4, 5)]


def test_a_state_saved_with_other_detection_settings_primes_again(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    now = int(time.time() * 1000)
    flags = {"steam_groups": "betmgm+borgata", "steam_threshold": 12.5,
             "key_numbers": KeyNumbers.parse("americanfootball_nfl:spreads=3,7,10.5;basketball_*:spreads=")}
    first = DropServer(ManualSource(), ServeConfig(state_path=path, steam_books=3, **flags))
    first.restore(now)
    first.ingest([_spread(b, -3, 1_000) for b in ("pinnacle", "draftkings")], now)
    first.ingest([_spread("pinnacle", -3.5, 2_000)], now)  # a line move
    first.save(final=True)
    assert first.engine.keys_held > 0

    same = DropServer(ManualSource(), ServeConfig(state_path=path, steam_books=3, **flags))  # the same flags
    message = same.restore(now)
    assert "prime again" not in message and same.engine.keys_held == first.engine.keys_held

    other = DropServer(ManualSource(), ServeConfig(state_path=path, steam_books=2, steam_threshold=15))
    message = other.restore(now)
    assert "steam_books 3 -> 2" in message and "steam_threshold 12.5 -> 15" in message
    assert "steam_groups betmgm+borgata -> none" in message
    # prices and line series follow the same rules under the new steam settings: kept (no
    # re-priming); the steam windows counted moves under other settings: they start again
    assert "kept prices, lines of its" in message and "steam" not in message.split("kept")[1], message
    assert other.engine.keys_held == first.engine.keys_held
    assert other.engine.options == ServeConfig(steam_books=2, steam_threshold=15).detect_options()
    assert other.hub.epoch == first.hub.epoch and len(other.hub.buffer) == 1  # ring and ids kept
    # draftkings' line series goes on (a line move at once), but pinnacle's earlier move is not in
    # a steam window any more, so two books do not make a steam across the restart
    assert [a.type for a in other.ingest([_spread("draftkings", -3.5, 3_000)], now)] == ["line_move"]


def _seal(body_state: bytes, version: int) -> bytes:
    """``body_state`` (a state file's bytes) re-sealed with another header version."""
    n = struct.calcsize(">23sHQ")
    body = body_state[n + 32:]
    head = struct.pack(">23sHQ", MAGIC, version, len(body))
    return head + hashlib.sha256(head + body).digest() + body


def test_a_version_2_state_of_the_price_drops_only_server_is_read(tmp_path: Path) -> None:
    """What the issue-11 server saved: version 2, an engine detecting price drops at 1 cent, a
    ring of drops. Read: the ring and the ids go on; its prices are kept (the price rules are the
    same at 1 cent), saying which settings differ."""
    now = int(time.time() * 1000)
    engine = DropEngine(threshold=1)
    hub = Hub("oldepoch")
    hub.publish(engine.observe_many([Quote(NFL, "g", "pinnacle", "h2h_home", p, lu)
                                     for p, lu in ((-110, 1), (-130, 2))], now), now)
    path = tmp_path / "old.state"
    path.write_bytes(_seal(encode_state(engine, hub.dump(), {}, now), 2))
    state, message = load_state(path, now, 600)
    assert state is not None, message
    assert [e.alert.to_json() for e in state.hub.buffer] == [e.alert.to_json() for e in hub.buffer]
    (tmp_path / "old.state.ids").write_text("")  # no reservation: a new epoch, as for any such state
    srv = DropServer(ManualSource(), ServeConfig(state_path=path))
    message = srv.restore(now)
    assert "kept prices of its 1 keys" in message and "types" in message, message
    assert [a.type for a in srv.engine.observe(Quote(NFL, "g", "pinnacle", "h2h_home", -150, 3))] == ["odds_drop"]
    path.write_bytes(_seal(encode_state(engine, hub.dump(), {}, now), 4))
    state, message = load_state(path, now, 600)
    assert state is None and "has version 4 (this dropengine reads 2, 3" in message

