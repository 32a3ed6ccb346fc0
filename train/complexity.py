"""Parameters and multiply-accumulates per image of a Keras model, for the edge budget.

MACs count the layers that dominate inference: Conv2D (k*k*Cin/groups*Cout per output
pixel), DepthwiseConv2D (k*k*multiplier per output pixel and channel), SeparableConv2D (both
parts) and Dense (in*out). BatchNormalization folds into the convolution before it at
export, and activations, pooling and additions cost next to nothing, so they count 0. The
reference CNN: 357,413 parameters and 38,701,568 MACs (38.7M) per 32x32 image.
"""

from __future__ import annotations

import numpy as np
import tf_keras as keras
from tf_keras import layers


def _pixels(layer: keras.layers.Layer) -> int:
    shape = layer.output_shape
    return int(np.prod(shape[1:-1]))


def layer_macs(layer: keras.layers.Layer) -> int:
    if isinstance(layer, keras.Model):
        return model_macs(layer)
    if isinstance(layer, layers.SeparableConv2D):
        k, cin = int(np.prod(layer.kernel_size)), int(layer.input_shape[-1])
        return _pixels(layer) * (
            k * cin * layer.depth_multiplier + cin * layer.depth_multiplier * layer.filters
        )
    if isinstance(layer, layers.DepthwiseConv2D):
        k, cin = int(np.prod(layer.kernel_size)), int(layer.input_shape[-1])
        return _pixels(layer) * k * cin * layer.depth_multiplier
    if isinstance(layer, layers.Conv2D):
        k, cin = int(np.prod(layer.kernel_size)), int(layer.input_shape[-1])
        return _pixels(layer) * k * cin // layer.groups * layer.filters
    if isinstance(layer, layers.Dense):
        return (
            int(layer.input_shape[-1]) * layer.units * int(np.prod(layer.input_shape[1:-1] or [1]))
        )
    return 0


def model_macs(model: keras.Model) -> int:
    """Multiply-accumulates for one image through ``model`` (nested models included)."""
    return sum(layer_macs(layer) for layer in model.layers)
