"""The README's examples run as written and print what the README says they print.

A user's first contact with the library is "The library in ten lines"; if it prints something
else (it printed ``b'{...}'`` once, because ``Drop.to_json`` returns bytes), the README is wrong.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import msgspec

README = Path(__file__).resolve().parents[1] / "README.md"


def _section_code(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match is not None, f"no python block after {heading!r}"
    return match.group(1)


def test_first_example_prints_what_the_readme_shows() -> None:
    code = _section_code("## The library in ten lines")
    # the README shows the printed line as a comment after the print call, wrapped
    printed = re.search(r"^print\(.*\n((?:# .*\n)+)", code, re.M)
    assert printed is not None, "the example's printed output is not shown under its print()"
    expected = "".join(line[2:].strip() for line in printed.group(1).splitlines())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})
    got = out.getvalue().strip()
    assert got == expected
    # and it is the alert as JSON text, not a bytes repr
    assert msgspec.json.decode(got)["delta"] == -10
