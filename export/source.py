"""What export starts from: the trained Keras model, its labels and its exact data splits.

A run folder (its model and manifest) rebuilds the very train/val/test split the run used; a bare ``.keras`` file needs ``--data`` and is split with the training defaults.
Every way this can go wrong ends in one :class:`ExportError` line naming the file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from herbi.common.errors import ExportError
from herbi.common.legacy_keras import use_legacy_keras, without_chatter
from herbi.common.run_folder import RunFolder
from herbi.runtime.errors import first_line
from herbi.train.data import Dataset, load_dataset
from herbi.train.manifest import UnknownChoice, read_manifest


@dataclass
class Source:
    model: object  # tf_keras.Model
    model_path: Path
    dataset: Dataset
    unknown: UnknownChoice = field(default_factory=UnknownChoice)  # the run's --score, --keep

    @property
    def labels(self) -> list[str]:
        return list(self.dataset.class_names)

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.model.input_shape[1]), int(self.model.input_shape[2])


def default_out(model: Path | str) -> Path:
    """``<run>/export`` for a run folder, ``export/`` beside a bare ``.keras`` file."""
    path = Path(model)
    return RunFolder(path if path.is_dir() else path.parent).export


def load_keras(path: Path):
    """Load a ``.keras`` file with tf_keras, turning every failure into one line."""
    if not path.is_file():
        raise ExportError(f"{path}: no such model file")
    if path.suffix.lower() != ".h5" and not zipfile.is_zipfile(path):
        raise ExportError(f"{path}: not a Keras model file (a .keras file is a zip archive)")
    with without_chatter():  # every other stderr line is passed on
        use_legacy_keras()
        import tf_keras as keras

        try:
            return keras.models.load_model(path, compile=False)
        except Exception as e:  # Keras raises ValueError, OSError, KeyError, zipfile errors...
            raise ExportError(f"{path}: cannot load the Keras model ({first_line(e)})") from None


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


def locate(model: Path | str, data: Path | str | None) -> Path:
    """The model file ``--model`` names (a run folder's ``model.keras`` or the file itself).

    Checks only paths, so a wrong argument fails before TensorFlow or any data is loaded.
    """
    path = Path(model)
    if path.is_dir():
        run = RunFolder(path)
        if not run.model.is_file():
            raise ExportError(f"{path}: not a run folder (no {run.model.name} inside)")
        return run.model
    if not path.exists():
        raise ExportError(f"{path}: no such model file or run folder")
    if data is None:
        raise ExportError(f"{path}: a bare model file needs --data (the dataset it was trained on)")
    return path


def load_source(model: Path | str, data: Path | str | None = None) -> Source:
    """Resolve ``--model`` (run folder or ``.keras`` file) and ``--data`` into a :class:`Source`.

    A run folder's dataset comes from its manifest (``data`` replaces only the source
    location); a bare file's from ``data`` with the training defaults.
    """
    model_path = locate(model, data)
    keras_model = load_keras(model_path)
    if Path(model).is_dir():
        manifest = read_manifest(RunFolder(model))
        dataset, unknown = manifest.data.load(data), manifest.config.unknown
    else:
        dataset, unknown = load_dataset(data), UnknownChoice()
    check_image_classifier(keras_model, model_path, dataset.num_classes)
    return Source(keras_model, model_path, dataset, unknown)
