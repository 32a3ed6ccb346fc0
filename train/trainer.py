"""Run a recipe's stages into a run folder, keeping each stage's best checkpoint.

Each stage trains with Keras callbacks: the best epoch by validation accuracy is saved
atomically as ``<stage>.keras``; ``BackupAndRestore`` keeps the last finished epoch so
``--resume`` continues mid-stage; every epoch is appended to ``history.csv``. Finished stages
are recorded in ``state.json`` and skipped on resume. After each stage its best model is
scored on validation and test (the test split is only reported, never used to choose).

A recipe may train in mixed precision (bfloat16 compute, float32 weights): checkpoints are
always written as a float32 copy of the model, so export and scoring see a plain float32
graph whatever the training precision.
"""

from __future__ import annotations

import csv
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import click
import numpy as np
import tensorflow as tf
import tf_keras as keras

from herbi.train.data import Dataset
from herbi.train.evaluate import keras_probs, score
from herbi.train.files import atomic_path, read_json, write_json

HISTORY_FIELDS = ("stage", "epoch", "loss", "accuracy", "val_loss", "val_accuracy")


@dataclass
class StagePlan:
    """What a recipe's ``plan_stage`` returns: the compiled model and its training data.

    ``callbacks`` run before the checkpointing ones, so a callback that swaps weights at the
    end of an epoch (e.g. averaged weights) decides what the best checkpoint holds.
    """

    model: keras.Model
    train: tf.data.Dataset
    train_size: int
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` itself when it computes in float32, else a float32 clone with its weights."""
    if all(layer.compute_dtype in (None, "float32") for layer in model.layers):
        return model

    def as_float32(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    clone = keras.models.clone_model(model, clone_function=as_float32)
    clone.set_weights(model.get_weights())
    return clone


@dataclass
class TrainConfig:
    recipe: str
    preset: str
    epochs: dict[str, int]
    seed: int
    preset_options: dict = field(default_factory=dict)


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model whenever validation accuracy improves, atomically (never half-written)."""

    def __init__(self, path: Path, best: float = -np.inf):
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

    def __init__(self, path: Path, stage: str):
        super().__init__()
        self.path, self.stage = path, stage

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, HISTORY_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({"stage": self.stage, "epoch": epoch + 1, **(logs or {})})


def _best_so_far(history: Path, stage: str) -> float:
    if not history.exists():
        return -np.inf
    with open(history, newline="") as f:
        vals = [float(r["val_accuracy"]) for r in csv.DictReader(f) if r["stage"] == stage]
    return max(vals, default=-np.inf)


def _epochs_logged(history: Path, stage: str) -> int:
    if not history.exists():
        return 0
    with open(history, newline="") as f:
        return sum(1 for r in csv.DictReader(f) if r["stage"] == stage)


def train_stages(
    recipe: ModuleType,
    ds: Dataset,
    data: tuple[np.ndarray, np.ndarray],
    cfg: TrainConfig,
    run_dir: Path,
    strategy: tf.distribute.Strategy,
    resume: bool = False,
) -> dict[str, dict]:
    """Train every stage of ``recipe`` on ``data`` (the recipe's train set); return per-stage
    results (validation and test scores, wall time)."""
    state_path = run_dir / "state.json"
    state = read_json(state_path) if resume and state_path.exists() else {"stages": {}}
    history = run_dir / "history.csv"
    x_val = ds.x_val.astype(np.float32) / 255.0
    y_val = keras.utils.to_categorical(ds.y_val, ds.num_classes)
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(256)
    previous: Path | None = None
    for stage in recipe.STAGES:
        best_path = run_dir / f"{stage}.keras"
        if stage in state["stages"]:
            click.echo(f"[{stage}] already finished; resuming after it")
            previous = best_path
            continue
        backup = run_dir / "backup" / stage
        done = _epochs_logged(history, stage) if resume else 0
        if not resume:
            shutil.rmtree(backup, ignore_errors=True)
        epochs = cfg.epochs[stage]
        click.echo(
            f"[{stage}] {epochs} epochs on {len(data[0]):,} images"
            + (f" (resuming after epoch {done})" if done else "")
        )
        start = time.perf_counter()
        with strategy.scope():
            prev_model = keras.models.load_model(previous) if previous else None
            plan = recipe.plan_stage(stage, prev_model, data, ds.num_classes, cfg.seed)
        plan.model.fit(
            plan.train,
            validation_data=val,
            epochs=epochs,
            verbose=2,
            callbacks=[
                keras.callbacks.BackupAndRestore(str(backup)),
                *plan.callbacks,
                BestCheckpoint(
                    best_path, _best_so_far(history, stage) if best_path.exists() else -np.inf
                ),
                HistoryCSV(history, stage),
            ],
        )
        wall = time.perf_counter() - start
        best = keras.models.load_model(best_path)
        result = {
            "epochs": epochs,
            "train_images": len(data[0]),
            "wall_seconds": round(wall, 1),
            "val": score(ds.y_val, keras_probs(best, ds.x_val), ds.class_names),
            "test": score(ds.y_test, keras_probs(best, ds.x_test), ds.class_names),
        }
        click.echo(
            f"[{stage}] best val acc {result['val']['accuracy']:.4f}, "
            f"test acc {result['test']['accuracy']:.4f}, {wall / 60:.1f} min"
        )
        state["stages"][stage] = result
        write_json(state_path, state)
        shutil.rmtree(backup, ignore_errors=True)
        previous = best_path
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return state["stages"]
