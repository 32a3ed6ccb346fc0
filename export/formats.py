"""The format registry: every artifact herbi can export, in one table (:data:`FORMATS`).

Importing this module loads no TensorFlow: builders import their converters lazily.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from herbi.common.boards import Footprint
from herbi.common.errors import ExportError, HerbiError
from herbi.common.files import read_json, write_json
from herbi.export import (
    artifacts,
    checks,
    debug,
    onnx_graph,
    qat,
    tflm,
    tflm_source,
    to_onnx,
    to_tflite,
    web_export,
)
from herbi.runtime.contract import float_input, read_sidecar, sidecar_path


@dataclass(frozen=True)
class BuildInputs:
    """What a builder may use: the trained classifier and its unknown score's head (which
    :meth:`scored` joins), uint8 calibration images (train split only), the train/val split
    (QAT alone) and the contract's pixel scale every builder feeds with."""

    classifier: object  # a tf_keras.Model; typed loosely so this module never imports TensorFlow
    head: object  # a herbi.train.openset.ScoreHead; None: no unknown score (tests)
    calibration: np.ndarray
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    scale: float
    qat_epochs: int = 3
    reduce_range: bool = False  # ONNX int8: 7-bit weights (see export.to_onnx)

    def scored(self, onnx: bool = False, classifier: object = None):
        """The model a builder converts: ``classifier`` (default: the trained one) with the
        unknown score as a second output, in ops the target's int8 kernels run (``onnx``:
        the ones ONNX Runtime and NNAPI take; see herbi.train.openset)."""
        from herbi.train.openset import with_score

        model = classifier or self.classifier
        return model if self.head is None else with_score(model, self.head, onnx)

    def float_calibration(self) -> np.ndarray:
        """The calibration images as the model's float input."""
        return float_input(self.calibration, self.scale)


TFLM_MODEL, FOOTPRINT = "model.tflite", "footprint.json"


@dataclass(frozen=True)
class Container:
    """A file type: its suffix, its writer (which attaches the contract), its graph check, the
    files an artifact consists of (default: its path alone), and for a folder artifact the model
    file inside that the runtime loads (``model``) and what it adds once judged (``annotate``)."""

    suffix: str
    write: Callable[..., None]  # (data, path, contract, int8) -> None
    check: Callable[[Path, bool], list[str]]  # (model file, int8) -> problems
    files: Callable[[Path], list[Path]] = lambda path: [path]
    model: Callable[[Path], Path] = lambda path: path
    annotate: Callable[[Path, PageFacts], None] | None = None  # (artifact, facts)
    backend: str | None = None  # herbi.runtime's engine for it (None: by the model's suffix)
    runs_in: str = "python"  # where the bench times it: "python" (workers) or "browser"
    footprint: Callable[[Path], Footprint] | None = None  # (model file) -> device costs
    graph: Callable[[Path], onnx_graph.EngineGraph] | None = None  # what engines run of it


def write_tflm(data: bytes, path: Path, contract, int8: bool) -> None:
    """A folder with the C++ sources, the measured footprint, and the ``.tflite`` with its
    contract sidecar (which herbi.runtime loads with ``backend="tflm"`` to check the device's
    kernels in Python)."""
    footprint = tflm.measure(data)  # refuses an op TFLite Micro lacks, naming it
    artifacts.write_tflite(data, path / TFLM_MODEL, contract, int8)
    tflm_source.write_sources(data, footprint, read_sidecar(path / TFLM_MODEL), path)
    write_json(path / FOOTPRINT, asdict(footprint))


def write_page(data: bytes, path: Path, contract, int8: bool) -> None:
    """The ONNX model with its contract, then the page around it."""
    with tempfile.TemporaryDirectory(prefix="herbi-web-") as tmp:
        model = Path(tmp) / web_export.MODEL_FILE
        artifacts.write_onnx(data, model, contract, int8)
        web_export.write_web(model, path, {"format": contract.format})


@dataclass(frozen=True)
class PageFacts:
    """What the page's info panel says of its model, known only once the export judged it."""

    description: str
    dataset: str
    test_accuracy: float | None  # None: no parity check
    exported: str  # the date
    status: str


def update_info(web_dir: Path, facts: PageFacts) -> None:
    """Add ``facts`` to model.json."""
    path = Path(web_dir) / web_export.INFO_FILE
    write_json(path, {**read_json(path), **asdict(facts)})


TFLITE = Container(
    ".tflite",
    artifacts.write_tflite,
    checks.tflite_problems,
    files=lambda path: [path, sidecar_path(path)],  # the model and its contract sidecar
)
ONNX = Container(".onnx", artifacts.write_onnx, checks.onnx_problems, graph=onnx_graph.engine_graph)
# TFLite Micro C++ sources around the int8 model, checked with TFLM's own kernels.
TFLM = Container(
    "",
    write_tflm,
    checks.tflite_problems,
    model=lambda path: path / TFLM_MODEL,
    backend="tflm",
    footprint=lambda model: tflm.measure(model.read_bytes()),
)
# A static web page folder (index.html, onnxruntime-web, model.onnx): see export.web_export.
WEB = Container(
    "",
    write_page,
    checks.onnx_problems,
    annotate=update_info,
    runs_in="browser",
    model=lambda path: path / web_export.MODEL_FILE,
    graph=onnx_graph.engine_graph,
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
        Format("onnx-int8", "ONNX, static QDQ: uint8 activations, int8 per-channel weights, "
               "float I/O, batch 1", "onnx", "int8", True, ONNX, to_onnx.build_int8,
               debug.onnx_table),
        Format("tflm-int8", "TFLite Micro C++ source of the int8 model, with measured arena",
               "tflm", "int8", True, TFLM, to_tflite.build_int8),
        Format("web-int8", "Web page, onnxruntime-web (WebAssembly), ONNX int8 QDQ", "web",
               "int8", True, WEB, to_onnx.build_int8),
        Format("web-float32", "Web page, onnxruntime-web (WebAssembly), ONNX float32", "web",
               "none", False, WEB, to_onnx.build_float32),
    )
}  # fmt: skip

DEFAULT_QUANTIZE = {"tflite": "int8", "onnx": "none", "tflm": "int8", "web": "int8"}


def check_known(
    names: list[str], known=FORMATS, error: type[HerbiError] = ExportError, where: str = ""
) -> None:
    """``error`` naming the first of ``names`` not ``known`` (default: not a registry name)."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise error(f"{where}unknown format {unknown[0]!r} (known: {', '.join(known)})")


def select(family: str, quantize: str | None = None, qat: bool = False) -> list[str]:
    """Registry names for ``--format/--quantize/--qat`` (a registry name is accepted as is).

    ``tflite`` defaults to int8, ``onnx`` to float32; ``all`` is every registry entry.
    """
    check_known([family], [*DEFAULT_QUANTIZE, "all", *FORMATS])
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
