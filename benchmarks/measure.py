"""Measure the Keras original and every exported artifact of a run into one report dict.

Quality comes from export's evidence layer in this process (the device's code path); every
timing comes from worker processes run one after another, so no two measurements share the CPU.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from herbi.benchmarks.mcu.unknown_cost import UnknownCost, unknown_cost
from herbi.benchmarks.run_folder import ExportedRun, Snapshot
from herbi.benchmarks.timing import keras_original, machine
from herbi.benchmarks.timing.browser import BrowserTiming, measure_page
from herbi.benchmarks.timing.latency import Budget
from herbi.benchmarks.timing.processes import ColdStart, Timing, WorkerError, cold_start, run_worker
from herbi.common.errors import BenchError, HerbiError
from herbi.common.provenance import package_versions
from herbi.export.evidence import Evidence, Reference, evaluate, judged
from herbi.export.formats import FORMATS, check_known
from herbi.export.gate import PairedTest, ParityImages
from herbi.export.onnx_graph import EngineGraph
from herbi.export.tflm import TflmFootprint
from herbi.runtime.contract import read_sidecar
from herbi.train.evaluate import score
from herbi.train.run import run_dataset

SCHEMA = "herbi.bench/1"
KERAS_ROWS = {
    "keras": ("direct", "Keras original, direct call model(x)"),
    "keras-predict": ("predict", "Keras original, model.predict(x)"),
}
Log = Callable[[str], object]
PUBLISHED_NOTE = (
    "the study's figures: CIFAR-100 coarse class 11, GPU, 300 epochs per stage, "
    "checkpoints picked on the test set; not measured here"
)


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


@dataclass
class Quality:
    """A row's quality on the test split, and its change against the Keras original (points);
    ``agreement`` is plain argmax agreement, ``agreement_tie_aware`` the gate's (Parity's)."""

    images: int
    accuracy: float
    accuracy_ci95: tuple[float, float]
    macro_f1: float
    per_class_f1: dict[str, float]
    confusion: list[list[int]]
    agreement: float
    agreement_tie_aware: float
    tied_images: int
    max_prob_diff: float
    mean_prob_diff: float
    accuracy_change_points: float = 0.0
    macro_f1_change_points: float = 0.0
    per_class_f1_change_points: dict[str, float] = field(default_factory=dict)
    # export's gate evidence: the paired test of the change, agreement on its parity images
    paired: PairedTest | None = None
    agreement_parity_images: float | None = None

    @classmethod
    def of(cls, found: Evidence, ref: Reference, base: Quality | None = None) -> Quality:
        """A model's quality from its evidence; against ``base`` (None: it is the base)."""
        labels, p = ref.labels, found.test
        s = score(ref.y_test, found.test_probs, labels)
        q = cls(
            s.n, s.accuracy, s.accuracy_ci95, s.macro_f1,
            {c: s.per_class[c].f1 for c in labels}, s.confusion,
            p.agreement, p.agreement_tie_aware, p.ties, p.max_abs_diff, p.mean_abs_diff,
            paired=found.paired_test.rounded(),
            agreement_parity_images=found.agreement.agreement if base else None,
        )  # fmt: skip
        base = base or q
        q.accuracy_change_points = 100 * (q.accuracy - base.accuracy)
        q.macro_f1_change_points = 100 * (q.macro_f1 - base.macro_f1)
        q.per_class_f1_change_points = {
            c: 100 * (f - base.per_class_f1[c]) for c, f in q.per_class_f1.items()
        }
        return q


@dataclass
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
    footprint: TflmFootprint | None = None  # a microcontroller artifact's arena, flash, ops, MACs
    engine_graph: EngineGraph | None = None  # an int8 ONNX artifact: what engines run in int8
    unknown_cost: UnknownCost | None = None  # a microcontroller artifact: what its score costs
    tensorflow_imported: bool | None = None


def dataset_section(ds, run: ExportedRun, data: str | None) -> dict:
    """What the figures were measured on, said so nobody mistakes a stand-in for CIFAR-100."""
    manifest = run.run.read_manifest()["data"]
    cifar100 = ds.source.startswith("CIFAR-100")
    return {
        "description": ds.source,
        "fingerprint": ds.fingerprint(),
        "same_as_run": ds.fingerprint() == manifest.get("fingerprint"),
        "data_option": data,
        "split": "test",
        "images": len(ds.y_test),
        "class_names": list(ds.class_names),
        "cifar100": cifar100,
        "label": f"measured on {ds.source}"
        + ("" if cifar100 else " (a stand-in dataset), not on CIFAR-100"),
    }


@dataclass(frozen=True)
class TestImages:
    """The test split's pixels (``.npy``, for timing) and its first images as PNG files
    (lossless) that the cold start and a web page classify."""

    pixels: Path
    images: list[Path]


