"""The live package has no import cycle: no module of ``dropengine/live`` imports a module
that (directly or through others) imports it back; nor do ``mock`` and ``server``.

Read from the sources with :mod:`ast`, so imports made lazily inside functions and those
under ``TYPE_CHECKING`` count too: a cycle hidden in a function body is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dropengine

PACKAGE = Path(dropengine.__file__).parent
LIVE = "dropengine.live"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``dropengine`` module named by an import statement anywhere in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            # ``from . import x`` names the module ``x`` of that package
            out.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in out if m == "dropengine" or m.startswith("dropengine.")}


def _graph(package: str = "live") -> dict[str, set[str]]:
    files = {_module_name(p): p for p in (PACKAGE / package).rglob("*.py")}
    return {name: {m for m in _imports(path) if m in files and m != name} for name, path in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or ``None``."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for nxt in sorted(graph[node]):
            found = visit(nxt, [*path, node])
            if found is not None:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found is not None:
            return found
    return None


def test_the_graph_sees_the_live_modules() -> None:
    graph = _graph()
    assert {f"{LIVE}.upstream", f"{LIVE}.sse_client", f"{LIVE}.ws_client", f"{LIVE}.fanin"} <= set(graph)
    assert f"{LIVE}.upstream" in graph[f"{LIVE}.fanin"]  # the parser sees relative imports


def test_the_cycle_finder_finds_a_lazy_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", ["live", "mock", "server"])
def test_no_module_imports_a_module_that_imports_it_back(package: str) -> None:
    graph = _graph(package)
    # the package's __init__ re-exports its modules: a module importing the package itself
    # would be a cycle through it, so it is kept in the graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
