"""Backtest output files: tables (Parquet, CSV), a Markdown report and PNG charts.

matplotlib is an optional dependency (``pip install 'dropengine[report]'``); it is imported
only here, with the non-interactive Agg backend, so nothing opens a window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from ..analysis.backtest import Backtest
from ..core.errors import ConfigError

__all__ = ["write_report"]


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:+.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def markdown(bt: Backtest, command: str | None = None) -> str:
    """The summary as a Markdown report (one table per dimension)."""
    cfg = bt.config
    lines = [
        "# dropengine backtest",
        "",
        f"- close: **{cfg.close}**; take: **{cfg.take}**"
        + (f" (+{cfg.latency_ms} ms)" if cfg.take == "best-other" else "")
        + f"; close measured on: **{cfg.sharp or 'the taking book'}**; devig: **{cfg.devig}**",
        "- early close: " + ("off" if cfg.early_close_minutes is None else
                             f"more than {cfg.early_close_minutes:g} minutes before commence (no CLV)"),
        *([f"- types: {', '.join(bt.types)}"] if bt.types != ("odds_drop",) else []),
        f"- alerts: {bt.alerts.height}; with a close: {bt.alerts.get_column('clv').is_not_null().sum()}",
    ]
    status = bt.alerts.group_by("close_status").len().sort(["len", "close_status"], descending=[True, False])
    lines.append("- close status: " + (", ".join(f"{s} {n}" for s, n in status.iter_rows()) or "none"))
    lines += [f"- warning: {w}" for w in bt.warnings]
    if command:
        lines += ["", "```", command, "```"]
    cols = ["group", "alerts", "closed", "early_close", "mean_clv", "median_clv", "beat_close", "ci95_low",
            "ci95_high", "mean_novig_clv"]
    if "line_moved" in bt.summary.columns:  # with signals (--types beyond odds_drop)
        cols += ["line_moved", "line_closed", "mean_line_clv"]
    for dim in bt.summary.get_column("dimension").unique(maintain_order=True).to_list():
        part = bt.summary.filter(pl.col("dimension") == dim)
        lines += ["", f"## by {dim}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for row in part.select(cols).iter_rows():
            lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    lines += ["", "CLV is `d_taken / d_close - 1`; no-vig CLV is `p_fair_close * d_taken - 1`;",
              "the 95% interval is mean ± 1.96·sd/√n over alerts with a close."]
    if "line_moved" in bt.summary.columns:
        lines += ["`line_moved`: alerts whose taken line was no longer the book's line at the close (no price CLV);",
                  "`mean_line_clv`: mean points by which the taken line beat the closing line, over the",
                  "`line_closed` alerts that have a closing line."]
    lines.append("")
    return "\n".join(lines)


CHARTS = ("clv_distribution.png", "cumulative_clv.png")


#: Written into every chart's PNG metadata: a chart in ``out`` is removed only when it carries it.
CHART_MARK = "dropengine backtest chart"
_PNG_META = {"Description": CHART_MARK}


def _ours(path: Path) -> bool:
    """Whether ``path`` is a chart a previous run wrote (a file with our PNG text chunk)."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(b"\x89PNG") and CHART_MARK.encode() in head


def write_report(bt: Backtest, out: Path, command: str | None = None) -> list[Path]:
    """Write the per-alert table, the summary, the Markdown report and the charts into ``out``.

    Charts are drawn only when at least one alert has a close (an empty chart says nothing);
    otherwise a previous run's charts in ``out`` are removed (only files this function drew:
    they carry :data:`CHART_MARK`), so the directory never mixes runs. matplotlib is needed only
    to draw; without it, a run with charts to draw is refused before anything is written.
    Returns the files written; a path that cannot be written is a ConfigError naming ``out``.
    """
    table = bt.alerts
    clv = table.filter(pl.col("clv").is_not_null()).sort("last_update")
    plt: Any = None
    if clv.height:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise ConfigError("out: charts need matplotlib; install it with pip install 'dropengine[report]'") from None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"out: cannot create {str(out)!r}: {exc.strerror or exc}") from None
    try:
        return _write(bt, out, command, clv, plt)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(f"out: cannot write into {str(out)!r}: {getattr(exc, 'strerror', None) or exc}") from None


def _write(bt: Backtest, out: Path, command: str | None, clv: pl.DataFrame, plt: Any) -> list[Path]:
    written = []
    table = bt.alerts
    for name, write in (("alerts.parquet", table.write_parquet), ("alerts.csv", table.write_csv),
                        ("summary.csv", bt.summary.write_csv)):
        write(out / name)
        written.append(out / name)
    (out / "report.md").write_text(markdown(bt, command))
    written.append(out / "report.md")

    if clv.height == 0:
        for name in CHARTS:
            if (out / name).is_file() and _ours(out / name):
                (out / name).unlink()
        return written
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.hist(clv.get_column("clv").to_list(), bins=50, color="#3a6ea5")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("price CLV (d_taken / d_close - 1)")
    ax.set_ylabel("alerts")
    ax.set_title(f"CLV distribution ({bt.config.close}, take {bt.config.take}, n={clv.height})")
    fig.tight_layout()
    fig.savefig(out / "clv_distribution.png", metadata=_PNG_META)
    plt.close(fig)
    written.append(out / "clv_distribution.png")

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    times = [t / 3_600_000 for t in clv.get_column("last_update").to_list()]
    t0 = times[0] if times else 0.0
    ax.plot([t - t0 for t in times], clv.get_column("clv").cum_sum().to_list(), color="#3a6ea5", label="price CLV")
    if clv.get_column("novig_clv").is_not_null().any():
        ax.plot([t - t0 for t in times], clv.get_column("novig_clv").fill_null(0).cum_sum().to_list(),
                color="#c0504d", label="no-vig CLV")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("hours since the first alert")
    ax.set_ylabel("cumulative CLV (units staked: 1 per alert)")
    ax.set_title("Cumulative CLV over time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "cumulative_clv.png", metadata=_PNG_META)
    plt.close(fig)
    written.append(out / "cumulative_clv.png")
    return written
