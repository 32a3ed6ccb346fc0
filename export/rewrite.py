"""Give every batch norm that cannot fold a form that quantizes like a convolution.

A BatchNormalization right after a linear convolution folds into it at conversion. One after
an activation (the reference CNN's Conv+ReLU -> BN) cannot: TFLite keeps it as an int8 MUL
and ADD with per-tensor constants, and ONNX Runtime's quantizer leaves it in float. At
inference a batch norm is the per-channel affine map ``y = x * s + t`` with
``s = gamma / sqrt(var + eps)`` and ``t = beta - mean * s``, which is exactly a 1x1
DepthwiseConv2D with kernel ``s`` and bias ``t``: the same float function, which converters
and tfmot quantize per channel with an int32 bias, in one op. On the reference CNN trained
on the stand-in data this turned 12 per-tensor MUL/ADD ops into 6 per-channel convolutions.
"""

from __future__ import annotations

import numpy as np


def _rewritable(layer) -> bool:
    """True for a channels-last 4-D batch norm that is not right after a linear Conv2D or
    DepthwiseConv2D (one that is folds into it)."""
    import tf_keras as keras

    if not (
        isinstance(layer, keras.layers.BatchNormalization)
        and list(layer.axis) in ([3], [-1])
        and len(layer.input_shape) == 4
    ):
        return False
    nodes = layer.inbound_nodes
    prev = nodes[0].inbound_layers if len(nodes) == 1 else None  # a list for several inputs
    return not (
        isinstance(prev, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
        and prev.get_config()["activation"] == "linear"
    )


def _depthwise_weights(bn) -> list[np.ndarray]:
    """The batch norm's inference-time scale and shift, per channel, as the kernel and bias of
    a 1x1 DepthwiseConv2D."""
    channels = int(bn.input_shape[-1])
    gamma = bn.gamma.numpy() if bn.scale else np.ones(channels, np.float32)
    beta = bn.beta.numpy() if bn.center else np.zeros(channels, np.float32)
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    shift = beta - bn.moving_mean.numpy() * scale
    return [scale.reshape(1, 1, -1, 1).astype(np.float32), shift.astype(np.float32)]


def affine_batchnorms(model):
    """Return ``(model', rewritten layer names)``: a copy whose unfoldable batch norms are 1x1
    depthwise convolutions; ``model`` itself when there is nothing to rewrite."""
    import tf_keras as keras

    targets = {layer.name for layer in model.layers if _rewritable(layer)}
    if not targets:
        return model, []

    def clone(layer):
        if layer.name in targets:
            return keras.layers.DepthwiseConv2D(1, use_bias=True, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        weights = _depthwise_weights(layer) if layer.name in targets else layer.get_weights()
        copy.get_layer(layer.name).set_weights(weights)
    return copy, sorted(targets)
