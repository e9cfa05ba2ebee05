"""Issue 14 (session 16, sig16): the compiled signals path without a routing that can change anything.

- Without a cooldown and without steam (``SignalRouter`` then holds neither), every detected move
  goes and none counts for a steam: ``analysis.batch._with_signals_compiled`` returns the moves whose
  type is asked and whose filter passes, in arrival order, without routing them (no per-move columns
  for the moves not returned). Its alerts (values and table), counters and skips are the stream
  engine's; the compiled routing runs exactly where a cooldown or steam can change the result.
- The line moves' table leaves out the input's text columns the alerts table gathers by row itself
  (market, teams, commence time): the table still holds the stream engine's values in them.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import Quote
from dropengine.core.options import DetectOptions
from dropengine.fast import signals

from .conftest import require_fast
from .strategies import signal_options
from .test_h12_batch_equivalence import check, signal_streams

_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
#: the types sets of a plain routing (signals on: a line move asked, or price drops beside them)
_PLAIN_TYPES = (frozenset({"line_move"}), frozenset({"odds_drop", "line_move"}))


def _with_texts(quotes: list[Quote], data: st.DataObject) -> list[Quote]:
    """The quotes with the text columns the alerts table gathers by row (market, teams, commence
    time) set on some of them, so that a table taking them from the wrong rows differs."""
    texts = st.one_of(st.none(), st.sampled_from(("A", "B", "Chiefs", "")))
    out = []
    for q in quotes:
        if data.draw(st.booleans()):
            q = msgspec.structs.replace(
                q,
                market=data.draw(texts),
                home_team=data.draw(texts),
                away_team=data.draw(texts),
                commence_time=data.draw(texts),
            )
        out.append(q)
    return out


def _routed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records each call of the compiled routing (its moves' count), routing on."""
    calls: list[int] = []
    real = signals.route

    def spy(moves: signals.MoveArrays, options: DetectOptions, **kw: Any) -> signals.Routed:
        calls.append(moves.last_update.shape[0])
        return real(moves, options, **kw)

    monkeypatch.setattr(signals, "route", spy)
    return calls


@_SETTINGS
@given(signal_streams(), signal_options(types=_PLAIN_TYPES, cooldown=False), st.data())
def test_plain_routing_is_the_stream_engine(quotes: list[Quote], opts: dict[str, Any], data: st.DataObject) -> None:
    """No cooldown, no steam: the alerts (values, table rows), counters and stamps are the stream
    engine's (test_h12_batch_equivalence.check), and no move is routed."""
    require_fast()
    with pytest.MonkeyPatch.context() as mp:
        calls = _routed(mp)
        check(_with_texts(quotes, data), opts)
    assert calls == []


@_SETTINGS
@given(signal_streams(), signal_options(), st.data())
def test_routing_runs_where_it_can_change_the_result(
    quotes: list[Quote], opts: dict[str, Any], data: st.DataObject
) -> None:
    """Any types and cooldown: the stream engine's alerts, and the compiled routing ran (once per
    detection) exactly when a cooldown or steam is on."""
    require_fast()
    options = DetectOptions.build(**opts)
    with pytest.MonkeyPatch.context() as mp:
        calls = _routed(mp)
        check(_with_texts(quotes, data), opts)
    routes = options.signals and (options.cooldown_ms > 0 or "steam" in options.types)
    # (check detects twice: plain, and with arrival stamps)
    assert len(calls) == (2 if routes else 0)
