"""A recipe's size family: one network at several widths, and the largest that fits a device.

Each member records what its int8 model costs on a microcontroller, measured once by herbi's
own export path (:data:`FOOTPRINT_MEASURED`) rather than guessed, so ``herbi-train --fits``
can choose before training; ``herbi-export --format tflm`` measures the trained model again
and refuses it if it does not fit after all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from herbi.common.boards import Footprint, Limits

# How every member's footprint was measured (tests/test_sizes.py re-measures some).
FOOTPRINT_MEASURED = (
    "herbi-train --recipe fast --preset smoke --epochs 1 --size NAME on cifar10-animals5 "
    "(5 classes), then herbi-export --format tflm (int8, cos_proto unknown score included; "
    "tflite-micro 0.dev20261023182759, reference kernels, x86-64 host: AMD EPYC; TensorFlow "
    "2.21.0)"
)
ACCURACY_LABEL = "stand-in cifar10-animals5, 40 epochs, seeds 0-2, AMD EPYC, float32"
ACCURACY_MEASURED = (
    "test accuracy on cifar10-animals5 (the stand-in, not CIFAR-100), herbi-train --recipe fast "
    "--size NAME --epochs 40 (every size under 2 minutes), seeds 0, 1, 2; 2-core AMD EPYC "
    "(AVX-512, VNNI, BF16, no AMX), float32"
)


@dataclass(frozen=True)
class Member:
    """One size: the widths of the stem and each stage, which stages end with a residual
    block, the Keras classifier's parameters, its measured int8 footprint (each class beyond 5
    adds ~2 x features bytes of flash: the last layer and the score head) and accuracy."""

    widths: tuple[int, ...]
    residual: tuple[bool, ...]
    params: int
    footprint: Footprint
    # Test accuracy, mean and 95% interval half-width over seeds 0, 1, 2 (the same schedule
    # for every size; train/recipes/fast.py says which, on which machine); None until measured.
    accuracy: tuple[float, float] | None = None

    def hparams(self) -> dict:
        """The network hyperparameters this member sets."""
        return {"widths": self.widths, "residual": self.residual}


def largest_fitting(sizes: Mapping[str, Member], limits: Limits) -> str | None:
    """The name of the largest member (by parameters) that fits ``limits``, or None."""
    fitting = [name for name, m in sizes.items() if limits.admits(m.footprint)]
    return max(fitting, key=lambda name: sizes[name].params, default=None)
