"""The format registry: every artifact herbi can export, in one table.

Export, the tests and the benchmarks all iterate over :data:`FORMATS`. A format is one
:class:`Format` entry plus its builder; the entry names its command-line words, its container
(how the file is written with its contract, which files it consists of, how its graph is
checked) and its quantization debugger. Importing this module loads no TensorFlow: builders
import their converters only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from herbi.common.errors import ExportError
from herbi.export import (
    artifacts,
    checks,
    debug,
    qat,
    tflm_source,
    to_onnx,
    to_tflite,
    web_export,
)
from herbi.runtime.contract import float_input, sidecar_path


@dataclass(frozen=True)
class BuildInputs:
    """What a builder may use: the trained model, calibration images and the train/val split.

    ``calibration`` is uint8 NHWC from the train split only; ``train``/``val`` (uint8 images,
    int labels) are used by quantization-aware training alone. ``scale`` is the contract's
    pixel scale: every builder feeds ``float_input(pixels, scale)``, as training did.
    """

    model: object  # a tf_keras.Model; typed loosely so this module never imports TensorFlow
    calibration: np.ndarray
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    scale: float
    qat_epochs: int = 3
    # QAT only has to reproduce the trained model in int8: on the reference CNN (stand-in data,
    # validation split) 1e-5 drifted to agreement 0.972, 3e-6 lost 1.2 points, 1e-6 kept 0.988.
    qat_learning_rate: float = 1e-6
    reduce_range: bool = False  # ONNX int8: 7-bit weights (see export.to_onnx)

    def float_calibration(self) -> np.ndarray:
        """The calibration images as the model's float input."""
        return float_input(self.calibration, self.scale)


@dataclass(frozen=True)
class Limits:
    """A device's limits an artifact must fit (``--max-arena``/``--max-flash``, bytes)."""

    max_arena: int | None = None
    max_flash: int | None = None


def _ignores_limits(check: Callable[[Path, bool], list[str]]) -> Callable:
    return lambda model, int8, limits: check(model, int8)


@dataclass(frozen=True)
class Container:
    """A file type: its suffix, its writer (which attaches the contract), its graph check, the
    files an artifact consists of (default: its path alone), and for a folder artifact the model
    file inside that the runtime loads (``model``) and what it adds once judged (``annotate``)."""

    suffix: str
    write: Callable[..., None]  # (data, path, contract, int8) -> None
    check: Callable[[Path, bool, Limits], list[str]]  # (model file, int8, limits) -> problems
    files: Callable[[Path], list[Path]] = lambda path: [path]
    model: Callable[[Path], Path] = lambda path: path
    annotate: Callable[[Path, dict], object] | None = None  # (artifact, facts)
    backend: str | None = None  # herbi.runtime's engine for it (None: by the model's suffix)
    runs_in: str = "python"  # where the bench times it: "python" (workers) or "browser"
    footprint: Callable[[Path], dict] | None = None  # (model file) -> device costs measured


TFLITE = Container(
    ".tflite",
    artifacts.write_tflite,
    _ignores_limits(checks.tflite_problems),
    files=lambda path: [path, sidecar_path(path)],  # the model and its contract sidecar
)
ONNX = Container(".onnx", artifacts.write_onnx, _ignores_limits(checks.onnx_problems))
# TFLite Micro C++ sources around the int8 model, checked with TFLM's own kernels.
TFLM = Container(
    "",
    tflm_source.write_tflm,
    tflm_source.tflm_problems,
    model=lambda path: path / tflm_source.MODEL,
    backend="tflm",
    footprint=tflm_source.read_footprint,
)
# A static web page folder (index.html, onnxruntime-web, model.onnx): see export.web_export.
WEB = Container(
    "",
    web_export.write_page,
    _ignores_limits(checks.onnx_problems),
    model=lambda path: path / web_export.MODEL_FILE,
    annotate=web_export.update_info,
    runs_in="browser",
)


