"""The pixel -> model-input maps are exact: checked against the training formula and the
TFLite quantization formula on all 256 pixel values, whichever fast path was chosen."""

from __future__ import annotations

import numpy as np
import pytest

from herbi.runtime.quantize import exact_table, input_map, output_map

PIXELS = np.arange(256, dtype=np.uint8)


def test_float_input_is_what_training_feeds():
    # Training: Keras on ``x / 255.0`` (float64 division, then float32 inside the model).
    expected = (PIXELS / 255.0).astype(np.float32)
    got = input_map(1 / 255, np.dtype(np.float32), None)(PIXELS)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "quant, dtype",
    [
        ((1 / 255, -128), np.int8),  # the usual int8 input: exactly p - 128
        ((0.0078125, -1), np.int8),  # another scale: falls back to the exact table
        ((1 / 255, 0), np.uint8),  # uint8 input: the pixels themselves
        ((0.02, 3), np.uint8),
    ],
)
def test_quantized_input_follows_tflite_rounding(quant, dtype):
    scale, zero = quant
    real = PIXELS / 255.0
    # TFLite's Quantize: round half away from zero, add the zero point, saturate.
    q = np.sign(real / scale) * np.floor(np.abs(real / scale) + 0.5) + zero
    info = np.iinfo(dtype)
    expected = np.clip(q, info.min, info.max).astype(dtype)
    got = input_map(1 / 255, np.dtype(dtype), quant)(PIXELS.reshape(1, 16, 16, 1))
    assert got.dtype == dtype and got.shape == (1, 16, 16, 1)
    np.testing.assert_array_equal(got.ravel(), expected)


def test_exact_table_saturates():
    table = exact_table(1.0, np.dtype(np.int8), (1.0, 0))
    assert table[127] == 127 and table[200] == 127


def test_output_dequantization():
    raw = np.array([[-128, -1, 0, 127]], np.int8)
    got = output_map((1 / 256, -128))(raw)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[0.0, 127 / 256, 0.5, 255 / 256]])
    floats = np.array([[0.25, 0.75]], np.float32)
    assert output_map(None)(floats) is floats  # float outputs are not copied
