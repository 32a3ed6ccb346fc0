"""The unknown score as layers on top of the classifier, so every artifact computes its own.

A herbi artifact has two outputs: the class probabilities and one score per image, higher for
images more like the training classes (``herbi.runtime.unknown`` reads it). The score is part
of the graph, so LiteRT, ONNX Runtime, TFLite Micro and the browser each compute it with their
own kernels, in int8 where the model is int8, and no runtime needs code of its own for it.

Scores (``SCORES``), all cheap on a microcontroller (docs/openset.md has the measurements):
- ``msp``: the largest class probability (Hendrycks and Gimpel, ICLR 2017);
- ``maxlogit``: the largest logit (Hendrycks et al., ICML 2022);
- ``cos_proto``: cosine similarity of the penultimate features to the nearest class mean of
  the training images' features (the means travel in the model as a 1x1 layer's weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

from herbi.common.errors import HerbiError
from herbi.common.far_ood import far_ood
from herbi.runtime.contract import PIXEL_SCALE, float_input
from herbi.runtime.unknown import SCORES, conformal_threshold
from herbi.train.data import Dataset

OUTPUT_NAME = "unknown_score"  # the second output's name where a format keeps names (ONNX)


@dataclass(frozen=True)
class ScoreHead:
    """What a score needs besides the classifier: the last layer's weights (``maxlogit``) or
    the unit-length class means of the train features (``cos_proto``), as float32 arrays."""

    score: str
    weights: tuple[np.ndarray, ...] = ()


def features_model(model: keras.Model) -> keras.Model:
    """The classifier up to its last layer's input: the penultimate features."""
    return keras.Model(model.input, model.layers[-1].input)


def fit_head(
    model: keras.Model, score: str, pixels: np.ndarray, labels: np.ndarray, scale: float
) -> ScoreHead:
    """The head for ``score`` from the trained classifier and its (un-augmented) train images."""
    if score not in SCORES:
        raise HerbiError(f"--score {score}: unknown (choose {', '.join(SCORES)})")
    if score == "msp":
        return ScoreHead(score)
    if score == "maxlogit":
        kernel, bias = model.layers[-1].get_weights()[:2]
        return ScoreHead(score, (kernel, bias))
    feats = features_model(model).predict(float_input(pixels, scale), batch_size=256, verbose=0)
    feats = feats.astype(np.float64)
    means = np.stack([feats[labels == c].mean(0) for c in range(int(labels.max()) + 1)])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    return ScoreHead(score, (means.T.astype(np.float32),))


def with_score(model: keras.Model, head: ScoreHead, onnx: bool = False) -> keras.Model:
    """``model`` with the score as a second output, ``(N, 1)`` float32.

    Its layers are named ``unknown_*`` (a graph census can tell them from the classifier's).
    TFLite and TFLite Micro get the unit normalization as one int8 L2_NORMALIZATION op and the
    maximum as REDUCE_MAX; ``onnx`` builds the same numbers from ops NNAPI takes and ONNX
    Runtime fuses (mean of squares, square root, division, a max-pool over the classes).
    """
    features = model.layers[-1].input
    if head.score == "msp":
        per_class = model.output
    elif head.score == "maxlogit":
        per_class = dense_layer(head.weights, features, "unknown_logits")
    elif onnx:
        unit = layers.Lambda(portable_unit, name="unknown_unit", dtype="float32")(features)
        dim = head.weights[0].shape[0]  # the mean of squares is the squared norm / dim
        per_class = dense_layer((head.weights[0] / np.sqrt(dim),), unit, "unknown_cosines")
    else:
        unit = layers.UnitNormalization(name="unknown_unit", dtype="float32")(features)
        per_class = dense_layer(head.weights, unit, "unknown_cosines")
    if onnx:
        pooled = layers.MaxPooling1D(per_class.shape[-1], name="unknown_max", dtype="float32")(
            layers.Reshape((-1, 1), name="unknown_column", dtype="float32")(per_class)
        )
        score = layers.Flatten(name=OUTPUT_NAME, dtype="float32")(pooled)
    else:
        score = layers.Lambda(
            lambda x: tf.reduce_max(x, axis=-1, keepdims=True), name=OUTPUT_NAME, dtype="float32"
        )(per_class)
    return keras.Model(model.input, [model.output, score], name=f"{model.name}_{head.score}")


def portable_unit(x: tf.Tensor) -> tf.Tensor:
    """``x`` scaled to length ``sqrt(dim)``: the ops of an L2 normalization NNAPI supports."""
    return x / tf.sqrt(tf.maximum(tf.reduce_mean(x * x, axis=-1, keepdims=True), 1e-12))


def dense_layer(weights: tuple[np.ndarray, ...], x: tf.Tensor, name: str) -> tf.Tensor:
    """A float32 Dense layer with the given kernel (and bias), applied to ``x``."""
    dense = layers.Dense(weights[0].shape[1], use_bias=len(weights) > 1, name=name, dtype="float32")
    out = dense(x)
    dense.set_weights(list(weights))
    return out


def scores(model: keras.Model, head: ScoreHead, pixels: np.ndarray, scale: float) -> np.ndarray:
    """The float model's scores ``(N,)`` for uint8 ``pixels``."""
    out = with_score(model, head).predict(float_input(pixels, scale), batch_size=256, verbose=0)
    return out[1][:, 0].astype(np.float64)


@dataclass(frozen=True)
class Calibration:
    """The float model's unknown answer, as the run report states it: the threshold chosen on
    the validation images at ``keep``, the share of test images of the known classes it keeps,
    and the share of generated far-out-of-distribution images (``herbi.common.far_ood``) it
    rejects. Each artifact's own threshold is set again by herbi-export, through its runtime."""

    score: str
    keep: float
    threshold: float
    val_images: int
    test_kept: float
    far_ood_rejected: float
    far_ood_images: int


def calibrate(model: keras.Model, ds: Dataset, score: str, keep: float) -> Calibration:
    """Fit the score's head on the train images and choose the threshold on validation."""
    head = fit_head(model, score, ds.x_train, ds.y_train, PIXEL_SCALE)
    threshold = conformal_threshold(scores(model, head, ds.x_val, PIXEL_SCALE), keep)
    unknowns = far_ood(size=ds.x_train.shape[1:3])
    kept = float((scores(model, head, ds.x_test, PIXEL_SCALE) >= threshold).mean())
    rejected = float((scores(model, head, unknowns, PIXEL_SCALE) < threshold).mean())
    return Calibration(score, keep, threshold, len(ds.x_val), kept, rejected, len(unknowns))