def write_test_images(x_test: np.ndarray, folder: Path, count: int) -> TestImages:
    """``x_test`` and its first ``count`` images (all of a smaller split) in ``folder``."""
    pixels, first = folder / "test_pixels.npy", x_test[:count]
    np.save(pixels, x_test)
    images = [folder / f"test_{i:03d}.png" for i in range(len(first))]
    for image, path in zip(first, images, strict=True):
        Image.fromarray(image).save(path)
    return TestImages(pixels, images)


def keras_reference(model: Path, ds, images: ParityImages) -> tuple[Reference, dict]:
    """Keras' probabilities on the test split and export's parity images; its complexity."""
    probs, complexity = keras_original.reference(model, np.concatenate([ds.x_test, images.pixels]))
    test, parity = np.split(probs, [len(ds.x_test)])
    return Reference(images, parity, ds.x_test, test, ds.y_test, list(ds.class_names)), complexity


@dataclass
class Bench:
    """One benchmark run: the inputs workers read, the Keras reference, the rows."""

    run: ExportedRun
    copies: dict[str, Snapshot | None]
    settings: Settings
    test: TestImages
    reference: Reference
    complexity: dict
    log: Log

    def __post_init__(self) -> None:
        ref = self.reference
        self.model = self.copies["keras"]
        self.base = Quality.of(judged(ref, ref.parity, ref.test), ref)
        self.keras_bytes = self.model.path.stat().st_size

    def in_browser(self, page: Path) -> BrowserTiming:
        """The page's load and per-image times in headless Chromium, on test images as PNGs."""
        timing = measure_page(page, self.test.images)
        self.log(f"{page.name}: in Chromium {timing.per_image_ms:.2f} ms per image, first "
                 f"result {timing.load_to_first_result_ms:.0f} ms after load")  # fmt: skip
        return timing

    def timing_spec(self, task: str, path: Path, threads: int, backend: str | None = None) -> dict:
        return {
            "task": task,
            "path": str(path),
            **({"backend": backend} if backend else {}),
            "threads": threads,
            "pixels": str(self.test.pixels),
            "batch": self.settings.large_batch,
            "latency": asdict(self.settings.batch1_budget),
            "batched": asdict(self.settings.large_batch_budget),
        }

    def cold(self, task: str, path: Path, **how) -> ColdStart:
        """The median cold start of fresh workers loading ``path`` and classifying one image."""
        spec = {"task": task, "path": str(path), "image": str(self.test.images[0]), **how}
        return cold_start(spec, self.settings.cold_start_repeats)

    def add_timing(self, row: Row, threads: int, figures: dict) -> None:
        """Record a worker's figures in ``row`` and log them."""
        timing = row.timing[str(threads)] = Timing.parse(figures, self.complexity["macs_per_image"])
        b1, tp = timing.batch1, timing.throughput
        self.log(
            f"{row.name}: {threads} thread(s) p50 {b1.p50_ms:.3f} ms, p99 {b1.p99_ms:.3f} "
            f"ms ({b1.runs} runs), {tp.images_per_s:.0f} images/s at batch {tp.batch}"
        )

    def file_figures(self, copy: Snapshot) -> dict:
        size = copy.model.stat().st_size
        return {
            "file": str(copy.source.relative_to(self.run.run.dir)),
            "sha256": copy.sha256,
            "size_bytes": size,
            "size_kb": size / 1024,
            "size_ratio": size / self.keras_bytes,
        }

    def keras_rows(self) -> dict[str, Row]:
        """Both call styles of the original; one worker per thread count times both."""
        rows = {
            name: Row(name, text, "keras", call=how, backend="tensorflow",
                      quality=self.base, **self.file_figures(self.model))
            for name, (how, text) in KERAS_ROWS.items()
        }  # fmt: skip
        try:
            for t in self.settings.threads:
                self.log(f"Keras original: timing at {t} thread(s)")
                result = run_worker(self.timing_spec("keras", self.model.path, t))
                for row in rows.values():
                    row.tensorflow_imported = result["tensorflow_imported"]
                    self.add_timing(row, t, result[row.call])
            for row in rows.values():
                self.log(f"{row.name}: cold start ({self.settings.cold_start_repeats}x)")
                row.cold_start = self.cold("cold-keras", self.model.path, how=row.call)
        except WorkerError as e:
            for row in rows.values():
                row.status, row.error = "failed", str(e)
        return rows

    def artifact_row(self, name: str) -> Row:
        """One artifact's evidence here, its timings and cold start in workers."""
        fmt, copy = FORMATS[name], self.copies[name]
        row = Row(name, fmt.description, "artifact", int8=fmt.int8)
        if copy is None:
            row.status, row.error = "skipped", self.run.not_exported(name)
            self.log(f"{name}: skipped, {row.error}")
            return row
        row = replace(row, rejected_at_export=copy.rejected, **self.file_figures(copy))
        if copy.rejected:
            self.log(f"{name}: rejected at export, measured all the same")
        try:
            if fmt.container.footprint:
                row.footprint = fmt.container.footprint(copy.model)
                row.unknown_cost = self.score_cost(copy.model, row.footprint)
            if fmt.int8 and fmt.container.graph:
                row.engine_graph = fmt.container.graph(copy.model)
            found = evaluate(copy.model, fmt.backend, self.reference)
            q = row.quality = Quality.of(found, self.reference, self.base)
            self.log(
                f"{name}: accuracy {100 * q.accuracy:.1f}%, agreement {q.agreement:.3f}, "
                f"max |dp| {q.max_prob_diff:.4f}"
            )
            if fmt.container.runs_in == "browser":
                row.browser, row.backend = self.in_browser(copy.path), "onnxruntime-web"
            else:
                self.in_workers(row, fmt.backend, copy.model)
        except HerbiError as e:
            self.log(f"{name}: FAILED: {e}")
            row.status, row.error = "failed", str(e)
        return row

    def score_cost(self, model: Path, footprint: TflmFootprint) -> UnknownCost | None:
        """The unknown score's share of a microcontroller artifact (None: it has none)."""
        if read_sidecar(model).unknown is None:
            return None
        self.log(f"{model.name}: the unknown score's cost, against the classifier alone")
        return unknown_cost(model, footprint, self.run.run.dir, self.run.calibration_images)

    def in_workers(self, row: Row, backend: str | None, path: Path) -> None:
        """The artifact's timings at each thread count, then its cold start."""
        for t in self.settings.threads:
            result = run_worker(self.timing_spec("artifact", path, t, backend))
            row.backend, row.tensorflow_imported = result["backend"], result["tensorflow_imported"]
            self.add_timing(row, t, result)
        row.cold_start = self.cold("cold-artifact", path, backend=backend)


