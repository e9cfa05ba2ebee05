"""The simulator after its split (dropengine.sim: profiles, config, pricing, market, rows, feed).

The split must not change one byte of output: the digests below were taken from the
simulator before it was split (commit 06eaa1a, one 1,142-line module) and pin it. Its rows
follow the one vendor row schema (dropengine.formats.vendor) and its quote rows the one
quote column list (dropengine.formats.tables), and no module of the package passes ~600 lines.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

import dropengine.sim
from dropengine.formats.tables import QUOTE_COLUMNS, quote_from_row, table_row
from dropengine.formats.vendor import GAME_FIELDS, META_FIELDS, PROP_FIELDS, price_fields_of, row_kind
from dropengine.sim import simulate
from dropengine.sim.simulate import SimConfig, simulate_envelopes, simulate_quote_rows

_ENC = msgspec.json.Encoder()

# (config, sha256 of the envelopes, sha256 of the quote rows), one JSON document per line
PINNED = [
    (
        SimConfig(events=3, books=6, hours=6, props=True, seed=7),
        "3daff2ee3709ad15cd7d7724b97c84d301346b7db02d96b9346a3941cd8f274b",
        "34abdfcaa2eb0657d9f3258d265398811953447ca90f27e7e4f21d98252636a4",
    ),
    (
        SimConfig(events=2, books=12, hours=5, seed=3, sport_key="baseball_mlb", push_interval_ms=0),
        "b4b27e12a2f726d8e834ff7e2f49adfe8765fb41ce7b3a5262d3a06713227831",
        "c62d60bcb2360e7ceec9dd11d6cbe7a4d80b1b7e72f1b73b41518713f0e609dd",
    ),
]


def digest(docs: Any) -> str:
    return hashlib.sha256(b"".join(_ENC.encode(d) + b"\n" for d in docs)).hexdigest()


@pytest.mark.parametrize(("cfg", "envelopes", "quotes"), PINNED)
def test_output_is_byte_identical_to_the_unsplit_simulator(cfg: SimConfig, envelopes: str, quotes: str) -> None:
    assert digest(simulate_envelopes(cfg)) == envelopes
    assert digest(simulate_quote_rows(cfg)) == quotes


GAME_KEYS = {"kind", "event_id", "bookmaker", "last_update", *META_FIELDS} | {
    name for f in GAME_FIELDS for name in (f.price, f.line) if name is not None
}
PROP_KEYS = {"kind", "event_id", "bookmaker", "last_update", *META_FIELDS, "player", "market_key", "market", "line"} | {
    p for p, _ in PROP_FIELDS
}


def test_every_row_follows_the_vendor_schema() -> None:
    """Each row is of the kind it says, holds only schema fields, and every price field it
    carries decodes (its line is there): the decoder and the simulator share one schema."""
    cfg = SimConfig(events=4, books=8, hours=10, props=True, seed=2)
    kinds = set()
    for env in simulate_envelopes(cfg):
        for row in env.get("data", ()):
            kind = row_kind(row)
            assert kind == row["kind"]
            kinds.add(kind)
            assert set(row) <= (GAME_KEYS if kind == "game" else PROP_KEYS), row
            carried = [k for k in row if k.endswith(("_ml", "_price"))]
            assert sorted(price_fields_of(row, kind)) == sorted(carried), row
    assert kinds == {"game", "prop"}


def test_quote_rows_use_the_one_column_list() -> None:
    rows = list(simulate_quote_rows(SimConfig(events=2, books=3, hours=4, props=True, seed=5)))
    assert rows
    for row in rows[:500]:
        assert tuple(row) == QUOTE_COLUMNS
        assert table_row(quote_from_row(row)) == row
    assert not hasattr(simulate, "QUOTE_COLUMNS")  # one name: formats.tables.QUOTE_COLUMNS


def test_no_module_of_the_simulator_passes_600_lines() -> None:
    package = Path(dropengine.sim.__file__).parent
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in package.glob("*.py")}
    assert {"profiles.py", "config.py", "pricing.py", "market.py", "rows.py", "feed.py"} <= set(sizes)
    assert max(sizes.values()) <= 600, sizes
