"""Quantization-aware training: fine-tune the trained model with fake-quant ops, then int8.

A short, distilling fine-tune lets the weights adapt to int8 rounding; the result is converted
exactly like post-training int8 (one contract, one runtime path). Why it can be short: its
activation ranges start calibrated and its batch norms frozen (docs/export.md).
"""

from __future__ import annotations

import re

import numpy as np

from herbi.common.errors import ExportError
from herbi.export.to_tflite import convert, int8_converter
from herbi.runtime.contract import float_input

BATCH_SIZE = 64
LEARNING_RATE = 1e-6  # only reproduce the trained model in int8 (docs/export.md)
SEED = 0
# tfmot 0.8's MovingAverageQuantizer hard-codes this decay for the activation ranges of the
# wrapped layers (variables named below). The input's QuantizeLayer uses AllValuesQuantizer
# (running min/max) and weights use LastValueQuantizer: both are exact after one pass.
EMA_DECAY = 0.999
ACTIVATION_RANGE = re.compile(r"/(output|pre_activation|post_activation)_(min|max):")
CALIBRATION_PASSES = 3


def frozen_bn_copy(model):
    """A copy of ``model`` whose BatchNormalization layers always use their moving statistics."""
    import tf_keras as keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for layer in copy.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return copy


def calibrate_ranges(q_model, images: np.ndarray, passes: int = CALIBRATION_PASSES) -> None:
    """Set every activation range variable to its observed min/max on ``images`` (float
    model inputs).

    A training-mode forward pass moves each range by one EMA step, ``new = d*old + (1-d)*r``,
    and sets weight ranges exactly; solving for the batch range ``r`` and assigning it gives
    the calibrated range in one pass. Later passes refine downstream ranges, which were
    observed behind upstream ranges still being set.
    """
    import tensorflow as tf

    ranges = [v for v in q_model.non_trainable_weights if ACTIVATION_RANGE.search(v.name)]
    x = tf.constant(images)
    for _ in range(passes):
        before = [v.numpy() for v in ranges]
        q_model(x, training=True)
        for var, old in zip(ranges, before, strict=True):
            var.assign((var.numpy() - EMA_DECAY * old) / (1.0 - EMA_DECAY))


def quantization_aware(inputs):
    """The QAT-fine-tuned copy of ``inputs.classifier`` (the original is left untouched).

    The fine-tune distils the float model (its own probabilities, not the labels): export's QAT
    exists to reproduce the trained model in int8 (docs/export.md has the measurement).
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)  # same model, same data -> the same QAT artifact
    try:  # tfmot's default 8-bit scheme; the batch norms that cannot fold were rewritten
        q_model = tfmot.quantization.keras.quantize_model(frozen_bn_copy(inputs.classifier))
    except (ValueError, RuntimeError, TypeError) as e:
        raise ExportError(f"tfmot cannot quantize this model ({e})") from None
    calibrate_ranges(q_model, inputs.float_calibration())
    q_model.compile(keras.optimizers.Adam(LEARNING_RATE), "categorical_crossentropy")
    x_tr, x_val = (float_input(x, inputs.scale) for x, _ in (inputs.train, inputs.val))
    teacher_tr = inputs.classifier.predict(x_tr, batch_size=256, verbose=0)
    teacher_val = inputs.classifier.predict(x_val, batch_size=256, verbose=0)
    # Validation (distance to the original) is monitored: an epoch that drifts is rolled back.
    keep_best = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=inputs.qat_epochs, restore_best_weights=True
    )
    q_model.fit(
        x_tr,
        teacher_tr,
        validation_data=(x_val, teacher_val),
        batch_size=BATCH_SIZE,
        epochs=inputs.qat_epochs,
        callbacks=[keep_best],
        verbose=0,
    )
    return q_model


def build_qat_int8(inputs) -> bytes:
    """The QAT classifier with the float model's score head, which the converter calibrates."""
    q_model = inputs.scored(classifier=quantization_aware(inputs))
    return convert(int8_converter(q_model, inputs.float_calibration()))
