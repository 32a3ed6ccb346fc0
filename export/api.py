"""``export_model``: build every requested format, check it, compare it with Keras, report."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from herbi.common.cpu import cpu_info
from herbi.common.errors import ExportError, HerbiError
from herbi.common.files import read_json, write_json, write_text
from herbi.common.legacy_keras import without_chatter
from herbi.common.run_folder import EXPORT_REPORT
from herbi.export import artifacts, evidence
from herbi.export.calibration import DEFAULT_SIZE, calibration_indices
from herbi.export.evidence import Agreement, Parity, Reference
from herbi.export.formats import FORMATS, BuildInputs, Format, Limits, check_known
from herbi.export.gate import GateOptions, PairedTest, judge, parity_images, summary_line
from herbi.export.rewrite import affine_batchnorms
from herbi.export.source import Source
from herbi.export.tflm import TflmFootprint, fits
from herbi.runtime.classifier import Classifier
from herbi.runtime.contract import PIXEL_SCALE, Contract, sha256_file
from herbi.runtime.unknown import Unknown, conformal_threshold
from herbi.train.evaluate import keras_probs

Log = Callable[[str], object]


@dataclass(frozen=True)
class ExportOptions:
    """What ``herbi-export`` was asked for (its options of the same names). ``gate=False``
    measures parity but rejects only on graph problems and device limits (tests keep every
    artifact); ``qat_samples`` limits QAT to the first N train images (quick runs, tests)."""

    formats: list[str]
    calibration_size: int = DEFAULT_SIZE
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


@dataclass(frozen=True)
class GateEvidence:
    """What the gate judged: agreement on the parity images, the paired test on validation."""

    agreement: Agreement
    paired_val: PairedTest
    summary: str


@dataclass
class ArtifactResult:
    """One format's outcome: ``ok``, ``rejected`` (files kept as ``*.rejected``) or ``failed``
    (its conversion raised; no file)."""

    status: str
    reasons: list[str]
    file: str | None = None
    size_kb: float | None = None
    sha256: str | None = None
    build_seconds: float | None = None
    graph_problems: list[str] = field(default_factory=list)
    val: Parity | None = None
    test: Parity | None = None
    gate: GateEvidence | None = None
    footprint: TflmFootprint | None = None  # a microcontroller artifact's arena and flash
    debug_csv: str | None = None
    unknown: Unknown | None = None  # its calibrated "none of these" threshold


@dataclass
class ExportReport:
    model: str
    data: str
    labels: list[str]
    calibration: dict
    unknown: dict
    reduce_range: dict
    batchnorms_as_depthwise: list[str]
    gate: dict
    keras: dict
    artifacts: dict[str, ArtifactResult] = field(default_factory=dict)

    def names(self, status: str) -> list[str]:
        return [n for n, a in self.artifacts.items() if a.status == status]


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
    data: str  # the dataset's description, for an artifact's own facts
    log: Log


def resolve_reduce_range(choice: str) -> tuple[bool, str]:
    """``--reduce-range`` -> (7-bit ONNX int8 weights?, the reason the report records)."""
    if choice != "auto":
        return choice == "on", "chosen with --reduce-range"
    vnni = cpu_info().has_vnni
    return not vnni, f"auto: this CPU {'has' if vnni else 'lacks'} VNNI ({cpu_info().name})"


def facts(fmt: Format, data: str, result: ArtifactResult) -> dict:
    """What an artifact that shows itself to people (the web page) says about itself."""
    readable = " ".join(Path(w).name if "/" in w else w for w in data.split(" "))
    return {
        "description": fmt.description,
        "dataset": readable,
        "test_accuracy": result.test.accuracy_artifact if result.test else None,
        "exported": time.strftime("%Y-%m-%d"),
        "status": result.status,
    }


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
    write_json(out_dir / EXPORT_REPORT, merged(asdict(report), out_dir / EXPORT_REPORT))
    return report


def score_head(source: Source, options: ExportOptions):
    """The unknown score's head (fit on the train images) and the keep rate: the options', else
    the run's; refused when the validation images are too few to promise that keep rate."""
    from herbi.train.openset import fit_head  # TensorFlow: loaded by the source

    ds = source.dataset
    score, keep = options.score or source.unknown[0], options.keep or source.unknown[1]
    if conformal_threshold(np.zeros(len(ds.x_val)), keep) == -np.inf:
        raise ExportError(
            f"--keep {keep}: {len(ds.x_val)} validation images are too few to promise it "
            f"(need at least {math.ceil(1 / (1 - keep)) - 1})"
        )
    return fit_head(source.model, score, ds.x_train, ds.y_train, PIXEL_SCALE), keep


