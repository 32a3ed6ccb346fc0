"""The inference engines: LiteRT for ``.tflite``, ONNX Runtime for ``.onnx``, TFLite Micro by name.

A backend takes and returns raw tensors (scaling and quantization are the classifier's). It
reads the model file once and checks the contract against those very bytes before any native
parser sees them, so a truncated or swapped ``.tflite`` fails with a clear message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from herbi.runtime.contract import METADATA_KEY, Contract, read_sidecar
from herbi.runtime.errors import ContractError, ModelError, first_line
from herbi.runtime.micro import TFLMBackend
from herbi.runtime.native import filtered_stderr
from herbi.runtime.quantize import tensor_quant
from herbi.runtime.unknown import output_roles


def run_fixed_batch(
    run: Callable[[np.ndarray], list[np.ndarray]], x: np.ndarray, batch: int
) -> list[np.ndarray]:
    """Run ``x`` through a model whose batch size cannot change, ``batch`` images at a time
    (the last slice zero-padded to it, and the padding rows dropped)."""
    n = len(x)
    padded = np.concatenate([x, np.zeros((-n % batch, *x.shape[1:]), x.dtype)])
    slices = [run(padded[i : i + batch]) for i in range(0, n, batch)]
    return [np.concatenate(outputs)[:n] for outputs in zip(*slices, strict=True)]


class LiteRTBackend:
    """A ``.tflite`` model in the LiteRT interpreter (XNNPACK applied by default)."""

    name = "litert"

    def __init__(self, path: Path, data: bytes, threads: int | None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ModelError(f"{path}: needs ai-edge-litert (pip install ai-edge-litert)") from None
        self.contract = read_sidecar(path, data)
        try:
            self._interpreter = Interpreter(model_content=data, num_threads=threads)
            # LiteRT's C++ logger announces XNNPACK on fd 2 once per process; nothing to act on.
            with filtered_stderr(lambda line: line.startswith("INFO: Created TensorFlow Lite")):
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{path}: not a valid TFLite model ({first_line(e)})") from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one input tensor")
        inp = inputs[0]
        outputs = [outputs[i] for i in output_roles(path, [o["shape"] for o in outputs])]
        self._input, self._outputs = inp["index"], [o["index"] for o in outputs]
        self.input_shape = tuple(int(d) for d in inp["shape_signature"])
        self.output_shape = tuple(int(d) for d in outputs[0]["shape_signature"])
        self.input_dtype = np.dtype(inp["dtype"])
        self.input_quant = tensor_quant(path, "input", self.input_dtype, inp["quantization"])
        self.output_quants = [
            tensor_quant(path, "output", np.dtype(o["dtype"]), o["quantization"]) for o in outputs
        ]
        self._batch = int(inp["shape"][0])
        self._resizable = True

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        if len(x) != self._batch and not self._resize(len(x)):
            return run_fixed_batch(self.run, x, self._batch)
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(i) for i in self._outputs]

    def _resize(self, n: int) -> bool:
        """Make the interpreter take batches of ``n``; False if this model's graph cannot.

        A resize is kept until a batch of another size comes, so a steady batch size costs
        nothing. A graph with a hard-coded batch (e.g. a Reshape to 1) fails here or gives a
        wrong output shape; it is put back and run in slices of its own batch size from then on.
        """
        if not self._resizable:
            return False
        with contextlib.suppress(ValueError, RuntimeError):
            self._set_batch(n)
            if self._interpreter.get_tensor(self._outputs[0]).shape[:1] == (n,):
                return True
        self._resizable = False
        self._set_batch(max(self.input_shape[0], 1))  # a batch of -1 (any) is put back as 1
        return False

    def _set_batch(self, n: int) -> None:
        self._interpreter.resize_tensor_input(self._input, [n, *self.input_shape[1:]])
        self._interpreter.allocate_tensors()
        self._batch = n


def onnx_session_options(threads: int | None):
    """ONNX Runtime's options for herbi's models, set on purpose rather than left to defaults.

    A small CNN is a chain (one sequential inter-op thread), sleeping workers would cost a
    wake-up per layer (spinning), and full optimization fuses the QDQ int8 graph. Public so
    that the bench's bare call and the export's op census open the very session run here.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    if threads:
        opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return opts


