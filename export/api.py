"""``export_model``: build every requested format, check it, compare it with Keras, report.

:func:`prepare` does once what every format shares, one job per call; :func:`export_format`
then builds each format, measures its unknown threshold on its model file alone (staged),
writes the artifact once with that threshold, judges it and publishes it.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from herbi.common.boards import Footprint, Limits
from herbi.common.cpu import cpu_info
from herbi.common.errors import ExportError, HerbiError
from herbi.common.files import write_text
from herbi.common.legacy_keras import without_chatter
from herbi.common.log import Log
from herbi.common.run_folder import EXPORT_REPORT
from herbi.export import artifacts, evidence
from herbi.export.calibration import CALIBRATION_IMAGES, calibration_indices
from herbi.export.evidence import GateEvidence, Reference, parity_images
from herbi.export.formats import FORMATS, BuildInputs, Format, PageFacts, check_known
from herbi.export.gate import GateOptions, judge, summary_line
from herbi.export.report import (
    ArtifactResult,
    Calibration,
    ExportReport,
    GateSettings,
    ReduceRange,
    UnknownSetting,
    write_report,
)
from herbi.export.rewrite import affine_batchnorms
from herbi.export.source import Source, load_source
from herbi.runtime.classifier import Classifier
from herbi.runtime.contract import PIXEL_SCALE, Contract, sha256_file
from herbi.runtime.unknown import Unknown, conformal_threshold
from herbi.train.evaluate import keras_probs


@dataclass(frozen=True)
class ExportOptions:
    """What ``herbi-export`` was asked for (its options of the same names). ``gate=False``
    measures parity but rejects only on graph problems and device limits (tests keep every
    artifact); ``qat_samples`` limits QAT to the first N train images (quick runs, tests)."""

    formats: list[str]
    calibration_size: int = CALIBRATION_IMAGES
    parity_check: bool = True
    gate: bool = True
    gate_options: GateOptions = GateOptions()  # noqa: RUF009 (frozen: one shared default is safe)
    qat_epochs: int = 3
    qat_samples: int | None = None
    reduce_range: str = "auto"
    limits: Limits = Limits()  # noqa: RUF009
    debug_quant: bool = False
    score: str | None = None  # the unknown score (None: the run's, see Source.unknown)
    keep: float | None = None  # known-class share the threshold keeps (None: the run's)

    def __post_init__(self) -> None:
        """A one-line ExportError naming the option out of range."""
        if self.qat_epochs < 1:
            raise ExportError(f"--qat-epochs {self.qat_epochs}: must be at least 1")


@dataclass(frozen=True)
class Job:
    """What every format's step shares: where it writes, what it builds from, the reference."""

    out_dir: Path
    stage: Path
    inputs: BuildInputs
    contract: Contract
    keep: float  # each artifact's unknown threshold keeps this share of known images
    reference: Reference | None  # None: no parity check
    options: ExportOptions
    data: str  # the dataset as the web page names it (file names without their folders)
    log: Log


def check_writable(out_dir: Path) -> None:
    """Fail in one line, before minutes of conversion, if ``out_dir`` cannot take files."""
    try:
        write_text(out_dir / ".herbi-write-probe", "").unlink()  # creates out_dir too
    except OSError as e:
        raise ExportError(f"{out_dir}: output folder is not writable ({e.strerror})") from None


def export_model(
    source: Source, out_dir: Path | str, options: ExportOptions, log: Log = print
) -> ExportReport:
    """Export ``options.formats`` (registry names) of ``source`` into ``out_dir``; return the
    report. A format whose conversion fails is reported as ``failed``; the others still build."""
    check_known(options.formats)
    out_dir = Path(out_dir)
    check_writable(out_dir)
    job, report = prepare(source, out_dir, options, log)
    for name in options.formats:
        report.artifacts[name] = export_format(FORMATS[name], job)
    shutil.rmtree(job.stage, ignore_errors=True)
    write_report(report, out_dir / EXPORT_REPORT)
    return report


