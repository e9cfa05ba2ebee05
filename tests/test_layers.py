"""The package's folders are its layers; this test keeps them honest.

Every ``import`` in ``dropengine/`` (module level or inside a function, absolute or
relative) is read with :mod:`ast` and checked against two tables: which layers a layer may
import, and which third-party libraries it may import. A second check imports
``dropengine`` in a fresh interpreter and looks at what it loaded: the embedded default
must not pull in the live client, the servers, the mock or any I/O library.

The checker is tested on hand-made violations too, so it cannot pass by seeing nothing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dropengine"

#: layer -> the layers it may import (itself included). ``dropengine/__init__.py`` and
#: ``__main__.py`` are the "top" layer: the public API re-exports the core, the format
#: decoders and the replay loop, and nothing that opens a socket.
ALLOWED_LAYERS: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "formats": frozenset({"core", "formats"}),
    "fast": frozenset({"core", "fast"}),
    "analysis": frozenset({"core", "formats", "fast", "analysis"}),
    "io": frozenset({"core", "formats", "analysis", "io"}),
    "sim": frozenset({"core", "formats", "io", "sim"}),
    "live": frozenset({"core", "formats", "live"}),
    "mock": frozenset({"core", "formats", "io", "mock"}),
    "bus": frozenset({"core", "formats", "io", "live", "bus"}),
    "cluster": frozenset({"core", "formats", "analysis", "io", "cluster"}),
    # live: the one log-redaction filter (live.redaction) the sinks attach to httpx too
    "deliver": frozenset({"core", "formats", "io", "live", "deliver"}),
    "client": frozenset({"core", "formats", "live", "client"}),
    "server": frozenset({"core", "formats", "analysis", "io", "live", "bus", "deliver", "server"}),
    "cli": frozenset({"core", "formats", "fast", "analysis", "io", "sim", "live", "bus", "cluster", "server", "mock",
                      "deliver", "client", "cli", "top"}),
    # live: dropengine.watch loads dropengine.live.watch on first use only (HEAVY below holds that)
    "top": frozenset({"core", "formats", "analysis", "io", "live", "top"}),
}

#: Third-party libraries by layer; anything else outside the standard library is refused.
#: The pure layers get msgspec only; I/O libraries start at ``io``.
THIRD_PARTY: dict[str, frozenset[str]] = {
    "core": frozenset({"msgspec", "typing_extensions"}),
    "formats": frozenset({"msgspec", "typing_extensions"}),
    "fast": frozenset({"msgspec", "typing_extensions", "numpy", "numba", "llvmlite"}),
    "analysis": frozenset({"msgspec", "typing_extensions", "polars", "numpy"}),
    "io": frozenset({"msgspec", "typing_extensions", "polars", "numpy", "rich", "matplotlib"}),
    "sim": frozenset({"msgspec", "typing_extensions", "rich", "polars"}),
    "live": frozenset({"msgspec", "typing_extensions", "httpx", "websockets"}),
    "mock": frozenset({"msgspec", "typing_extensions", "starlette", "sse_starlette", "uvicorn"}),
    "bus": frozenset({"msgspec", "typing_extensions", "nats"}),
    "cluster": frozenset({"msgspec", "typing_extensions", "polars", "numpy", "dask", "distributed"}),
    "deliver": frozenset({"msgspec", "typing_extensions", "httpx"}),
    "client": frozenset({"msgspec", "typing_extensions", "httpx"}),
    "server": frozenset({"msgspec", "typing_extensions", "polars", "starlette", "sse_starlette", "uvicorn", "httpx",
                         "prometheus_client"}),
    "cli": frozenset({"msgspec", "typing_extensions", "click", "rich", "polars", "uvicorn", "httpx"}),
    "top": frozenset({"msgspec", "typing_extensions"}),
}

#: Modules the pure layers must not import even from the standard library: they would let
#: the core touch the network, the disk or the clock.
NO_IO_STDLIB = frozenset({"os", "socket", "time", "asyncio", "pathlib", "io", "subprocess", "shutil", "tempfile",
                          "threading", "select", "selectors", "ssl", "urllib.request", "http.client",
                          "http.server", "gzip", "bz2", "lzma"})
#: Calls that would read the clock or touch a file or the terminal from a pure layer.
NO_IO_CALLS = frozenset({"open", "print", "input", "now", "utcnow", "today", "monotonic", "perf_counter",
                         "time_ns", "getenv"})
PURE = frozenset({"core", "formats"})
#: Pure modules inside I/O layers (their docstrings say so): the rules the I/O around them runs.
PURE_MODULES = frozenset({"dropengine.deliver.rules", "dropengine.client.events", "dropengine.client.query",
                          "dropengine.client.resume"})


def is_pure(module: str) -> bool:
    return layer_of(module) in PURE or module in PURE_MODULES

#: Libraries that ``import dropengine`` must not load (the embedded default stays small).
HEAVY = ("httpx", "httpx_sse", "websockets", "starlette", "sse_starlette", "uvicorn", "polars", "numpy",
         "matplotlib", "rich", "click", "nats", "dask", "distributed", "numba", "llvmlite")


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def layer_of(module: str) -> str:
    """``dropengine.core.engine`` -> ``core``; the package root and ``__main__`` are ``top``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "top"
    if parts[1] == "__main__":  # ``python -m dropengine`` is the command line
        return "cli"
    return parts[1] if parts[1] in ALLOWED_LAYERS else "top"


