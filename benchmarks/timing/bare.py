"""The bare engine call, without herbi, and herbi.runtime's overhead measured against it.

It takes the model's input tensor already prepared, so timing it leaves out exactly what herbi
adds: pixel conversion, checks, dequantization and ranking.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from herbi.benchmarks.timing.latency import Budget, Overhead, interleaved
from herbi.runtime import Classifier
from herbi.runtime.quantize import input_map
from herbi.runtime.unknown import output_roles

Call = Callable[[np.ndarray], list[np.ndarray]]


def litert_call(path: str, threads: int) -> Call:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    outputs = interpreter.get_output_details()
    targets = [outputs[i]["index"] for i in output_roles(path, [o["shape"] for o in outputs])]

    def call(x: np.ndarray) -> list[np.ndarray]:
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        return [interpreter.get_tensor(t) for t in targets]

    return call


def onnx_call(path: str, threads: int) -> Call:
    import onnxruntime as ort

    from herbi.runtime.backends import onnx_session_options

    session = ort.InferenceSession(
        path, onnx_session_options(threads), providers=["CPUExecutionProvider"]
    )
    outputs = session.get_outputs()
    fetch = [outputs[i].name for i in output_roles(path, [o.shape for o in outputs])]
    feed = session.get_inputs()[0].name
    return lambda x: session.run(fetch, {feed: x})


def overhead(
    clf: Classifier, one: np.ndarray, path: str, threads: int, budget: Budget
) -> Overhead | None:
    """``classify`` of the first image of ``one`` (a batch of one) against the bare call, timed
    in alternation; None for an engine without a separate bare API to compare with."""
    make = {"litert": litert_call, "onnxruntime": onnx_call}.get(clf.backend.name)
    if make is None:
        return None
    bare, image = make(path, threads), one[0]
    prepared = input_map(clf.contract.scale, clf.backend.input_dtype, clf.backend.input_quant)(one)
    classify, engine = interleaved([lambda: clf.classify(image), lambda: bare(prepared)], budget)
    same = zip(bare(prepared), clf.backend.run(prepared), strict=True)
    matches = all(np.array_equal(a, b) for a, b in same)
    return Overhead(classify, engine, classify.p50_ms - engine.p50_ms, matches)
