"""Write an artifact with its contract attached; publish it only once it has a verdict.

The int8 I/O scale and zero point are read back from the finished model into the contract, so
what it says is what the file holds. Staging first means an export killed half-way leaves
nothing under a final name that no check has judged.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from herbi.common.files import atomic_path, write_text
from herbi.runtime.contract import METADATA_KEY, Contract, sha256_file, sidecar_path

REJECTED = ".rejected"
STAGING = ".staging"


def tflite_io_quantization(path: Path) -> dict:
    """``{"input": {...}, "output": {...}}`` scale/zero point of int8 I/O tensors, else {}."""
    from ai_edge_litert.interpreter import Interpreter

    interp, found = Interpreter(model_path=str(path)), {}
    ins, outs = interp.get_input_details(), interp.get_output_details()
    for role, details in (("input", ins[0]), ("output", outs[0])):
        scale, zero = details["quantization"]
        if scale:
            found[role] = {"dtype": details["dtype"].__name__, "scale": scale, "zero_point": zero}
    return found


def write_tflite(data: bytes, path: Path, contract: Contract, int8: bool) -> None:
    """Model first, sidecar (with the final sha256) second, each renamed into place."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        quant = tflite_io_quantization(tmp)
        digest = sha256_file(tmp)
    final = replace(contract, quantization=quant, sha256=digest)
    write_text(sidecar_path(path), final.to_json() + "\n")


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


def write_onnx(data: bytes, path: Path, contract: Contract, int8: bool) -> None:
    import onnx

    model = onnx.load_from_string(data)
    quant = onnx_io_quantization(model) if int8 else {}
    final = replace(contract, quantization=quant, sha256=None)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, final.to_json()
    with atomic_path(path) as tmp:
        tmp.write_bytes(model.SerializeToString())


def write_model(data: bytes, path: Path, contract: Contract, int8: bool) -> None:
    """The model file alone with its contract, written as its suffix says (``.tflite`` with a
    sidecar, ``.onnx`` with metadata): what a runtime loads."""
    (write_onnx if path.suffix == ".onnx" else write_tflite)(data, path, contract, int8)


def staging(out_dir: Path) -> Path:
    """A fresh staging folder inside ``out_dir`` (what a killed export left there is gone)."""
    folder = out_dir / STAGING
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def publish(files: list[Path], out_dir: Path, rejected: bool) -> Path:
    """Move a judged artifact's files from staging into ``out_dir``; return the model's path.

    Each file (or folder) replaces whatever an earlier export left under its name in one
    rename; the other verdict's files of the same format (``*.rejected`` or not) are removed.
    """
    suffix, other = (REJECTED, "") if rejected else ("", REJECTED)
    for f in files:
        replace_with(f, out_dir / (f.name + suffix))
        discard(out_dir / (f.name + other))
    return out_dir / (files[0].name + suffix)


def replace_with(new: Path, target: Path) -> None:
    """Rename ``new`` onto ``target``; a folder already there is moved aside first, and back
    should the rename fail, so ``target`` is never missing or mixed."""
    if not target.is_dir() or target.is_symlink():
        new.replace(target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    target.rename(aside / target.name)
    try:
        new.rename(target)
    except OSError:
        (aside / target.name).rename(target)  # should this fail too, the old copy stays aside
        raise
    shutil.rmtree(aside, ignore_errors=True)


def remove(files: list[Path], out_dir: Path) -> None:
    """Delete an earlier export's files (or folders) of these names, accepted or rejected,
    from ``out_dir``. A format whose conversion now failed loses them too, so no stale file
    is mistaken for this export's result."""
    for f in files:
        for name in (f.name, f.name + REJECTED):
            discard(out_dir / name)


def discard(path: Path) -> None:
    """Delete the file or folder at ``path``, if any."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