def prepare(
    source: Source, out_dir: Path, options: ExportOptions, log: Log
) -> tuple[Job, ExportReport]:
    """What every format shares, one job per step: the calibration images, the batch-norm
    rewrite, the reduce-range choice, the unknown score's head, the builders' inputs, the Keras
    reference and the report's header."""
    ds = source.dataset
    calibration = calibration_indices(ds.y_train, options.calibration_size)
    model, rewritten = affine_batchnorms(source.model)
    if rewritten:
        log(f"batch norms after activations as 1x1 depthwise convolutions: {', '.join(rewritten)}")
    reduce_range = resolve_reduce_range(options.reduce_range)
    head, keep = score_head(source, options)
    inputs = build_inputs(
        source, options, model, head, calibration, reduce_range.onnx_int8_7bit_weights
    )
    # Parity images: validation first (the paired test's labelled images), then train images
    # outside the calibration set (agreement needs no labels); the test split only reported.
    gate = options.gate_options
    images = parity_images(ds, calibration, gate.train_images)
    reference = None
    if options.parity_check:
        parity = keras_probs(source.model, images.pixels, PIXEL_SCALE)
        test = keras_probs(source.model, ds.x_test, PIXEL_SCALE)
        reference = Reference(images, parity, ds.x_test, test, ds.y_test, source.labels)
    report = ExportReport(
        model=str(source.model_path),
        data=ds.source,
        labels=source.labels,
        calibration=Calibration(images=len(calibration)),
        unknown=UnknownSetting(head.score, keep, len(ds.x_val)),
        reduce_range=reduce_range,
        batchnorms_as_depthwise=rewritten,
        gate=GateSettings(
            enabled=options.parity_check and options.gate,
            max_arena_bytes=options.limits.max_arena,
            max_flash_bytes=options.limits.max_flash,
            parity_images=images.description,
            parity_train_images=gate.train_images,
            min_agreement=gate.min_agreement,
            max_drop_points=gate.max_drop,
            hard_limit_points=gate.hard_limit,
            alpha=gate.alpha,
        ),
        keras=reference.accuracy() if reference else None,
    )
    contract = Contract(labels=source.labels, input_size=source.input_size)
    stage = artifacts.staging(out_dir)
    data = " ".join(Path(w).name if "/" in w else w for w in ds.source.split(" "))
    job = Job(out_dir, stage, inputs, contract, keep, reference, options, data, log)
    return job, report


def resolve_reduce_range(choice: str) -> ReduceRange:
    """``--reduce-range`` -> 7-bit ONNX int8 weights or not, with the reason the report records."""
    if choice != "auto":
        return ReduceRange(choice == "on", "chosen with --reduce-range")
    cpu = cpu_info()
    said = "has" if cpu.has_vnni else "lacks"
    return ReduceRange(not cpu.has_vnni, f"auto: this CPU {said} VNNI ({cpu.name})")


def score_head(source: Source, options: ExportOptions):
    """The unknown score's head (fit on the train images) and the keep rate: the options', else
    the run's; refused when the validation images are too few to promise that keep rate."""
    from herbi.train.openset import fit_head  # TensorFlow: loaded by the source

    ds = source.dataset
    score, keep = options.score or source.unknown.score, options.keep or source.unknown.keep
    if conformal_threshold(np.zeros(len(ds.x_val)), keep) == -np.inf:
        raise ExportError(
            f"--keep {keep}: {len(ds.x_val)} validation images are too few to promise it "
            f"(need at least {math.ceil(1 / (1 - keep)) - 1})"
        )
    return fit_head(source.model, score, ds.x_train, ds.y_train, PIXEL_SCALE), keep


def build_inputs(
    source: Source,
    options: ExportOptions,
    model: object,
    head: object,
    calibration: np.ndarray,
    reduce_range: bool,
) -> BuildInputs:
    """What every builder converts from: ``model`` (the trained one, batch norms rewritten) and
    the score's ``head``, the train images at ``calibration``, QAT's train images, validation."""
    ds = source.dataset
    train = (ds.x_train[: options.qat_samples], ds.y_train[: options.qat_samples])
    return BuildInputs(
        model,
        head,
        ds.x_train[calibration],
        train,
        (ds.x_val, ds.y_val),
        PIXEL_SCALE,
        qat_epochs=options.qat_epochs,
        reduce_range=reduce_range,
    )


