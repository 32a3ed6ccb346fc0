"""The two inference engines a device may have: LiteRT for ``.tflite``, ONNX Runtime for ``.onnx``.

Each backend is created once per model and keeps its interpreter/session and tensor indices,
so a prediction is one buffer copy in, one invoke, one copy out. Both take a float32 or int8
NHWC batch exactly as the model's input tensor wants it and return the raw output tensor;
quantization is handled by :mod:`herbi.runtime.classifier`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from herbi.runtime.contract import METADATA_KEY, Contract, ContractError, read_sidecar


class ModelError(ValueError):
    """A model file cannot be loaded or is not a herbi classifier; the message names it."""


class LiteRTBackend:
    name = "litert"

    def __init__(self, path: Path, threads: int | None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ModelError(f"{path}: needs ai-edge-litert (pip install ai-edge-litert)") from None
        self.contract = read_sidecar(path)
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{path}: not a valid TFLite model ({e})") from None
        inp = self.interpreter.get_input_details()
        out = self.interpreter.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise ModelError(f"{path}: expected one input and one output tensor")
        self.input_index, self.output_index = inp[0]["index"], out[0]["index"]
        self.input_shape = tuple(int(d) for d in inp[0]["shape"])
        self.input_dtype = np.dtype(inp[0]["dtype"])
        self.input_quant = inp[0]["quantization"]
        self.output_dtype = np.dtype(out[0]["dtype"])
        self.output_quant = out[0]["quantization"]
        self.output_classes = int(out[0]["shape"][-1])
        self._batch = self.input_shape[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] != self._batch:
            self.interpreter.resize_tensor_input(self.input_index, list(x.shape))
            self.interpreter.allocate_tensors()
            self._batch = x.shape[0]
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index)


class OnnxBackend:
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int | None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError(f"{path}: needs onnxruntime (pip install onnxruntime)") from None
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception classes
            raise ModelError(f"{path}: not a valid ONNX model ({str(e).splitlines()[0]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ContractError(
                f"{path}: ONNX model carries no herbi metadata; export it with herbi-export"
            )
        self.contract = Contract.from_json(meta[METADATA_KEY], str(path))
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{path}: expected one input and one output tensor")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.input_shape = tuple(d if isinstance(d, int) else -1 for d in inputs[0].shape)
        kinds = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}
        if inputs[0].type not in kinds:
            raise ModelError(f"{path}: unsupported input type {inputs[0].type}")
        self.input_dtype = np.dtype(kinds[inputs[0].type])
        self.input_quant = (0.0, 0)
        self.output_dtype = np.dtype(np.float32)
        self.output_quant = (0.0, 0)
        last = outputs[0].shape[-1] if outputs[0].shape else None
        self.output_classes = int(last) if isinstance(last, int) else len(self.contract.labels)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]


BACKENDS = {".tflite": LiteRTBackend, ".onnx": OnnxBackend}


def open_backend(path: Path, threads: int | None) -> LiteRTBackend | OnnxBackend:
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: model file is empty")
    backend = BACKENDS.get(path.suffix.lower())
    if backend is None:
        raise ModelError(f"{path}: unknown model type (expected {' or '.join(BACKENDS)})")
    return backend(path, threads)
