"""TFLite Micro: measure an int8 ``.tflite`` in the real TFLM interpreter and write it as C++.

A microcontroller user must know three things before flashing: how big the tensor arena must
be, whether TFLM has a kernel for every op, and how many bytes the model takes. All three are
measured here by the TFLM interpreter itself (PyPI ``tflite-micro``), not estimated:

- the arena from TFLM's RecordingMicroAllocator after one invoke: *head* is the non-persistent
  part its memory planner lays the activations (and kernel scratch buffers) out in, *tail* the
  persistent part (tensor and node structs, per-op data);
- the ops from the flatbuffer, each mapped to the ``MicroMutableOpResolver::AddXxx()`` method
  that registers it, so the generated ``herbi_ops.h`` pulls in exactly the kernels needed;
- a model TFLM cannot run (an op it lacks) is refused with the op's name.

The arena is measured on this 64-bit host with TFLM's reference kernels. On a 32-bit core the
persistent structs are smaller (pointers are 4 bytes), so the tail there is at most this;
optimized kernels (CMSIS-NN, ESP-NN) may ask for scratch buffers the reference kernels do not.
That is what the stated margin of ``kHerbiTensorArenaSize`` is for.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from herbi.common.errors import ExportError
from herbi.runtime.micro import TFLMError, tflm_interpreter
from herbi.runtime.native import native_output
from herbi.runtime.native import native_reason as first_line

# 25% on top of the measured arena: room for optimized kernels' scratch buffers (CMSIS-NN's
# convolutions ask for about 2 * kernel_h * kernel_w * in_channels bytes each) and the arena
# start's 16-byte alignment. A stated allowance, not a measurement.
ARENA_MARGIN = 0.25

# TFLite builtin op -> the MicroMutableOpResolver method that registers its kernel (TFLM's
# tensorflow/lite/micro/micro_mutable_op_resolver.h). The ops a Keras image classifier
# converts to; an op TFLM has but this table lacks is refused until it is added here.
RESOLVER_METHODS = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ARG_MAX": "AddArgMax",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv",
    "ELU": "AddElu",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FULLY_CONNECTED": "AddFullyConnected",
    "HARD_SWISH": "AddHardSwish",
    "L2_NORMALIZATION": "AddL2Normalization",
    "LEAKY_RELU": "AddLeakyRelu",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MAXIMUM": "AddMaximum",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MUL": "AddMul",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "REDUCE_MAX": "AddReduceMax",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "SHAPE": "AddShape",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "SUM": "AddSum",
    "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNPACK": "AddUnpack",
}

_ARENA = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")


@dataclass(frozen=True)
class TflmFootprint:
    """What an int8 model costs on a microcontroller, measured by TFLite Micro on this 64-bit
    host with the reference kernels; the declared arena adds a margin (:func:`declared_arena`).

    ``flash_bytes`` is the model array ``herbi_model.cc`` puts in flash (the ``.tflite``
    bytes). Not counted: the TFLM interpreter and the kernels of ``ops`` (code whose size
    depends on the target, compiler and kernel library, typically tens of KB), and the labels
    and 256-byte input table beside the array (under 1 KB). ``macs`` (:func:`count_macs`: no
    pooling, element-wise ops or softmax) estimates time on a core of known MACs per cycle.
    """

    arena_bytes: int  # arena_head + arena_tail: what the recording allocator used
    arena_head: int  # non-persistent: the memory plan of activations and kernel scratch
    arena_tail: int  # persistent: tensor/node structs and per-op data
    flash_bytes: int
    ops: tuple[str, ...]  # the distinct builtin ops, sorted (one resolver entry each)
    macs: int  # per image
    tflm_version: str  # the tflite-micro package that measured it


def _flatbuffer(tflite: bytes):
    """The model's root table, read lazily (no copy of the weights), and the name of each of
    its operator codes: a builtin's enum name, a custom op's ``CUSTOM:<code>``."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(tflite, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
    except Exception:  # flatbuffers raises struct.error, IndexError... on garbage
        raise ExportError("tflm-int8: not a TFLite flatbuffer") from None
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    found = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Codes above 127 live in builtin_code; older files only fill the deprecated byte.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            found.append(f"CUSTOM:{(code.CustomCode() or b'').decode('utf-8', 'replace')}")
        else:
            found.append(names.get(builtin, f"BUILTIN_{builtin}"))
    return model, found


def model_ops(tflite: bytes) -> tuple[str, ...]:
    """The distinct ops the model's operators use (all subgraphs), sorted."""
    model, names = _flatbuffer(tflite)
    used = set()
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        used |= {names[graph.Operators(j).OpcodeIndex()] for j in range(graph.OperatorsLength())}
    return tuple(sorted(used))


