"""Models the runtime must refuse with a clear message naming the file, and bad call arguments.

Damaged artifacts are made from real exported ones; the "model of another task" is a real
ONNX graph built with onnx.helper, carrying a valid herbi contract for 32x32 images.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from herbi.runtime import Classifier, Contract, ContractError, ImageError, ModelError
from herbi.runtime.contract import METADATA_KEY, sha256_file, sidecar_path

LABELS = ["bird", "cat", "deer", "dog", "horse"]


def copy_artifact(tiny_artifacts: Path, name: str, dest: Path) -> Path:
    """Copy a model (and its sidecar, if any) into ``dest``."""
    src = tiny_artifacts / name
    shutil.copy(src, dest / name)
    if sidecar_path(src).is_file():
        shutil.copy(sidecar_path(src), sidecar_path(dest / name))
    return dest / name


def rewrite_sidecar(model: Path) -> None:
    """Make the sidecar vouch for the model's current bytes, whatever they are."""
    contract = Contract.from_json(sidecar_path(model).read_text(), "sidecar")
    sidecar_path(model).write_text(replace(contract, sha256=sha256_file(model)).to_json())


def load_error(path: Path, kind: type[Exception] = ValueError) -> str:
    with pytest.raises(kind) as info:
        Classifier.load(path)
    message = str(info.value)
    assert path.stem in message  # every model error names the file (or its sidecar)
    return message


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_tflite_fails_its_sha256(tiny_artifacts, tmp_path, keep):
    model = copy_artifact(tiny_artifacts, "tflite-int8.tflite", tmp_path)
    data = model.read_bytes()
    model.write_bytes(data[: int(len(data) * keep)])
    assert "corrupt or truncated" in load_error(model, ContractError)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "bitflips"])