def prepare(
    source: Source, out_dir: Path, options: ExportOptions, log: Log
) -> tuple[Job, ExportReport]:
    """Calibration, the rewritten model, the gate's images with Keras' probabilities on them,
    and the report's header."""
    ds, gate = source.dataset, options.gate_options
    calib_ix = calibration_indices(ds.y_train, options.calibration_size)
    model, rewritten = affine_batchnorms(source.model)
    if rewritten:
        log(f"batch norms after activations as 1x1 depthwise convolutions: {', '.join(rewritten)}")
    seven_bit, why = resolve_reduce_range(options.reduce_range)
    contract = Contract(labels=source.labels, input_size=source.input_size)
    head, keep = score_head(source, options)
    train = (ds.x_train[: options.qat_samples], ds.y_train[: options.qat_samples])
    inputs = BuildInputs(
        model,
        head,
        ds.x_train[calib_ix],
        train,
        (ds.x_val, ds.y_val),
        contract.scale,
        qat_epochs=options.qat_epochs,
        reduce_range=seven_bit,
    )
    # Parity images: validation first (the paired test's labelled images), then train images
    # outside the calibration set (agreement needs no labels); the test split only reported.
    images = parity_images(ds, calib_ix, gate.train_images)
    reference = None
    if options.parity_check:
        probs = (keras_probs(source.model, x, contract.scale) for x in (images.pixels, ds.x_test))
        reference = Reference(images, next(probs), ds.x_test, next(probs), ds.y_test, source.labels)
    report = ExportReport(
        model=str(source.model_path),
        data=ds.source,
        labels=source.labels,
        calibration={"split": "train", "images": len(calib_ix), "stratified": True},
        unknown={"score": head.score, "keep": keep, "validation_images": len(ds.x_val)},
        reduce_range={"onnx_int8_7bit_weights": seven_bit, "reason": why},
        batchnorms_as_depthwise=rewritten,
        gate={
            "enabled": options.parity_check and options.gate,
            "max_arena_bytes": options.limits.max_arena,
            "max_flash_bytes": options.limits.max_flash,
            "parity_images": images.description,
            "parity_train_images": gate.train_images,
            "paired_split": "val",
            "reported_split": "test",
            "min_agreement": gate.min_agreement,
            "max_drop_points": gate.max_drop,
            "hard_limit_points": gate.hard_limit,
            "alpha": gate.alpha,
            "test": "exact McNemar on the discordant pairs; Tango score interval (95%)",
        },
        keras=reference.accuracy() if reference else {},
    )
    stage = artifacts.staging(out_dir)
    job = Job(out_dir, stage, inputs, contract, keep, reference, options, ds.source, log)
    return job, report