def count_macs(tflite: bytes) -> int:
    """Multiply-accumulates of one image's conv/depthwise/transpose-conv/fully-connected ops,
    from the tensor shapes in the first subgraph."""
    model, names = _flatbuffer(tflite)
    graph = model.Subgraphs(0)

    def shape(i: int) -> list[int]:
        return [int(d) for d in graph.Tensors(i).ShapeAsNumpy()]

    total = 0
    for j in range(graph.OperatorsLength()):
        op = graph.Operators(j)
        name, ins, outs = names[op.OpcodeIndex()], op.InputsAsNumpy(), op.OutputsAsNumpy()
        if name == "CONV_2D":
            _, kh, kw, cin = shape(ins[1])
            total += math.prod(shape(outs[0])) * kh * kw * cin
        elif name == "DEPTHWISE_CONV_2D":
            total += math.prod(shape(outs[0])) * math.prod(shape(ins[1])[1:3])
        elif name == "FULLY_CONNECTED":
            total += math.prod(shape(outs[0])) * shape(ins[1])[-1]
        elif name == "TRANSPOSE_CONV":
            cout, kh, kw, _ = shape(ins[1])
            total += math.prod(shape(ins[2])) * kh * kw * cout
    return total


def measure(tflite: bytes) -> TflmFootprint:
    """Load, invoke once and read the arena report of ``tflite`` in TFLite Micro.

    Raises ExportError naming the op when TFLM has no kernel for one of the model's ops, or
    when herbi cannot register it on a MicroMutableOpResolver (custom ops, ops outside
    :data:`RESOLVER_METHODS`).
    """
    ops = model_ops(tflite)
    custom = [op for op in ops if op.startswith("CUSTOM:")]
    if custom:
        raise ExportError(
            f"tflm-int8: the model uses custom op {custom[0][7:]!r}; TFLite Micro runs "
            "builtin ops only unless a kernel for it is linked in"
        )
    try:
        import tflite_micro

        interpreter = tflm_interpreter(tflite)
    except ImportError:
        raise ExportError("tflm-int8: needs tflite-micro (pip install tflite-micro)") from None
    except TFLMError as e:
        missing = _MISSING_OP.search(str(e))
        if missing:
            raise ExportError(
                f"tflm-int8: the model uses op {missing[1]}, which TFLite Micro has no kernel for"
            ) from None
        raise ExportError(f"tflm-int8: TFLite Micro cannot load the model ({e})") from None
    unmapped = [op for op in ops if op not in RESOLVER_METHODS]
    if unmapped:
        raise ExportError(
            f"tflm-int8: op {unmapped[0]} has no MicroMutableOpResolver method in herbi's "
            "table (herbi.export.tflm.RESOLVER_METHODS)"
        )
    details = interpreter.get_input_details(0)
    with native_output() as lines:
        try:
            interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
            interpreter.invoke()
            interpreter.print_allocations()
            failure = None
        except (RuntimeError, ValueError) as e:
            failure = e
    if failure is not None:
        raise ExportError(
            f"tflm-int8: TFLite Micro cannot run the model ({first_line(lines, failure)})"
        )
    arena = {kind: int(n) for kind, n in _ARENA.findall("\n".join(lines))}
    if set(arena) != {"total", "head", "tail"}:
        raise ExportError("tflm-int8: TFLite Micro printed no arena report (tflite-micro changed?)")
    return TflmFootprint(
        arena_bytes=arena["total"],
        arena_head=arena["head"],
        arena_tail=arena["tail"],
        flash_bytes=len(tflite),
        ops=ops,
        macs=count_macs(tflite),
        tflm_version=tflite_micro.__version__,
    )


def declared_arena(arena_bytes: int) -> int:
    """``kHerbiTensorArenaSize``: the measured arena plus ARENA_MARGIN, rounded up to 16 bytes."""
    return -(-math.ceil(arena_bytes * (1 + ARENA_MARGIN)) // 16) * 16


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(|b|k|kb|kib|m|mb|mib)\s*", re.IGNORECASE)
_KIB, _MIB = 1 << 10, 1 << 20
_UNITS = {"": 1, "b": 1, "k": _KIB, "kb": _KIB, "kib": _KIB, "m": _MIB, "mb": _MIB, "mib": _MIB}


def parse_size(text: str, option: str) -> int:
    """Bytes of ``65536``, ``256KB`` or ``1MB`` (KB = 1024 bytes, as datasheets count memory)."""
    found = _SIZE.fullmatch(str(text))
    if not found:
        raise ExportError(f"{option} {text!r}: not a size (write e.g. 65536, 256KB or 1MB)")
    size = math.floor(float(found[1]) * _UNITS[found[2].lower()])
    if size <= 0:
        raise ExportError(f"{option} {text!r}: must be more than 0 bytes")
    return size


def fits(footprint: TflmFootprint, max_arena: int | None, max_flash: int | None) -> list[str]:
    """One line per limit the artifact exceeds (empty when it fits or no limit is set).

    The arena compared is the declared one (measured + margin): that is what the device
    reserves.
    """
    reasons = []
    arena = declared_arena(footprint.arena_bytes)
    if max_arena is not None and arena > max_arena:
        reasons.append(
            f"tensor arena {arena:,} bytes ({footprint.arena_bytes:,} measured + "
            f"{ARENA_MARGIN:.0%} margin) exceeds --max-arena {max_arena:,} bytes"
        )
    if max_flash is not None and footprint.flash_bytes > max_flash:
        reasons.append(
            f"model array {footprint.flash_bytes:,} bytes exceeds --max-flash {max_flash:,} "
            "bytes (TFLM's own code not counted)"
        )
    return reasons
