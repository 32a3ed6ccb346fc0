"""One entry point for every dataset herbi trains on: ``load_dataset(source)``.

The validation split is carved out of train before any augmentation, so no copy of a
validation image is ever trained on; the test split is only reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from herbi.common.errors import DataError
from herbi.train.cifar100 import ARCHIVE_NAME, OFFICIAL, Cifar100Spec, load_cifar100
from herbi.train.imagefolder import load_image_folder


@dataclass
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class in each split, as printed at start and kept in metrics.json."""
        return {
            split: {name: int((y == i).sum()) for i, name in enumerate(self.class_names)}
            for split, y in (("train", self.y_train), ("val", self.y_val), ("test", self.y_test))
        }

    def fingerprint(self) -> str:
        """sha256 over every array, label and class name: identifies the data in manifests."""
        h = hashlib.sha256()
        for arr in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update("\n".join(self.class_names).encode())
        return h.hexdigest()


def is_cifar100(path: Path) -> bool:
    files = (path, path / ARCHIVE_NAME, path / "meta")
    return any(f.is_file() for f in files) or (path / "cifar-100-python").is_dir()


def stratified_split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Split ``fraction`` of each class off as validation, reproducibly."""
    if not 0 < fraction < 1:
        raise DataError(f"--val-fraction {fraction}: must be between 0 and 1")
    try:
        return train_test_split(x, y, test_size=fraction, stratify=y, random_state=seed)
    except ValueError as e:
        raise DataError(f"cannot split a validation set: {e}") from None


def load_dataset(
    source: Path | str | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    coarse: int = 11,
    spec: Cifar100Spec = OFFICIAL,
) -> Dataset:
    path = None if source is None else Path(source)
    if path is not None and not path.exists():
        raise DataError(f"{path}: no such file or folder (--data)")
    if path is None or is_cifar100(path):
        parts = load_cifar100(path, coarse, spec)
        name = f"CIFAR-100 coarse class {coarse}" + (f" ({path})" if path else "")
    else:
        parts, name = load_image_folder(path), f"image folder {path.resolve()}"
    x_train, y_train, x_test, y_test, classes = parts
    x_tr, x_val, y_tr, y_val = stratified_split(x_train, y_train, val_fraction, seed)
    return Dataset(x_tr, y_tr, x_val, y_val, x_test, y_test, classes, name)
