"""What the unknown decision costs a microcontroller: the same int8 model with and without its
score, measured in TFLite Micro (flash, arena, time).

The classifier alone is converted exactly as export converted the artifact (same rewrite, same
calibration images), so the two models differ by the score's layers only. Time is TFLM's
reference kernels on this host, the two models invoked in turn on the same image: a host
figure that says what share of the work the score adds, not a microcontroller's latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from herbi.common.boards import Footprint
from herbi.export.tflm import measure
from herbi.runtime.micro import tflm_interpreter

EXTRA = ("flash_bytes", "arena_bytes", "declared_arena_bytes", "macs")  # footprint differences
INVOKES = 200  # per model, alternating: 30 gave +11% on a loaded machine, 200 gives +0.0-0.2%


@dataclass(frozen=True)
class UnknownCost:
    """The score's extra flash, arena, ops and time (``with_score`` minus ``classifier``)."""

    flash_bytes: int
    arena_bytes: int
    declared_arena_bytes: int
    macs: int
    ops: tuple[str, ...]  # the ops only the score needs (kernels to link)
    host_ms_with: float  # median TFLM invoke, this host, reference kernels
    host_ms_without: float

    @property
    def host_time_share(self) -> float:
        return self.host_ms_with / self.host_ms_without - 1


def host_ms(models: list[bytes], image: np.ndarray) -> list[float]:
    """Median milliseconds per invoke of each model, invoked in turn ``INVOKES`` times."""
    interpreters = [tflm_interpreter(m) for m in models]
    times = [[] for _ in models]
    for _ in range(INVOKES):
        for interp, spent in zip(interpreters, times, strict=True):
            interp.set_input(image, 0)
            start = time.perf_counter()
            interp.invoke()
            spent.append(1000 * (time.perf_counter() - start))
    return [float(np.median(t)) for t in times]


def unknown_cost(
    artifact: Path, footprint: Footprint, run_dir: Path, calibration_images: int
) -> UnknownCost:
    """Measure the score's cost in the model file ``artifact`` (its footprint measured)."""
    from herbi.export.api import classifier_int8

    alone, artifact = classifier_int8(run_dir, calibration_images), artifact.read_bytes()
    base = measure(alone)
    details = tflm_interpreter(artifact).get_input_details(0)
    with_score, without = host_ms([artifact, alone], np.zeros(details["shape"], details["dtype"]))
    extra = {k: getattr(footprint, k) - getattr(base, k) for k in EXTRA}
    ops = tuple(op for op in footprint.ops if op not in base.ops)
    return UnknownCost(**extra, ops=ops, host_ms_with=with_score, host_ms_without=without)
