"""``export_model``: build every requested format, check it, compare it with Keras, report.

For each format: build -> write with its contract into the staging folder -> graph check ->
parity on the validation split (gated) and on the test split (reported only, never used to
decide) -> publish under its final name, or as ``*.rejected``. The report
(:class:`ExportReport`) is also written as ``export_report.json`` in the output folder.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from herbi.common.cpu import cpu_info
from herbi.common.errors import ExportError, HerbiError
from herbi.common.files import read_json, write_json, write_text
from herbi.common.run_folder import EXPORT_REPORT
from herbi.export import artifacts, parity
from herbi.export.calibration import DEFAULT_SIZE, calibration_indices
from herbi.export.formats import FORMATS, BuildInputs, Limits
from herbi.export.gate import (
    GateOptions,
    agreement_report,
    judge,
    paired_test,
    parity_images,
    summary_line,
)
from herbi.export.rewrite import affine_batchnorms
from herbi.export.source import Source
from herbi.runtime.contract import Contract, sha256_file
from herbi.train.evaluate import keras_probs


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
    val: parity.Parity | None = None
    test: parity.Parity | None = None
    gate: dict | None = None  # the gate's evidence: agreement on the parity images, paired test
    footprint: dict | None = None  # a microcontroller artifact's measured arena and flash
    debug_csv: str | None = None


@dataclass
class ExportReport:
    model: str
    data: str
    labels: list[str]
    calibration: dict
    reduce_range: dict
    batchnorms_as_depthwise: list[str]
    gate: dict
    keras: dict
    artifacts: dict[str, ArtifactResult] = field(default_factory=dict)

    def names(self, status: str) -> list[str]:
        return [n for n, a in self.artifacts.items() if a.status == status]


def resolve_reduce_range(choice: str) -> tuple[bool, str]:
    """``--reduce-range`` -> (7-bit ONNX int8 weights?, the reason the report records)."""
    if choice != "auto":
        return choice == "on", "chosen with --reduce-range"
    vnni = cpu_info().has_vnni
    return not vnni, f"auto: this CPU {'has' if vnni else 'lacks'} VNNI ({cpu_info().name})"


def facts(fmt, data: str, result: ArtifactResult) -> dict:
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
    source: Source,
    out_dir: Path | str,
    formats: list[str],
    *,
    calibration_size: int = DEFAULT_SIZE,
    parity_check: bool = True,
    gate: bool = True,
    options: GateOptions = GateOptions(),  # noqa: B008
    qat_epochs: int = 3,
    qat_samples: int | None = None,
    reduce_range: str = "auto",
    limits: Limits = Limits(),  # noqa: B008
    debug_quant: bool = False,
    log: Callable[[str], object] = print,
) -> ExportReport:
    """Export ``formats`` (registry names) of ``source`` into ``out_dir``; return the report.

    ``gate=False`` still measures and reports parity but rejects only on graph problems
    (the test fixture uses it to keep every artifact of a tiny model on disk);
    ``parity_check=False`` skips the side-by-side runs altogether. ``qat_samples`` limits
    quantization-aware training to the first N train images (quick runs and tests).
    Batch norms that cannot fold into a convolution are first rewritten as exact 1x1
    depthwise convolutions (:mod:`herbi.export.rewrite`) for every format. A format whose
    conversion fails is reported as ``failed`` and the others are still built.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExportError(f"unknown format {unknown[0]!r} (known: {', '.join(FORMATS)})")
    out_dir = Path(out_dir)
    check_writable(out_dir)
    ds = source.dataset
    contract = Contract(labels=source.labels, input_size=source.input_size)
    calib_ix = calibration_indices(ds.y_train, calibration_size)
    calib = ds.x_train[calib_ix]
    model, rewritten = affine_batchnorms(source.model)
    if rewritten:
        log(f"batch norms after activations as 1x1 depthwise convolutions: {', '.join(rewritten)}")
    seven_bit, why = resolve_reduce_range(reduce_range)
    inputs = BuildInputs(
        model,
        calib,
        (ds.x_train[:qat_samples], ds.y_train[:qat_samples]),
        (ds.x_val, ds.y_val),
        contract.scale,
        qat_epochs=qat_epochs,
        reduce_range=seven_bit,
    )
    # Parity images: validation first (the paired test's labelled images), then train images
    # outside the calibration set (agreement needs no labels); the test split only reported.
    images = parity_images(ds, calib_ix, options.check().train_images)
    v, labels = images.val_images, source.labels
    splits = {"gate": images.pixels, "test": ds.x_test}
    reference = (
        {s: keras_probs(source.model, x, contract.scale) for s, x in splits.items()}
        if parity_check
        else {}
    )
    report = ExportReport(
        model=str(source.model_path),
        data=ds.source,
        labels=source.labels,
        calibration={"split": "train", "images": len(calib), "stratified": True},
        reduce_range={"onnx_int8_7bit_weights": seven_bit, "reason": why},
        batchnorms_as_depthwise=rewritten,
        gate={
            "enabled": parity_check and gate,
            "max_arena_bytes": limits.max_arena,
            "max_flash_bytes": limits.max_flash,
            "parity_images": images.description,
            "parity_train_images": options.train_images,
            "paired_split": "val",
            "reported_split": "test",
            "min_agreement": options.min_agreement,
            "max_drop_points": options.max_drop,
            "hard_limit_points": options.hard_limit,
            "alpha": options.alpha,
            "test": "exact McNemar on the discordant pairs; Tango score interval (95%)",
        },
        keras={
            "val_accuracy": float((reference["gate"][:v].argmax(1) == ds.y_val).mean()),
            "test_accuracy": float((reference["test"].argmax(1) == ds.y_test).mean()),
        }
        if parity_check
        else {},
    )
    stage = artifacts.staging(out_dir)
    for name in formats:
        fmt = FORMATS[name]
        log(f"[{name}] {fmt.description}")
        started = time.perf_counter()
        path = stage / fmt.filename
        model_file = fmt.model(path)
        try:
            fmt.container.write(fmt.build(inputs), path, replace(contract, format=name), fmt.int8)
        except ExportError as e:  # one format failing must not cost the others
            artifacts.remove(fmt.files(path), out_dir)
            log(f"[{name}] FAILED: {e}")
            report.artifacts[name] = ArtifactResult("failed", [str(e)])
            continue
        result = ArtifactResult(
            "ok",
            [],
            size_kb=round(model_file.stat().st_size / 1024, 1),
            sha256=sha256_file(model_file),
            build_seconds=round(time.perf_counter() - started, 2),
            graph_problems=fmt.check(path, limits),
            footprint=fmt.container.footprint(model_file) if fmt.container.footprint else None,
        )
        result.reasons = list(result.graph_problems)
        if parity_check:
            got = {s: parity.artifact_probs(model_file, x, fmt.backend) for s, x in splits.items()}
            ref = reference["gate"]
            result.val = parity.compare(ref[:v], got["gate"][:v], ds.y_val, labels)
            result.test = parity.compare(reference["test"], got["test"], ds.y_test, labels)
            agreement = agreement_report(images, ref, got["gate"])
            paired = paired_test(
                ref[:v].argmax(1) == ds.y_val, got["gate"][:v].argmax(1) == ds.y_val
            )
            result.gate = {"agreement": agreement, "paired_val": paired.to_dict(),
                           "summary": summary_line(paired)}  # fmt: skip
            log(f"[{name}] agreement {agreement['agreement']:.4f} on {images.description}")
            log(f"[{name}] {summary_line(paired)}")
            if gate:
                result.reasons += judge(paired, agreement["agreement"], options.min_agreement,
                                        options.max_drop, options.hard_limit, options.alpha)  # fmt: skip
        if debug_quant and fmt.debug:
            table = out_dir / f"{name}.debug.csv"
            write_text(table, fmt.debug(inputs, model_file))
            result.debug_csv = table.name
        if result.reasons:
            result.status = "rejected"
            log(f"[{name}] REJECTED: {'; '.join(result.reasons)}")
        published = artifacts.publish(fmt.files(path), out_dir, bool(result.reasons))
        result.file = published.name
        if fmt.container.annotate:
            fmt.container.annotate(published, facts(fmt, ds.source, result))
        report.artifacts[name] = result
    shutil.rmtree(stage, ignore_errors=True)
    write_json(out_dir / EXPORT_REPORT, merged(asdict(report), out_dir / EXPORT_REPORT))
    return report


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
