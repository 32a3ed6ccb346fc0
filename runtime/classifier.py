"""``Classifier``: load a herbi artifact and classify images, with no TensorFlow anywhere.

    clf = Classifier.load("runs/latest/export/tflite-int8.tflite")
    clf.classify("camel.jpg", top_k=3)   # -> Prediction(label='camel', index=0, ...)
    clf.classify("tulip.jpg")            # -> Prediction(label='unknown', ..., score=0.41, ...)

The contract comes from the artifact itself, and callers only ever see uint8 pixels in and
probabilities (and the unknown score) out. ``predict`` is the batch entry point export's
checks and the benchmarks use, so they measure exactly this code path. Use one Classifier per
thread.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from herbi.runtime.backends import open_backend
from herbi.runtime.contract import Contract
from herbi.runtime.errors import ImageError, ModelError
from herbi.runtime.image import ImageSource, to_rgb_array
from herbi.runtime.inputs import is_batch, to_batch
from herbi.runtime.prediction import Prediction, rank
from herbi.runtime.quantize import input_map, output_map
from herbi.runtime.unknown import Unknown

CONTRACT = "contract"  # classify(threshold=CONTRACT): the artifact's own calibrated threshold


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
        self._to_outputs = [output_map(q) for q in self.backend.output_quants]
        self.unknown: Unknown | None = self.contract.unknown
        if self.unknown is not None and len(self._to_outputs) < 2:
            raise ModelError(
                f"{self.path}: its contract has an unknown threshold but the model no score output"
            )

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
        return self.predict(pixels)[0]

    def predict(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities ``(N, classes)`` and unknown scores ``(N,)`` (None for an artifact
        without a score), float32, for a uint8 batch ``(N, h, w, 3)``."""
        arr = isinstance(pixels, np.ndarray)
        if not arr or pixels.dtype != np.uint8 or pixels.shape[1:] != self._pixel_shape:
            got = f"{pixels.dtype} array of shape {pixels.shape}" if arr else type(pixels).__name__
            want = ", ".join(map(str, self._pixel_shape))
            raise ImageError(f"pixels: expected uint8 of shape (N, {want}), got {got}")
        n = len(pixels)
        if n == 0:
            empty = np.zeros((0, len(self.labels)), np.float32)
            return empty, (empty[:, 0] if len(self._to_outputs) > 1 else None)
        outputs = self.backend.run(self._to_input(pixels))
        if outputs[0].shape != (n, len(self.labels)):
            raise ModelError(f"{self.path}: model returned shape {outputs[0].shape} for {n} images")
        probs, *score = (f(out) for f, out in zip(self._to_outputs, outputs, strict=True))
        return probs, (score[0][:, 0] if score else None)

    def threshold_for(self, threshold: float | str | None) -> float | None:
        """``threshold`` as a number: CONTRACT means the artifact's own (None if it has none);
        None accepts every image (herbi's answer before it knew "unknown")."""
        if threshold == CONTRACT:
            return self.unknown.threshold if self.unknown else None
        if threshold is not None and len(self._to_outputs) < 2:
            raise ModelError(f"{self.path}: has no unknown score to compare a threshold with")
        if threshold is not None and type(threshold) not in (int, float):
            raise ValueError(f"threshold={threshold!r}: must be a number, None or {CONTRACT!r}")
        return threshold

    def classify(
        self,
        images: ImageSource | list[ImageSource],
        top_k: int = 1,
        threshold: float | str | None = CONTRACT,
    ) -> Prediction | list[Prediction]:
        """Classify one image (-> Prediction) or a list/4-D batch (-> list, one per image).

        An image is a path, bytes, a PIL image or a uint8 HxWx3 array; a batch runs through
        the model as one batch. An image whose unknown score is below ``threshold`` (default:
        the artifact's calibrated one) is labelled ``unknown``; ``threshold=None`` always names
        a class.
        """
        if type(top_k) is not int or top_k < 1:
            raise ValueError(f"top_k={top_k!r}: must be a whole number of at least 1")
        limit = self.threshold_for(threshold)
        if is_batch(images):
            return rank(*self.predict(to_batch(images, self.input_size)), self.labels, top_k, limit)
        pixels = to_rgb_array(images, self.input_size)[np.newaxis]
        return rank(*self.predict(pixels), self.labels, top_k, limit)[0]