def classifier_int8(run_dir: Path, calibration_images: int) -> bytes:
    """The run's classifier alone (no unknown score) as int8 TFLite, converted as export converts
    its int8 artifacts (the same batch-norm rewrite and calibration images): what the bench
    measures the score's cost against."""
    source = load_source(run_dir)
    calibration = calibration_indices(source.dataset.y_train, calibration_images)
    model, _ = affine_batchnorms(source.model)
    inputs = build_inputs(source, ExportOptions([]), model, None, calibration, False)
    with without_chatter():
        return FORMATS["tflite-int8"].build(inputs)


def export_format(fmt: Format, job: Job) -> ArtifactResult:
    """One format: build -> threshold -> write -> check -> evaluate -> judge -> publish. A
    failure names the format."""
    job.log(f"[{fmt.name}] {fmt.description}")
    started, path = time.perf_counter(), job.stage / fmt.filename
    try:
        with without_chatter():  # the converters' notes on fd 2
            data = fmt.build(job.inputs)
        contract, footprint = staged(fmt, data, job)
        fmt.container.write(data, path, contract, fmt.int8)
    except HerbiError as e:  # one format failing must not cost the others
        artifacts.remove(fmt.files(path), job.out_dir)
        job.log(f"[{fmt.name}] FAILED: {e}")
        return ArtifactResult("failed", [f"{fmt.name}: {e}"])
    build_seconds = round(time.perf_counter() - started, 2)
    model = fmt.model(path)
    problems = fmt.container.check(model, fmt.int8)
    problems += job.options.limits.problems(footprint) if footprint else []
    reasons, found, gate = list(problems), None, None
    if job.reference is not None:
        found = evidence.evaluate(model, fmt.backend, job.reference)
        agreement, summary = found.agreement, summary_line(found.paired_val)
        gate = GateEvidence(agreement, found.paired_val.rounded(), summary)
        job.log(f"[{fmt.name}] agreement {agreement.agreement:.4f} on {agreement.images}")
        job.log(f"[{fmt.name}] {summary}")
        if job.options.gate:
            reasons += judge(found.paired_val, agreement.agreement, job.options.gate_options)
    debug_csv = None
    if job.options.debug_quant and fmt.debug:
        table = fmt.debug(job.inputs, model)
        debug_csv = write_text(job.out_dir / f"{fmt.name}.debug.csv", table).name
    if reasons:
        job.log(f"[{fmt.name}] REJECTED: {'; '.join(reasons)}")
    status = "rejected" if reasons else "ok"
    if fmt.container.annotate:  # what the web page says of its model
        accuracy, day = found.test.accuracy_artifact if found else None, time.strftime("%Y-%m-%d")
        fmt.container.annotate(path, PageFacts(fmt.description, job.data, accuracy, day, status))
    size_kb, sha256 = round(model.stat().st_size / 1024, 1), sha256_file(model)
    published = artifacts.publish(fmt.files(path), job.out_dir, bool(reasons))
    return ArtifactResult(
        status,
        reasons,
        published.name,
        size_kb,
        sha256,
        build_seconds,
        problems,
        val=found.val if found else None,
        test=found.test if found else None,
        gate=gate,
        footprint=footprint,
        debug_csv=debug_csv,
        unknown=contract.unknown,
    )


def staged(fmt: Format, data: bytes, job: Job) -> tuple[Contract, Footprint | None]:
    """The artifact's contract with its unknown threshold and (a device format) its footprint,
    measured on its model file alone, staged with the contract so far: the threshold is the one
    the artifact's own runtime gives, and the artifact is then written once, with it."""
    contract = replace(job.contract, format=fmt.name)
    probe = job.stage / "probe" / fmt.model(Path(fmt.filename)).name
    pixels, score = job.inputs.val[0], job.inputs.head.score
    try:
        artifacts.write_model(data, probe, contract, fmt.int8)
        # A device format's footprint first: it names an op the device lacks.
        footprint = fmt.container.footprint(probe) if fmt.container.footprint else None
        _, scores = Classifier.load(probe, backend=fmt.backend).predict(pixels)
    finally:
        shutil.rmtree(probe.parent, ignore_errors=True)
    threshold = conformal_threshold(scores, job.keep)
    job.log(f"[{fmt.name}] unknown: {score} below {threshold:.4f}")
    return replace(contract, unknown=Unknown(score, threshold, job.keep, len(pixels))), footprint
