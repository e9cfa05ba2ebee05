"""The partition rule (core.partition): crc32 of the UTF-8 event id, modulo the count."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropengine.core.errors import ConfigError
from dropengine.core.partition import MAX_PARTITIONS, parse_partition, partition_of


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.integers(1, MAX_PARTITIONS))
def test_partition_is_crc32_modulo_and_in_range(event_id: str, n: int) -> None:
    p = partition_of(event_id, n)
    assert 0 <= p < n
    assert p == zlib.crc32(event_id.encode("utf-8", "surrogatepass")) % n
    assert partition_of(event_id, 1) == 0


def test_known_values_are_stable_across_processes() -> None:
    # fixed numbers: a salted hash() or a changed encoding would move events between partitions
    assert zlib.crc32(b"abc") == 891568578
    assert partition_of("abc", 2) == 0 and partition_of("abc", 7) == 891568578 % 7
    assert partition_of("caf\u00e9", 1000) == zlib.crc32("caf\u00e9".encode()) % 1000


@pytest.mark.parametrize("bad", [0, -1, MAX_PARTITIONS + 1, True, 2.0, "2"])
def test_bad_partition_counts_are_refused_by_name(bad: object) -> None:
    with pytest.raises(ConfigError, match="partitions"):
        partition_of("e", bad)  # type: ignore[arg-type]


def test_parse_partition() -> None:
    assert parse_partition("0/2") == (0, 2) and parse_partition(" 3 / 4 ") == (3, 4)
    for bad in ("2/2", "1", "a/b", "-1/2", "0/0", "", "1/2/3"):
        with pytest.raises(ConfigError, match="partition"):
            parse_partition(bad)
