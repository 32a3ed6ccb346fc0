"""``export_model``: build every requested format, check it, compare it with Keras, report.

For each format: build -> write with its contract (atomically) -> graph check -> parity on the
validation split (gate) and accuracy on the test split (reported only) -> accept or mark
``.rejected``. The report dict is also written as ``export_report.json`` in the output folder.
"""

from __future__ import annotations

import time
from pathlib import Path

from herbi.export import parity
from herbi.export.artifacts import mark_rejected, write_artifact
from herbi.export.calibration import DEFAULT_SIZE, calibration_images
from herbi.export.checks import graph_problems
from herbi.export.errors import ExportError
from herbi.export.formats import FORMATS, BuildInputs
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
    out_dir: Path,
    formats: list[str],
    calibration_size: int = DEFAULT_SIZE,
    min_agreement: float = 0.98,
    max_drop: float = 1.0,
    gate: bool = True,
    qat_epochs: int = 3,
    qat_samples: int | None = None,
    debug_quant: bool = False,
    log=print,
) -> dict:
    """Export ``formats`` (registry names) of ``source`` into ``out_dir``; return the report.

    With ``gate`` off, parity is still measured and reported but nothing is rejected (used
    by tests that want every artifact on disk whatever a tiny model's numbers are).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExportError(f"unknown format {unknown[0]!r} (known: {', '.join(FORMATS)})")
    out_dir = Path(out_dir)
    check_writable(out_dir)
    ds = source.dataset
    calib = calibration_images(ds.x_train, ds.y_train, calibration_size)
    train = (ds.x_train, ds.y_train) if qat_samples is None else _subset(ds, qat_samples)
    inputs = BuildInputs(source.model, calib, train, (ds.x_val, ds.y_val), qat_epochs=qat_epochs)
    contract = Contract(labels=source.labels, input_size=source.input_size)
    ref_val = parity.keras_probs(source.model, ds.x_val)
    ref_test = parity.keras_probs(source.model, ds.x_test)
    report = {
        "model": str(source.model_path),
        "data": ds.source,
        "labels": source.labels,
        "parity_split": "val",
        "calibration": {"split": "train", "images": len(calib)},
        "gate": {"enabled": gate, "min_agreement": min_agreement, "max_drop_points": max_drop},
        "artifacts": {},
    }
    for name in formats:
        fmt = FORMATS[name]
        log(f"[{name}] building: {fmt.description}")
        started = time.perf_counter()
        path = write_artifact(fmt, fmt.build(inputs), out_dir, contract)
        build_s = time.perf_counter() - started
        problems = graph_problems(path, fmt.backend, fmt.int8)
        val = parity.compare(
            ref_val, parity.artifact_probs(path, ds.x_val), ds.y_val, ds.class_names
        )
        test = parity.compare(
            ref_test, parity.artifact_probs(path, ds.x_test), ds.y_test, ds.class_names
        )
        reasons = problems + (parity.gate(val, min_agreement, max_drop) if gate else [])
        entry = {
            "file": path.name,
            "backend": fmt.backend,
            "size_kb": path.stat().st_size / 1024,
            "sha256": sha256_file(path),
            "build_seconds": round(build_s, 2),
            "graph_problems": problems,
            "val": val,
            "test": test,
            "status": "rejected" if reasons else "ok",
            "reasons": reasons,
        }
        if debug_quant and fmt.int8:
            from herbi.export.debug import write_debug_table

            entry["debug_csv"] = write_debug_table(fmt, inputs, path, out_dir).name
        if reasons:
            entry["file"] = mark_rejected(path).name
            log(f"[{name}] REJECTED: {'; '.join(reasons)}")
        report["artifacts"][name] = entry
    report["keras"] = {
        "val_accuracy": parity.compare(ref_val, ref_val, ds.y_val, ds.class_names)[
            "accuracy_keras"
        ],
        "test_accuracy": parity.compare(ref_test, ref_test, ds.y_test, ds.class_names)[
            "accuracy_keras"
        ],
    }
    report["rejected"] = [n for n, a in report["artifacts"].items() if a["status"] != "ok"]
    write_json(out_dir / REPORT, report)
    return report


def _subset(ds, n: int):
    """The first ``n`` train images (the split is already shuffled): a quicker QAT."""
    return ds.x_train[:n], ds.y_train[:n]
