"""A ``dropengine`` child whose first import of one module is slowed by a real import hook (a finder
that sleeps before it: ``polars.series`` by default), interrupted by a Ctrl-C while it imports: the
signal lands in the import every time, not once in a dozen runs (break22's B22-2, break23's B23-4;
``distributed.client``, the cluster extra's import at the start of ``replay --workers``: B23-5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

# (a guarded main: a spawned Dask worker re-imports the main module when it is a file; -c is not)
_CHILD = textwrap.dedent(
    """
    import importlib.abc, sys, time

    class SlowImport(importlib.abc.MetaPathFinder):
        def __init__(self, module):
            self.module = module

        def find_spec(self, name, path, target=None):
            if name == self.module:
                sys.stderr.write("IMPORTING\\n")
                sys.stderr.flush()
                time.sleep(2.0)  # the signal comes in here
            return None

    if __name__ == "__main__":
        sys.meta_path.insert(0, SlowImport(sys.argv[1]))
        from dropengine.cli import run

        sys.argv = ["dropengine", *sys.argv[2:]]
        run()
    """
)


def ctrl_c_in_polars_import(args: list[str], timeout_s: float = 100) -> tuple[int, str]:
    """Run ``dropengine *args``, send SIGINT once its first polars import has begun; its exit
    status and standard error."""
    return ctrl_c_in_import(args, "polars.series", timeout_s)


def ctrl_c_in_import(
    args: list[str],
    module: str,
    timeout_s: float = 100,
    signum: int = signal.SIGINT,
    env: dict[str, str] | None = None,
) -> tuple[int, str]:
    """Run ``dropengine *args`` (with ``env`` added to the environment), send SIGINT (or ``signum``)
    once its first import of ``module`` has begun; its exit status and standard error (what it
    printed before the import began included)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, module, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stderr is not None
    before = ""
    while (line := proc.stderr.readline()) != "IMPORTING\n":  # (blocks until the hook runs: the import has begun)
        if not line:
            proc.communicate()
            pytest.fail(f"{module} was not imported where the test expects it: {before[-2000:]!r}")
        before += line
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=timeout_s)
    return proc.returncode, before + err
