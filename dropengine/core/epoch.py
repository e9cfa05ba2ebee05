"""The name of an alert sequence (the ``{epoch}`` of an SSE id ``{epoch}-{seq}``), SPEC 7.

One function, used by the single-process server (a fresh epoch per new state) and by the
bus (an alert log's epoch is its stream's creation time), so that both spell epochs alike.
"""

from __future__ import annotations

__all__ = ["new_epoch"]

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_epoch(entropy: int) -> str:
    """A lowercase base36 epoch name from ``entropy`` (the caller supplies randomness or a
    time: the core reads no clock), at most 12 digits (its low-order ones)."""
    n = abs(int(entropy)) or 1
    out = ""
    while n and len(out) < 12:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
    return out