def export_format(fmt: Format, job: Job) -> ArtifactResult:
    """One format: build -> check -> evaluate -> judge -> publish. A failure names the format."""
    job.log(f"[{fmt.name}] {fmt.description}")
    started, path = time.perf_counter(), job.stage / fmt.filename
    contract = replace(job.contract, format=fmt.name)
    try:
        with without_chatter():  # the converters' notes on fd 2
            data = fmt.build(job.inputs)
        # Written twice: the threshold is measured through the written artifact's own runtime,
        # and then belongs in its contract (and, for TFLM and the web page, in their sources).
        fmt.container.write(data, path, contract, fmt.int8)
        contract = replace(contract, unknown=calibrated(fmt, path, job))
        fmt.container.write(data, path, contract, fmt.int8)
    except HerbiError as e:  # one format failing must not cost the others
        artifacts.remove(fmt.files(path), job.out_dir)
        job.log(f"[{fmt.name}] FAILED: {e}")
        return ArtifactResult("failed", [f"{fmt.name}: {e}"])
    result = checked(fmt, path, job.options.limits, round(time.perf_counter() - started, 2))
    result.unknown = contract.unknown
    if job.reference is not None:
        result.reasons += evaluated(fmt, fmt.model(path), job, result)
    if job.options.debug_quant and fmt.debug:
        table = job.out_dir / f"{fmt.name}.debug.csv"
        write_text(table, fmt.debug(job.inputs, fmt.model(path)))
        result.debug_csv = table.name
    if result.reasons:
        result.status = "rejected"
        job.log(f"[{fmt.name}] REJECTED: {'; '.join(result.reasons)}")
    published = artifacts.publish(fmt.files(path), job.out_dir, bool(result.reasons))
    result.file = published.name
    if fmt.container.annotate:
        fmt.container.annotate(published, facts(fmt, job.data, result))
    return result


def calibrated(fmt: Format, path: Path, job: Job) -> Unknown:
    """The artifact's unknown threshold: its own runtime's scores on the validation images."""
    pixels = job.inputs.val[0]
    _, scores = Classifier.load(fmt.model(path), backend=fmt.backend).predict(pixels)
    threshold = conformal_threshold(scores, job.keep)
    job.log(f"[{fmt.name}] unknown: {job.inputs.head.score} below {threshold:.4f}")
    return Unknown(job.inputs.head.score, threshold, job.keep, len(pixels))


def checked(fmt: Format, path: Path, limits: Limits, build_seconds: float) -> ArtifactResult:
    """The built artifact's size, digest, graph problems and (a device format) footprint."""
    model = fmt.model(path)
    footprint = fmt.container.footprint(model) if fmt.container.footprint else None
    problems = fmt.check(path)
    if footprint:
        problems += fits(footprint, limits.max_arena, limits.max_flash)
    return ArtifactResult(
        "ok",
        list(problems),
        size_kb=round(model.stat().st_size / 1024, 1),
        sha256=sha256_file(model),
        build_seconds=build_seconds,
        graph_problems=problems,
        footprint=footprint,
    )


def evaluated(fmt: Format, model: Path, job: Job, result: ArtifactResult) -> list[str]:
    """Record the artifact's evidence in ``result``; return the gate's reasons to refuse it."""
    found = evidence.evaluate(model, fmt.backend, job.reference)
    summary = summary_line(found.paired_val)
    result.val, result.test = found.val, found.test
    result.gate = GateEvidence(found.agreement, found.paired_val.rounded(), summary)
    job.log(f"[{fmt.name}] agreement {found.agreement.agreement:.4f} on {found.agreement.images}")
    job.log(f"[{fmt.name}] {summary}")
    if not job.options.gate:
        return []
    return judge(found.paired_val, found.agreement.agreement, job.options.gate_options)


def merged(new: dict, path: Path) -> dict:
    """``new`` plus the entries of formats an earlier export left in the same folder, so
    exporting one format does not lose what the report said of the others; with the lists of
    rejected and failed formats."""
    try:
        old = {k: v for k, v in read_json(path).get("artifacts", {}).items()
               if k not in new["artifacts"]}  # fmt: skip
    except HerbiError:  # no earlier report, or not one herbi can read: start afresh
        old = {}
    artifacts = {**old, **new["artifacts"]}
    by_status = {s: [n for n, a in artifacts.items() if a.get("status") == s]
                 for s in ("rejected", "failed")}  # fmt: skip
    return {**new, "artifacts": artifacts, **by_status}