def module_name(path: Path, root: Path = PACKAGE) -> tuple[str, bool]:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join(parts), is_pkg


def imports_of(source: str, module: str, is_pkg: bool) -> list[tuple[int, str]]:
    """Absolute names of everything a module's source imports, with their line numbers.

    ``from . import x`` is reported as ``package.x`` so that importing a sibling module by
    name counts as importing that module.
    """
    out: list[tuple[int, str]] = []
    package = module if is_pkg else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:
                out.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
            else:
                out.append((node.lineno, target))
    return out


def check_source(source: str, module: str, is_pkg: bool | None = None) -> list[Violation]:
    layer = layer_of(module)
    if is_pkg is None:
        is_pkg = "." not in module
    found: list[Violation] = []
    for line, name in imports_of(source, module, is_pkg):
        top = name.split(".")[0]
        if top == "dropengine":
            target = layer_of(name)
            if name in ("dropengine", "dropengine.__version__"):
                target = "top"
            if target not in ALLOWED_LAYERS[layer]:
                found.append(Violation(module, line, name, f"layer {layer!r} may not import layer {target!r}"))
        elif top in sys.stdlib_module_names or top == "__future__":
            if is_pure(module) and any(name == m or name.startswith(m + ".") for m in NO_IO_STDLIB):
                found.append(Violation(module, line, name, f"the pure layer {layer!r} does no I/O and reads no clock"))
        elif top not in THIRD_PARTY[layer]:
            found.append(Violation(module, line, name, f"layer {layer!r} may not use the library {top!r}"))
    return found


def io_calls(source: str, module: str) -> list[Violation]:
    """Calls in a pure layer that read the clock, the environment, a file or the terminal."""
    if not is_pure(module):
        return []
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in NO_IO_CALLS:
                found.append(Violation(module, node.lineno, f"{name}()", "a pure layer does no I/O and reads no clock"))
    return found


def package_modules() -> list[tuple[Path, str, bool]]:
    return [(p, *module_name(p)) for p in sorted(PACKAGE.rglob("*.py"))]


def test_every_module_belongs_to_a_layer() -> None:
    loose = [m for _, m, is_pkg in package_modules() if m.count(".") == 1 and not is_pkg
             and layer_of(m) == "top" and m != "dropengine.__main__"]
    assert loose == [], f"modules outside the layer folders: {loose}"


