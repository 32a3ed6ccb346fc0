"""Multiply-accumulates per image of a Keras model, for the edge budget.

Only convolutions and Dense layers count: BatchNormalization folds into the convolution before
it at export, and activations, pooling and additions cost next to nothing.
"""

from __future__ import annotations

import numpy as np
import tf_keras as keras
from tf_keras import layers


def layer_macs(layer: keras.layers.Layer) -> int:
    if isinstance(layer, keras.Model):
        return model_macs(layer)
    if isinstance(layer, layers.Dense):
        return int(np.prod(layer.input_shape[1:])) * layer.units
    if not isinstance(layer, layers.Conv2D | layers.DepthwiseConv2D | layers.SeparableConv2D):
        return 0
    k, cin = int(np.prod(layer.kernel_size)), int(layer.input_shape[-1])
    pixels = int(np.prod(layer.output_shape[1:-1]))
    if isinstance(layer, layers.SeparableConv2D):  # depthwise, then pointwise
        return pixels * cin * layer.depth_multiplier * (k + layer.filters)
    if isinstance(layer, layers.DepthwiseConv2D):
        return pixels * k * cin * layer.depth_multiplier
    return pixels * k * cin // layer.groups * layer.filters


def model_macs(model: keras.Model) -> int:
    """Multiply-accumulates for one image through ``model`` (nested models included)."""
    return sum(layer_macs(layer) for layer in model.layers)
