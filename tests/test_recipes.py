"""The fast recipe: its network fits the edge budget with int8-friendly layers only, and a
few smoke-preset steps through ``herbi-train --recipe fast`` give a complete run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

MAX_PARAMS = 400_000
MAX_MACS = 40_000_000


def test_fast_net_fits_the_edge_budget_with_int8_friendly_layers():
    from tf_keras import layers

    from herbi.train.complexity import model_macs
    from herbi.train.recipes import RECIPES
    from herbi.train.recipes.fast import fast_net

    assert RECIPES["fast"].stages == ("train",)
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
    from herbi.train.recipes.fast import HPARAMS, warmup_cosine

    schedule = warmup_cosine(100, {**HPARAMS, "peak_lr": 0.1, "warmup_fraction": 0.2})
    rates = [float(schedule(step)) for step in range(101)]
    assert rates[0] == 0 and rates[20] == pytest.approx(0.1) and rates[100] == pytest.approx(0)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) <= 0)


def test_augmentation_keeps_images_in_range_and_labels_summing_to_one():
    import tensorflow as tf

    from herbi.runtime.contract import float_input
    from herbi.train.recipes.fast import HPARAMS, augmented, box

    square = box(tf.constant([1, 2], tf.int64), 32, 32, tf.constant(12))
    assert 0 < int(tf.reduce_sum(tf.cast(square, tf.int32))) <= 144
    rng = np.random.default_rng(0)
    x = float_input(rng.integers(0, 256, (256, 32, 32, 3), dtype=np.uint8))
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


@pytest.mark.slow
def test_fast_smoke_run_learns_and_saves_a_float32_model(fast_run):
    import tf_keras as keras

    out, output = fast_run
    # The default size: the model herbi always trained, recorded in the manifest.
    assert output.splitlines()[0].startswith("herbi-train: recipe fast, size l, preset smoke")
    assert json.loads((out / "manifest.json").read_text())["config"]["size"] == "l"
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


@pytest.mark.slow
def test_saved_checkpoint_holds_the_averaged_weights(tmp_path):
    """WeightAverage swaps the EMA in before BestCheckpoint writes: the file holds the average
    of every step's weights (recomputed here from the raw weights), not the last step's."""
    import tf_keras as keras

    from herbi.train.recipes.fast import WeightAverage
    from herbi.train.trainer import BestCheckpoint

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy", ["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    raw: list[list[np.ndarray]] = []

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            raw.append([w.numpy() for w in model.trainable_weights])

        def on_train_batch_end(self, batch, logs=None):
            raw.append([w.numpy() for w in model.trainable_weights])

    path = tmp_path / "best.keras"
    callbacks = [Record(), WeightAverage(0.9), BestCheckpoint(path)]
    model.fit(x, y, batch_size=8, epochs=1, validation_data=(x, y), callbacks=callbacks, verbose=0)
    average = raw[0]
    for t, weights in enumerate(raw[1:], 1):
        decay = min(0.9, (1 + t) / (10 + t))
        average = [decay * a + (1 - decay) * w for a, w in zip(average, weights, strict=True)]
    saved = keras.models.load_model(path).get_weights()
    for s, a, last in zip(saved, average, raw[-1], strict=True):
        np.testing.assert_allclose(s, a, atol=1e-5)
        assert not np.allclose(s, last, atol=1e-3)


@pytest.mark.slow
def test_resume_mid_stage_continues_the_learning_rate_schedule(tmp_path, animals5):
    """Interrupted after epoch 2 of 4 and resumed from BackupAndRestore: the rates of epochs 3
    and 4 are those of an uninterrupted run, not a schedule restarted at step 0."""
    import tf_keras as keras

    from herbi.runtime.contract import float_input
    from herbi.train.data import load_dataset
    from herbi.train.recipe import StageInputs
    from herbi.train.recipes.fast import HPARAMS, plan_stage

    ds = load_dataset(animals5)
    data = (float_input(ds.x_train[:256]), ds.y_train[:256])
    hp = {**HPARAMS, "widths": (8, 8, 8, 8), "cutmix": 0.0}

    class Rates(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rates = []

        def on_train_batch_end(self, batch, logs=None):  # the rate this step was taken at
            self.rates.append(float(self.model.optimizer.learning_rate.numpy()))

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    def fit(*callbacks):
        keras.utils.set_random_seed(0)
        plan = plan_stage(StageInputs("train", 4, None, data, 5, 0), hp)
        plan.model.fit(plan.train, epochs=4, verbose=0, callbacks=[*callbacks, *plan.callbacks])

    whole = Rates()
    fit(whole)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="interrupted"):
        fit(backup, Crash())
    resumed = Rates()
    fit(keras.callbacks.BackupAndRestore(str(tmp_path / "backup")), resumed)
    steps = len(whole.rates) // 4
    assert len(resumed.rates) == 2 * steps and resumed.rates[0] > 0
    np.testing.assert_allclose(resumed.rates, whole.rates[2 * steps :], rtol=1e-6)


def test_epochs_per_stage_by_name():
    from herbi.train.pipeline import OptionError, parse_epochs

    stages, preset = (
        ("base", "finetune1", "finetune2"),
        {"base": 24, "finetune1": 6, "finetune2": 6},
    )
    assert parse_epochs("finetune1=3", stages, preset) == {
        "base": 24,
        "finetune1": 3,
        "finetune2": 6,
    }
    assert parse_epochs("base=2,finetune2=1", stages, preset) == {
        "base": 2, "finetune1": 6, "finetune2": 1,
    }  # fmt: skip
    assert parse_epochs("5", stages, preset) == dict.fromkeys(stages, 5)
    for bad, message in (("bogus=2", "unknown stage 'bogus'"), ("base=0", "at least 1 epoch"),
                         ("base=x", "not a number")):  # fmt: skip
        with pytest.raises(OptionError, match=message):
            parse_epochs(bad, stages, preset)
