"""The bare engine call, without herbi: what herbi.runtime's overhead is measured against.

It takes the model's input tensor already prepared, so timing it leaves out exactly what herbi
adds: pixel conversion, checks, dequantization and ranking.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Call = Callable[[np.ndarray], np.ndarray]


def litert_call(path: str, threads: int) -> Call:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]

    def call(x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        return interpreter.get_tensor(target)

    return call


def onnx_call(path: str, threads: int) -> Call:
    import onnxruntime as ort

    from herbi.runtime.backends import onnx_session_options

    session = ort.InferenceSession(
        path, onnx_session_options(threads), providers=["CPUExecutionProvider"]
    )
    feed, fetch = session.get_inputs()[0].name, [session.get_outputs()[0].name]
    return lambda x: session.run(fetch, {feed: x})[0]


def bare_call(path: str, threads: int, backend: str) -> Call | None:
    """A batch-1 call of the engine herbi.runtime chose (its backend's name); None for an
    engine without a separate bare API to compare with."""
    make = {"litert": litert_call, "onnxruntime": onnx_call}.get(backend)
    return make(path, threads) if make else None
