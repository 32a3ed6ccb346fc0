"""Run a recipe's stages into a run folder, keeping each stage's best checkpoint.

What a run folder already holds is continued (``--resume``): finished stages (``state.json``)
are skipped, a stage's last finished epoch comes back from its ``BackupAndRestore`` folder. The
test split is only reported, never used to choose. Checkpoints are float32 whatever the
training precision.
"""

from __future__ import annotations

import contextlib
import csv
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from herbi.common.errors import HerbiError
from herbi.common.files import atomic_path, from_json, read_json, write_json
from herbi.common.log import Log
from herbi.common.run_folder import RunFolder
from herbi.runtime.contract import float_input
from herbi.train.data import Dataset
from herbi.train.evaluate import Scores, keras_probs, score
from herbi.train.manifest import RunConfig
from herbi.train.recipe import Recipe, StageInputs

HISTORY_FIELDS = ("stage", "epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` itself when it computes in float32, else a float32 clone with its weights."""
    if all(layer.compute_dtype in (None, "float32") for layer in model.layers):
        return model

    def as_float32(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    clone = keras.models.clone_model(model, clone_function=as_float32)
    clone.set_weights(model.get_weights())
    return clone


@dataclass(frozen=True)
class StageResult:
    """One finished stage: its length, its wall time and its best checkpoint's scores."""

    stage: str
    epochs: int
    train_images: int
    wall_seconds: float
    val: Scores
    test: Scores  # only reported, never used to choose


def read_state(path: Path) -> tuple[StageResult, ...]:
    """The stages ``state.json`` records as finished (none before the first)."""
    if not path.exists():
        return ()
    try:
        return tuple(from_json(StageResult, r) for r in read_json(path)["stages"].values())
    except (KeyError, TypeError, AttributeError) as e:  # e.g. written by an older herbi
        raise HerbiError(f"{path}: not readable as finished stages ({type(e).__name__}: {e}); "
                         "train the run again") from None  # fmt: skip


class Deadline(keras.callbacks.Callback):
    """Stop before an epoch that would end after ``deadline``: the budget's guarantee when the
    machine turns slower than its probe said (the best checkpoint so far is kept)."""

    def __init__(self, deadline: float, log: Log):
        super().__init__()
        self.deadline, self.log, self.started = deadline, log, time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        per_epoch = (time.monotonic() - self.started) / (epoch + 1)
        if time.monotonic() + per_epoch > self.deadline and epoch + 1 < self.params["epochs"]:
            self.log(f"[budget] stopping after epoch {epoch + 1}: the next one would end late")
            self.model.stop_training = True


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model whenever validation accuracy improves.

    Not ``ModelCheckpoint``: the file must be written atomically (never half-written) and as a
    float32 model, and ``ModelCheckpoint`` does neither.
    """

    def __init__(self, path, best: float = -np.inf):
        super().__init__()
        self.path, self.best = path, best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = (logs or {}).get("val_accuracy", -np.inf)
        if current > self.best:
            self.best = current
            with atomic_path(self.path) as tmp:
                float32_model(self.model).save(tmp)


class HistoryCSV(keras.callbacks.Callback):
    """Append one row per epoch to the run's ``history.csv`` (all stages, one file)."""

    def __init__(self, path, stage: str):
        super().__init__()
        self.path, self.stage = path, stage

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, HISTORY_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({"stage": self.stage, "epoch": epoch + 1, **(logs or {})})


def validation_set(ds: Dataset) -> tf.data.Dataset:
    """The validation split as every stage's ``fit`` sees it (it picks the checkpoints)."""
    y_val = keras.utils.to_categorical(ds.y_val, ds.num_classes)
    return tf.data.Dataset.from_tensor_slices((float_input(ds.x_val), y_val)).batch(256)


@contextlib.contextmanager
def compute_precision(precision: str) -> Iterator[None]:
    """Build and train in ``precision`` (``bfloat16``: Keras' mixed policy), then float32 again,
    so that loading, scoring and export always see float32 layers."""
    policy = "mixed_bfloat16" if precision == "bfloat16" else "float32"
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def logged_val_accuracy(run: RunFolder, stage: str) -> list[float]:
    """Validation accuracy of every epoch of ``stage`` already in ``history.csv``."""
    if not run.history.exists():
        return []
    with open(run.history, newline="") as f:
        return [float(r["val_accuracy"]) for r in csv.DictReader(f) if r["stage"] == stage]


def train_stages(
    recipe: Recipe,
    ds: Dataset,
    train_set: tuple[np.ndarray, np.ndarray],
    config: RunConfig,
    deadline: float | None,
    run: RunFolder,
    strategy: tf.distribute.Strategy,
    log: Log,
) -> tuple[StageResult, ...]:
    """Train every stage of ``recipe`` on ``train_set`` (the recipe's train set) as ``config``
    says, stopping by ``deadline`` (``time.monotonic()``, --budget) if any; return each
    stage's result, in order. A new run's folder is empty, so only a resumed run finds stages
    (``state.json``) and epochs (``BackupAndRestore``) to continue."""
    done = {r.stage: r for r in read_state(run.state)}
    val_set = validation_set(ds)
    previous = None
    for stage in recipe.stages:
        best_path = run.checkpoint(stage)
        if stage in done:
            log(f"[{stage}] already finished; resuming after it")
            previous = best_path
            continue
        logged = logged_val_accuracy(run, stage)
        epochs = config.epochs[stage]
        log(
            f"[{stage}] {epochs} epochs on {len(train_set[0]):,} images"
            + (f" (resuming after epoch {len(logged)})" if logged else "")
        )
        start = time.perf_counter()
        with compute_precision(config.precision):
            with strategy.scope():
                prev_model = keras.models.load_model(previous) if previous else None
                inputs = StageInputs(stage, epochs, prev_model, train_set, ds.num_classes,
                                     config.seed, recipe.size, log)  # fmt: skip
                plan = recipe.plan_stage(inputs)
            best = max(logged, default=-np.inf) if best_path.exists() else -np.inf
            callbacks = [
                keras.callbacks.BackupAndRestore(str(run.backup(stage))),
                *plan.callbacks,
                BestCheckpoint(best_path, best),
                HistoryCSV(run.history, stage),
            ]
            if deadline:
                callbacks.append(Deadline(deadline, log))
            plan.model.fit(
                plan.train, validation_data=val_set, epochs=epochs, verbose=2, callbacks=callbacks
            )
        wall = round(time.perf_counter() - start, 1)
        best_model = keras.models.load_model(best_path)
        val, test = (score(y, keras_probs(best_model, x), ds.class_names)
                     for x, y in ((ds.x_val, ds.y_val), (ds.x_test, ds.y_test)))  # fmt: skip
        log(f"[{stage}] best val acc {val.accuracy:.4f}, test acc {test.accuracy:.4f}, "
            f"{wall / 60:.1f} min")  # fmt: skip
        done[stage] = StageResult(stage, epochs, len(train_set[0]), wall, val, test)
        write_json(run.state, {"stages": {s: asdict(r) for s, r in done.items()}})
        shutil.rmtree(run.backup(stage), ignore_errors=True)
        previous = best_path
    shutil.rmtree(run.backup(), ignore_errors=True)
    return tuple(done[stage] for stage in recipe.stages)