def add_speedups(rows: dict[str, Row]) -> None:
    """Speed-up of each row's batch-1 p50 over the Keras direct call, per thread count."""
    keras = rows["keras"]
    for row in rows.values():
        if row.status != "ok" or keras.status != "ok":
            continue
        for t, timing in row.timing.items():
            base = keras.timing[t]
            timing.speedup_vs_keras = base.batch1.p50_ms / timing.batch1.p50_ms
            timing.throughput_ratio_vs_keras = (
                timing.throughput.images_per_s / base.throughput.images_per_s
            )


def benchmark(
    run_dir: Path | str,
    formats: list[str],
    settings: Settings,
    *,
    required: bool = False,
    data: str | None = None,
    log: Log = print,
) -> dict:
    """Measure the run's Keras model and ``formats``; return the report (nothing written).

    ``required``: the formats were asked for by name, so one that was not exported is an
    error before anything is measured; otherwise its row is marked skipped, with the reason.
    """
    check_known(formats, error=BenchError, where="--formats: ")
    run = ExportedRun.open(run_dir)
    for name in formats if required else ():
        if run.locate(name) is None:
            raise BenchError(f"--formats {name}: {run.not_exported(name)}")
    load_before = machine.load_average()
    ds = run_dataset(run.run.dir, data)
    log(f"data: {ds.source}, {len(ds.y_test)} test images")
    with tempfile.TemporaryDirectory(prefix="herbi-bench-") as tmp:
        copies = run.snapshot(formats, Path(tmp) / "models")
        test = write_test_images(ds.x_test, Path(tmp), settings.browser_images)
        log(f"Keras original: reference probabilities on {len(ds.y_test)} test images")
        ref, complexity = keras_reference(copies["keras"].path, ds, run.parity_images(ds))
        bench = Bench(run, copies, settings, test, ref, complexity, log)
        rows = bench.keras_rows()
        for i, name in enumerate(formats, 1):
            log(f"[{i}/{len(formats)}] {name}: {FORMATS[name].description}")
            rows[name] = bench.artifact_row(name)
    changed = [name for name, copy in copies.items() if copy and copy.changed()]
    if changed:
        log(f"warning: {', '.join(changed)} changed in {run.run.dir} while it was measured")
    add_speedups(rows)
    from herbi.train.recipes.reference import RECIPE as REFERENCE  # TensorFlow: only now

    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "run": str(run.run.dir),
        "model": str(run.run.model),
        "machine": machine.describe(load_before),
        "packages": package_versions(),
        "dataset": dataset_section(ds, run, data),
        "parity_images": ref.images.description,
        "model_complexity": complexity,
        "settings": settings,
        "published": {"test_accuracy": REFERENCE.published, "note": PUBLISHED_NOTE},
        "rows": rows,
        "changed_during_run": changed,
        "failed": [n for n, r in rows.items() if r.status == "failed"],
        "skipped": [n for n, r in rows.items() if r.status == "skipped"],
    }
