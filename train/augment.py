"""The reference study's offline augmentation: two augmented copies of every train image.

The study's layers and factors, seeded so that a run can be repeated exactly; the originals
and the copies are merged and shuffled.
"""

from __future__ import annotations

import numpy as np
import tf_keras as keras

from herbi.runtime.contract import float_input


def offline_augment(
    x: np.ndarray, y: np.ndarray, copies: int = 2, seed: int = 0, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Return float32 images in [0, 1] (originals + ``copies`` augmented sets), shuffled."""
    base = float_input(x)
    augmenter = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal_and_vertical", seed=seed),
            keras.layers.RandomRotation(0.2, seed=seed + 1),
            keras.layers.RandomZoom(0.3, seed=seed + 2),
            keras.layers.RandomContrast(0.3, seed=seed + 3),
        ],
        name="reference_augmentation",
    )
    sets = [base]
    for _ in range(copies):
        out = [
            augmenter(base[i : i + batch_size], training=True).numpy()
            for i in range(0, len(base), batch_size)
        ]
        sets.append(np.clip(np.concatenate(out), 0.0, 1.0))
    images = np.concatenate(sets)
    labels = np.concatenate([y] * (copies + 1))
    order = np.random.default_rng(seed).permutation(len(images))
    return images[order], labels[order]
