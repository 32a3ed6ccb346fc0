"""Keras -> ONNX: float32 with tf2onnx, and static int8 (QDQ) with ONNX Runtime's quantizer.

Both models take a fixed batch of one image: Android NNAPI and CoreML only take fixed shapes,
and herbi.runtime runs a bigger batch one image at a time (``run_fixed_batch``).

The int8 model keeps a float32 input and output; its weights are int8 per channel, its
activations uint8, calibrated on train images. Unsigned activations are what ONNX Runtime's
CPU kernels fuse end to end (max-pools and residual adds included, in NHWC, so no layout
shuffles between layers), what its x86 kernels (u8 x s8) are fastest at, and what OpenVINO
compiles on AMX Xeons too (it refuses signed activations there). ``reduce_range`` (7-bit
weights) suits CPUs without VNNI, where full-range weights can saturate the 16-bit
accumulation of ``vpmaddubsw``; with VNNI the full range is exact. ``--reduce-range auto``
decides from the exporting machine's CPU, and the report records the choice.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from herbi.common.errors import ExportError

OPSET = 17
INPUT_NAME = "image"


def float32_proto(model):
    """tf2onnx conversion for a batch of one image, the input named ``image``."""
    import tensorflow as tf
    import tf2onnx

    h, w, c = (int(d) for d in model.input_shape[1:])
    spec = [tf.TensorSpec((1, h, w, c), tf.float32, name=INPUT_NAME)]
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    except Exception as e:  # tf2onnx raises many kinds
        raise ExportError(f"tf2onnx conversion failed ({e})") from None
    return proto


def build_float32(inputs) -> bytes:
    return float32_proto(inputs.scored(onnx=True)).SerializeToString()


class CalibrationReader:
    """ONNX Runtime's calibration reader protocol (``get_next``) over float model inputs, one
    image per batch as the models take them; duck-typed, so this module imports nothing from
    onnxruntime until a conversion runs."""

    def __init__(self, images: np.ndarray):
        self._batches = iter([{INPUT_NAME: images[i : i + 1]} for i in range(len(images))])

    def get_next(self) -> dict | None:
        return next(self._batches, None)

    def __iter__(self):
        return iter(self.get_next, None)


def preprocessed_float32(model, folder: Path) -> Path:
    """The float32 model after ORT's pre-processing (shape inference, Conv+BN fusion).

    This is the graph the quantizer sees, so it is also the float reference whose tensor
    names the QDQ debugging utilities match against the int8 model.
    """
    from onnxruntime.quantization import quant_pre_process

    fp32, pre = folder / "fp32.onnx", folder / "pre.onnx"
    fp32.write_bytes(float32_proto(model).SerializeToString())
    try:
        quant_pre_process(str(fp32), str(pre))
    except Exception as e:  # onnxruntime raises its own exception classes
        raise ExportError(f"quantization pre-processing failed ({e})") from None
    return pre


def build_int8(inputs) -> bytes:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(prefix="herbi-onnx-") as tmp:
        pre, q = preprocessed_float32(inputs.scored(onnx=True), Path(tmp)), Path(tmp, "int8.onnx")
        try:
            quantize_static(
                str(pre),
                str(q),
                CalibrationReader(inputs.float_calibration()),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=inputs.reduce_range,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        except Exception as e:  # onnxruntime raises its own exception classes
            raise ExportError(f"quantization failed ({e})") from None
        return q.read_bytes()
