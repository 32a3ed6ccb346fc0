"""The original Keras model: the reference every artifact is compared with, and its own timings.

Both call styles are fed uint8 pixels through the contract's pixel map, so their figures
include the same pixel conversion herbi.runtime's do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from herbi.benchmarks.timing.latency import (
    Budget,
    ColdPhases,
    Timing,
    batch1_and_throughput,
    cold_start_phases,
)
from herbi.common.legacy_keras import use_legacy_keras
from herbi.runtime.contract import float_input


@dataclass(frozen=True)
class Complexity:
    """What the model computes and weighs: multiply-accumulates per image, parameters, bytes of
    float32 weights."""

    macs_per_image: int
    params: int
    weights_bytes: int


@dataclass(frozen=True)
class KerasTiming:
    """Both call styles' figures at one thread count."""

    direct: Timing
    predict: Timing


def reference(model_path: Path, pixels: np.ndarray) -> tuple[np.ndarray, Complexity]:
    """Keras probabilities of ``pixels``, and the model's complexity."""
    from herbi.export.source import load_keras
    from herbi.train.complexity import model_macs
    from herbi.train.evaluate import keras_probs

    model = load_keras(model_path)
    weights = int(sum(w.nbytes for w in model.get_weights()))
    probs = keras_probs(model, pixels)
    return probs, Complexity(model_macs(model), int(model.count_params()), weights)


def _start_tensorflow(threads: int | None):
    """Import tf_keras (Keras 2, as herbi trains with), with ``threads`` for TF's pools."""
    use_legacy_keras()
    import tensorflow as tf
    import tf_keras as keras

    if threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return keras


def _call(model, how: str):
    """``x -> probabilities`` the way a user calls it; predict takes the batch whole."""
    if how == "predict":
        return lambda x: model.predict(float_input(x), batch_size=len(x), verbose=0)
    return lambda x: model(float_input(x), training=False).numpy()


def measure(
    path: str, threads: int, pixels: str, batch: int, latency: Budget, batched: Budget
) -> KerasTiming:
    """Batch-1 latency and large-batch throughput of both call styles at ``threads``."""
    keras = _start_tensorflow(threads)
    model = keras.models.load_model(path, compile=False)
    images = np.load(pixels)
    return KerasTiming(
        *(batch1_and_throughput(_call(model, how), images, batch, latency, batched)
          for how in ("direct", "predict"))
    )  # fmt: skip


def cold(path: str, image: str, how: str) -> ColdPhases:
    """import tf_keras + load_model + one prediction on an image file, in a fresh process."""
    started = time.time()
    keras = _start_tensorflow(None)
    imported = time.time()
    model = keras.models.load_model(path, compile=False)
    loaded = time.time()
    from PIL import Image

    with Image.open(image) as img:
        pixels = np.asarray(img.convert("RGB"))[np.newaxis]
    _call(model, how)(pixels)
    done = time.time()
    return cold_start_phases(started, imported, loaded, done)
