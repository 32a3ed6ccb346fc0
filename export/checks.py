"""Graph checks run on every finished artifact, before any parity number is trusted.

int8 TFLite: every op must compute in integers (float tensors only at QUANTIZE/DEQUANTIZE
boundaries) and no MUL/ADD with a constant operand may remain, which is what an unfolded
batch norm (``x * gamma' + beta'``) or an in-model rescaling leaves behind. ONNX: the model
must pass ``onnx.checker`` with full (strict) shape inference; an int8 QDQ model must have
every Conv/MatMul/Gemm fed by DequantizeLinear and no BatchNormalization left.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from herbi.runtime.errors import first_line

FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.float64))
BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}
AFFINE_OPS = {"MUL", "ADD"}
QDQ_COMPUTE_OPS = {"Conv", "MatMul", "Gemm"}
# Export rewrites batch norms that cannot fold (herbi.export.rewrite), so one left in an int8
# graph means a converter failed to fold it.
UNFOLDED_BN = "unfolded batch norm"


def tflite_problems(path: Path, int8: bool) -> list[str]:
    """Problems of a ``.tflite`` graph: an int8 one must be fully integer (empty: it is)."""
    if not int8:
        return []
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    ops = interp._get_ops_details()  # the op list as the flatbuffer holds it
    dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interp.get_tensor_details()}
    produced = {int(i) for op in ops for i in op["outputs"]}
    produced |= {int(d["index"]) for d in interp.get_input_details()}
    problems = []
    for op in ops:
        name, inputs = op["op_name"], [int(i) for i in op["inputs"] if i >= 0]
        tensors = inputs + [int(i) for i in op["outputs"]]
        if name not in BOUNDARY_OPS and any(dtypes.get(t) in FLOAT_TYPES for t in tensors):
            problems.append(f"op {op['index']} {name} computes in float")
        if name in AFFINE_OPS and any(t not in produced for t in inputs):
            problems.append(f"op {op['index']} {name} with a constant operand ({UNFOLDED_BN}?)")
        if "BATCH_NORM" in name.upper():
            problems.append(f"op {op['index']} {name}: {UNFOLDED_BN} left in the graph")
    return problems


def onnx_problems(path: Path, int8: bool) -> list[str]:
    """``onnx.checker`` with full shape inference, plus the QDQ structure for int8 models."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        return [f"onnx.checker: {first_line(e)}"]
    if not int8:
        return []
    graph = onnx.load(str(path)).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    problems = []
    for node in graph.node:
        if node.op_type == "BatchNormalization":
            problems.append(f"node {node.name}: BatchNormalization runs in float ({UNFOLDED_BN})")
        if node.op_type in QDQ_COMPUTE_OPS:
            # Inputs 0 and 1 (activations, weights) must be dequantized int8; the bias may be float.
            for name in node.input[:2]:
                if producer.get(name) != "DequantizeLinear":
                    problems.append(f"node {node.name} ({node.op_type}): input {name} is float")
    return problems
