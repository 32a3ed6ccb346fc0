"""Write an artifact with its contract attached, atomically, and mark rejected ones.

TFLite: ``<name>.tflite`` plus the sidecar ``<name>.json`` holding the contract and the
file's sha256. ONNX: the contract goes inside the model (``metadata_props["herbi"]``). In both
cases the int8 input/output scale and zero point are read back from the finished model and
recorded in the contract, so what it says is what the file holds.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from herbi.export.formats import Format
from herbi.runtime.contract import METADATA_KEY, Contract, sha256_file, sidecar_path
from herbi.train.files import atomic_path, write_text

REJECTED = ".rejected"


def tflite_io_quantization(path: Path) -> dict:
    """``{"input": {...}, "output": {...}}`` scale/zero point of int8 I/O tensors, else {}."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    found = {}
    for role, details in (
        ("input", interp.get_input_details()[0]),
        ("output", interp.get_output_details()[0]),
    ):
        scale, zero = details["quantization"]
        if scale:
            found[role] = {"dtype": details["dtype"].__name__, "scale": scale, "zero_point": zero}
    return found


def write_tflite(fmt: Format, data: bytes, out_dir: Path, contract: Contract) -> Path:
    """Model first, sidecar (with the final sha256) second, each renamed into place."""
    path = out_dir / fmt.filename
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        quant = tflite_io_quantization(tmp)
        digest = sha256_file(tmp)
    final = replace(contract, format=fmt.name, quantization=quant, sha256=digest)
    write_text(sidecar_path(path), final.to_json() + "\n")
    return path


def onnx_io_quantization(model) -> dict:
    """Scale/zero point where a QDQ model quantizes its float input and dequantizes its output.

    The input passes through layout ops (Transpose) before its first QuantizeLinear.
    """
    from onnx import numpy_helper

    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producers = {out: node for node in graph.node for out in node.output}

    def params(node) -> dict:
        scale, zero = consts.get(node.input[1]), consts.get(node.input[2])
        if scale is None or zero is None or scale.size != 1:
            return {}
        return {"dtype": zero.dtype.name, "scale": float(scale), "zero_point": int(zero)}

    found = {}
    tensor = graph.input[0].name
    while len(consumers.get(tensor, [])) == 1:
        node = consumers[tensor][0]
        if node.op_type == "QuantizeLinear":
            found["input"] = params(node)
            break
        if node.op_type not in ("Transpose", "Reshape", "Identity"):
            break
        tensor = node.output[0]
    last = producers.get(graph.output[0].name)
    if last is not None and last.op_type == "DequantizeLinear":
        found["output"] = params(last)
    return {role: p for role, p in found.items() if p}


def write_onnx(fmt: Format, data: bytes, out_dir: Path, contract: Contract) -> Path:
    import onnx

    model = onnx.load_from_string(data)
    quant = onnx_io_quantization(model) if fmt.int8 else {}
    final = replace(contract, format=fmt.name, quantization=quant, sha256=None)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, final.to_json()
    path = out_dir / fmt.filename
    with atomic_path(path) as tmp:
        tmp.write_bytes(model.SerializeToString())
    return path


def write_artifact(fmt: Format, data: bytes, out_dir: Path, contract: Contract) -> Path:
    clear_rejection(out_dir / fmt.filename)
    writer = write_tflite if fmt.backend == "tflite" else write_onnx
    return writer(fmt, data, out_dir, contract)


def artifact_files(path: Path) -> list[Path]:
    """The model file and, for TFLite, its sidecar."""
    return [path, sidecar_path(path)] if path.suffix == ".tflite" else [path]


def mark_rejected(path: Path) -> Path:
    """Rename the model (and sidecar) to ``*.rejected``: kept for inspection, never deployed."""
    for f in artifact_files(path):
        f.replace(f.with_name(f.name + REJECTED))
    return path.with_name(path.name + REJECTED)


def clear_rejection(path: Path) -> None:
    """A fresh export of the same format supersedes an earlier rejected one."""
    for f in artifact_files(path):
        f.with_name(f.name + REJECTED).unlink(missing_ok=True)


def remove_artifact(path: Path) -> None:
    """Delete an earlier export of a format whose conversion now failed, so no stale file
    is mistaken for this run's result."""
    clear_rejection(path)
    for f in artifact_files(path):
        f.unlink(missing_ok=True)
