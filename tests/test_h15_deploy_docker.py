"""The Dockerfile and the compose file that builds it, checked statically (issue 15, "Deployable").

No Docker engine runs on this machine (nor in CI): the image is never built here. What can be
checked without one is: every stage is a slim Python image; the final stage runs as a non-root
user created in it; the extras installed are the server and bus extras, and those (with the core
dependencies) provide every third-party module the server and bus layers import (so
prometheus-client is in the image); the entrypoint is the console script pyproject declares;
the labels agree with pyproject (licence, version) and the LICENSE file; the ENV settings are
real ``serve`` variables; what the image copies is in the build context; the compose file's
dropengine services build this Dockerfile. The HEALTHCHECK command itself is run for real, as
the container would run it, against a ``serve`` on 127.0.0.1 (0 when healthy, 1 when nothing
answers).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import click
import yaml

from dropengine.cli.serve import serve_cmd

from .conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        word, _, rest = pending.partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, Any] = tomllib.load(f)["project"]
    return project


def dist(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503): ``dask[distributed]>=1`` -> ``dask``."""
    m = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert m is not None, requirement
    return re.sub(r"[-_.]+", "-", m.group(0)).lower()


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def test_every_stage_is_a_slim_python_image() -> None:
    bases = [args.split()[0] for word, args in instructions() if word == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", b) for b in bases), bases
    low = int(pyproject()["requires-python"].removeprefix(">=").split(".")[1])
    assert all(int(b.split(":")[1].split("-")[0].split(".")[1]) >= low for b in bases)  # requires-python holds


def test_the_final_stage_runs_as_a_non_root_user_it_creates() -> None:
    stage = final_stage()
    users = [args for word, args in stage if word == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    created = [args for word, args in stage if word == "RUN" and "useradd" in args]
    assert created, "no useradd in the final stage"
    m = re.search(r"useradd\b[^&;]*--uid (\d+)[^&;]* (\w+)\s*$", created[0].split("&&")[-1].strip())
    assert m is not None, created
    assert m.group(2) == user and int(m.group(1)) >= 1000
    words = [w for w, _ in stage]
    assert words.index("USER") < words.index("ENTRYPOINT")  # nothing runs as root after the switch


def test_the_server_and_bus_extras_are_installed_and_provide_what_the_server_imports() -> None:
    text = " ".join(args for word, args in instructions() if word == "RUN")
    installed = re.findall(r"pip (?:install|wheel)\b[^&]*?'(?:\.|dropengine)\[([a-z,]+)\]'", text)
    assert len(installed) == 2 and all(set(x.split(",")) == {"server", "bus"} for x in installed), installed
    project = pyproject()
    extras = project["optional-dependencies"]
    provided = {dist(r) for r in [*project["dependencies"], *extras["server"], *extras["bus"]]}
    assert "prometheus-client" in provided and "starlette" in provided and "uvicorn" in provided
    dists = packages_distributions()
    needed: set[str] = set()
    for layer in ("server", "bus", "cli"):
        for path in (ROOT / "dropengine" / layer).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
                for name in names:
                    top = name.split(".")[0]
                    if top != "dropengine" and top not in sys.stdlib_module_names:
                        needed.add(top)
    # what only other commands' extras (cluster, fast, report, live) bring is imported lazily there
    optional_elsewhere = {dist(r) for k in ("cluster", "fast", "report") for r in extras[k]}
    for module in sorted(needed):
        from_dists = {dist(d) for d in dists.get(module, [module])}
        assert from_dists & (provided | optional_elsewhere), f"{module} ({from_dists}) is in no installed requirement"


def test_the_entrypoint_is_the_console_script() -> None:
    stage = final_stage()
    entry = json.loads(next(args for word, args in stage if word == "ENTRYPOINT"))
    assert entry == ["dropengine"] and pyproject()["scripts"]["dropengine"] == "dropengine.cli:run"
    assert json.loads(next(args for word, args in stage if word == "CMD")) == ["--help"]


def test_labels_agree_with_pyproject_and_the_licence() -> None:
    labels = dict(re.findall(r'(org\.opencontainers\.image\.\w+)="([^"]*)"',
                             " ".join(args for word, args in final_stage() if word == "LABEL")))
    project = pyproject()
    assert labels["org.opencontainers.image.title"] == project["name"]
    assert labels["org.opencontainers.image.version"] == project["version"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_env_settings_are_serve_variables_and_the_port_is_exposed() -> None:
    stage = final_stage()
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(args for word, args in stage if word == "ENV")))
    serve_vars = {p.envvar for p in serve_cmd.params if isinstance(p, click.Option)}
    for name in env:
        if name.startswith("DROPENGINE_"):
            assert name in serve_vars, name  # a typo would be silently ignored by serve
    assert env["DROPENGINE_SERVE_HOST"] == "0.0.0.0"
    exposed = [args for word, args in stage if word == "EXPOSE"]
    assert exposed == [env["DROPENGINE_SERVE_PORT"]]


def test_what_the_image_copies_is_in_the_build_context() -> None:
    ignored = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip()]
    for word, args in instructions():
        if word != "COPY":
            continue
        assert "--from" not in args  # (the build stage's wheels are mounted for one RUN, never a layer)
        *sources, _dest = args.split()
        for src in sources:
            assert (ROOT / src).exists(), src
            assert not any(src == i or src.startswith(i.rstrip("/") + "/") for i in ignored), src


def test_the_compose_file_builds_this_dockerfile() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    ours = {n: s for n, s in compose["services"].items() if str(s.get("image", "")).startswith("dropengine")}
    assert {"ingest", "detect-0", "detect-1", "frontend-a", "frontend-b"} <= set(ours)
    exposed = next(args for word, args in final_stage() if word == "EXPOSE")
    for name, service in ours.items():
        build = service["build"]
        context = ROOT / "deploy" / (build if isinstance(build, str) else build["context"])
        assert context.resolve() == ROOT and (context / "Dockerfile").is_file(), name
        serves = service["command"][0] == "serve"
        # the image's HEALTHCHECK asks /healthz: only the servers have one; they listen on the exposed port
        assert service.get("healthcheck", {}).get("disable", False) is not serves, name
        if serves:
            argv = service["command"]
            assert argv[argv.index("--port") + 1] == exposed, name


def _healthcheck_argv() -> list[str]:
    args = next(a for w, a in final_stage() if w == "HEALTHCHECK")
    assert "--interval=" in args and "--retries=" in args
    argv = json.loads(args[args.index("CMD") + 3:].strip())
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def test_the_healthcheck_command_passes_on_a_serving_server_and_fails_without_one(tmp_path: Path) -> None:
    from dropengine.server.app import DropServer
    from dropengine.server.asgi import BackgroundServer
    from dropengine.server.sources import ManualSource

    argv = _healthcheck_argv()
    with BackgroundServer(DropServer(ManualSource()).app) as url:
        port = url.rsplit(":", 1)[1]
        env = {**os.environ, "DROPENGINE_SERVE_PORT": port}
        ok = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
        assert ok.returncode == 0, ok.stderr
    down = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert down.returncode != 0  # nothing listens on that port any more
