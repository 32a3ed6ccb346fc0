"""Batches run as one model call where the graph allows, and correctly where it does not.

Models with a hard-coded batch size (a Reshape to 1 in TFLite, a fixed first dimension in
ONNX) are real graphs built here; their batch results must equal image-at-a-time results.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from herbi.runtime import Classifier, Contract
from herbi.runtime.contract import METADATA_KEY, sha256_file, sidecar_path

LABELS = ["bird", "cat", "deer", "dog", "horse"]
WEIGHTS = np.random.default_rng(0).normal(0, 0.05, (32 * 32 * 3, 5)).astype(np.float32)
PIXELS = np.random.default_rng(1).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)


def one_at_a_time(clf: Classifier) -> np.ndarray:
    return np.concatenate([clf.predict_proba(PIXELS[i : i + 1]) for i in range(len(PIXELS))])


def test_dynamic_batch_runs_as_one_batch(tiny_artifacts):
    clf = Classifier.load(tiny_artifacts / "tflite-int8.tflite")
    probs = clf.predict_proba(PIXELS)
    interpreter = clf.backend._interpreter
    assert interpreter.get_input_details()[0]["shape"][0] == len(PIXELS)  # not a Python loop
    np.testing.assert_array_equal(probs, one_at_a_time(clf))


def fixed_batch_tflite(path: Path) -> Path:
    """A linear classifier whose graph reshapes to batch 1: it cannot take bigger batches."""
    import tensorflow as tf

    weights = tf.constant(WEIGHTS)

    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32)])
    def model(x):
        return tf.nn.softmax(tf.matmul(tf.reshape(x, [1, 32 * 32 * 3]), weights))

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [model.get_concrete_function()], model
    )
    path.write_bytes(converter.convert())
    sidecar_path(path).write_text(Contract(labels=LABELS, sha256=sha256_file(path)).to_json())
    return path


@pytest.mark.slow  # converts a model
def test_tflite_with_a_hard_coded_batch_falls_back_to_slices(tmp_path):
    clf = Classifier.load(fixed_batch_tflite(tmp_path / "fixed.tflite"))
    probs = clf.predict_proba(PIXELS)
    assert probs.shape == (len(PIXELS), 5)
    assert clf.backend._interpreter.get_input_details()[0]["shape"][0] == 1  # put back
    np.testing.assert_allclose(probs, one_at_a_time(clf), atol=1e-6)
    expected = (PIXELS.reshape(len(PIXELS), -1) / 255.0) @ WEIGHTS
    expected = np.exp(expected) / np.exp(expected).sum(1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-5)  # and the numbers are right


def fixed_batch_onnx(path: Path, batch: int) -> Path:
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 32, 32, 3])
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [batch, 5])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [batch, 32 * 32 * 3])
    w = helper.make_tensor("w", TensorProto.FLOAT, list(WEIGHTS.shape), WEIGHTS.ravel())
    nodes = [
        helper.make_node("Reshape", ["image", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(nodes, "fixed", [x], [y], [shape, w])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    proto.metadata_props.add(key=METADATA_KEY, value=Contract(labels=LABELS).to_json())
    onnx.save(proto, path)
    return path


def test_onnx_with_a_fixed_batch_is_run_in_padded_slices(tmp_path):
    clf = Classifier.load(fixed_batch_onnx(tmp_path / "fixed4.onnx", 4))
    probs = clf.predict_proba(PIXELS)  # 7 images: one slice of 4, one padded 3
    assert probs.shape == (len(PIXELS), 5)
    np.testing.assert_allclose(probs, one_at_a_time(clf), atol=1e-6)
