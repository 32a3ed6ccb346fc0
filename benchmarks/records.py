"""The bench report's records: what was measured, how, on what, and one row per model.

Every part is typed; ``report.json`` is their ``dataclasses.asdict``, written once
(:func:`herbi.benchmarks.report.write_report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from herbi.benchmarks.mcu.unknown_cost import UnknownCost
from herbi.benchmarks.timing.browser import BrowserTiming
from herbi.benchmarks.timing.keras_original import Complexity
from herbi.benchmarks.timing.latency import Budget, Timing
from herbi.benchmarks.timing.machine import Machine
from herbi.benchmarks.timing.processes import ColdStart
from herbi.common.boards import Footprint
from herbi.export.evidence import Evidence, PairedTest, Reference
from herbi.export.onnx_graph import EngineGraph
from herbi.train.evaluate import Scores, score


@dataclass(frozen=True)
class Settings:
    """How much is measured: thread counts, the large batch, time budgets, cold repeats."""

    threads: tuple[int, ...]
    large_batch: int
    batch1_budget: Budget
    large_batch_budget: Budget
    cold_start_repeats: int
    quick: bool
    browser_images: int

    @classmethod
    def make(cls, threads: tuple[int, ...], runs: int | None, quick: bool) -> Settings:
        """Defaults (200 batch-1 runs and >= 2 s per figure) or ``quick`` (a few runs, tests)."""
        if quick:
            latency, batched, batch, repeats = Budget(2, 10, 0.0), Budget(1, 3, 0.0), 8, 1
        else:
            latency, batched, batch, repeats = Budget(20, 200, 2.0), Budget(3, 20, 2.0), 64, 3
        if runs is not None:
            latency = replace(latency, runs=runs)
            batched = replace(batched, runs=max(3, runs // 10))
        return cls(threads, batch, latency, batched, repeats, quick, 5 if quick else 50)


@dataclass(frozen=True)
class Quality:
    """A row's scores on the test split (training's own record) and how far it is from the
    Keras original: plain argmax ``agreement``, the gate's tie-aware one, probability
    differences, changes in points; ``paired`` and ``agreement_parity_images`` are export's gate
    evidence (the paired test of the change, agreement on its parity images)."""

    scores: Scores
    agreement: float
    agreement_tie_aware: float
    tied_images: int
    max_prob_diff: float
    mean_prob_diff: float
    accuracy_change_points: float
    macro_f1_change_points: float
    per_class_f1_change_points: dict[str, float]
    paired: PairedTest
    agreement_parity_images: float | None = None

    @classmethod
    def of(cls, found: Evidence, ref: Reference, base: Quality | None = None) -> Quality:
        """A model's quality from its evidence; against ``base`` (None: it is the base)."""
        s, p = score(ref.y_test, found.test_probs, ref.labels), found.test
        b = base.scores if base else s
        change = {c: 100 * (s.per_class[c].f1 - b.per_class[c].f1) for c in ref.labels}
        parity = found.agreement.agreement if base else None
        return cls(s, p.agreement, p.agreement_tie_aware, p.ties, p.max_abs_diff,
                   p.mean_abs_diff, 100 * (s.accuracy - b.accuracy),
                   100 * (s.macro_f1 - b.macro_f1), change, found.paired_test.rounded(),
                   parity)  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One line of the benchmark: the Keras original (two call styles) or one artifact.

    ``timing`` maps a thread count to the worker's figures; ``status`` is ``ok``, ``failed``
    or ``skipped`` (with ``error`` saying why).
    """

    name: str
    description: str
    kind: str
    status: str = "ok"
    error: str | None = None
    int8: bool = False
    call: str | None = None
    backend: str | None = None
    file: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    size_kb: float | None = None
    size_ratio: float | None = None
    rejected_at_export: list[str] | None = None
    quality: Quality | None = None
    timing: dict[str, Timing] = field(default_factory=dict)
    cold_start: ColdStart | None = None
    browser: BrowserTiming | None = None  # a web page's figures in headless Chromium
    footprint: Footprint | None = None  # a microcontroller artifact's arena, flash, ops, MACs
    engine_graph: EngineGraph | None = None  # an int8 ONNX artifact: what engines run in int8
    unknown_cost: UnknownCost | None = None  # a microcontroller artifact: what its score costs
    tensorflow_imported: bool | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What the figures were measured on, said so nobody mistakes a stand-in for CIFAR-100."""

    description: str
    fingerprint: str
    same_as_run: bool
    data_option: str | None
    split: str
    images: int
    class_names: list[str]
    cifar100: bool
    label: str


@dataclass(frozen=True)
class Published:
    """The study's own test accuracy per stage, and what it is (never measured here)."""

    test_accuracy: dict[str, float]
    note: str


@dataclass(frozen=True)
class BenchReport:
    """One benchmark of a run: where and how it was measured, and a row per model."""

    schema: str
    created: str
    command: str
    run: str
    model: str
    machine: Machine
    packages: dict[str, str]
    dataset: DatasetInfo
    parity_images: str
    model_complexity: Complexity
    settings: Settings
    published: Published
    rows: dict[str, Row]
    changed_during_run: list[str]
    failed: list[str]
    skipped: list[str]

    def measured(self) -> list[Row]:
        return [r for r in self.rows.values() if r.status == "ok"]

    def timed(self) -> list[Row]:
        """Measured rows timed in Python workers (a web page is timed in the browser instead)."""
        return [r for r in self.measured() if r.timing]
