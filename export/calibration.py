"""Calibration (representative) images: a stratified sample of the train split, never test.

Quantization ranges are fitted on these images; drawing the same number from each class
keeps a rare class's activations inside the calibrated range. The gate needs their indices
too: agreement is measured on train images that were *not* calibrated on.
"""

from __future__ import annotations

import numpy as np

from herbi.common.errors import ExportError

CALIBRATION_IMAGES = 300  # --calibration-size: stratified train images int8 ranges are fitted on


def calibration_indices(
    y_train: np.ndarray, size: int = CALIBRATION_IMAGES, seed: int = 0
) -> np.ndarray:
    """Indices of ``size`` train images, as equal a share per class as the split allows,
    shuffled."""
    if size < 1:
        raise ExportError(f"--calibration-size {size}: must be at least 1")
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(y_train == c)) for c in np.unique(y_train)]
    picked: list[int] = []
    # Round-robin over classes so every class gets floor or ceil of size / classes.
    for rank in range(max(len(ix) for ix in per_class)):
        for ix in per_class:
            if rank < len(ix) and len(picked) < size:
                picked.append(int(ix[rank]))
    return rng.permutation(np.array(picked))
