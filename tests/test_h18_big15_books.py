"""big15 (issue 14): the steams' books written in two threads, by halves of the steams
(:data:`batch._BOOKS_SPLIT` counted moves and more, forced here down to one; only when no move
is returned beside the steams), give the table
the pure path gives and the stream engine's values (test_h15_batch14_columnar's ``check``);
and steam without line_move (no line move's text written but for the moves completing a
steam) is checked there too."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given

from dropengine import Quote
from dropengine.analysis import batch

from .test_h14_steam_batch import _by_hand, steam_options, steam_streams
from .test_h15_batch14_columnar import _SETTINGS, check


@_SETTINGS
@given(steam_streams(), steam_options())
def test_books_in_halves_are_the_pure_paths(quotes: list[Quote], opts: dict[str, Any]) -> None:
    calls: list[int] = []
    real = batch._books_compiled

    def spy(start: Any, *args: Any) -> Any:
        # (every half's books go through here first: the compiled writer, or the polars way after it)
        calls.append(len(start) - 1)
        return real(start, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "_BOOKS_SPLIT", 1)
        mp.setattr(batch, "_books_compiled", spy)
        res = check(quotes, opts)
    # (in halves only where no move is returned beside the steams: the caller waits for the books)
    steams = res.counters.steam if set(opts["types"].split(",")) == {"steam"} else min(res.counters.steam, 1)
    # two halves where there are two steams or more (the split is taken: the test can fail)
    # (the halves' threads finish in either order)
    halves = [] if not res.counters.steam else [res.counters.steam] if steams == 1 else [
        steams // 2, steams - steams // 2]
    assert sorted(calls) == sorted(halves)


@pytest.mark.parametrize("types", ["steam", "odds_drop,steam", "line_move,steam"])
def test_steams_by_hand_in_halves(types: str) -> None:
    # the steams by hand, then again a day later on another event: two steams at least
    quotes = _by_hand()
    twice = quotes + [msgspec.structs.replace(q, event_id=f"{q.event_id}-2", last_update=q.last_update + 86_400_000)
                      for q in quotes]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "_BOOKS_SPLIT", 1)
        res = check(twice, {"types": types, "cooldown_ms": 0, "steam_books": 2})
    # two steams: in halves where steam is the only type; beside returned moves the books are written
    # whole (the same table either way: check() compares with the pure path and the engine)
    assert res.counters.steam >= 2
