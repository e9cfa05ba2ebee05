"""Headless Chromium for the live-page tests: find the browser, reach its DevTools page."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def devtools_url(proc: subprocess.Popen[str]) -> str:
    """The DevTools WebSocket of the first page of a Chromium started with
    ``--remote-debugging-port=0`` (it prints the browser endpoint on stderr)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "DevTools listening on" in line:
            port = line.split("DevTools listening on ")[1].strip().split(":")[2].split("/")[0]
            for _ in range(100):
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
                time.sleep(0.1)
    raise AssertionError("Chromium did not start its DevTools endpoint")
