"""``--debug-quant``: a per-layer quantization error table (CSV) for each int8 artifact.

TFLite's ``rmse_over_scale``: about 0.29 is pure rounding noise, much more a badly calibrated
range. ONNX: signal-to-quantization-noise ratios in dB (lower is worse). Post-training int8
only: the debuggers rebuild the quantized graph from the trained model, not QAT's.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np

from herbi.export.to_onnx import CalibrationReader, preprocessed_float32
from herbi.export.to_tflite import int8_converter, representative_dataset
from herbi.runtime.contract import float_input

DEBUG_IMAGES = 64


def tflite_table(inputs, artifact: Path) -> str:
    import tensorflow as tf

    images = float_input(inputs.val[0][:DEBUG_IMAGES], inputs.scale)
    with warnings.catch_warnings():
        # The debugger runs TF's own (deprecated) interpreter internally; nothing to act on.
        warnings.simplefilter("ignore", UserWarning)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=int8_converter(inputs.scored(), inputs.float_calibration()),
            debug_dataset=representative_dataset(images),
        )
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = list(csv.DictReader(io.StringIO(dump.getvalue())))
    for row in rows:
        scale, mse = float(row["scale"]), float(row["mean_squared_error"])
        row["rmse_over_scale"] = f"{math.sqrt(mse) / scale:.4f}" if scale else ""
    return _to_csv(rows)


def onnx_table(inputs, artifact: Path) -> str:
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_signal_to_quantization_noice_ratio,
        compute_weight_error,
        create_activation_matching,
        create_weight_matching,
        modify_model_output_intermediate_tensors,
    )

    images = float_input(inputs.val[0][:DEBUG_IMAGES], inputs.scale)
    with tempfile.TemporaryDirectory(prefix="herbi-qdq-debug-") as tmp:
        folder = Path(tmp)
        float_model = preprocessed_float32(inputs.scored(onnx=True), folder)
        acts = {}
        for key, model in (("float", float_model), ("qdq", artifact)):
            augmented = folder / f"{key}-augmented.onnx"
            modify_model_output_intermediate_tensors(str(model), str(augmented))
            acts[key] = collect_activations(str(augmented), CalibrationReader(images))
        matches = create_activation_matching(acts["qdq"], acts["float"])
        weight_err = compute_weight_error(create_weight_matching(str(float_model), str(artifact)))
    # Not ORT's compute_activation_error: it raises KeyError for a QDQ tensor that has no
    # float counterpart (onnxruntime 1.32), so the float column is filled only where one exists.
    sqnr = compute_signal_to_quantization_noice_ratio
    rows = [
        {
            "kind": "activation",
            "tensor": name,
            "qdq_sqnr_db": _db(sqnr(m["pre_qdq"], m["post_qdq"])),
            "vs_float_sqnr_db": _db(sqnr(m["float"], m["post_qdq"]) if m.get("float") else None),
        }
        for name, m in matches.items()
    ] + [
        {"kind": "weight", "tensor": name, "qdq_sqnr_db": _db(err), "vs_float_sqnr_db": ""}
        for name, err in weight_err.items()
    ]
    return _to_csv(rows)


def _db(value: float | None) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.2f}"


def _to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
