"""Where a run executes: device, distribution strategy, determinism and provenance.

``--strategy mirrored`` uses TensorFlow's MirroredStrategy over all local GPUs (or all
logical CPU devices when there is no GPU, which is how the tests exercise it);
``--strategy multiworker`` uses MultiWorkerMirroredStrategy configured by ``TF_CONFIG``.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

STRATEGIES = ("default", "mirrored", "multiworker")
PACKAGES = (
    "herbi",
    "tensorflow",
    "tf-keras",
    "tensorflow-model-optimization",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "ai-edge-litert",
    "numpy",
    "scikit-learn",
    "Pillow",
)


def gpus() -> list[str]:
    return [d.name for d in tf.config.list_physical_devices("GPU")]


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        devices = None if gpus() else [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def seed_everything(seed: int) -> None:
    """Same seed, data and machine -> same weights: seeds Python, numpy and TF, and makes TF's
    kernels deterministic (slightly slower on GPU, free on CPU)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description() -> str:
    found = gpus()
    return f"GPU: {', '.join(found)}" if found else f"CPU: {cpu_name()}"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str | None:
    """The commit of herbi's own source, when it runs from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
