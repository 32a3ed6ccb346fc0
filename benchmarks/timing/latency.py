"""The timing loop (warm-up, then enough timed calls for stable percentiles), and what a worker
reports of itself: its peak memory and its cold start's phases.

A call is timed on its own with ``perf_counter_ns`` so one slow call (a page fault, the
scheduler) shows in p99 instead of being averaged away. The loop stops once it has done at
least ``runs`` calls *and* spent at least ``seconds``: fast models get many more samples than
``runs``, slow ones are not held to a sample count they cannot reach in reasonable time.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Budget:
    """How long one figure is measured: untimed warm-up calls, then >= runs and >= seconds."""

    warmup: int
    runs: int
    seconds: float


def interleaved(calls: dict[str, Callable[[], object]], budget: Budget) -> dict[str, dict]:
    """Time several calls in turn, one of each per round, so that a busy spell of the machine
    hits them all alike and their difference (herbi's overhead over the bare engine) stays
    meaningful beside other processes. The budget's seconds are shared between them."""
    for _ in range(budget.warmup):
        for call in calls.values():
            call()
    samples: dict[str, list[int]] = {name: [] for name in calls}
    rounds = 0
    stop = time.perf_counter_ns() + int(budget.seconds * 1e9)
    while rounds < budget.runs or time.perf_counter_ns() < stop:
        for name, call in calls.items():
            start = time.perf_counter_ns()
            call()
            samples[name].append(time.perf_counter_ns() - start)
        rounds += 1
    return {name: summary(ns) for name, ns in samples.items()}


def timeit(call: Callable[[], object], budget: Budget) -> dict:
    """Milliseconds per call of ``call``: p50 / p90 / p99, mean, min and the sample count."""
    return interleaved({"call": call}, budget)["call"]


def summary(samples_ns: list[int]) -> dict:
    ms = np.asarray(samples_ns, np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "runs": len(ms),
        "seconds": float(ms.sum() / 1e3),
    }


def batch1_and_throughput(
    predict: Callable[[np.ndarray], object],
    pixels: np.ndarray,
    batch: int,
    latency: Budget,
    batched: Budget,
) -> dict:
    """``predict``'s batch-1 latency on the first image, and its images per second at ``batch``
    images per call (``pixels`` cycled when there are fewer), from the median call time."""
    one, many = pixels[:1], pixels[np.arange(batch) % len(pixels)]
    batch1 = timeit(lambda: predict(one), latency)
    timing = timeit(lambda: predict(many), batched)
    images_per_s = batch / (timing["p50_ms"] / 1e3)
    return {
        "batch1": batch1,
        "throughput": {"batch": batch, "images_per_s": images_per_s, **timing},
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux's ``VmHWM`` belongs to this process's own memory map. ``ru_maxrss`` is the fallback
    only: Linux carries the parent's high-water mark over fork + exec into it, so a worker
    started by a benchmark holding TensorFlow would report TensorFlow's footprint.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cold_start_phases(started: float, imported: float, loaded: float, done: float) -> dict:
    """A worker's cold start phases (import, load, first prediction) and its peak memory."""
    return {
        "started_at": started,
        "done_at": done,
        "import_ms": 1e3 * (imported - started),
        "load_ms": 1e3 * (loaded - imported),
        "first_prediction_ms": 1e3 * (done - loaded),
        "peak_rss_mb": peak_rss_mb(),
    }
