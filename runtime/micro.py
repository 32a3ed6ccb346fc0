"""TFLite Micro as a backend: a microcontroller's interpreter and kernels, run here in Python.

PyPI ``tflite-micro`` (no TensorFlow) runs a ``.tflite`` with TFLM's reference kernels, so a
test or parity check sees the answers a device gives; its native log lines are captured and
only the first of a failure's lines is kept, inside the :class:`ModelError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from herbi.runtime.contract import read_sidecar
from herbi.runtime.errors import ModelError, TFLMError
from herbi.runtime.native import native_output, native_reason
from herbi.runtime.quantize import tensor_quant
from herbi.runtime.unknown import output_roles

# The interpreter needs an arena up front and learns its real need only from allocating.
# This is far above any model a microcontroller can hold; untouched pages cost no memory.
ARENA_BYTES = 64 << 20


def tflm_interpreter(data: bytes, arena_bytes: int = ARENA_BYTES):
    """A TFLM interpreter with the recording allocator and its tensors allocated.

    Raises ImportError without ``tflite-micro``, TFLMError when TFLM cannot load the model
    (an op it has no kernel for, a bad flatbuffer, an arena too small).
    """
    from tflite_micro import runtime

    with native_output() as lines:
        try:
            return runtime.Interpreter.from_bytes(data, arena_size=arena_bytes)
        except (RuntimeError, ValueError) as e:
            failure = e
    raise TFLMError(native_reason(lines, failure))


def has_second(get_details) -> bool:
    """Whether a second input (or output) tensor exists; TFLM logs the miss, which is dropped."""
    with native_output():
        try:
            get_details(1)
        except IndexError:
            return False
    return True


class TFLMBackend:
    """An int8 ``.tflite`` model in the TFLite Micro interpreter (reference kernels, batch 1).

    ``threads`` is accepted for the common backend signature and ignored: TFLM runs on one core.
    """

    name = "tflm"

    def __init__(self, path: Path, data: bytes, threads: int | None):
        self.contract = read_sidecar(path, data)
        try:
            self._interpreter = tflm_interpreter(data)
        except ImportError:
            raise ModelError(f"{path}: needs tflite-micro (pip install tflite-micro)") from None
        except TFLMError as e:
            raise ModelError(f"{path}: TFLite Micro cannot load it ({e})") from None
        interp = self._interpreter
        if has_second(interp.get_input_details):
            raise ModelError(f"{path}: expected one input tensor")
        inp = interp.get_input_details(0)
        outputs = [interp.get_output_details(0)]
        if has_second(interp.get_output_details):
            outputs.append(interp.get_output_details(1))
        self._outputs = output_roles(path, [o["shape"] for o in outputs])
        outputs = [outputs[i] for i in self._outputs]
        self.input_shape = tuple(int(d) for d in inp["shape"])
        self.output_shape = tuple(int(d) for d in outputs[0]["shape"])
        self.input_dtype = np.dtype(inp["dtype"])
        self.input_quant = tensor_quant(path, "input", self.input_dtype, _quant(inp))
        self._empty = [
            (np.dtype(o["dtype"]), tuple(int(d) for d in o["shape"][1:])) for o in outputs
        ]
        self.output_quants = [
            tensor_quant(path, "output", np.dtype(o["dtype"]), _quant(o)) for o in outputs
        ]
        self._path = path

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Invoke once per image of the NHWC batch ``x``; each output stacked in order."""
        x = np.ascontiguousarray(x)  # a wrong dtype is refused by TFLM, not cast
        outs = [np.empty((len(x), *shape), dtype) for dtype, shape in self._empty]
        with native_output() as lines:
            try:
                for i in range(len(x)):
                    self._interpreter.set_input(x[i : i + 1], 0)
                    self._interpreter.invoke()
                    for out, index in zip(outs, self._outputs, strict=True):
                        out[i] = self._interpreter.get_output(index)[0]
                return outs
            except (RuntimeError, ValueError) as e:
                failure = e
        raise ModelError(f"{self._path}: TFLite Micro failed ({native_reason(lines, failure)})")


def _quant(details: dict) -> tuple[float, int]:
    """TFLM reports per-tensor quantization as one-element arrays (empty for float tensors)."""
    q = details["quantization_parameters"]
    scales, zeros = q["scales"], q["zero_points"]
    return (float(scales[0]) if len(scales) else 0.0), (int(zeros[0]) if len(zeros) else 0)
