"""The documented deployment layout (deploy/docker-compose.yml, deploy/nats/*.conf, Dockerfile)
stays true to the code: every command line in the compose file parses with today's flags,
every NATS node's configuration is valid for the nats-server the ``[bus]`` extra ships, and the
three nodes form one cluster. (No Docker engine runs here: the containers themselves are not
started; the same commands run as real processes in tests/test_h13_e2e_*.py.)"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import click
import pytest
import yaml

from dropengine.cli import main

from .conftest import ROOT, require_nats_server

DEPLOY = ROOT / "deploy"


def _compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert isinstance(doc, dict)
    return doc


def _expand(arg: str) -> str:
    """``${VAR:-default}`` as compose expands it with VAR unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", arg)


def test_every_dropengine_service_command_parses() -> None:
    services = _compose()["services"]
    commands = {name: s["command"] for name, s in services.items() if s.get("image", "").startswith("dropengine")}
    assert {"ingest", "detect-0", "detect-1", "frontend-a", "frontend-b"} <= set(commands)
    partitions = set()
    for name, argv in commands.items():
        argv = [_expand(str(a)) for a in argv]
        cmd = main.commands[argv[0]]
        assert isinstance(cmd, click.Command), name
        ctx = cmd.make_context(argv[0], argv[1:], resilient_parsing=False)  # raises on an unknown flag
        if argv[0] == "detect":
            partitions.add(ctx.params["part"])  # (I, P) after parse_partition
        if argv[0] == "ingest":
            assert "--partitions" in argv and argv[argv.index("--partitions") + 1] == "2"
        if argv[0] in ("ingest", "detect"):
            # what they create (streams; the detectors' lease and checkpoint buckets) must survive a node
            assert ctx.params["replicas"] == 3, name
    assert partitions == {(0, 2), (1, 2)}  # one detector per partition


@pytest.mark.bus
@pytest.mark.parametrize("node", [1, 2, 3])
def test_nats_node_configurations_are_valid(node: int) -> None:
    conf = DEPLOY / "nats" / f"nats-{node}.conf"
    result = subprocess.run([require_nats_server(), "-c", str(conf), "-t"], capture_output=True, text=True,
                            timeout=20, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    text = conf.read_text()
    assert f"server_name: n{node}" in text
    assert all(f"nats-route://nats{i}:6222" in text for i in (1, 2, 3))  # one cluster of three


def test_the_compose_file_mounts_each_node_its_own_config_and_builds_the_dockerfile() -> None:
    services = _compose()["services"]
    for i in (1, 2, 3):
        assert f"./nats/nats-{i}.conf:/etc/nats/nats.conf:ro" in services[f"nats{i}"]["volumes"]
    assert services["frontend-a"]["build"] == ".." and (ROOT / "Dockerfile").is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER dropengine" in dockerfile and "[server,bus]" in dockerfile
    for copied in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert (ROOT / copied).exists(), copied  # the build context has what the image copies
