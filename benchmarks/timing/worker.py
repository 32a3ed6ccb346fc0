"""One measurement in a fresh process: ``python -m herbi.benchmarks.timing.worker '<json spec>'``.

A worker times ONE model at ONE thread count and prints one JSON line: artifact workers never
import TensorFlow, and TensorFlow fixes its thread counts when it starts, hence one process per
setting. ``cold`` workers do only what a device does on first use.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by the tasks, after a cold start's clock has started
    from herbi.benchmarks.timing.latency import Budget, ColdPhases, Timing


@dataclass(frozen=True)
class ArtifactTiming:
    """An artifact's figures and the engine herbi.runtime chose for it."""

    backend: str
    timing: Timing


def cold_artifact(path: str, image: str, backend: str | None = None) -> ColdPhases:
    """import herbi.runtime + Classifier.load + classify(one image file), timed per phase."""
    started = time.time()
    from herbi.runtime import Classifier

    imported = time.time()
    clf = Classifier.load(path, backend=backend)
    loaded = time.time()
    clf.classify(image)
    done = time.time()
    from herbi.benchmarks.timing.latency import cold_start_phases  # numpy is loaded by now

    return cold_start_phases(started, imported, loaded, done)


def measure_artifact(
    path: str,
    threads: int,
    pixels: str,
    batch: int,
    latency: Budget,
    batched: Budget,
    backend: str | None = None,
) -> ArtifactTiming:
    """Batch-1 latency, large-batch throughput and herbi's overhead over the bare engine."""
    import numpy as np

    from herbi.benchmarks.timing.bare import overhead
    from herbi.benchmarks.timing.latency import batch1_and_throughput, peak_rss_mb
    from herbi.runtime import Classifier

    images = np.load(pixels)
    clf = Classifier.load(path, threads, backend)
    timing = batch1_and_throughput(clf.predict_proba, images, batch, latency, batched)
    over = overhead(clf, images[:1], path, threads, latency)
    return ArtifactTiming(
        clf.backend.name, replace(timing, peak_rss_mb=peak_rss_mb(), overhead=over)
    )


def run(task: str, **spec) -> object:
    """The task's figures, a record that goes out as JSON."""
    if task == "cold-artifact":
        return cold_artifact(**spec)
    from herbi.benchmarks.timing.latency import Budget

    for budget in ("latency", "batched"):
        if budget in spec:
            spec[budget] = Budget(**spec[budget])
    if task == "artifact":
        return measure_artifact(**spec)
    from herbi.benchmarks.timing import keras_original

    if task == "keras":
        return keras_original.measure(**spec)
    if task == "cold-keras":
        return keras_original.cold(**spec)
    raise ValueError(f"unknown worker task {task!r}")


def main() -> None:
    try:
        result = asdict(run(**json.loads(sys.argv[1])))
    except Exception as e:  # a worker reports every failure as one line for the report's row
        from herbi.runtime.errors import first_line

        print(json.dumps({"error": f"{type(e).__name__}: {first_line(e)}"}), flush=True)
        sys.exit(1)
    # Every task reports whether TensorFlow got into the process, checked once it is done.
    print(json.dumps({**result, "tensorflow_imported": "tensorflow" in sys.modules}), flush=True)


if __name__ == "__main__":
    main()