def test_damaged_tflite_with_a_matching_sidecar_is_refused_by_the_interpreter(
    tiny_artifacts, tmp_path, damage
):
    model = copy_artifact(tiny_artifacts, "tflite-float32.tflite", tmp_path)
    data = bytearray(model.read_bytes())
    rng = np.random.default_rng(0)
    if damage == "truncated":
        data = data[: len(data) // 3]
    elif damage == "garbage":
        data = bytearray(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    else:
        for i in range(8):  # root table offset and the "TFL3" file identifier
            data[i] ^= 0xFF
    model.write_bytes(bytes(data))
    rewrite_sidecar(model)
    assert "not a valid TFLite model" in load_error(model, ModelError)


def test_sidecar_of_another_model_is_refused(tiny_artifacts, tmp_path):
    model = copy_artifact(tiny_artifacts, "tflite-float32.tflite", tmp_path)
    shutil.copy(sidecar_path(tiny_artifacts / "tflite-int8.tflite"), sidecar_path(model))
    assert "belongs to another model" in load_error(model, ContractError)


def test_missing_or_malformed_sidecar(tiny_artifacts, tmp_path):
    model = copy_artifact(tiny_artifacts, "tflite-int8.tflite", tmp_path)
    sidecar_path(model).write_text('{"schema": "herbi.contract/1", "labels": []}')
    assert "no list of labels" in load_error(model, ContractError)
    sidecar_path(model).write_text("{not json")
    with pytest.raises(ContractError, match="not valid JSON"):
        Classifier.load(model)
    sidecar_path(model).unlink()
    assert "no contract sidecar" in load_error(model, ContractError)


def test_onnx_without_or_with_bad_metadata(tiny_artifacts, tmp_path):
    proto = onnx.load(tiny_artifacts / "onnx-float32.onnx")
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, bare)
    assert "no herbi metadata" in load_error(bare, ContractError)
    proto.metadata_props.add(key=METADATA_KEY, value='{"schema": "other/2"}')
    onnx.save(proto, bare)
    assert "not a herbi contract" in load_error(bare, ContractError)


@pytest.mark.parametrize("name", ["onnx-float32.onnx", "onnx-int8.onnx"])
def test_truncated_or_garbage_onnx(tiny_artifacts, tmp_path, name):
    model = copy_artifact(tiny_artifacts, name, tmp_path)
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    assert "not a valid ONNX model" in load_error(model, ModelError)
    model.write_bytes(np.random.default_rng(1).integers(0, 256, 3000, np.uint8).tobytes())
    assert "not a valid ONNX model" in load_error(model, ModelError)


def other_task_onnx(path: Path, input_shape: list, classes: int, axes=(1, 2)) -> Path:
    """A real, runnable ONNX classifier (mean colour -> linear -> softmax) for other inputs."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape)
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes])
    weights = helper.make_tensor(
        "w", TensorProto.FLOAT, [3, classes], np.ones(3 * classes, np.float32)
    )
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=list(axes), keepdims=0),
        helper.make_node("MatMul", ["mean", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"]),
    ]
    graph = helper.make_graph(nodes, "other_task", [x], [y], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.metadata_props.add(key=METADATA_KEY, value=Contract(labels=LABELS).to_json())
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_model_of_another_task_is_refused(tmp_path):
    ok = other_task_onnx(tmp_path / "fits.onnx", ["N", 32, 32, 3], 5)
    assert Classifier.load(ok).classify(np.zeros((32, 32, 3), np.uint8)).label == "bird"
    wide = other_task_onnx(tmp_path / "wide.onnx", ["N", 64, 64, 3], 5)
    assert "another task" in load_error(wide, ModelError)
    nchw = other_task_onnx(tmp_path / "nchw.onnx", ["N", 3, 32, 32], 5, axes=(2, 3))
    assert "another task" in load_error(nchw, ModelError)
    many = other_task_onnx(tmp_path / "many.onnx", ["N", 32, 32, 3], 10)
    assert "5 labels" in load_error(many, ModelError)


def test_unusable_paths(tmp_path):
    (tmp_path / "empty.tflite").write_bytes(b"")
    assert "empty" in load_error(tmp_path / "empty.tflite", ModelError)
    assert "no such model file" in load_error(tmp_path / "missing.onnx", ModelError)
    (tmp_path / "gated.tflite.rejected").write_bytes(b"x")
    assert "rejected by herbi-export" in load_error(tmp_path / "gated.tflite", ModelError)
    (tmp_path / "dir.onnx").mkdir()
    assert "folder" in load_error(tmp_path / "dir.onnx", ModelError)
    (tmp_path / "model.pb").write_bytes(b"x")
    assert "unknown model type" in load_error(tmp_path / "model.pb", ModelError)


@pytest.fixture(scope="module")
def clf(tiny_artifacts) -> Classifier:
    return Classifier.load(tiny_artifacts / "tflite-int8.tflite")


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", True])
def test_bad_thread_counts(tiny_artifacts, threads):
    with pytest.raises(ValueError, match="threads"):
        Classifier.load(tiny_artifacts / "onnx-float32.onnx", threads=threads)


@pytest.mark.parametrize("top_k", [0, -3, 2.0, None])
def test_bad_top_k(clf, top_k):
    with pytest.raises(ValueError, match="top_k"):
        clf.classify(np.zeros((32, 32, 3), np.uint8), top_k=top_k)


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((1, 32, 32, 3), np.float32),
        np.zeros((32, 32, 3), np.uint8),
        np.zeros((1, 64, 64, 3), np.uint8),
        np.zeros((1, 32, 32, 4), np.uint8),
        [[0] * 3] * 4,
    ],
)
def test_predict_proba_takes_only_model_sized_uint8_batches(clf, pixels):
    with pytest.raises(ImageError, match=r"expected uint8 of shape \(N, 32, 32, 3\)"):
        clf.predict_proba(pixels)


def test_bad_items_in_a_batch_are_named(clf, tmp_path):
    good = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ImageError, match=r"images\[1\]: array of dtype float64"):
        clf.classify([good, np.full((32, 32, 3), np.nan)])
    with pytest.raises(ImageError, match=r"nope\.jpg"):
        clf.classify([good, tmp_path / "nope.jpg"])
    with pytest.raises(ImageError, match="batch array of dtype float32"):
        clf.classify(np.zeros((2, 32, 32, 3), np.float32))
    # A 4-D uint8 batch of another image size is resized image by image.
    assert len(clf.classify(np.zeros((2, 8, 8, 3), np.uint8))) == 2
