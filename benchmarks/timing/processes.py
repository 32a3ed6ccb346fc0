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


def run_worker(task: str, **spec: object) -> dict:
    """Run one worker task (:func:`herbi.benchmarks.timing.worker.run`'s arguments) and return
    its JSON line (raise :class:`WorkerError` on failure)."""
    spec_line = json.dumps({"task": task, **spec})
    command = [sys.executable, "-m", "herbi.benchmarks.timing.worker", spec_line]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise WorkerError(f"{task} worker ran over {TIMEOUT_S} s") from None
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise WorkerError(f"worker exited with status {done.returncode}: {tail}") from None
    if "error" in result:
        raise WorkerError(result["error"])
    return result


def cold_start(repeats: int, task: str, **spec: object) -> ColdStart:
    """Median over ``repeats`` fresh processes of spawn -> first prediction, and peak memory."""
    runs = []
    for _ in range(repeats):
        spawned = time.time()
        runs.append((spawned, run_worker(task, **spec)))
    runs_ms = [1e3 * (result["done_at"] - spawned) for spawned, result in runs]
    median = runs_ms.index(statistics.median_low(runs_ms))
    spawned, chosen = runs[median]
    return ColdStart(
        cold_start_ms=runs_ms[median],
        runs_ms=runs_ms,
        interpreter_start_ms=1e3 * (chosen["started_at"] - spawned),
        **{phase: chosen[phase] for phase in ("import_ms", "load_ms", "first_prediction_ms")},
        peak_rss_mb=max(result["peak_rss_mb"] for _, result in runs),
        tensorflow_imported=any(result["tensorflow_imported"] for _, result in runs),
    )
