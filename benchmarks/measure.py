"""Measure the Keras original and every exported artifact of a run into one :class:`BenchReport`.

Quality comes from export's evidence layer in this process (the device's code path); every
timing comes from worker processes run one after another, so no two measurements share the CPU.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from herbi.benchmarks.mcu.unknown_cost import UnknownCost, unknown_cost
from herbi.benchmarks.records import BenchReport, DatasetInfo, Published, Quality, Row, Settings
from herbi.benchmarks.run_folder import ExportedRun, Snapshot
from herbi.benchmarks.timing import keras_original, machine
from herbi.benchmarks.timing.browser import measure_page
from herbi.benchmarks.timing.keras_original import Complexity
from herbi.benchmarks.timing.latency import Timing
from herbi.benchmarks.timing.processes import ColdStart, WorkerError, cold_start, run_worker
from herbi.common.boards import Footprint
from herbi.common.errors import BenchError, HerbiError
from herbi.common.log import Log
from herbi.common.provenance import package_versions
from herbi.export.evidence import ParityImages, Reference, evaluate, judged
from herbi.export.formats import FORMATS, check_known
from herbi.runtime.contract import read_sidecar
from herbi.train.data import Dataset
from herbi.train.manifest import read_manifest, run_dataset

SCHEMA = "herbi.bench/1"
KERAS_ROWS = {
    "keras": ("direct", "Keras original, direct call model(x)"),
    "keras-predict": ("predict", "Keras original, model.predict(x)"),
}


def dataset_info(ds: Dataset, run: ExportedRun, data: str | None) -> DatasetInfo:
    """What the figures were measured on, and whether it is the data the run was trained on."""
    cifar100 = ds.source.startswith("CIFAR-100")
    label = f"measured on {ds.source}" + (
        "" if cifar100 else " (a stand-in dataset), not on CIFAR-100"
    )
    same = ds.fingerprint() == read_manifest(run.run).data.fingerprint
    return DatasetInfo(ds.source, ds.fingerprint(), same, data, "test", len(ds.y_test),
                       list(ds.class_names), cifar100, label)  # fmt: skip


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


def keras_reference(model: Path, ds: Dataset, images: ParityImages) -> tuple[Reference, Complexity]:
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
    complexity: Complexity
    log: Log

    def __post_init__(self) -> None:
        ref = self.reference
        self.model = self.copies["keras"]
        self.base = Quality.of(judged(ref, ref.parity, ref.test), ref)
        self.keras_bytes = self.model.path.stat().st_size
        self.macs = self.complexity.macs_per_image
        s = self.settings  # what every timing worker is given besides its model and threads
        self.timing_spec = dict(pixels=str(self.test.pixels), batch=s.large_batch,
                                latency=asdict(s.batch1_budget),
                                batched=asdict(s.large_batch_budget))  # fmt: skip

    def with_timing(self, row: Row, threads: int, timing: Timing, tensorflow: bool) -> Row:
        """``row`` with a worker's figures at ``threads`` (logged), and whether TensorFlow was
        in that worker."""
        b1, tp = timing.batch1, timing.throughput
        self.log(
            f"{row.name}: {threads} thread(s) p50 {b1.p50_ms:.3f} ms, p99 {b1.p99_ms:.3f} "
            f"ms ({b1.runs} runs), {tp.images_per_s:.0f} images/s at batch {tp.batch}"
        )
        timing = {**row.timing, str(threads): timing}
        return replace(row, timing=timing, tensorflow_imported=tensorflow)

    def with_file(self, row: Row, copy: Snapshot) -> Row:
        """``row`` with the measured copy's file, digest and size."""
        size = copy.model.stat().st_size
        return replace(row, file=str(copy.source.relative_to(self.run.run.dir)),
                       sha256=copy.sha256, size_bytes=size, size_kb=size / 1024,
                       size_ratio=size / self.keras_bytes)  # fmt: skip

    def keras_rows(self) -> list[Row]:
        """Both call styles of the original; one worker per thread count times both."""
        rows = [self.with_file(Row(name, text, "keras", call=how, backend="tensorflow",
                                   quality=self.base), self.model)
                for name, (how, text) in KERAS_ROWS.items()]  # fmt: skip
        try:
            for t in self.settings.threads:
                self.log(f"Keras original: timing at {t} thread(s)")
                path, tf = str(self.model.path), "tensorflow_imported"
                result = run_worker("keras", path=path, threads=t, **self.timing_spec)
                rows = [self.with_timing(r, t, Timing.parse(result[r.call], self.macs), result[tf])
                        for r in rows]  # fmt: skip
            for i, r in enumerate(rows):
                self.log(f"{r.name}: cold start ({self.settings.cold_start_repeats}x)")
                cold = self.cold("cold-keras", self.model.path, how=r.call)
                rows[i] = replace(r, cold_start=cold)
        except WorkerError as e:
            rows = [replace(r, status="failed", error=str(e)) for r in rows]
        return rows

    def cold(self, task: str, path: Path, **how: str | None) -> ColdStart:
        """The median cold start of fresh workers loading ``path`` and classifying one image."""
        repeats, image = self.settings.cold_start_repeats, str(self.test.images[0])
        return cold_start(repeats, task, path=str(path), image=image, **how)

    def artifact_row(self, name: str) -> Row:
        """One artifact's evidence here, its timings and cold start in workers."""
        fmt, copy = FORMATS[name], self.copies[name]
        row = Row(name, fmt.description, "artifact", int8=fmt.int8)
        if copy is None:
            row = replace(row, status="skipped", error=self.run.not_exported(name))
            self.log(f"{name}: skipped, {row.error}")
            return row
        row = replace(self.with_file(row, copy), rejected_at_export=copy.rejected)
        if copy.rejected:
            self.log(f"{name}: rejected at export, measured all the same")
        try:
            if fmt.container.footprint:
                footprint = fmt.container.footprint(copy.model)
                cost = self.score_cost(copy.model, footprint)
                row = replace(row, footprint=footprint, unknown_cost=cost)
            if fmt.int8 and fmt.container.graph:
                row = replace(row, engine_graph=fmt.container.graph(copy.model))
            q = Quality.of(
                evaluate(copy.model, fmt.backend, self.reference), self.reference, self.base
            )
            row = replace(row, quality=q)
            self.log(
                f"{name}: accuracy {100 * q.scores.accuracy:.1f}%, agreement {q.agreement:.3f}, "
                f"max |dp| {q.max_prob_diff:.4f}"
            )
            if fmt.container.runs_in == "browser":  # the page's own clock, on test images as PNGs
                page = measure_page(copy.path, self.test.images)
                self.log(f"{copy.path.name}: in Chromium {page.per_image_ms:.2f} ms per image, "
                         f"first result {page.load_to_first_result_ms:.0f} ms after load")  # fmt: skip
                return replace(row, browser=page, backend="onnxruntime-web")
            return self.in_workers(row, fmt.backend, copy.model)
        except HerbiError as e:
            self.log(f"{name}: FAILED: {e}")
            return replace(row, status="failed", error=str(e))

    def score_cost(self, model: Path, footprint: Footprint) -> UnknownCost | None:
        """The unknown score's share of a microcontroller artifact (None: it has none)."""
        if read_sidecar(model).unknown is None:
            return None
        self.log(f"{model.name}: the unknown score's cost, against the classifier alone")
        return unknown_cost(model, footprint, self.run.run.dir, self.run.calibration_images)

    def in_workers(self, row: Row, backend: str | None, path: Path) -> Row:
        """``row`` with the artifact's timings at each thread count, then its cold start."""
        for t in self.settings.threads:
            spec = dict(path=str(path), threads=t, backend=backend, **self.timing_spec)
            result = run_worker("artifact", **spec)
            timing = Timing.parse(result["timing"], self.macs)
            row = self.with_timing(row, t, timing, result["tensorflow_imported"])
            row = replace(row, backend=result["backend"])
        return replace(row, cold_start=self.cold("cold-artifact", path, backend=backend))


