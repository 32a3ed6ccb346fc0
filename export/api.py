"""``export_model``: build every requested format, check it, compare it with Keras, report.

For each format: build -> write with its contract (atomically) -> graph check -> parity on the
validation split (gated) and on the test split (reported only, never used to decide) ->
accept, or keep the files renamed ``*.rejected``. The report dict is also written as
``export_report.json`` in the output folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from herbi.export import parity
from herbi.export.artifacts import mark_rejected, remove_artifact, write_artifact
from herbi.export.calibration import DEFAULT_SIZE, calibration_images
from herbi.export.checks import graph_problems
from herbi.export.errors import ExportError
from herbi.export.formats import FORMATS, BuildInputs
from herbi.export.rewrite import affine_batchnorms
from herbi.export.source import Source
from herbi.runtime.contract import Contract, sha256_file
from herbi.train.files import atomic_path, write_json

REPORT = "export_report.json"


def check_writable(out_dir: Path) -> None:
    """Fail in one line, before minutes of conversion, if ``out_dir`` cannot take files."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_dir / ".herbi-write-probe") as tmp:
            tmp.write_bytes(b"")
        (out_dir / ".herbi-write-probe").unlink()
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
    min_agreement: float = 0.98,
    max_drop: float = 1.0,
    qat_epochs: int = 3,
    qat_samples: int | None = None,
    debug_quant: bool = False,
    log: Callable[[str], object] = print,
) -> dict:
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
    calib = calibration_images(ds.x_train, ds.y_train, calibration_size)
    model, rewritten = affine_batchnorms(source.model)
    if rewritten:
        log(f"batch norms after activations as 1x1 depthwise convolutions: {', '.join(rewritten)}")
    inputs = BuildInputs(
        model,
        calib,
        (ds.x_train[:qat_samples], ds.y_train[:qat_samples]),
        (ds.x_val, ds.y_val),
        qat_epochs=qat_epochs,
    )
    contract = Contract(labels=source.labels, input_size=source.input_size)
    splits = {"val": (ds.x_val, ds.y_val), "test": (ds.x_test, ds.y_test)}
    reference = (
        {s: parity.keras_probs(source.model, x) for s, (x, _) in splits.items()}
        if parity_check
        else {}
    )
    report = {
        "model": str(source.model_path),
        "data": ds.source,
        "labels": source.labels,
        "calibration": {"split": "train", "images": len(calib), "stratified": True},
        "batchnorms_as_depthwise": rewritten,
        "parity": {"enabled": parity_check, "gated_split": "val", "reported_split": "test"},
        "gate": {"enabled": gate, "min_agreement": min_agreement, "max_drop_points": max_drop},
        "keras": {
            f"{s}_accuracy": float(np.mean(p.argmax(1) == splits[s][1]))
            for s, p in reference.items()
        },
        "artifacts": {},
    }
    for name in formats:
        fmt = FORMATS[name]
        log(f"[{name}] {fmt.description}")
        started = time.perf_counter()
        try:
            path = write_artifact(fmt, fmt.build(inputs), out_dir, contract)
        except ExportError as e:  # one format failing must not cost the others
            remove_artifact(out_dir / fmt.filename)
            log(f"[{name}] FAILED: {e}")
            report["artifacts"][name] = {"status": "failed", "reasons": [str(e)]}
            continue
        found = graph_problems(path, fmt.backend, fmt.int8)
        entry = {
            "file": path.name,
            "backend": fmt.backend,
            "size_kb": round(path.stat().st_size / 1024, 1),
            "sha256": sha256_file(path),
            "build_seconds": round(time.perf_counter() - started, 2),
            "graph_problems": found,
        }
        for split, (x, y) in splits.items() if parity_check else ():
            got = parity.artifact_probs(path, x)
            entry[split] = parity.compare(reference[split], got, y, source.labels)
        reasons = list(found)
        if parity_check and gate:
            reasons += parity.gate(entry["val"], min_agreement, max_drop)
        if debug_quant:
            from herbi.export.debug import write_debug_table

            table = write_debug_table(fmt, inputs, path, out_dir)
            entry["debug_csv"] = table.name if table else None
        entry["status"], entry["reasons"] = ("rejected" if reasons else "ok"), reasons
        if reasons:
            entry["file"] = mark_rejected(path).name
            log(f"[{name}] REJECTED: {'; '.join(reasons)}")
        report["artifacts"][name] = entry
    for status in ("rejected", "failed"):
        report[status] = [n for n, a in report["artifacts"].items() if a["status"] == status]
    write_json(out_dir / REPORT, report)
    return report
