"""The pictures of a benchmark: accuracy against latency, file size per format, and the fast
recipe's sizes (accuracy against flash)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from herbi.benchmarks.records import Row
from herbi.common.files import save_figure
from herbi.train.sizes import ACCURACY_LABEL, Member


def plot_accuracy_latency(rows: list[Row], threads: str, path: Path, label: str) -> None:
    """One point per format: batch-1 p50 (log scale) against test accuracy with its 95% CI."""
    fig = Figure(figsize=(9, 5))
    ax, markers, colors = fig.subplots(), "os^vD<>pP*Xh", matplotlib.colormaps["tab10"]
    for i, r in enumerate(rows):
        y, (lo, hi) = 100 * r.quality.scores.accuracy, r.quality.scores.accuracy_ci95
        x, yerr = r.timing[threads].batch1.p50_ms, [[y - 100 * lo], [100 * hi - y]]
        name = r.name + (" (rejected at export)" if r.rejected_at_export else "")
        fmt, color = markers[i % len(markers)], colors(i % 10)
        ax.errorbar(x, y, yerr=yerr, fmt=fmt, color=color, capsize=3, label=name)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_xscale("log")
    ax.set_xlabel(f"latency p50, batch 1, {threads} thread(s) (ms, log scale)")
    ax.set_ylabel("test accuracy (%), 95% CI")
    ax.set_title(f"Accuracy vs latency — {label}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    save_figure(fig, path)


def plot_sizes(rows: list[Row], path: Path, label: str) -> None:
    """File size per format, with its ratio to the Keras original (each file drawn once)."""
    rows = list({r.file: r for r in reversed(rows)}.values())[::-1]
    fig = Figure(figsize=(8, 0.45 * len(rows) + 1.5))
    ax, sizes = fig.subplots(), [r.size_kb for r in rows]
    colors = ["tab:grey" if r.kind == "keras" else "tab:blue" for r in rows]
    bars = ax.barh([r.name for r in rows], sizes, color=colors)
    for bar, r in zip(bars, rows, strict=True):
        text = f" {r.size_kb:.0f} KB ({r.size_ratio:.2f}×)"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("file size (KB)")
    ax.set_xlim(0, max(sizes, default=1) * 1.35)
    ax.set_title(f"Size per format — {label}", fontsize=9)
    save_figure(fig, path)


def plot_family(sizes: dict[str, Member], path: Path) -> None:
    """The fast recipe's sizes with a recorded accuracy (``mcu.tables.family_measured``): accuracy
    (mean of 3 seeds, 95% CI) against the int8 model array's flash, each point named, with the
    128 KB line the smallest is held to."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for name, m in sizes.items():
        kb, (mean, half) = m.footprint.flash_bytes / 1024, m.accuracy
        ax.errorbar(kb, 100 * mean, yerr=100 * half, fmt="o", color="tab:blue", capsize=3)
        ax.annotate(f" {name}", (kb, 100 * mean), fontsize=9)
    ax.axvline(128, color="tab:grey", linestyle="--", linewidth=1)
    ax.set_xlabel("int8 model array (KB of flash)")
    ax.set_ylabel("test accuracy (%), mean of 3 seeds, 95% CI")
    ax.set_title(f"The fast recipe's sizes: accuracy against flash ({ACCURACY_LABEL})", fontsize=8)
    ax.grid(True, alpha=0.3)
    save_figure(fig, path)
