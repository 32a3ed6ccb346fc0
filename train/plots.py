"""The run folder's pictures: learning curves, confusion matrix, sample and augmented grids.

Mirrors the study's figures (accuracy/loss per epoch, train vs validation; example images
and their augmented copies) so a run can be compared with it at a glance.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from herbi.common.files import save_figure


def plot_curves(history_csv: Path, path: Path, title: str) -> None:
    """Accuracy and loss per epoch, all stages end to end, with the stage boundaries marked."""
    with open(history_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    fig = Figure(figsize=(12, 4))
    axes = fig.subplots(1, 2)
    x = np.arange(1, len(rows) + 1)
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        ax.plot(x, [float(r[metric]) for r in rows], label=f"train {metric}")
        ax.plot(x, [float(r[f"val_{metric}"]) for r in rows], label=f"validation {metric}")
        starts = [i for i in range(1, len(rows)) if rows[i]["stage"] != rows[i - 1]["stage"]]
        for i in starts:
            ax.axvline(i + 0.5, color="grey", linestyle=":", linewidth=1)
            ax.text(i + 0.7, ax.get_ylim()[1], rows[i]["stage"], va="top", fontsize=8)
        ax.set_xlabel("epoch (all stages)")
        ax.set_title(metric)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def plot_confusion(confusion: list[list[int]], class_names: list[str], path: Path, title: str):
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=class_names).plot(
        ax=ax, colorbar=False, xticks_rotation=45
    )
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def plot_grid(
    images: np.ndarray, labels: np.ndarray, class_names: list[str], path: Path, title: str
):
    """A 5x5 grid of images (uint8 or float in [0, 1]) with their class names."""
    fig = Figure(figsize=(7, 7.6))
    axes = fig.subplots(5, 5)
    for ax, img, label in zip(axes.flat, images[:25], labels[:25], strict=False):
        ax.imshow(img if img.dtype == np.uint8 else np.clip(img, 0, 1))
        ax.set_title(class_names[int(label)], fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
