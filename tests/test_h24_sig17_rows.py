"""Issue 14 (session 17, sig17): the compiled signals path keeps per row only what it reads.

- Without a routing that can change anything (no cooldown, no steam: ``analysis.batch._routes``),
  nothing reads the rows' codes and key ids after the passes: ``_compiled_passes`` hands the
  signals pass no per-row array (``_Ids``' ``kid``, ``lid``, ``event``, ``book``, ``side`` are
  ``None``); with a routing it hands every one, but the key and series ids without a cooldown
  (``signals.reads_keys``: only a cooldown's keys read them; session 22).
- The line moves' table takes each move's canonical side from ``_Ids.line_side`` (per move, in row
  order), not from a per-row array: per line move, the side id of its quote's canonical side.
- Either way the alerts (values, table rows), counters and stamps are the stream engine's
  (test_h12_batch_equivalence.check), with sides spelled otherwise than canonically and lines.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropengine import Quote
from dropengine.analysis import batch
from dropengine.core.options import DetectOptions
from dropengine.core.sides import canonical_side
from dropengine.fast import signals

from .conftest import require_fast
from .strategies import signal_options
from .test_h12_batch_equivalence import check, signal_streams

_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
_PER_ROW = ("kid", "lid", "event", "book", "side")


def _respelled(quotes: list[Quote], data: st.DataObject) -> list[Quote]:
    """Some quotes' sides with a line spelled otherwise (``@-3.5`` as ``@-3.50``, ``@47`` as
    ``@47.0``: the same canonical side): a line table taking a move's side from the wrong row or
    the wrong id differs from the stream engine's."""
    out = []
    for q in quotes:
        head, at, line = q.side.rpartition("@")
        # (only where the quote derives its kind and market key from the side: a quote giving them
        # keys its price state by the side as spelled on the stream engine, by its canonical
        # spelling on the batch paths: /tmp/notes/requests-lead.md, sig17)
        if at and q.kind is None and q.market_key is None and data.draw(st.booleans()):
            q = msgspec.structs.replace(q, side=f"{head}@{line}0" if "." in line else f"{head}@{line}.0")
        out.append(q)
    return out


def _spied(mp: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records, per compiled signals pass, what it is handed: the per-row arrays' lengths (None: not
    handed), the line moves' side ids and rows."""
    seen: list[dict[str, Any]] = []
    real = batch._with_signals_compiled

    def spy(cfg: Any, loaded: Any, passes: Any, handed: Any, meta_of: Any, ts: Any, ids: Any) -> Any:
        # (as handed: the signals pass lets the per-row arrays go once read; ``passes``: the price and
        # line passes, handed over since session 20's par20, ff9091f)
        line_pass = passes[1]
        seen.append(
            {
                "rows": {name: None if getattr(ids, name) is None else len(getattr(ids, name)) for name in _PER_ROW},
                "line_side": None if ids.line_side is None else ids.line_side.tolist(),
                "line_rows": None if line_pass is None else line_pass.fired.get_column("_i").to_list(),
                "side_names": list(ids.side_names),
            }
        )
        del line_pass  # (the only references are the list's: the call takes them out)
        return real(cfg, loaded, passes, handed, meta_of, ts, ids)

    mp.setattr(batch, "_with_signals_compiled", spy)
    return seen


@_SETTINGS
@given(signal_streams(), signal_options(), st.data())
def test_per_row_arrays_only_where_routed(quotes: list[Quote], opts: dict[str, Any], data: st.DataObject) -> None:
    """The stream engine's alerts, counters and stamps; the per-row arrays handed exactly when the
    moves are routed; each line move's side id names its quote's canonical side."""
    require_fast()
    quotes = _respelled(quotes, data)
    options = DetectOptions.build(**opts)
    with pytest.MonkeyPatch.context() as mp:
        seen = _spied(mp)
        check(quotes, opts)
    if not options.signals:
        assert seen == []
        return
    routes = options.cooldown_ms > 0 or "steam" in options.types
    assert len(seen) == 2  # (check detects twice: plain, and with arrival stamps)
    for got in seen:
        want_rows = dict.fromkeys(_PER_ROW, len(quotes) if routes else None)
        if routes and not signals.reads_keys(options):
            # (the key and series ids only for a cooldown's keys: let go after the passes, session 22)
            want_rows["kid"] = want_rows["lid"] = None
        elif routes and not options.detects_lines:
            want_rows["lid"] = 1  # (no line series: the pass reads no series id, one -1)
        assert got["rows"] == want_rows
        rows = got["line_rows"]
        if rows is None:
            continue
        assert rows == sorted(rows)
        assert got["line_side"] is not None and len(got["line_side"]) == len(rows)
        names = got["side_names"]
        assert [names[s] for s in got["line_side"]] == [canonical_side(quotes[r].side) for r in rows]