def with_speedups(row: Row, keras: Row) -> Row:
    """``row`` with the speed-up of its batch-1 p50 over the Keras direct call's, and its
    throughput ratio, per thread count."""
    if row.status != "ok" or keras.status != "ok":
        return row
    ratios = {t: replace(tm, speedup_vs_keras=keras.timing[t].batch1.p50_ms / tm.batch1.p50_ms,
                         throughput_ratio_vs_keras=tm.throughput.images_per_s
                         / keras.timing[t].throughput.images_per_s)
              for t, tm in row.timing.items()}  # fmt: skip
    return replace(row, timing=ratios)


def benchmark(
    run_dir: Path | str,
    formats: list[str],
    settings: Settings,
    *,
    required: bool = False,
    data: str | None = None,
    log: Log = print,
) -> BenchReport:
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
            rows.append(bench.artifact_row(name))
    changed = [name for name, copy in copies.items() if copy and copy.changed()]
    if changed:
        log(f"warning: {', '.join(changed)} changed in {run.run.dir} while it was measured")
    rows = [with_speedups(r, rows[0]) for r in rows]  # rows[0]: the Keras direct call
    from herbi.train.recipes.reference import PUBLISHED_NOTE, RECIPE  # TensorFlow: only now

    return BenchReport(
        schema=SCHEMA,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        run=str(run.run.dir),
        model=str(run.run.model),
        machine=machine.describe(load_before),
        packages=package_versions(),
        dataset=dataset_info(ds, run, data),
        parity_images=ref.images.description,
        model_complexity=complexity,
        settings=settings,
        published=Published(
            RECIPE.published, f"the study's figures: {PUBLISHED_NOTE}; not measured here"
        ),
        rows={r.name: r for r in rows},
        changed_during_run=changed,
        failed=[r.name for r in rows if r.status == "failed"],
        skipped=[r.name for r in rows if r.status == "skipped"],
    )
