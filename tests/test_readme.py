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


class _Enough(Exception):
    """Raised from the example's print once it has printed enough alerts."""


def test_client_example_reads_alerts_from_a_real_server() -> None:
    """The README's client snippet, as written (its URL and key swapped for a local server's),
    prints alerts of a real ``serve`` replaying the demo recording (issue 15: "README shows both")."""
    import asyncio
    import textwrap

    from dropengine.core.keys import KeyTable
    from dropengine.server.app import DropServer, ServeConfig
    from dropengine.server.asgi import BackgroundServer
    from dropengine.server.sources import ReplaySource

    code = _section_code("## Python client and `dropengine.watch`")
    demo = README.parent / "fixtures" / "demo_nba_frames.ndjson"
    keys = KeyTable.parse("readme-key-0001 business 10\n")
    server = DropServer(ReplaySource([demo], speed=1000.0), ServeConfig(keys=keys))  # its alerts 3-5.4 s in
    printed: list[str] = []

    def collect(*args: object) -> None:
        printed.append(" ".join(map(str, args)))
        if len(printed) >= 3:
            raise _Enough

    with BackgroundServer(server.app, secrets=keys.keys(), log_level="warning") as url:
        source = code.replace('"http://127.0.0.1:8000"', repr(url))
        assert source != code, "the example's URL changed: update this test"
        body = "async def example():\n" + textwrap.indent(source, "    ")
        scope: dict[str, object] = {"KEY": "readme-key-0001", "print": collect}
        exec(compile(body, str(README), "exec"), scope)

        async def run() -> None:
            async with asyncio.timeout(30):
                await scope["example"]()  # type: ignore[operator]

        with contextlib.suppress(_Enough):
            asyncio.run(run())
    assert len(printed) >= 3
    book, side, prev, arrow, new = printed[0].split()
    assert book in ("pinnacle", "draftkings")
    assert arrow == "->" and side.startswith(("h2h_", "spread_", "total_")) and prev != new
