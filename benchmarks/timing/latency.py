"""The timing loop (warm-up, then enough timed calls for stable percentiles), its figures, and
what a worker reports of itself: its peak memory and its cold start's phases.

A call is timed on its own with ``perf_counter_ns`` so one slow call (a page fault, the
scheduler) shows in p99 instead of being averaged away. The loop stops once it has done at
least ``runs`` calls *and* spent at least ``seconds``: fast models get many more samples than
``runs``, slow ones are not held to a sample count they cannot reach in reasonable time.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Budget:
    """How long one figure is measured: untimed warm-up calls, then >= runs and >= seconds."""

    warmup: int
    runs: int
    seconds: float


@dataclass(frozen=True)
class Percentiles:
    """Milliseconds per call: p50 / p90 / p99, mean, min, the sample count and time spent."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    seconds: float


@dataclass(frozen=True)
class Throughput(Percentiles):
    """Calls of ``batch`` images each, and the images per second their median gives."""

    batch: int
    images_per_s: float


@dataclass(frozen=True)
class Overhead:
    """herbi's ``classify`` against the bare engine call, timed in alternation."""

    classify: Percentiles
    bare: Percentiles
    overhead_ms: float
    bare_output_matches: bool


@dataclass(frozen=True)
class Timing:
    """One row's figures at one thread count: a worker's, then the GMAC/s they achieve and,
    once every row has its own, the ratios to Keras."""

    batch1: Percentiles
    throughput: Throughput
    peak_rss_mb: float | None = None  # the artifact worker's (a Keras worker times two rows)
    overhead: Overhead | None = None  # only engines with a bare API to compare with
    gmacs_batch1: float | None = None
    gmacs_large_batch: float | None = None
    speedup_vs_keras: float | None = None
    throughput_ratio_vs_keras: float | None = None

    @classmethod
    def parse(cls, figures: dict, macs: int) -> Timing:
        """A worker's figures (JSON) with the GMAC/s they achieve at batch 1 (from p50) and in
        batches."""
        batch1, throughput = Percentiles(**figures["batch1"]), Throughput(**figures["throughput"])
        over = figures["overhead"]
        if over is not None:
            over = Overhead(Percentiles(**over["classify"]), Percentiles(**over["bare"]),
                            over["overhead_ms"], over["bare_output_matches"])  # fmt: skip
        return cls(batch1, throughput, figures["peak_rss_mb"], over,
                   gmacs_batch1=macs / 1e9 / (batch1.p50_ms / 1e3),
                   gmacs_large_batch=macs / 1e9 * throughput.images_per_s)  # fmt: skip


@dataclass(frozen=True)
class ColdPhases:
    """A fresh worker's clock readings (seconds since the epoch) and phases of its cold start."""

    started_at: float
    done_at: float
    import_ms: float
    load_ms: float
    first_prediction_ms: float
    peak_rss_mb: float


def interleaved(calls: list[Callable[[], object]], budget: Budget) -> list[Percentiles]:
    """Time several calls in turn, one of each per round, so that a busy spell of the machine
    hits them all alike and their difference (herbi's overhead over the bare engine) stays
    meaningful beside other processes. The budget's seconds are shared between them."""
    for _ in range(budget.warmup):
        for call in calls:
            call()
    samples: list[list[int]] = [[] for _ in calls]
    rounds = 0
    stop = time.perf_counter_ns() + int(budget.seconds * 1e9)
    while rounds < budget.runs or time.perf_counter_ns() < stop:
        for call, spent in zip(calls, samples, strict=True):
            start = time.perf_counter_ns()
            call()
            spent.append(time.perf_counter_ns() - start)
        rounds += 1
    return [summary(ns) for ns in samples]


def summary(samples_ns: list[int]) -> Percentiles:
    ms = np.asarray(samples_ns, np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Percentiles(float(p50), float(p90), float(p99), float(ms.mean()), float(ms.min()),
                       len(ms), float(ms.sum() / 1e3))  # fmt: skip


def batch1_and_throughput(
    predict: Callable[[np.ndarray], object],
    pixels: np.ndarray,
    batch: int,
    latency: Budget,
    batched: Budget,
) -> Timing:
    """``predict``'s batch-1 latency on the first image, and its images per second at ``batch``
    images per call (``pixels`` cycled when there are fewer), from the median call time."""
    one, many = pixels[:1], pixels[np.arange(batch) % len(pixels)]
    (batch1,) = interleaved([lambda: predict(one)], latency)
    (timing,) = interleaved([lambda: predict(many)], batched)
    images_per_s = batch / (timing.p50_ms / 1e3)
    return Timing(batch1, Throughput(**asdict(timing), batch=batch, images_per_s=images_per_s))


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


def cold_start_phases(started: float, imported: float, loaded: float, done: float) -> ColdPhases:
    """A worker's cold start phases (import, load, first prediction) and its peak memory."""
    return ColdPhases(started, done, 1e3 * (imported - started), 1e3 * (loaded - imported),
                      1e3 * (done - loaded), peak_rss_mb())  # fmt: skip
