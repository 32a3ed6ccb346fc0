"""Worker processes: started from the benchmark's main process, their one JSON line read back typed.

Each worker is a fresh interpreter, never a fork, so nothing this process has loaded (TensorFlow
included) is in it; a cold start therefore includes the interpreter's start-up as a user sees it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from herbi.common.errors import BenchError

TIMEOUT_S = 900


class WorkerError(BenchError):
    """A worker failed; the message is its one-line reason."""


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


@dataclass
class Timing:
    """One row's figures at one thread count; the ratios to Keras come once every row has its own."""

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
        """A worker's figures with the GMAC/s they achieve at batch 1 (from p50) and in batches."""
        batch1, throughput = Percentiles(**figures["batch1"]), Throughput(**figures["throughput"])
        over = figures.get("overhead")
        if over is not None:
            over = Overhead(
                Percentiles(**over["classify"]),
                Percentiles(**over["bare"]),
                over["overhead_ms"],
                over["bare_output_matches"],
            )
        return cls(
            batch1,
            throughput,
            figures.get("peak_rss_mb"),
            over,
            gmacs_batch1=macs / 1e9 / (batch1.p50_ms / 1e3),
            gmacs_large_batch=macs / 1e9 * throughput.images_per_s,
        )


@dataclass(frozen=True)
class ColdStart:
    """The median of fresh processes' spawn -> first prediction, its phases, peak memory."""

    cold_start_ms: float
    runs_ms: list[float]
    interpreter_start_ms: float
    import_ms: float
    load_ms: float
    first_prediction_ms: float
    peak_rss_mb: float
    tensorflow_imported: bool


def run_worker(spec: dict) -> dict:
    """Run one worker task and return its result (raise :class:`WorkerError` on failure)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "herbi.benchmarks.timing.worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise WorkerError(f"{spec['task']} worker ran over {TIMEOUT_S} s") from None
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise WorkerError(f"worker exited with status {done.returncode}: {tail}") from None
    if "error" in result:
        raise WorkerError(result["error"])
    return result


def cold_start(spec: dict, repeats: int) -> ColdStart:
    """Median over ``repeats`` fresh processes of spawn -> first prediction, and peak memory."""
    runs = []
    for _ in range(repeats):
        spawned = time.time()
        runs.append((spawned, run_worker(spec)))
    runs_ms = [1e3 * (result["done_at"] - spawned) for spawned, result in runs]
    median = runs_ms.index(statistics.median_low(runs_ms))
    spawned, chosen = runs[median]
    return ColdStart(
        cold_start_ms=runs_ms[median],
        runs_ms=runs_ms,
        interpreter_start_ms=1e3 * (chosen["started_at"] - spawned),
        import_ms=chosen["import_ms"],
        load_ms=chosen["load_ms"],
        first_prediction_ms=chosen["first_prediction_ms"],
        peak_rss_mb=max(result["peak_rss_mb"] for _, result in runs),
        tensorflow_imported=any(result["tensorflow_imported"] for _, result in runs),
    )
