"""Property-based tests: thousands of random inputs, and the only outcomes allowed are a
correct result or a clear ValueError subclass (ImageError, ModelError). No crash, no hang.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from herbi.runtime import Classifier, ImageError, Prediction
from herbi.runtime.image import to_rgb_array

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def decode_or_refuse(data) -> None:
    try:
        pixels = to_rgb_array(data)
    except ImageError as e:
        assert str(e)  # a message, never an empty error
        return
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


@settings(FUZZ, max_examples=1500)
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    decode_or_refuse(data)


def seed_images() -> list[bytes]:
    """Small valid files in every format the decoder parses, to be damaged below."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    files = []
    for img, fmt in [
        (rgb, "PNG"),
        (rgb, "JPEG"),
        (rgb.convert("P"), "GIF"),
        (rgb, "BMP"),
        (rgb, "WEBP"),
        (rgb.convert("RGBA"), "PNG"),
        (Image.fromarray(rng.integers(0, 65535, (9, 7), dtype=np.uint16)), "PNG"),
    ]:
        buf = io.BytesIO()
        img.save(buf, fmt)
        files.append(buf.getvalue())
    return files


SEEDS = seed_images()


@settings(FUZZ, max_examples=1200)
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_damaged_real_images(seed, edits, cut):
    data = bytearray(SEEDS[seed])
    for pos, value in edits:
        data[pos % len(data)] = value
    decode_or_refuse(bytes(data[:cut]))


@settings(FUZZ, max_examples=300)
@given(st.text(max_size=40))
def test_random_paths(text):
    decode_or_refuse(text)


@pytest.fixture(scope="module")
def clf(tiny_artifacts) -> Classifier:
    return Classifier.load(tiny_artifacts / "tflite-int8.tflite", threads=1)


DTYPES = [np.uint8, np.int8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64]
SHAPES = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5),  # odd ranks and sizes
    st.tuples(st.integers(0, 40), st.integers(0, 40)),  # grayscale-like
    st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 5)),  # H x W x channels
    st.tuples(  # batches: model-sized or not, any channel count
        st.integers(0, 3), st.sampled_from([32, 7, 1]), st.sampled_from([32, 5]), st.integers(1, 4)
    ),
)
ARRAYS = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(
        dtype,
        SHAPES,
        elements=hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True)
        if np.dtype(dtype).kind == "f"
        else None,
    )
)


def is_image_array(a: np.ndarray) -> bool:
    channels_ok = a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))
    return a.dtype == np.uint8 and channels_ok and a.shape[0] > 0 and a.shape[1] > 0


@settings(FUZZ, max_examples=900)
@given(ARRAYS, st.booleans())
def test_random_arrays_to_classify(clf, array, as_list):
    batch = as_list or array.ndim == 4
    items = [array] if as_list else list(array) if array.ndim == 4 else [array]
    valid = all(is_image_array(a) for a in items) and (array.ndim != 4 or array.dtype == np.uint8)
    try:
        result = clf.classify([array] if as_list else array, top_k=2)
    except ValueError as e:  # ImageError and ModelError are ValueErrors
        assert not valid, f"a valid image array was refused: {e}"
        assert str(e)
        return
    assert valid, f"accepted {array.dtype} {array.shape}"
    preds = result if batch else [result]
    assert len(preds) == len(items)
    assert all(isinstance(p, Prediction) and 0 <= p.probability <= 1 for p in preds)


@settings(FUZZ, max_examples=400)
@given(ARRAYS)
def test_random_arrays_to_predict_proba(clf, array):
    valid = array.dtype == np.uint8 and array.ndim == 4 and array.shape[1:] == (32, 32, 3)
    try:
        probs = clf.predict_proba(array)
    except ImageError:
        assert not valid
        return
    assert valid and probs.shape == (len(array), 5)
