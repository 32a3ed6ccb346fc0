"""The numeric edges of a model: uint8 pixels -> its input tensor, its output -> probabilities.

The exact map is a 256-entry table built once per model; a faster vectorized formula replaces
it only where it reproduces the table bit for bit on all 256 pixel values.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from herbi.runtime.errors import ModelError

Map = Callable[[np.ndarray], np.ndarray]
_ALL_PIXELS = np.arange(256, dtype=np.uint8)


def tensor_quant(
    path: Path, role: str, dtype: np.dtype, quant: tuple[float, int]
) -> tuple[float, int] | None:
    """``(scale, zero_point)`` of an integer I/O tensor, None for a float one (any backend)."""
    if dtype.kind == "f":
        return None
    scale, zero = quant
    if dtype.kind not in "iu" or not scale > 0:
        raise ModelError(f"{path}: {role} tensor is {dtype} without quantization parameters")
    return float(scale), int(zero)


def exact_table(scale: float, dtype: np.dtype, quant: tuple[float, int] | None) -> np.ndarray:
    """``table[p]`` is the model input for pixel value ``p``, computed in float64."""
    x = np.arange(256, dtype=np.float64) * scale
    if quant is None:
        return x.astype(dtype)
    q_scale, zero = quant
    info = np.iinfo(dtype)
    return np.clip(np.floor(x / q_scale + 0.5) + zero, info.min, info.max).astype(dtype)


def _candidates(scale: float, dtype: np.dtype) -> list[Map]:
    """Fast formulas that may equal the table; the caller keeps the first one that does."""
    if dtype.kind == "f":
        return [
            lambda p: np.divide(p, dtype.type(1.0 / scale), dtype=dtype),
            lambda p: np.multiply(p, dtype.type(scale), dtype=dtype),
        ]
    if dtype == np.uint8:
        return [lambda p: p]
    if dtype == np.int8:
        return [lambda p: np.bitwise_xor(p, np.uint8(0x80)).view(np.int8)]  # p - 128
    return []


def input_map(scale: float, dtype: np.dtype, quant: tuple[float, int] | None) -> Map:
    """A function from a uint8 pixel array to the model's input tensor (same shape)."""
    table = exact_table(scale, dtype, quant)
    with np.errstate(all="ignore"):
        for candidate in _candidates(scale, dtype):
            got = candidate(_ALL_PIXELS)
            if got.dtype == table.dtype and np.array_equal(got, table):
                return candidate
    return lambda p: np.take(table, p)


def output_map(quant: tuple[float, int] | None) -> Map:
    """A function from the model's raw output to float32 probabilities (dequantized)."""
    if quant is None:
        return lambda out: out.astype(np.float32, copy=False)
    scale, zero = np.float32(quant[0]), np.float32(quant[1])
    return lambda out: (out.astype(np.float32) - zero) * scale
