"""Keras -> TFLite: float32, float16, dynamic-range and full-integer int8 (int8 input/output).

Every builder returns the ``.tflite`` bytes; the caller attaches the contract and writes the
file atomically. The int8 converter is forced to integer-only kernels, so a layer that cannot
be quantized fails the conversion instead of silently falling back to float.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import numpy as np

from herbi.common.errors import ExportError
from herbi.runtime.errors import first_line


def representative_dataset(images: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Calibration generator over float model inputs (``BuildInputs.float_calibration``), one
    image a step, as the converter calibrates."""
    return lambda: ([images[i : i + 1]] for i in range(len(images)))


def converter(model, optimize: bool = False):
    """``optimize``: TFLite's default optimizations, the start of every quantized format."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if optimize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv


def int8_converter(model, calibration: np.ndarray):
    """Full-integer converter: int8 kernels only, int8 input and output tensors.

    ``calibration``: float model inputs (calibration images through the contract's scale).
    """
    import tensorflow as tf

    conv = converter(model, optimize=True)
    conv.representative_dataset = representative_dataset(calibration)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv


def convert(conv) -> bytes:
    try:
        with warnings.catch_warnings():
            # "Statistics for quantized inputs were expected": int8 input ranges come from the
            # representative dataset, which is exactly what herbi provides.
            warnings.filterwarnings("ignore", "Statistics for quantized inputs", UserWarning)
            return bytes(conv.convert())
    except Exception as e:  # the converter raises ConverterError, ValueError, RuntimeError...
        raise ExportError(f"TFLite conversion failed ({first_line(e)})") from None


def build_float32(inputs) -> bytes:
    return convert(converter(inputs.scored()))


def build_float16(inputs) -> bytes:
    import tensorflow as tf

    conv = converter(inputs.scored(), optimize=True)
    conv.target_spec.supported_types = [tf.float16]
    return convert(conv)


def build_dynamic(inputs) -> bytes:
    return convert(converter(inputs.scored(), optimize=True))


def build_int8(inputs) -> bytes:
    return convert(int8_converter(inputs.scored(), inputs.float_calibration()))
