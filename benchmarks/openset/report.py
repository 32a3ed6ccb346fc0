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

from herbi.benchmarks.openset.folds import Protocol
from herbi.benchmarks.openset.measure import Rates
from herbi.benchmarks.timing.machine import Machine
from herbi.common.files import read_json, write_json, write_text
from herbi.common.markdown import table

OPENSET_JSON, OPENSET_MD = "openset.json", "openset.md"
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """The mean over ``n`` runs and the half-width of its 95% t-interval (None for one run)."""

    mean: float
    half_width: float | None
    n: int


@dataclass(frozen=True)
class RunSettings:
    """What one run's figures depend on beyond its training: a cached run is reused only when
    these match."""

    keep: float
    score: str
    unknowns: list[str]  # resolved folder paths
    far_ood: int


@dataclass(frozen=True)
class RunFigures:
    """One trained run's figures: each artifact at its own threshold, each Keras score."""

    held_out: str
    seed: int
    run: str
    settings: RunSettings
    preset: str
    precision: str
    artifacts: dict[str, Rates]
    keras: dict[str, Rates]

    @classmethod
    def read(cls, path: Path, settings: RunSettings) -> RunFigures | None:
        """The figures cached in ``path`` if they were measured with ``settings``, else None."""
        found = read_json(path) if path.is_file() else {}
        if found.get("settings") != asdict(settings):
            return None
        rates = {s: {k: Rates(**v) for k, v in found[s].items()} for s in ("artifacts", "keras")}
        return cls(**{**found, "settings": settings, **rates})


Summary = dict[str, dict[str, Interval]]  # row (artifact or score) -> figure -> Interval


@dataclass(frozen=True)
class OpensetReport:
    """The protocol as asked, where it ran, every run's figures and their summaries."""

    protocol: Protocol
    machine: Machine
    preset: list[str]
    precision: list[str]
    runs: list[RunFigures]
    artifacts: Summary
    keras: Summary


def interval(values: list[float]) -> Interval:
    v = np.asarray(values, np.float64)
    if len(v) < 2:
        return Interval(float(v.mean()), None, len(v))
    t = stats.t.ppf(0.5 + CONFIDENCE / 2, len(v) - 1)
    return Interval(float(v.mean()), float(t * v.std(ddof=1) / math.sqrt(len(v))), len(v))


def figures(rates: Rates) -> dict[str, float]:
    """One score's rates as flat figures, in the tables' order: AUROC, the held-out class
    rejected, known images kept, the other unknown sets rejected, closed-set accuracy."""
    near, *others = (f"rejected {k}" for k in rates.rejected)
    flat = {f"rejected {k}": v for k, v in rates.rejected.items()}
    flat |= {"auroc": rates.auroc, "kept": rates.kept, "accuracy": rates.accuracy}
    return {k: flat[k] for k in ["auroc", near, "kept", *others, "accuracy"]}


def summarize(sections: list[dict[str, Rates]]) -> Summary:
    """One section (artifacts or Keras scores) of every run -> row -> figure -> Interval."""
    summary = {}
    for name in sections[0]:
        per_run = [figures(section[name]) for section in sections if name in section]
        summary[name] = {k: interval([f[k] for f in per_run]) for k in per_run[0]}
    return summary


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


def markdown(report: OpensetReport) -> str:
    """The report as Markdown: its labels, then artifacts side by side and the float scores."""
    p, artifacts, keras = report.protocol, report.artifacts, report.keras
    figs = list(next(iter(artifacts.values())))
    by_artifact = [("figure", heading)] + [
        (name, lambda f, a=a: cell(a[f], f)) for name, a in artifacts.items()
    ]
    by_score = [("score", lambda v: v[0])] + [
        (heading(f), lambda v, f=f: cell(v[1][f], f)) for f in figs
    ]
    lines = [
        "# Open-set protocol (herbi-bench --openset)",
        "",
        f"- data: `{p.data}`; held out in turn: {', '.join(p.held_out)}; "
        f"seeds: {', '.join(map(str, p.seeds))}; runs: {len(report.runs)}",
        f"- training: herbi-train --recipe fast, preset {', '.join(report.preset)}, "
        f"{p.epochs} epochs; precision {', '.join(report.precision)}",
        f"- machine: {report.machine.cpu_label}",
        f"- unknown score in the artifacts: {p.score}; thresholds keep {p.keep} "
        "(split-conformal on each run's validation images)",
        f"- unknowns: the held-out class (all its train and test images), far_ood "
        f"({p.far_ood} generated: noise, flat colour, texture, text)"
        + "".join(f", {u.name} (`{u}`)" for u in p.unknowns),
        "- mean over runs ± 95% t-interval half-width; known = the other classes' test images",
        "",
        "## Artifacts (herbi.runtime, each at its own contract's threshold)",
        "",
        *table(by_artifact, figs),
        "",
        "## Float Keras model, by score (threshold at the same keep on validation)",
        "",
        *table(by_score, keras.items()),
    ]
    return "\n".join(lines) + "\n"


def write_report(report: OpensetReport, out: Path) -> Path:
    """``<out>/openset.json`` (every run and the summary) and ``<out>/openset.md``."""
    write_json(out / OPENSET_JSON, asdict(report))
    return write_text(out / OPENSET_MD, markdown(report))
