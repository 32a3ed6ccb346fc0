"""What export starts from: the trained Keras model, its labels and its exact data splits.

A run folder (``model.keras`` + ``manifest.json``) rebuilds the very train/val/test split the
run used; a bare ``.keras`` file needs ``--data`` and is split with the training defaults.
Every way this can go wrong ends in one :class:`ExportError` line naming the file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from herbi.export.errors import ExportError
from herbi.train.data import Dataset, load_dataset
from herbi.train.run import run_dataset

MODEL_FILE = "model.keras"


@dataclass
class Source:
    model: object  # tf_keras.Model
    model_path: Path
    run_dir: Path | None
    dataset: Dataset

    @property
    def labels(self) -> list[str]:
        return list(self.dataset.class_names)

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.model.input_shape[1]), int(self.model.input_shape[2])

    @property
    def default_out(self) -> Path:
        """``<run>/export`` for a run folder, ``export/`` beside a bare ``.keras`` file."""
        return (self.run_dir or self.model_path.parent) / "export"


def load_keras(path: Path):
    """Load a ``.keras`` file with tf_keras, turning every failure into one line."""
    import tf_keras as keras

    if not path.is_file():
        raise ExportError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise ExportError(f"{path}: not a Keras model file (a .keras file is a zip archive)")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises ValueError, OSError, KeyError, zipfile errors...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ExportError(f"{path}: cannot load the Keras model ({first})") from None


def check_image_classifier(model, path: Path, num_classes: int) -> None:
    """One NHWC RGB image input and one vector of class probabilities out, or an error."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(
            f"{path}: expected one input and one output, got "
            f"{len(model.inputs)} and {len(model.outputs)}"
        )
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[3] != 3 or not all(isinstance(d, int) for d in shape[1:3]):
        raise ExportError(
            f"{path}: model input {shape} is not an image batch (None, height, width, 3)"
        )
    out = tuple(model.output_shape)
    if len(out) != 2 or out[1] != num_classes:
        raise ExportError(
            f"{path}: model output {out} does not match the dataset's {num_classes} classes"
        )


def load_source(model: Path | str, data: Path | str | None = None) -> Source:
    """Resolve ``--model`` (run folder or ``.keras`` file) and ``--data`` into a :class:`Source`."""
    path = Path(model)
    if path.is_dir():
        run_dir, model_path = path, path / MODEL_FILE
        if not model_path.is_file():
            raise ExportError(f"{path}: not a run folder (no {MODEL_FILE} inside)")
        dataset = run_dataset(run_dir, data)
    else:
        run_dir, model_path = None, path
        if not path.exists():
            raise ExportError(f"{path}: no such model file or run folder")
        if data is None:
            raise ExportError(
                f"{path}: a bare model file needs --data (the dataset it was trained on)"
            )
        dataset = None
    keras_model = load_keras(model_path)
    if dataset is None:
        dataset = load_dataset(data)
    check_image_classifier(keras_model, model_path, dataset.num_classes)
    return Source(keras_model, model_path, run_dir, dataset)
