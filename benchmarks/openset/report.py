"""The open-set protocol's summary: every figure as a mean over runs with its 95% interval.

Runs (held-out classes x seeds) are the unit of repetition: a fold's figures depend on which
class is missing and a seed's on the split and the weights, so the interval is a t-interval
over runs (Student's t with runs - 1 degrees of freedom), not over images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from herbi.common.files import write_json, write_text

OPENSET_JSON, OPENSET_MD = "openset.json", "openset.md"
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """The mean over ``n`` runs and the half-width of its 95% t-interval (None for one run)."""

    mean: float
    half_width: float | None
    n: int


def interval(values: list[float]) -> Interval:
    v = np.asarray(values, np.float64)
    if len(v) < 2:
        return Interval(float(v.mean()), None, len(v))
    t = stats.t.ppf(0.5 + CONFIDENCE / 2, len(v) - 1)
    return Interval(float(v.mean()), float(t * v.std(ddof=1) / math.sqrt(len(v))), len(v))


def figures(rates: dict) -> dict[str, float]:
    """One score's rates as flat figures, in the tables' order: AUROC, the held-out class
    rejected, known images kept, the other unknown sets rejected, closed-set accuracy."""
    near, *others = (f"rejected {k}" for k in rates["rejected"])
    flat = {f"rejected {k}": v for k, v in rates["rejected"].items()}
    order = ["auroc", near, "kept", *others, "accuracy"]
    return {k: (flat | rates)[k] for k in order}


def summarize(runs: list[dict], section: str) -> dict[str, dict[str, Interval]]:
    """``section`` (``artifacts`` or ``keras``) of every run -> row -> figure -> Interval."""
    rows = {name for run in runs for name in run[section]}
    ordered = [name for name in runs[0][section] if name in rows]
    table = {}
    for name in ordered:
        per_run = [figures(run[section][name]) for run in runs if name in run[section]]
        table[name] = {k: interval([f[k] for f in per_run]) for k in per_run[0]}
    return table


def cell(value: Interval, figure: str) -> str:
    """AUROC as 0.000; a rate in percent; '± half-width' when there are two runs or more."""
    scale, digits = (1, 3) if figure == "auroc" else (100, 1)
    text = f"{value.mean * scale:.{digits}f}"
    return text if value.half_width is None else f"{text} ± {value.half_width * scale:.{digits}f}"


def heading(figure: str) -> str:
    """A figure's column or row title."""
    names = {
        "auroc": "AUROC (held-out class)",
        "rejected held_out": "held-out class rejected %",
        "kept": "known kept %",
        "rejected far_ood": "far-OOD rejected %",
        "accuracy": "closed-set accuracy %",
    }
    return names.get(figure, f"{figure.removeprefix('rejected ')} rejected %")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines."""
    return ["| " + " | ".join(cells) + " |" for cells in [header, ["---"] * len(header), *rows]]


def markdown(report: dict) -> str:
    """The report as Markdown: its labels, then artifacts side by side and the float scores."""
    p, artifacts, keras = report["protocol"], report["artifacts"], report["keras"]
    figs = list(next(iter(artifacts.values())))
    lines = [
        "# Open-set protocol (herbi-bench --openset)",
        "",
        f"- data: `{p['data']}`; held out in turn: {', '.join(p['held_out'])}; "
        f"seeds: {', '.join(map(str, p['seeds']))}; runs: {len(report['runs'])}",
        f"- training: herbi-train --recipe fast, preset {', '.join(report['preset'])}, "
        f"{p['epochs']} epochs; precision {', '.join(report['precision'])}",
        f"- machine: {report['machine']['cpu_label']}",
        f"- unknown score in the artifacts: {p['score']}; thresholds keep {p['keep']} "
        "(split-conformal on each run's validation images)",
        f"- unknowns: the held-out class (all its train and test images), far_ood "
        f"({p['far_ood']} generated: noise, flat colour, texture, text)"
        + "".join(f", {Path(u).name} (`{u}`)" for u in p["unknowns"]),
        "- mean over runs ± 95% t-interval half-width; known = the other classes' test images",
        "",
        "## Artifacts (herbi.runtime, each at its own contract's threshold)",
        "",
        *table(
            ["figure", *artifacts],
            [[heading(f), *(cell(a[f], f) for a in artifacts.values())] for f in figs],
        ),
        "",
        "## Float Keras model, by score (threshold at the same keep on validation)",
        "",
        *table(
            ["score", *map(heading, figs)],
            [[name, *(cell(row[f], f) for f in figs)] for name, row in keras.items()],
        ),
    ]
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> Path:
    """``<out>/openset.json`` (every run and the summary) and ``<out>/openset.md``."""
    as_dicts = {k: v for k, v in report.items() if k not in ("artifacts", "keras")}
    for section in ("artifacts", "keras"):
        as_dicts[section] = {
            row: {f: asdict(v) for f, v in figs.items()} for row, figs in report[section].items()
        }
    write_json(out / OPENSET_JSON, as_dicts)
    return write_text(out / OPENSET_MD, markdown(report))
