"""The fast recipe: its network fits the edge budget with int8-friendly layers only, and a
few smoke-preset steps through ``herbi-train --recipe fast`` give a complete run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import herbi.train  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from herbi.train.cli import main

MAX_PARAMS = 400_000
MAX_MACS = 40_000_000


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory, animals5):
    out = tmp_path_factory.mktemp("runs") / "fast-smoke"
    args = ["--recipe", "fast", "--preset", "smoke", "--seed", "3", "--out", str(out)]
    result = CliRunner().invoke(main, ["--data", str(animals5), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_fast_net_fits_the_edge_budget_with_int8_friendly_layers():
    from tf_keras import layers

    from herbi.train.complexity import model_macs
    from herbi.train.recipes import RECIPES
    from herbi.train.recipes.fast import fast_net

    assert RECIPES["fast"].STAGES == ("train",)
    model = fast_net(5)
    assert model.count_params() <= MAX_PARAMS
    assert model_macs(model) <= MAX_MACS
    allowed = (
        layers.InputLayer,
        layers.Conv2D,
        layers.BatchNormalization,
        layers.ReLU,
        layers.MaxPooling2D,
        layers.Add,
        layers.GlobalAveragePooling2D,
        layers.Dense,
    )
    assert all(isinstance(layer, allowed) for layer in model.layers)
    # Every batch norm directly follows a convolution, so it folds into it at export.
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            assert isinstance(layer.inbound_nodes[0].inbound_layers, layers.Conv2D)
    assert model.layers[-1].get_config()["activation"] == "softmax"


def test_warmup_cosine_schedule():
    from herbi.train.recipes.fast import WarmupCosine

    schedule = WarmupCosine(peak=0.1, warmup_fraction=0.2)
    rates = [schedule.rate(step, 100) for step in range(101)]
    assert rates[0] == 0 and rates[20] == pytest.approx(0.1) and rates[100] == pytest.approx(0)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) <= 0)


def test_augmentation_keeps_images_in_range_and_labels_summing_to_one():
    import tensorflow as tf

    from herbi.train.recipes.fast import HPARAMS, augmented, box

    square = box(tf.constant([1, 2], tf.int64), 32, 32, tf.constant(12))
    assert 0 < int(tf.reduce_sum(tf.cast(square, tf.int32))) <= 144
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8)
    y = np.arange(256) % 5
    hp = {**HPARAMS, "cutmix": 1.0}
    data = augmented(x, y, 5, seed=0, hp=hp)
    batches = list(data)
    assert [len(b[0]) for b in batches] == [HPARAMS["batch_size"]] * (256 // HPARAMS["batch_size"])
    for images, labels in batches:
        assert images.dtype == tf.float32 and images.shape[1:] == (32, 32, 3)
        assert float(tf.reduce_min(images)) >= 0 and float(tf.reduce_max(images)) <= 1
        np.testing.assert_allclose(tf.reduce_sum(labels, 1), 1, atol=1e-6)
    # CutMix at probability 1 mixes labels in (nearly) every batch.
    assert sum(float(tf.reduce_min(tf.reduce_max(labels, 1))) < 1 for _, labels in batches) >= 2
    # Every epoch sees new views; the same seed gives the same epochs again.
    next_epoch = next(iter(data))[0]
    rebuilt = next(iter(augmented(x, y, 5, seed=0, hp=hp)))[0]
    assert not np.array_equal(next_epoch, batches[0][0])
    np.testing.assert_array_equal(rebuilt, batches[0][0])


def test_fast_smoke_run_learns_and_saves_a_float32_model(fast_run):
    import tf_keras as keras

    out, output = fast_run
    assert output.splitlines()[0].startswith("herbi-train: recipe fast, preset smoke")
    assert "parameters" in output and "multiply-accumulates per image" in output
    names = {p.name for p in out.iterdir()}
    assert {"train.keras", "model.keras", "metrics.json", "report.md", "history.csv"} <= names
    assert not (out / "backup").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["stages"]) == ["train"]
    val = metrics["stages"]["train"]["val"]
    # Learned something: clearly above chance (0.2) and not one constant class.
    assert val["accuracy"] > 0.3
    assert sum(1 for row in np.array(val["confusion"]).T if row.sum() > 0) >= 2
    # Trained in bfloat16 or not, the checkpoint export reads is plain float32.
    model = keras.models.load_model(out / "model.keras")
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
