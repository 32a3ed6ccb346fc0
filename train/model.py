"""The reference study's CNN, layer for layer (input: float32 images in [0, 1], NHWC)."""

from __future__ import annotations

import tf_keras as keras
from tf_keras import layers

INPUT_SHAPE = (32, 32, 3)


def reference_cnn(num_classes: int = 5, bn_momentum: float = 0.99) -> keras.Model:
    """Build the study's CNN; ``bn_momentum`` is Keras' default except in second-long tests."""
    model = keras.Sequential(name="reference_cnn")
    model.add(keras.Input(INPUT_SHAPE, name="image"))
    for filters, dropout in ((32, 0.25), (64, 0.3), (128, 0.35)):
        for _ in range(2):
            model.add(layers.Conv2D(filters, 3, padding="same", activation="relu"))
            model.add(layers.BatchNormalization(momentum=bn_momentum))
        model.add(layers.MaxPooling2D())
        model.add(layers.Dropout(dropout))
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dense(512, activation="relu"))
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(num_classes, activation="softmax", name="probabilities"))
    return model
