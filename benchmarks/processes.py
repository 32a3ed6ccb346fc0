"""Start worker processes from the benchmark's main process and read back their one JSON line.

Each worker is a fresh interpreter (``sys.executable -m herbi.benchmarks.worker``), never a
fork of this process, so nothing this process has loaded (TensorFlow included) is in it.
Cold start is measured from just before the process is spawned to the moment the worker's
first prediction returns, so it includes the interpreter's own start-up as a user sees it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

TIMEOUT_S = 900


class WorkerError(RuntimeError):
    """A worker failed; the message is its one-line reason."""


def run_worker(spec: dict) -> dict:
    """Run one worker task and return its result (raise :class:`WorkerError` on failure)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "herbi.benchmarks.worker", json.dumps(spec)],
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


def cold_start(spec: dict, repeats: int) -> dict:
    """Median over ``repeats`` fresh processes of spawn -> first prediction, and peak memory."""
    samples = []
    for _ in range(repeats):
        spawned = time.time()
        result = run_worker(spec)
        result["cold_start_ms"] = 1e3 * (result["done_at"] - spawned)
        result["interpreter_start_ms"] = 1e3 * (result["started_at"] - spawned)
        samples.append(result)
    runs_ms = [s["cold_start_ms"] for s in samples]
    chosen = samples[runs_ms.index(statistics.median_low(runs_ms))]
    phases = ("interpreter_start_ms", "import_ms", "load_ms", "first_prediction_ms")
    return {
        "cold_start_ms": chosen["cold_start_ms"],
        "runs_ms": runs_ms,
        **{p: chosen[p] for p in phases},
        "peak_rss_mb": max(s["peak_rss_mb"] for s in samples),
        "tensorflow_imported": any(s["tensorflow_imported"] for s in samples),
    }
