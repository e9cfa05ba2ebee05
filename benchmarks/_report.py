"""Table formatting and machine facts shared by the benchmark scripts (run as `python benchmarks/X.py`)."""

from __future__ import annotations

import os


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for j, r in enumerate([header, *rows]):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def machine(cores_note: str = "", memory: bool = False, **libs: str) -> dict[str, str]:
    """CPU model, cores (plus ``cores_note``), optionally memory, Python, ``libs`` and the OS."""
    import platform

    cpu = platform.processor() or platform.machine()
    mem = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        if memory:
            with open("/proc/meminfo", encoding="utf-8") as fh:
                mem = f"{int(fh.readline().split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    out = {"cpu": cpu, "cores": f"{os.cpu_count()} logical ({usable} usable){cores_note}"}
    if memory:
        out["memory"] = mem
    out["python"] = f"{platform.python_implementation()} {platform.python_version()}"
    out.update(libs)
    out["os"] = f"{platform.system()} {platform.release()}"
    return out
