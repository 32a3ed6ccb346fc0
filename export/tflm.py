"""TFLite Micro: measure an int8 ``.tflite`` in the real TFLM interpreter (PyPI ``tflite-micro``).

Arena, ops and bytes are measured rather than estimated (docs/export.md says what they cover).
"""

from __future__ import annotations

import math
import re

import numpy as np

from herbi.common.boards import ARENA_MARGIN, Footprint
from herbi.common.errors import ExportError
from herbi.runtime.errors import TFLMError
from herbi.runtime.micro import tflm_interpreter
from herbi.runtime.native import native_output, native_reason

# TFLite builtin op -> the MicroMutableOpResolver method that registers its kernel (TFLM's
# tensorflow/lite/micro/micro_mutable_op_resolver.h): "Add" + the op in CamelCase, but for two.
# The ops a Keras image classifier converts to; an op TFLM has but this list lacks is refused
# until it is added here.
TFLM_OPS = """
    ABS ADD ARG_MAX AVERAGE_POOL_2D BATCH_MATMUL CONCATENATION CONV_2D DEPTHWISE_CONV_2D
    DEPTH_TO_SPACE DEQUANTIZE DIV ELU EXP EXPAND_DIMS FULLY_CONNECTED HARD_SWISH
    L2_NORMALIZATION LEAKY_RELU LOGISTIC LOG_SOFTMAX MAXIMUM MAX_POOL_2D MEAN MINIMUM MUL PACK
    PAD PADV2 PRELU QUANTIZE REDUCE_MAX RELU RELU6 RESHAPE RESIZE_BILINEAR
    RESIZE_NEAREST_NEIGHBOR SHAPE SLICE SOFTMAX SPACE_TO_DEPTH SPLIT SPLIT_V SQUEEZE
    STRIDED_SLICE SUB SUM TANH TRANSPOSE TRANSPOSE_CONV UNPACK
"""
RESOLVER_METHODS = {op: "Add" + op.title().replace("_", "") for op in TFLM_OPS.split()} | {
    "BATCH_MATMUL": "AddBatchMatMul",
    "PADV2": "AddPadV2",
}

_ARENA = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")


def _flatbuffer(tflite: bytes):
    """The model's root table, read lazily (no copy of the weights), and the name of each of
    its operator codes: a builtin's enum name, a custom op's ``CUSTOM:<code>``."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAs(tflite, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
    except Exception:  # flatbuffers raises struct.error, IndexError... on garbage
        raise ExportError("not a TFLite flatbuffer") from None
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


def measure(tflite: bytes) -> Footprint:
    """Load, invoke once and read the arena report of ``tflite`` in TFLite Micro; an op TFLM
    or :data:`RESOLVER_METHODS` lacks is an ExportError naming it."""
    ops = model_ops(tflite)
    custom = [op for op in ops if op.startswith("CUSTOM:")]
    if custom:
        raise ExportError(
            f"the model uses custom op {custom[0][7:]!r}; TFLite Micro runs "
            "builtin ops only unless a kernel for it is linked in"
        )
    try:
        import tflite_micro

        interpreter = tflm_interpreter(tflite)
    except ImportError:
        raise ExportError("needs tflite-micro (pip install tflite-micro)") from None
    except TFLMError as e:
        missing = _MISSING_OP.search(str(e))
        if missing:
            raise ExportError(
                f"the model uses op {missing[1]}, which TFLite Micro has no kernel for"
            ) from None
        raise ExportError(f"TFLite Micro cannot load the model ({e})") from None
    unmapped = [op for op in ops if op not in RESOLVER_METHODS]
    if unmapped:
        raise ExportError(
            f"op {unmapped[0]} has no MicroMutableOpResolver method in herbi's "
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
        said = native_reason(lines, failure)
        raise ExportError(f"TFLite Micro cannot run the model ({said})")
    arena = {kind: int(n) for kind, n in _ARENA.findall("\n".join(lines))}
    if set(arena) != {"total", "head", "tail"}:
        raise ExportError("TFLite Micro printed no arena report (tflite-micro changed?)")
    return Footprint(
        arena_bytes=arena["total"],
        arena_head=arena["head"],
        arena_tail=arena["tail"],
        flash_bytes=len(tflite),
        ops=ops,
        macs=count_macs(tflite),
        tflm_version=tflite_micro.__version__,
        declared_arena_bytes=-(-math.ceil(arena["total"] * (1 + ARENA_MARGIN)) // 16) * 16,
    )
