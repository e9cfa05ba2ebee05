"""Issue 15: a LICENSE file matching the licence pyproject.toml declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_license_file_matches_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]
    name = declared["text"] if isinstance(declared, dict) else declared
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert name == "MIT"
    assert text.splitlines()[0] == "MIT License"
    assert "Permission is hereby granted, free of charge" in text
    assert "WITHOUT WARRANTY OF ANY KIND" in text
