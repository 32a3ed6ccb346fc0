"""Classifier on every exported artifact (both backends, float and int8): real models, real images.

The artifacts come from ``tiny_artifacts`` (a tiny CNN trained on the real stand-in images and
exported to every registry format), so these tests follow the registry: a new format is
tested here without a change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from herbi.export.formats import FORMATS
from herbi.runtime import Classifier, Prediction, Ranked
from herbi.runtime.image import to_rgb_array

FORMAT_NAMES = list(FORMATS)


def is_int8(clf: Classifier) -> bool:
    return FORMATS[clf.contract.format].int8


@pytest.fixture(scope="module")
def test_images(animals5) -> list[Path]:
    """Two real test images per class of the stand-in set."""
    return [p for d in sorted((animals5 / "test").iterdir()) for p in sorted(d.iterdir())[:2]]


@pytest.fixture(scope="module", params=FORMAT_NAMES)
def clf(request, tiny_artifacts) -> Classifier:
    fmt = FORMATS[request.param]
    return Classifier.load(fmt.model(tiny_artifacts / fmt.filename), 1, fmt.backend)


def test_load_reads_contract(clf, animals5):
    assert clf.labels == sorted(d.name for d in (animals5 / "train").iterdir())
    assert clf.input_size == (32, 32)
    assert clf.contract.format in (clf.path.stem, clf.path.parent.name)  # the file or its folder
    by_suffix = {".tflite": "litert", ".onnx": "onnxruntime"}[clf.path.suffix]
    assert clf.backend.name == (FORMATS[clf.contract.format].backend or by_suffix)


def test_every_input_kind_gives_the_same_prediction(clf, test_images):
    path = test_images[0]
    by_path = clf.classify(path, top_k=3)
    assert isinstance(by_path, Prediction)
    with Image.open(path) as img:
        by_pil = clf.classify(img, top_k=3)
    pixels = to_rgb_array(path)
    assert by_pil == by_path
    assert clf.classify(str(path), top_k=3) == by_path
    assert clf.classify(path.read_bytes(), top_k=3) == by_path
    assert clf.classify(pixels, top_k=3) == by_path
    assert clf.classify([path], top_k=3) == [by_path]
    assert clf.classify(pixels[None], top_k=3) == [by_path]


def test_top_k_is_sorted_and_probabilities_sane(clf, test_images):
    preds = clf.classify(test_images, top_k=10, threshold=None)
    n = len(clf.labels)
    for pred in preds:
        assert len(pred.top_k) == n  # top_k beyond the class count is clipped
        probs = [r.probability for r in pred.top_k]
        assert probs == sorted(probs, reverse=True)
        assert all(0.0 <= p <= 1.0 for p in probs)
        assert abs(sum(probs) - 1.0) < 0.02  # int8 outputs sum to 1 within a few 1/256 steps
        assert pred.top_k[0] == Ranked(pred.label, pred.index, pred.probability)
        assert {r.index for r in pred.top_k} == set(range(n))
        assert all(clf.labels[r.index] == r.label for r in pred.top_k)
    assert len({p.label for p in preds}) >= 2  # a trained model, not one constant answer


def test_batch_equals_one_image_at_a_time(clf, test_images):
    pixels = np.stack([to_rgb_array(p) for p in test_images])
    batch = clf.predict_proba(pixels)
    singles = np.concatenate([clf.predict_proba(pixels[i : i + 1]) for i in range(len(pixels))])
    assert batch.shape == (len(pixels), len(clf.labels)) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    # Batch sizes switch back and forth without stale results.
    np.testing.assert_allclose(clf.predict_proba(pixels[:3]), batch[:3], atol=1e-5)
    assert [p.index for p in clf.classify(list(test_images), threshold=None)] == list(
        batch.argmax(1)
    )
    assert clf.predict_proba(pixels[:0]).shape == (0, len(clf.labels))
    assert clf.classify([]) == []


def test_outputs_are_probabilities_int8_dequantized(clf, test_images):
    probs = clf.predict_proba(np.stack([to_rgb_array(p) for p in test_images]))
    assert probs.dtype == np.float32 and probs.min() >= 0.0 and probs.max() <= 1.0
    assert probs.max() > 0.3
    quant = clf.backend.output_quants[0]
    if quant is None:
        # int8 inside (ONNX QDQ) quantizes the softmax too: sums are off by a few 1/255 steps.
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=0.02 if is_int8(clf) else 1e-4)
        return
    steps = probs / np.float32(quant[0])
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)  # whole steps of the scale
    assert np.unique(np.round(steps)).size > 5


def test_backends_and_quantization_agree(tiny_artifacts, animals5):
    """Same pixels, same contract: both float backends match; int8 mostly agrees with float."""
    from scipy.stats import binom

    files = sorted((animals5 / "test").glob("*/*"))
    pixels = np.stack([to_rgb_array(p) for p in files])
    probs = {
        name: Classifier.load(tiny_artifacts / FORMATS[name].filename).predict_proba(pixels)
        for name in ("tflite-float32", "onnx-float32", "tflite-int8", "onnx-int8")
    }
    np.testing.assert_allclose(probs["tflite-float32"], probs["onnx-float32"], atol=1e-4)
    top = probs["tflite-float32"].argmax(1)
    for name in ("tflite-int8", "onnx-int8"):
        assert (probs[name].argmax(1) == top).mean() >= 0.8, name
    classes = sorted({f.parent.name for f in files})
    labels = np.array([classes.index(f.parent.name) for f in files])
    # Right preprocessing: accuracy clearly above chance (1 in 5). A model guessing at chance
    # reaches this bound on 500 images with probability 0.001 (binomial): 0.256. The tiny model
    # scored 0.35 on 100 of these images on an AVX2 EPYC in float32, the lowest seen: on 500
    # images that is (0.35 - 0.256) / 0.021 = 4.4 standard errors above the bound.
    bound = binom.isf(0.001, len(files), 0.2) / len(files)
    assert (top == labels).mean() > bound