_ONNX_FLOATS = {"tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16)}


class OnnxBackend:
    """An ``.onnx`` model in ONNX Runtime on the CPU; the contract is in its metadata."""

    name = "onnxruntime"

    def __init__(self, path: Path, data: bytes, threads: int | None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelError(f"{path}: needs onnxruntime (pip install onnxruntime)") from None
        try:
            self._session = ort.InferenceSession(
                data, onnx_session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception classes
            raise ModelError(f"{path}: not a valid ONNX model ({first_line(e)})") from None
        meta = self._session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ContractError(
                f"{path}: ONNX model carries no herbi metadata; export it with herbi-export"
            )
        # The contract travels inside the file it describes, so it cannot be paired with the
        # wrong model; its sha256 field is not used for ONNX.
        self.contract = Contract.from_json(meta[METADATA_KEY], str(path))
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one input tensor")
        inp = inputs[0]
        outputs = [outputs[i] for i in output_roles(path, [_onnx_shape(o.shape) for o in outputs])]
        for role, arg in (("input", inp), *(("output", out) for out in outputs)):
            if arg.type not in _ONNX_FLOATS:
                raise ModelError(
                    f"{path}: {role} type {arg.type} is not supported; herbi ONNX models take "
                    "and give float tensors (int8 lives inside, as QuantizeLinear/DequantizeLinear)"
                )
        self.input_dtype = _ONNX_FLOATS[inp.type]
        self.input_quant, self.output_quants = None, [None] * len(outputs)
        self.input_shape = _onnx_shape(inp.shape)
        self.output_shape = _onnx_shape(outputs[0].shape)
        self._input_name, self._output_names = inp.name, [out.name for out in outputs]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        batch = self.input_shape[0]
        if batch > 0 and len(x) != batch:
            return run_fixed_batch(self.run, x, batch)
        return self._session.run(self._output_names, {self._input_name: x})


def _onnx_shape(dims: list) -> tuple[int, ...]:
    """ONNX Runtime names dynamic dimensions (strings or None); they become -1."""
    return tuple(d if isinstance(d, int) and d > 0 else -1 for d in dims)


# One name -> engine map (``Classifier.load(path, backend=name)``, ``herbi-classify --backend``),
# and the engine a file's suffix picks when none is named.
BACKENDS = {b.name: b for b in (LiteRTBackend, OnnxBackend, TFLMBackend)}
BY_SUFFIX = {".tflite": LiteRTBackend, ".onnx": OnnxBackend}
Backend = LiteRTBackend | OnnxBackend | TFLMBackend


def open_backend(path: Path, threads: int | None, name: str | None = None) -> Backend:
    """Load the model and its contract in the engine named, else the one for its suffix."""
    if name is not None and name not in BACKENDS:
        raise ModelError(f"backend {name!r}: unknown (choose {', '.join(BACKENDS)})")
    backend = BACKENDS[name] if name else BY_SUFFIX.get(path.suffix.lower())
    if backend is None:
        raise ModelError(f"{path}: unknown model type (expected a {' or '.join(BY_SUFFIX)} file)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        # herbi-export renames an artifact that fails its checks to <name>.rejected.
        if path.with_name(path.name + ".rejected").exists():
            raise ModelError(
                f"{path}: rejected by herbi-export's checks (kept as {path.name}.rejected; "
                "see export_report.json)"
            ) from None
        raise ModelError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a folder, not a model file") from None
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror or e})") from None
    if not data:
        raise ModelError(f"{path}: model file is empty (0 bytes)")
    return backend(path, data, threads)
