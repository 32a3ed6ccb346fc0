"""What ``classify`` accepts, turned into one uint8 ``(N, h, w, 3)`` batch for the model.

One image is a path, raw bytes, a PIL image or a uint8 HxWx3 array (grayscale and RGBA
arrays are converted like decoded files); a batch is a list/tuple of those or a 4-D uint8
array. A batch of the model's size passes through without a copy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from herbi.runtime.errors import ImageError
from herbi.runtime.image import ImageSource, to_rgb_array


def is_batch(images: object) -> bool:
    """A list/tuple or a 4-D array is a batch; anything else is one image."""
    return isinstance(images, (list, tuple)) or (
        isinstance(images, np.ndarray) and images.ndim == 4
    )


def to_batch(images: Sequence[ImageSource] | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A batch -> uint8 ``(N, h, w, 3)``; errors name the file, or the item's position."""
    h, w = size
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise ImageError(f"batch array of dtype {images.dtype}; pass uint8 pixels (0-255)")
        if images.shape[1:] == (h, w, 3):
            return images
    out = np.empty((len(images), h, w, 3), np.uint8)
    for i, image in enumerate(images):
        named = isinstance(image, (str, os.PathLike))
        out[i] = to_rgb_array(image, size, None if named else f"images[{i}]")
    return out
