"""Measure the Keras original and every exported artifact of a run into one report dict.

Quality figures (accuracy with its CI, F1, agreement) are computed in this process from the
test-split probabilities: the Keras model's, and each artifact's through
``herbi.runtime.Classifier.predict_proba`` (export's parity code, the device's code path).
Every timing comes from worker processes (:mod:`herbi.benchmarks.worker`), one per model and
thread count, run one after another so no two measurements share the CPU.
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

from herbi.benchmarks import keras_original, machine
from herbi.benchmarks.browser import BrowserTiming, measure_page
from herbi.benchmarks.latency import Budget
from herbi.benchmarks.processes import WorkerError, cold_start, run_worker
from herbi.benchmarks.run_folder import ExportedRun, Snapshot
from herbi.common.errors import BenchError
from herbi.common.provenance import package_versions
from herbi.export.calibration import DEFAULT_SIZE, calibration_indices
from herbi.export.formats import FORMATS
from herbi.export.gate import DEFAULT_TRAIN_SAMPLE, paired_test, parity_images
from herbi.export.parity import artifact_probs, compare, tie_aware_agreement
from herbi.runtime import ContractError, ImageError, ModelError
from herbi.train.evaluate import score
from herbi.train.run import run_dataset

SCHEMA = "herbi.bench/1"
KERAS_ROWS = {
    "keras": ("direct", "Keras original, direct call model(x)"),
    "keras-predict": ("predict", "Keras original, model.predict(x)"),
}
Log = Callable[[str], object]


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
    """A row's quality on the test split, and its change against the Keras original (points).

    ``agreement`` is plain argmax agreement with Keras; ``agreement_tie_aware`` also accepts
    an image whose Keras class is among the row's tied top classes (export's gate uses it).
    """

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
    # The same evidence as export's gate: the paired test of the change on these images
    # (interval and exact McNemar p, points as Keras minus artifact), and the tie-aware
    # agreement on export's parity images (validation + train images not calibrated on).
    paired: dict = field(default_factory=dict)
    agreement_parity_images: float | None = None

    @classmethod
    def measure(cls, probs: np.ndarray, ref: np.ndarray, y: np.ndarray, labels: list[str],
                base: Quality | None = None, parity_agreement: float | None = None,
                ) -> Quality:  # fmt: skip
        s, p = score(y, probs, labels), compare(ref, probs, y, labels)
        q = cls(
            s.n, s.accuracy, s.accuracy_ci95, s.macro_f1,
            {c: s.per_class[c].f1 for c in labels}, s.confusion,
            p.agreement, p.agreement_tie_aware, p.ties, p.max_abs_diff, p.mean_abs_diff,
        )  # fmt: skip
        base = base or q
        q.accuracy_change_points = 100 * (q.accuracy - base.accuracy)
        q.macro_f1_change_points = 100 * (q.macro_f1 - base.macro_f1)
        q.per_class_f1_change_points = {
            c: 100 * (f - base.per_class_f1[c]) for c, f in q.per_class_f1.items()
        }
        q.paired = paired_test(ref.argmax(1) == y, probs.argmax(1) == y).to_dict()
        q.agreement_parity_images = parity_agreement
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
    timing: dict[str, dict] = field(default_factory=dict)
    cold_start: dict | None = None
    browser: BrowserTiming | None = None  # a web page's figures in headless Chromium
    footprint: dict | None = None  # a microcontroller artifact's arena, flash, ops, MACs
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


class Bench:
    """One benchmark run: the inputs workers read, the Keras reference, the rows."""

    def __init__(
        self,
        run: ExportedRun,
        copies: dict[str, Snapshot | None],
        settings: Settings,
        ds,
        tmp: Path,
        log: Log,
    ):
        self.run, self.copies, self.settings, self.ds, self.log = run, copies, settings, ds, log
        self.model = copies["keras"]
        # The first test images as PNG files (lossless: the exact test pixels): the cold start
        # classifies the first, a web page all of them.
        self.pixels = tmp / "test_pixels.npy"
        first = ds.x_test[: settings.browser_images]  # all of a smaller test split
        self.images = [tmp / f"test_{i:03d}.png" for i in range(len(first))]
        np.save(self.pixels, ds.x_test)
        for pixels, path in zip(first, self.images, strict=True):
            Image.fromarray(pixels).save(path)
        self.labels = list(ds.class_names)
        log(f"Keras original: reference probabilities on {len(ds.y_test)} test images")
        # Agreement is measured on the images export's gate judged: every validation image and
        # the train images outside the calibration set (sizes as export recorded them).
        calibration = run.export_report.get("calibration", {}).get("images", DEFAULT_SIZE)
        train = run.export_report.get("gate", {}).get("parity_train_images", DEFAULT_TRAIN_SAMPLE)
        self.parity = parity_images(ds, calibration_indices(ds.y_train, calibration), train)
        probs, self.complexity = keras_original.reference(
            self.model.path, np.concatenate([ds.x_test, self.parity.pixels])
        )
        self.ref, self.ref_parity = np.split(probs, [len(ds.x_test)])
        self.base = Quality.measure(self.ref, self.ref, ds.y_test, self.labels)
        self.keras_bytes = self.model.path.stat().st_size

    def in_browser(self, page: Path) -> BrowserTiming:
        """The page's load and per-image times in headless Chromium, on test images as PNGs."""
        timing = measure_page(page, self.images)
        self.log(f"{page.name}: in Chromium {timing.per_image_ms:.2f} ms per image, first "
                 f"result {timing.load_to_first_result_ms:.0f} ms after load")  # fmt: skip
        return timing

    def timing_spec(self, task: str, path: Path, threads: int, backend: str | None = None) -> dict:
        return {
            "task": task,
            "path": str(path),
            **({"backend": backend} if backend else {}),
            "threads": threads,
            "pixels": str(self.pixels),
            "batch": self.settings.large_batch,
            "latency": asdict(self.settings.batch1_budget),
            "batched": asdict(self.settings.large_batch_budget),
        }

    def cold(self, task: str, path: Path, **how) -> dict:
        """The median cold start of fresh workers loading ``path`` and classifying one image."""
        spec = {"task": task, "path": str(path), "image": str(self.images[0]), **how}
        return cold_start(spec, self.settings.cold_start_repeats)

    def add_timing(self, row: Row, threads: int, timing: dict) -> None:
        """Record a worker's figures in ``row`` with the achieved GMAC/s at batch 1 (from p50)
        and at the large batch, and log them."""
        macs, b1, tp = self.complexity["macs_per_image"], timing["batch1"], timing["throughput"]
        timing["gmacs_batch1"] = macs / 1e9 / (b1["p50_ms"] / 1e3)
        timing["gmacs_large_batch"] = macs / 1e9 * tp["images_per_s"]
        row.timing[str(threads)] = timing
        self.log(
            f"{row.name}: {threads} thread(s) p50 {b1['p50_ms']:.3f} ms, p99 {b1['p99_ms']:.3f} "
            f"ms ({b1['runs']} runs), {tp['images_per_s']:.0f} images/s at batch {tp['batch']}"
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
        """One artifact's quality here, its timings and cold start in workers."""
        fmt, copy = FORMATS[name], self.copies[name]
        row = Row(name, fmt.description, "artifact", int8=fmt.int8)
        if copy is None:
            row.status, row.error = "skipped", self.run.not_exported(name)
            self.log(f"{name}: skipped, {row.error}")
            return row
        row = replace(row, rejected_at_export=copy.rejected, **self.file_figures(copy))
        if fmt.container.footprint:
            row.footprint = fmt.container.footprint(copy.model)
        if copy.rejected:
            self.log(f"{name}: rejected at export, measured all the same")
        path = copy.model
        try:
            probs = artifact_probs(path, self.ds.x_test, fmt.backend)
            on_parity = artifact_probs(path, self.parity.pixels, fmt.backend)
            q = row.quality = Quality.measure(
                probs, self.ref, self.ds.y_test, self.labels, self.base,
                tie_aware_agreement(self.ref_parity, on_parity),
            )  # fmt: skip
            self.log(
                f"{name}: accuracy {100 * q.accuracy:.1f}%, agreement {q.agreement:.3f}, "
                f"max |dp| {q.max_prob_diff:.4f}"
            )
            if fmt.container.runs_in == "browser":
                row.browser = self.in_browser(copy.path)
                row.backend = "onnxruntime-web"
                return row
            for t in self.settings.threads:
                result = run_worker(self.timing_spec("artifact", path, t, fmt.backend))
                row.backend = result.pop("backend")
                row.tensorflow_imported = result.pop("tensorflow_imported")
                self.add_timing(row, t, result)
            row.cold_start = self.cold("cold-artifact", path, backend=fmt.backend)
        except (ModelError, ContractError, ImageError, WorkerError, BenchError) as e:
            self.log(f"{name}: FAILED: {e}")
            row.status, row.error = "failed", str(e)
        return row


def add_speedups(rows: dict[str, Row]) -> None:
    """Speed-up of each row's batch-1 p50 over the Keras direct call, per thread count."""
    keras = rows["keras"]
    for row in rows.values():
        if row.status != "ok" or keras.status != "ok":
            continue
        for t, timing in row.timing.items():
            base = keras.timing[t]
            timing["speedup_vs_keras"] = base["batch1"]["p50_ms"] / timing["batch1"]["p50_ms"]
            timing["throughput_ratio_vs_keras"] = (
                timing["throughput"]["images_per_s"] / base["throughput"]["images_per_s"]
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
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise BenchError(f"--formats: unknown format {unknown[0]!r} (known: {', '.join(FORMATS)})")
    run = ExportedRun.open(run_dir)
    for name in formats if required else ():
        if run.locate(name) is None:
            raise BenchError(f"--formats {name}: {run.not_exported(name)}")
    load_before = machine.load_average()
    ds = run_dataset(run.run.dir, data)
    log(f"data: {ds.source}, {len(ds.y_test)} test images")
    with tempfile.TemporaryDirectory(prefix="herbi-bench-") as tmp:
        copies = run.snapshot(formats, Path(tmp) / "models")
        bench = Bench(run, copies, settings, ds, Path(tmp), log)
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
        "parity_images": bench.parity.description,
        "model_complexity": bench.complexity,
        "settings": asdict(settings),
        "published": {
            "test_accuracy": REFERENCE.published,
            "note": "the study's figures: CIFAR-100 coarse class 11, GPU, 300 epochs per stage, "
            "checkpoints picked on the test set; not measured here",
        },
        "rows": rows,
        "changed_during_run": changed,
        "failed": [n for n, r in rows.items() if r.status == "failed"],
        "skipped": [n for n, r in rows.items() if r.status == "skipped"],
    }
