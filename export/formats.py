"""The format registry: every artifact herbi can export, in one table.

Export, the tests and the benchmarks all iterate over :data:`FORMATS`, so adding a format here
is the only change needed for it to be built, checked, tested and benchmarked. Importing this
module loads no TensorFlow: builders import their converters only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from herbi.export import qat, to_onnx, to_tflite
from herbi.export.errors import ExportError


@dataclass(frozen=True)
class BuildInputs:
    """What a builder may use: the trained model, calibration images and the train/val split.

    ``calibration`` is uint8 NHWC from the train split only; ``train``/``val`` (uint8 images,
    int labels) are used by quantization-aware training alone.
    """

    model: object  # a tf_keras.Model; typed loosely so this module never imports TensorFlow
    calibration: np.ndarray
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    qat_epochs: int = 3
    # QAT only has to reproduce the trained model in int8: on the reference CNN (stand-in data,
    # validation split) 1e-5 drifted to agreement 0.972, 3e-6 lost 1.2 points, 1e-6 kept 0.988.
    qat_learning_rate: float = 1e-6
    reduce_range: bool | None = None  # ONNX int8: None = decide from the CPU's VNNI support


@dataclass(frozen=True)
class Format:
    """One exportable artifact.

    Attributes:
        name: registry key and file stem (``<name><suffix>`` in the output folder).
        backend: ``"tflite"`` (LiteRT, sidecar contract) or ``"onnx"`` (ONNX Runtime,
            contract in ``metadata_props``).
        suffix: file extension, with the dot.
        description: one line for tables and ``--help``.
        int8: whether the graph is fully integer (graph checks and QDQ debugging apply).
        tolerance: largest max |probability difference| vs Keras the tests accept on the
            tiny test model (a sanity bound; a real model is judged by the gate instead).
        min_agreement: smallest argmax agreement with Keras the tests accept on that model.
        build: ``BuildInputs -> bytes`` of the model file (contract not yet attached).
    """

    name: str
    backend: str
    suffix: str
    description: str
    int8: bool
    tolerance: float
    min_agreement: float
    build: Callable[[BuildInputs], bytes]

    @property
    def filename(self) -> str:
        return f"{self.name}{self.suffix}"


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            name="tflite-float32",
            backend="tflite",
            suffix=".tflite",
            description="TFLite, float32 weights and compute",
            int8=False,
            tolerance=1e-4,
            min_agreement=0.99,
            build=to_tflite.build_float32,
        ),
        Format(
            name="tflite-float16",
            backend="tflite",
            suffix=".tflite",
            description="TFLite, float16 weights, float32 compute",
            int8=False,
            tolerance=0.01,
            min_agreement=0.98,
            build=to_tflite.build_float16,
        ),
        Format(
            name="tflite-dynamic",
            backend="tflite",
            suffix=".tflite",
            description="TFLite, int8 weights, dynamic-range float compute",
            int8=False,
            tolerance=0.05,
            min_agreement=0.95,
            build=to_tflite.build_dynamic,
        ),
        Format(
            name="tflite-int8",
            backend="tflite",
            suffix=".tflite",
            description="TFLite, full integer int8 with int8 I/O (post-training)",
            int8=True,
            tolerance=0.1,
            min_agreement=0.95,
            build=to_tflite.build_int8,
        ),
        Format(
            name="tflite-qat-int8",
            backend="tflite",
            suffix=".tflite",
            description="TFLite, full integer int8 after quantization-aware training",
            int8=True,
            tolerance=0.2,
            min_agreement=0.85,
            build=qat.build_qat_int8,
        ),
        Format(
            name="onnx-float32",
            backend="onnx",
            suffix=".onnx",
            description="ONNX (tf2onnx), float32",
            int8=False,
            tolerance=1e-4,
            min_agreement=0.99,
            build=to_onnx.build_float32,
        ),
        Format(
            name="onnx-int8",
            backend="onnx",
            suffix=".onnx",
            description="ONNX, static int8 QDQ, per-channel weights, float I/O",
            int8=True,
            tolerance=0.1,
            min_agreement=0.95,
            build=to_onnx.build_int8,
        ),
    )
}

TFLITE_QUANTIZE = {
    "int8": "tflite-int8",
    "float16": "tflite-float16",
    "dynamic": "tflite-dynamic",
    "none": "tflite-float32",
}
ONNX_QUANTIZE = {"none": "onnx-float32", "int8": "onnx-int8"}
FAMILIES = ("tflite", "onnx", "all")


def select(family: str, quantize: str | None = None, qat: bool = False) -> list[str]:
    """Registry names for ``--format/--quantize/--qat`` (a registry name is accepted as is).

    ``tflite`` defaults to int8, ``onnx`` to float32; ``all`` is every registry entry.
    """
    if family not in FAMILIES and family not in FORMATS:
        raise ExportError(
            f"unknown format {family!r} (choose {', '.join(FAMILIES)} or one of "
            f"{', '.join(FORMATS)})"
        )
    if family not in ("tflite", "onnx"):
        if quantize is not None or qat:
            raise ExportError(f"--format {family} takes no --quantize or --qat")
        return list(FORMATS) if family == "all" else [family]
    table = TFLITE_QUANTIZE if family == "tflite" else ONNX_QUANTIZE
    q = quantize or ("int8" if family == "tflite" else "none")
    if q not in table:
        raise ExportError(
            f"--quantize {q} is not available for --format {family} (choose {', '.join(table)})"
        )
    if qat:
        if family != "tflite" or q != "int8":
            raise ExportError("--qat produces an int8 TFLite model: use it with --format tflite")
        return ["tflite-qat-int8"]
    return [table[q]]