def test_layers_import_only_what_they_may() -> None:
    violations = [v for path, mod, is_pkg in package_modules()
                  for v in check_source(path.read_text(encoding="utf-8"), mod, is_pkg)]
    assert violations == [], "\n".join(map(str, violations))


@pytest.mark.parametrize(
    ("module", "source", "why"),
    [
        ("dropengine.core.engine", "from ..live import upstream\n", "may not import layer 'live'"),
        ("dropengine.core.engine", "def f():\n    from dropengine.io import replay\n", "may not import layer 'io'"),
        ("dropengine.core.engine", "import time\n", "does no I/O"),
        ("dropengine.core.keys", "from urllib.request import urlopen\n", "does no I/O"),
        ("dropengine.core.engine", "import polars as pl\n", "library 'polars'"),
        ("dropengine.formats.frames", "from ..analysis.batch import detect\n", "may not import layer 'analysis'"),
        ("dropengine.formats.frames", "from pathlib import Path\n", "does no I/O"),
        ("dropengine.live.upstream", "from ..server import hub\n", "may not import layer 'server'"),
        ("dropengine.io.replay", "from .. import live\n", "may not import layer 'live'"),
        ("dropengine", "from .server import hub\n", "may not import layer 'server'"),
        ("dropengine.deliver.webhook", "from ..server import hub\n", "may not import layer 'server'"),
        ("dropengine.deliver.http", "from ..client import aio\n", "may not import layer 'client'"),
        ("dropengine.client.sse", "from ..io import replay\n", "may not import layer 'io'"),
        ("dropengine.deliver.rules", "import time\n", "does no I/O"),
        ("dropengine.client.resume", "import asyncio\n", "does no I/O"),
        ("dropengine", "import httpx\n", "library 'httpx'"),
    ],
)
def test_the_checker_sees_a_violation(module: str, source: str, why: str) -> None:
    found = check_source(source, module)
    assert len(found) == 1 and why in found[0].why, found


def test_pure_layers_call_no_clock_file_or_terminal() -> None:
    violations = [v for path, mod, _ in package_modules() for v in io_calls(path.read_text(encoding="utf-8"), mod)]
    assert violations == [], "\n".join(map(str, violations))


@pytest.mark.parametrize("call", ["datetime.now(UTC)", "open('x')", "print(1)", "os.getenv('A')", "time.monotonic()"])
def test_the_checker_sees_a_clock_or_file_call(call: str) -> None:
    assert len(io_calls(f"def f():\n    return {call}\n", "dropengine.formats.tables")) == 1
    assert io_calls(f"def f():\n    return {call}\n", "dropengine.io.replay") == []
    assert len(io_calls(f"def f():\n    return {call}\n", "dropengine.deliver.rules")) == 1  # pure in an I/O layer


def test_the_checker_accepts_what_is_allowed() -> None:
    ok = "from __future__ import annotations\nimport math\nimport msgspec\nfrom .errors import ConfigError\n"
    assert check_source(ok, "dropengine.core.engine") == []
    assert check_source("from ..core.quote import Quote\nimport re\n", "dropengine.formats.frames") == []
    assert check_source("import httpx\nfrom ..formats.frames import FrameDecoder\n", "dropengine.live.upstream") == []


def test_import_dropengine_loads_no_live_server_mock_or_io_library() -> None:
    """The embedded default: ``import dropengine`` is the core, the decoders and replay."""
    code = "import sys, dropengine\nprint('\\n'.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(run.stdout.split())
    ours = {m for m in loaded if m.startswith("dropengine.")}
    assert "dropengine.core.engine" in ours  # the check looks at the right interpreter
    assert {layer_of(m) for m in ours} <= ALLOWED_LAYERS["top"], sorted(ours)
    assert sorted(lib for lib in HEAVY if lib in loaded) == []
