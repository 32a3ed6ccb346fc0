"""The bare engine call, without herbi: what herbi.runtime's overhead is measured against.

It takes the model's input tensor already prepared, so timing it leaves out exactly what herbi
adds: pixel conversion, checks, dequantization and ranking.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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


def bare_call(path: str, threads: int, backend: str) -> Call | None:
    """A batch-1 call of the engine herbi.runtime chose (its backend's name); None for an
    engine without a separate bare API to compare with."""
    make = {"litert": litert_call, "onnxruntime": onnx_call}.get(backend)
    return make(path, threads) if make else None
