"""Write what a finished run shows people: metrics.json, the plots and report.md.

``report.md`` sets each stage's test accuracy beside the study's published figures and how they
were measured, so a reader sees how comparable the two numbers are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

from herbi.common.files import write_json, write_text
from herbi.common.markdown import NONE, Column, pct, table
from herbi.common.run_folder import RunFolder
from herbi.train.data import Dataset
from herbi.train.manifest import Manifest
from herbi.train.openset import Calibration
from herbi.train.plots import plot_confusion, plot_curves, plot_grid
from herbi.train.recipe import Recipe
from herbi.train.recipes.reference import PUBLISHED_NOTE
from herbi.train.trainer import StageResult


def write_metrics(
    run: RunFolder, ds: Dataset, stages: tuple[StageResult, ...], unknown: Calibration
) -> None:
    """``metrics.json``: every stage's scores (per class in sklearn's report form) and the
    unknown threshold's calibration."""
    results = {
        r.stage: {"epochs": r.epochs, "train_images": r.train_images,
                  "wall_seconds": r.wall_seconds, "val": r.val.to_dict(), "test": r.test.to_dict()}
        for r in stages
    }  # fmt: skip
    write_json(run.metrics, {
        "dataset": ds.source, "class_names": ds.class_names, "counts": ds.counts(),
        "final_stage": stages[-1].stage, "stages": results, "unknown": asdict(unknown),
    })  # fmt: skip


def write_plots(run: RunFolder, ds: Dataset, final: StageResult, augmented: tuple) -> None:
    plot_curves(run.history, run.plot("curves"), f"Learning curves — {ds.source}")
    title = f"Test confusion, {final.stage} model — {ds.source}"
    plot_confusion(final.test.confusion, ds.class_names, run.plot("confusion"), title)
    plot_grid(ds.x_train, ds.y_train, ds.class_names, run.plot("samples"), "Training images")
    plot_grid(*augmented, ds.class_names, run.plot("augmented"), "Training set after augmentation")


def write_report(
    run: RunFolder,
    ds: Dataset,
    recipe: Recipe,
    manifest: Manifest,
    stages: tuple[StageResult, ...],
    unknown: Calibration,
    model,
) -> None:
    config = manifest.config
    summary: list[str] = []
    model.summary(print_fn=summary.append, line_length=90)
    comparable = ds.source.startswith("CIFAR-100")
    lines = [
        f"# herbi run: {run.dir.name}",
        "",
        f"- **Data: {ds.source}**"
        + ("" if comparable else " — not CIFAR-100: figures are not comparable with the study's"),
        f"- Recipe `{config.recipe}`, preset `{config.preset}`, seed {config.seed}, "
        f"epochs {config.epochs}, precision {config.precision} ({config.precision_reason})",
        f"- Device: {manifest.device}; wall time {manifest.wall_seconds / 60:.1f} min",
    ]
    if b := manifest.budget:
        lines.append(
            f"- Time budget {b.budget_seconds / 60:.1f} min for the whole command: "
            f"{b.probe_seconds_per_epoch:.1f} s per epoch measured here, "
            f"epochs chosen {b.epochs}"
        )
    lines += [
        f"- Checkpoints picked on the validation split ({len(ds.y_val)} images); "
        f"test split ({len(ds.y_test)} images) only reported.",
        *stage_table(stages, recipe.published),
        *class_table(stages[-1]),
        *unknown_section(unknown),
        *counts_table(ds),
        *["", "## Model", "", "```", "\n".join(summary).rstrip(), "```", ""],
        "Plots: `curves.png`, `confusion.png`, `samples.png`, `augmented.png`.",
        "",
    ]
    write_text(run.report, "\n".join(lines))


def stage_table(stages: tuple[StageResult, ...], published: Mapping[str, float]) -> list[str]:
    """Each stage's accuracy and F1 beside the study's published figure, with how it was got."""
    shown = {stage: pct(accuracy) for stage, accuracy in published.items()}
    columns: list[Column] = [
        ("stage", lambda r: r.stage),
        ("epochs", lambda r: str(r.epochs)),
        ("val acc", lambda r: pct(r.val.accuracy)),
        (
            "test acc (95% CI)",
            lambda r: f"{pct(r.test.accuracy)} ({'–'.join(map(pct, r.test.accuracy_ci95))})",
        ),
        ("macro F1", lambda r: f"{r.test.macro_f1:.3f}"),
        ("minutes", lambda r: f"{r.wall_seconds / 60:.1f}"),
        ("published test acc*", lambda r: shown.get(r.stage, NONE)),
    ]
    note = ["", f"\\* The study's figures: {PUBLISHED_NOTE} (which inflates them)."]
    return ["", *table(columns, stages), *(note if published else [])]


def class_table(final: StageResult) -> list[str]:
    c = final.test.per_class
    columns: list[Column] = [
        ("class", str),
        ("precision", lambda n: f"{c[n].precision:.3f}"),
        ("recall", lambda n: f"{c[n].recall:.3f}"),
        ("F1", lambda n: f"{c[n].f1:.3f}"),
        ("support", lambda n: str(c[n].support)),
    ]
    return ["", f"## Per class, test split ({final.stage} model)", "", *table(columns, c)]


def counts_table(ds: Dataset) -> list[str]:
    counts = ds.counts()
    columns = [("split", str), *((n, lambda s, n=n: str(counts[s][n])) for n in ds.class_names)]
    return ["", "## Images per class", "", *table(columns, counts)]


def unknown_section(u: Calibration) -> list[str]:
    """What the float model answers for images of none of its classes (issue 20's protocol,
    with a held-out class, is ``herbi-bench --openset``)."""
    return [
        "",
        "## Unknown answer (float model)",
        "",
        f"An image whose `{u.score}` score is below **{u.threshold:.4f}** is answered "
        f"`unknown`. The threshold is the split-conformal quantile of the {u.val_images} "
        f"validation images at keep {u.keep}: a new image of a known class is kept with "
        f"probability at least {u.keep:.0%}. Measured: {pct(u.test_kept)} of the test "
        f"images kept; {pct(u.far_ood_rejected)} of {u.far_ood_images} generated "
        "far-out-of-distribution images (noise, flat colours, textures, text) rejected. "
        "Each exported artifact sets its own threshold through its own runtime.",
    ]
