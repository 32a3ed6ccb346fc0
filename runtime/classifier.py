"""``Classifier``: load a herbi artifact and classify images, with no TensorFlow anywhere.

    clf = Classifier.load("runs/latest/export/tflite-int8.tflite")
    clf.classify("camel.jpg", top_k=3)   # -> Prediction(label='camel', index=0, ...)

The contract comes from the artifact itself, and callers only ever see uint8 pixels in and
probabilities out. ``predict_proba`` is the batch entry point export's parity check and the
benchmarks use, so they measure exactly this code path. Use one Classifier per thread.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from herbi.runtime.backends import open_backend
from herbi.runtime.contract import Contract
from herbi.runtime.errors import ImageError, ModelError
from herbi.runtime.inputs import ImageInput, is_batch, to_batch, to_pixels
from herbi.runtime.prediction import Prediction, rank
from herbi.runtime.quantize import input_map, output_map


class Classifier:
    """A loaded herbi model; build it with :meth:`Classifier.load`."""

    def __init__(self, path: Path, threads: int | None = None, backend: str | None = None):
        self.path = Path(path)
        self.backend = open_backend(self.path, threads, backend)
        self.contract: Contract = self.backend.contract
        self.labels = list(self.contract.labels)
        h, w = self.contract.input_size
        self._pixel_shape = (h, w, 3)
        shape = self.backend.input_shape
        if len(shape) != 4 or not all(
            d in (want, -1) for d, want in zip(shape[1:], self._pixel_shape, strict=True)
        ):
            raise ModelError(
                f"{self.path}: model input {list(shape)} is not a batch "
                f"of {h}x{w} RGB images as its contract says (a model for another task?)"
            )
        out = self.backend.output_shape
        if len(out) != 2 or out[1] not in (len(self.labels), -1):
            raise ModelError(
                f"{self.path}: model output {list(out)} does not match the contract's "
                f"{len(self.labels)} labels"
            )
        self._to_input = input_map(
            self.contract.scale, self.backend.input_dtype, self.backend.input_quant
        )
        self._to_probs = output_map(self.backend.output_quant)

    @classmethod
    def load(
        cls, path: str | os.PathLike, threads: int | None = None, backend: str | None = None
    ) -> Classifier:
        """Load a ``.tflite`` (LiteRT) or ``.onnx`` (ONNX Runtime) artifact and its contract.

        ``threads``: CPU threads (None: the backend's default). ``backend``: ``"tflm"`` runs a
        ``.tflite`` with TensorFlow Lite Micro's kernels; None picks one by the file's suffix.
        """
        if threads is not None and (type(threads) is not int or threads < 1):
            raise ValueError(f"threads={threads!r}: must be a whole number of at least 1")
        return cls(Path(path), threads, backend)

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` the model takes."""
        return self.contract.input_size

    def __repr__(self) -> str:
        fmt = self.contract.format or "?"
        return f"Classifier({str(self.path)!r}, backend={self.backend.name}, format={fmt})"

    def predict_proba(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities ``(N, classes)`` float32 for a uint8 batch ``(N, h, w, 3)``."""
        if (
            not isinstance(pixels, np.ndarray)
            or pixels.dtype != np.uint8
            or pixels.shape[1:] != self._pixel_shape
        ):
            got = (
                f"{pixels.dtype} array of shape {pixels.shape}"
                if isinstance(pixels, np.ndarray)
                else type(pixels).__name__
            )
            want = ", ".join(map(str, self._pixel_shape))
            raise ImageError(f"pixels: expected uint8 of shape (N, {want}), got {got}")
        n = len(pixels)
        if n == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        out = self.backend.run(self._to_input(pixels))
        if out.shape != (n, len(self.labels)):
            raise ModelError(f"{self.path}: model returned shape {out.shape} for {n} images")
        return self._to_probs(out)

    def classify(
        self, images: ImageInput | list[ImageInput] | np.ndarray, top_k: int = 1
    ) -> Prediction | list[Prediction]:
        """Classify one image (-> Prediction) or a list/4-D batch (-> list, one per image).

        An image is a path, bytes, a PIL image or a uint8 HxWx3 array; a batch runs through
        the model as one batch.
        """
        if type(top_k) is not int or top_k < 1:
            raise ValueError(f"top_k={top_k!r}: must be a whole number of at least 1")
        if is_batch(images):
            return rank(self.predict_proba(to_batch(images, self.input_size)), self.labels, top_k)
        pixels = to_pixels(images, self.input_size)[np.newaxis]
        return rank(self.predict_proba(pixels), self.labels, top_k)[0]
