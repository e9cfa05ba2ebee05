"""The ``dropengine`` command line: one module per command, thin loops around the core."""

from __future__ import annotations

from .group import main, run

__all__ = ["main", "run"]
