"""One measurement in a fresh process: ``python -m herbi.benchmarks.timing.worker '<json spec>'``.

A worker times ONE model at ONE thread count and prints one JSON line: artifact workers never
import TensorFlow, and TensorFlow fixes its thread counts when it starts, hence one process per
setting. ``cold`` workers do only what a device does on first use.
"""

from __future__ import annotations

import json
import sys
import time


def cold_artifact(path: str, image: str, backend: str | None = None) -> dict:
    """import herbi.runtime + Classifier.load + classify(one image file), timed per phase."""
    started = time.time()
    from herbi.runtime import Classifier

    imported = time.time()
    clf = Classifier.load(path, backend=backend)
    loaded = time.time()
    clf.classify(image)
    done = time.time()
    from herbi.benchmarks.timing.latency import (
        cold_start_phases,  # after the clock: numpy is loaded
    )

    return cold_start_phases(started, imported, loaded, done)


def measure_artifact(
    path: str,
    threads: int,
    pixels: str,
    batch: int,
    latency: dict,
    batched: dict,
    backend: str | None = None,
) -> dict:
    """Batch-1 latency, large-batch throughput and herbi's overhead over the bare engine."""
    import numpy as np

    from herbi.benchmarks.timing.bare import bare_call
    from herbi.benchmarks.timing.latency import (
        Budget,
        batch1_and_throughput,
        interleaved,
        peak_rss_mb,
    )
    from herbi.runtime import Classifier
    from herbi.runtime.quantize import input_map

    images = np.load(pixels)
    clf = Classifier.load(path, threads, backend)
    one, single = images[:1], Budget(**latency)
    result = {
        "backend": clf.backend.name,
        **batch1_and_throughput(clf.predict_proba, images, batch, single, Budget(**batched)),
    }
    prepared = input_map(clf.contract.scale, clf.backend.input_dtype, clf.backend.input_quant)(one)
    bare = bare_call(path, threads, clf.backend.name)
    result["peak_rss_mb"] = peak_rss_mb()
    if bare is None:
        return result
    image = one[0]
    pair = interleaved(
        {"classify": lambda: clf.classify(image), "bare": lambda: bare(prepared)}, single
    )
    result["overhead"] = {
        **pair,
        "overhead_ms": pair["classify"]["p50_ms"] - pair["bare"]["p50_ms"],
        "bare_output_matches": all(
            np.array_equal(a, b)
            for a, b in zip(bare(prepared), clf.backend.run(prepared), strict=True)
        ),
    }
    return result


def run(spec: dict) -> dict:
    task = spec.pop("task")
    if task == "artifact":
        return measure_artifact(**spec)
    if task == "cold-artifact":
        return cold_artifact(**spec)
    from herbi.benchmarks.timing import keras_original

    if task == "keras":
        return keras_original.measure(**spec)
    if task == "cold-keras":
        return keras_original.cold(**spec)
    raise ValueError(f"unknown worker task {task!r}")


def main() -> None:
    try:
        result = run(json.loads(sys.argv[1]))
    except Exception as e:  # a worker reports every failure as one line for the report's row
        from herbi.runtime.errors import first_line

        print(json.dumps({"error": f"{type(e).__name__}: {first_line(e)}"}), flush=True)
        sys.exit(1)
    # Every task reports whether TensorFlow got into the process, checked once it is done.
    print(json.dumps({**result, "tensorflow_imported": "tensorflow" in sys.modules}), flush=True)


if __name__ == "__main__":
    main()
