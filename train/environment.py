"""Where a run executes: device, precision, distribution strategy and determinism.

``--strategy mirrored`` falls back to the logical CPU devices without a GPU, which is how the
tests exercise it.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
import tf_keras as keras

from herbi.common.cpu import cpu_info, onednn_cap

# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which it has no bfloat16 kernels: how a machine
# with AVX512-BF16 or AMX reproduces an AVX2-only CPU.
ONEDNN_CAPS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}


def gpus() -> list[str]:
    return [d.name for d in tf.config.list_physical_devices("GPU")]


def make_strategy(name: str) -> tf.distribute.Strategy:
    if name == "mirrored":
        devices = None if gpus() else [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _task() -> tuple[str | None, int, dict]:
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task") or {}
    return task.get("type"), int(task.get("index", 0)), tf_config.get("cluster") or {}


def is_chief() -> bool:
    """Whether this process writes the run folder: yes, except a worker of a multi-worker
    cluster (``TF_CONFIG``) that is not its chief (the ``chief`` task, else worker 0)."""
    kind, index, cluster = _task()
    return kind is None or kind == "chief" or (kind == "worker" and index == 0
                                                and "chief" not in cluster)  # fmt: skip


def worker_name() -> str:
    kind, index, cluster = _task()
    return f"{kind} {index} of {sum(len(v) for v in cluster.values())}"


def seed_everything(seed: int) -> None:
    """Same seed, data and machine -> same weights: seeds Python, numpy and TF, and makes TF's
    kernels deterministic (slightly slower on GPU, free on CPU)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def device_description() -> str:
    found = gpus()
    return f"GPU: {', '.join(found)}" if found else f"CPU: {cpu_info().label()}"


def resolve_precision(choice: str, recipe_allows_bf16: bool) -> tuple[str, str]:
    """``--precision`` -> (``float32`` | ``bfloat16``, the reason written to the manifest).
    ``auto`` takes bfloat16 where it pays: an Ampere or newer GPU, or a CPU with AMX
    (AVX512-BF16 alone was slower than float32: docs/recipes.md)."""
    if choice != "auto":
        return choice, "chosen with --precision"
    if not recipe_allows_bf16:
        return "float32", "auto: the recipe trains in float32"
    found = tf.config.list_physical_devices("GPU")
    if found:
        details = [tf.config.experimental.get_device_details(gpu) for gpu in found]
        fast = all(d.get("compute_capability", (0, 0)) >= (8, 0) for d in details)
        why = "GPU with bfloat16 units" if fast else "GPU older than Ampere"
    elif (cap := onednn_cap()) in ONEDNN_CAPS_WITHOUT_BF16:
        fast, why = False, f"ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN below its bfloat16 kernels"
    else:
        fast = cpu_info().has_amx
        why = f"CPU {'has' if fast else 'lacks'} AMX bfloat16 units"
    return ("bfloat16" if fast else "float32"), f"auto: {why}"
