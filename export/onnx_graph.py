"""What engines make of an ONNX model: the graph ONNX Runtime really runs, and phones' verdict.

A QDQ file marks every tensor int8, yet the engine decides what runs in int8: only the graph
after ONNX Runtime's own optimization shows float kernels left between quantized ones. The
census counts that graph's ops, with the session options herbi.runtime uses; the mobile fit
is ONNX Runtime's own usability checker (``check_onnx_model_mobile_usability``) as values.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Ops are told apart by type: ONNX Runtime's quantized kernels, and the ops that only move,
# reshape or (de)quantize data; every other op computes in float.
INT8_KERNELS = frozenset({"QGemm", "NhwcMaxPool", "MatMulInteger", "ConvInteger"})
DATA_MOVEMENT = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "Transpose", "Reshape", "Squeeze", "Unsqueeze"}
    | {"Flatten", "Identity", "ReorderInput", "ReorderOutput"}
)


# The unknown score's layers (herbi.train.openset) keep this in their node names: a few float
# ops on one feature vector, counted apart from the classifier's.
SCORE_HEAD = "/unknown_"


@dataclass(frozen=True)
class OpCensus:
    """Op types and counts of the optimized graph (domain dropped: an NCHWc ``Conv`` is a
    float ``Conv``); ``coverage`` is the share of the classifier's compute ops that run in
    int8. ``score_ops``: the unknown score's ops, apart."""

    ops: dict[str, int]
    score_ops: dict[str, int]

    def count(self, op_type: str) -> int:
        return self.ops.get(op_type, 0)

    @property
    def int8(self) -> int:
        return sum(
            n for op, n in self.ops.items() if op.startswith("QLinear") or op in INT8_KERNELS
        )

    @property
    def float(self) -> int:
        return sum(n for op, n in self.ops.items() if op not in DATA_MOVEMENT) - self.int8

    @property
    def coverage(self) -> float:
        return self.int8 / max(self.int8 + self.float, 1)


def census(path: Path) -> OpCensus:
    """The op census of ``path`` as ONNX Runtime optimizes it on this machine's CPU."""
    import onnx
    import onnxruntime as ort

    from herbi.runtime.backends import onnx_session_options

    with tempfile.TemporaryDirectory(prefix="herbi-census-") as tmp:
        opts = onnx_session_options(threads=1)
        opts.optimized_model_filepath = str(Path(tmp, "optimized.onnx"))
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        graph = onnx.load(opts.optimized_model_filepath).graph
    classifier, score = Counter(), Counter()
    for node in graph.node:
        (score if SCORE_HEAD in node.name else classifier)[node.op_type] += 1
    return OpCensus(dict(sorted(classifier.items())), dict(sorted(score.items())))


@dataclass(frozen=True)
class EpFit:
    """One accelerator's verdict on the model as it is (fixed shapes not assumed):
    nodes it would take, in how many partitions, and the checker's YES / MAYBE / NO."""

    nodes: int
    supported: int
    partitions: int
    verdict: str


@dataclass(frozen=True)
class MobileFit:
    nnapi: EpFit
    coreml: EpFit  # CoreML's ML Program format (the current one)


def mobile_fit(path: Path) -> MobileFit:
    """ONNX Runtime Mobile's usability checker on ``path``, as its command line runs it
    (after ONNX Runtime's basic optimizations), returned as values rather than log lines."""
    from onnxruntime.tools.mobile_helpers import usability_checker as checker
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo, optimize_model

    def fit(info) -> EpFit:
        verdict = info.suitability().name
        return EpFit(info.num_nodes, info.num_supported_nodes, info.num_partitions, verdict)

    with tempfile.TemporaryDirectory(prefix="herbi-mobile-") as tmp:
        basic = Path(tmp, "basic.onnx")
        optimize_model(Path(path), basic)
        model = ModelProtoWithShapeInfo(basic).model_with_shape_info
    return MobileFit(
        nnapi=fit(checker.check_nnapi_partitions(model, require_fixed_input_sizes=True)),
        coreml=fit(
            checker.check_coreml_partitions(model, True, "coreml_supported_mlprogram_ops.md")
        ),
    )


@dataclass(frozen=True)
class EngineGraph:
    """What the engines make of one ONNX artifact: ONNX Runtime's optimized graph and the
    phones' accelerators (the bench's "int8 coverage" table)."""

    census: OpCensus
    mobile: MobileFit


def engine_graph(path: Path) -> EngineGraph:
    return EngineGraph(census(path), mobile_fit(path))
