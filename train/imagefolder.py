"""An image-folder dataset: ``root/train/<class>/*`` and ``root/test/<class>/*``.

Any PNG/JPEG/BMP/WebP of any size or mode becomes a 32x32 RGB uint8 image through the same
decoder the device runtime uses (``herbi.runtime.image``), so training and deployment see
identical pixels. Classes are the sorted folder names of ``train/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from herbi.common.errors import DataError
from herbi.runtime.image import ImageError, image_files, to_rgb_array


def _class_dirs(split_dir: Path) -> dict[str, Path]:
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: missing folder (expected <root>/train/<class>/ and test/)")
    dirs = {
        d.name: d for d in sorted(split_dir.iterdir()) if d.is_dir() and not d.name.startswith(".")
    }
    if not dirs:
        raise DataError(f"{split_dir}: no class folders inside")
    return dirs


def _load_split(split_dir: Path, classes: list[str], size: tuple[int, int]):
    images, labels = [], []
    for label, name in enumerate(classes):
        files = image_files(split_dir / name, recursive=False)
        if not files:
            raise DataError(f"{split_dir / name}: class folder has no images")
        for path in files:
            try:
                images.append(to_rgb_array(path, size))
            except ImageError as e:
                raise DataError(f"unreadable image {e}") from None
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def load_image_folder(root: Path | str, size: tuple[int, int] = (32, 32)):
    """Return ``x_train, y_train, x_test, y_test, class_names`` from an image folder."""
    root = Path(root)  # load_dataset has checked it exists (a file is CIFAR-100's)
    train_dirs = _class_dirs(root / "train")
    test_dirs = _class_dirs(root / "test")
    extra = sorted(set(test_dirs) - set(train_dirs))
    if extra:
        raise DataError(f"{root / 'test'}: classes {extra} are not in {root / 'train'}")
    classes = list(train_dirs)
    missing = [c for c in classes if c not in test_dirs]
    if missing:
        raise DataError(f"{root / 'test'}: no folder for classes {missing}")
    x_train, y_train = _load_split(root / "train", classes, size)
    x_test, y_test = _load_split(root / "test", classes, size)
    return x_train, y_train, x_test, y_test, classes
