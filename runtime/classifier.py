"""``Classifier``: load a herbi artifact and classify images, with no TensorFlow anywhere.

    clf = Classifier.load("runs/latest/export/tflite-int8.tflite")
    clf.classify("camel.jpg", top_k=3)   # -> Prediction(label='camel', index=0, probability=...)

The model's contract (labels, input size, pixel scale) comes from the artifact itself; int8
inputs and outputs are quantized with the model's own scale and zero point, so callers only
ever see uint8 pixels in and probabilities out. ``predict_proba`` is the batch entry point
that export's parity check and the benchmarks use, so they measure exactly this code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from herbi.runtime.backends import ModelError, open_backend
from herbi.runtime.contract import Contract
from herbi.runtime.image import ImageError, to_rgb_array


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    probability: float
    top_k: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "index": self.index,
            "probability": self.probability,
            "top_k": [{"label": k, "probability": p} for k, p in self.top_k],
        }


class Classifier:
    def __init__(self, path: Path, threads: int | None = None):
        self.path = Path(path)
        self.backend = open_backend(self.path, threads)
        self.contract: Contract = self.backend.contract
        self.labels = list(self.contract.labels)
        h, w = self.contract.input_size
        shape = self.backend.input_shape
        if len(shape) != 4 or shape[1:] != (h, w, 3):
            raise ModelError(
                f"{self.path}: model input {shape} is not a batch of {h}x{w} RGB images"
            )
        if self.backend.output_classes != len(self.labels):
            raise ModelError(
                f"{self.path}: model has {self.backend.output_classes} outputs but "
                f"{len(self.labels)} labels"
            )
        # Fold the contract's pixel scale and the input quantization into one affine map,
        # precomputed once: x_model = pixels * a + b.
        in_scale, in_zero = self.backend.input_quant
        self._quantized_in = self.backend.input_dtype in (np.dtype(np.int8), np.dtype(np.uint8))
        if self._quantized_in:
            self._in_a = np.float32(self.contract.scale / in_scale)
            self._in_b = np.float32(in_zero)
            info = np.iinfo(self.backend.input_dtype)
            self._in_range = (info.min, info.max)
        else:
            self._in_a, self._in_b = np.float32(self.contract.scale), np.float32(0.0)
        out_scale, out_zero = self.backend.output_quant
        self._out_affine = (
            (np.float32(out_scale), np.float32(out_zero))
            if self.backend.output_dtype != np.dtype(np.float32)
            else None
        )

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int | None = None) -> Classifier:
        if threads is not None and threads < 1:
            raise ValueError(f"threads={threads}: must be at least 1")
        return cls(Path(path), threads)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.contract.input_size

    def _model_input(self, pixels: np.ndarray) -> np.ndarray:
        x = pixels.astype(np.float32) * self._in_a
        if self._quantized_in:
            x += self._in_b
            np.rint(x, out=x)
            np.clip(x, *self._in_range, out=x)
        return x.astype(self.backend.input_dtype, copy=False)

    def predict_proba(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, classes)`` for a uint8 batch ``(N, H, W, 3)`` already resized."""
        h, w = self.contract.input_size
        if pixels.ndim != 4 or pixels.shape[1:] != (h, w, 3):
            raise ImageError(f"expected a batch of shape (N, {h}, {w}, 3), got {pixels.shape}")
        if len(pixels) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        out = self.backend.run(self._model_input(pixels))
        if self._out_affine is not None:
            scale, zero = self._out_affine
            out = (out.astype(np.float32) - zero) * scale
        return out.astype(np.float32, copy=False)

    def to_pixels(self, image) -> np.ndarray:
        """One image (path, bytes, PIL image or HxWx3 array) -> uint8 (H, W, 3) model pixels."""
        size = self.contract.input_size
        if isinstance(image, np.ndarray):
            return _array_to_pixels(image, size)
        return to_rgb_array(image, size)

    def classify(self, images, top_k: int = 1) -> Prediction | list[Prediction]:
        """Classify one image or a list/batch of them; a list in gives a list out."""
        if top_k < 1:
            raise ValueError(f"top_k={top_k}: must be at least 1")
        single = not isinstance(images, (list, tuple)) and not (
            isinstance(images, np.ndarray) and images.ndim == 4
        )
        batch = [images] if single else list(images)
        pixels = (
            np.stack([self.to_pixels(im) for im in batch])
            if batch
            else np.zeros((0, *self.contract.input_size, 3), np.uint8)
        )
        probs = self.predict_proba(pixels)
        preds = [self._prediction(p, top_k) for p in probs]
        return preds[0] if single else preds

    def _prediction(self, probs: np.ndarray, top_k: int) -> Prediction:
        order = np.argsort(-probs, kind="stable")[: min(top_k, len(self.labels))]
        top = [(self.labels[i], float(probs[i])) for i in order]
        best = int(order[0])
        return Prediction(self.labels[best], best, float(probs[best]), top)


def _array_to_pixels(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Accept uint8 HxWx3 (or HxW / HxWx1 / HxWx4) arrays; resize like a decoded image."""
    if arr.dtype != np.uint8:
        raise ImageError(f"array of dtype {arr.dtype}: pass uint8 pixels (0-255)")
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        img = Image.fromarray(arr.reshape(arr.shape[:2]), "L")
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        img = Image.fromarray(np.ascontiguousarray(arr), "RGB" if arr.shape[2] == 3 else "RGBA")
    else:
        raise ImageError(f"array of shape {arr.shape}: expected (H, W, 3)")
    if arr.shape[0] == size[0] and arr.shape[1] == size[1] and arr.ndim == 3 and arr.shape[2] == 3:
        return arr
    return to_rgb_array(img, size, name=f"array {arr.shape}")