@dataclass(frozen=True)
class Format:
    """One exportable artifact; ``family``/``quantize`` are its ``--format``/``--quantize``
    words (``quantize="qat"`` is ``--qat``)."""

    name: str
    description: str
    family: str
    quantize: str
    int8: bool
    container: Container
    build: Callable[[BuildInputs], bytes]
    debug: Callable[[BuildInputs, Path], str] | None = None

    @property
    def filename(self) -> str:
        return f"{self.name}{self.container.suffix}"

    def files(self, path: Path) -> list[Path]:
        return self.container.files(path)

    def check(self, path: Path, limits: Limits = Limits()) -> list[str]:
        return self.container.check(self.container.model(path), self.int8, limits)

    @property
    def backend(self) -> str | None:
        return self.container.backend

    def model(self, path: Path) -> Path:
        """The model file of the artifact at ``path`` (itself, or the one inside a folder)."""
        return self.container.model(path)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("tflite-float32", "TFLite, float32 weights and compute", "tflite", "none",
               False, TFLITE, to_tflite.build_float32),
        Format("tflite-float16", "TFLite, float16 weights, float32 compute", "tflite",
               "float16", False, TFLITE, to_tflite.build_float16),
        Format("tflite-dynamic", "TFLite, int8 weights, dynamic-range float compute", "tflite",
               "dynamic", False, TFLITE, to_tflite.build_dynamic),
        Format("tflite-int8", "TFLite, full integer int8 with int8 I/O (post-training)",
               "tflite", "int8", True, TFLITE, to_tflite.build_int8, debug.tflite_table),
        Format("tflite-qat-int8", "TFLite, full integer int8 after quantization-aware training",
               "tflite", "qat", True, TFLITE, qat.build_qat_int8),
        Format("onnx-float32", "ONNX (tf2onnx), float32", "onnx", "none", False, ONNX,
               to_onnx.build_float32),
        Format("onnx-int8", "ONNX, static int8 QDQ, per-channel weights, float I/O", "onnx",
               "int8", True, ONNX, to_onnx.build_int8, debug.onnx_table),
        Format("tflm-int8", "TFLite Micro C++ source of the int8 model, with measured arena",
               "tflm", "int8", True, TFLM, to_tflite.build_int8),
        Format("web-int8", "Web page, onnxruntime-web (WebAssembly), ONNX int8 QDQ", "web",
               "int8", True, WEB, to_onnx.build_int8),
        Format("web-float32", "Web page, onnxruntime-web (WebAssembly), ONNX float32", "web",
               "none", False, WEB, to_onnx.build_float32),
    )
}  # fmt: skip

DEFAULT_QUANTIZE = {"tflite": "int8", "onnx": "none", "tflm": "int8", "web": "int8"}
FAMILIES = (*DEFAULT_QUANTIZE, "all")


def select(family: str, quantize: str | None = None, qat: bool = False) -> list[str]:
    """Registry names for ``--format/--quantize/--qat`` (a registry name is accepted as is).

    ``tflite`` defaults to int8, ``onnx`` to float32; ``all`` is every registry entry.
    """
    if family not in FAMILIES and family not in FORMATS:
        raise ExportError(
            f"unknown format {family!r} (choose {', '.join(FAMILIES)} or one of "
            f"{', '.join(FORMATS)})"
        )
    if family not in DEFAULT_QUANTIZE:
        if quantize is not None or qat:
            raise ExportError(f"--format {family} takes no --quantize or --qat")
        return list(FORMATS) if family == "all" else [family]
    words = {f.quantize: f.name for f in FORMATS.values() if f.family == family}
    if qat:
        if "qat" not in words or quantize not in (None, "int8"):
            raise ExportError("--qat produces an int8 TFLite model: use it with --format tflite")
        return [words["qat"]]
    q = quantize or DEFAULT_QUANTIZE[family]
    if q not in words or q == "qat":
        choices = ", ".join(w for w in words if w != "qat")
        raise ExportError(
            f"--quantize {q} is not available for --format {family} (choose {choices})"
        )
    return [words[q]]
