"""The reference study's recipe, reproduced faithfully: base training, then two fine-tunes.

Base: the reference CNN on the study's offline-augmented train set (2 extra copies of every
image), Adam(clipvalue=0.5), categorical cross-entropy, batch 32, best epoch by validation
accuracy. Fine-tunes 1 and 2: reload the previous stage's best model, all layers trainable,
Adam(1e-5), best epoch by validation accuracy. Published (CIFAR-100 coarse 11, GPU, 300
epochs per stage, checkpoints picked on the test set): 75.4% / 78.8% / 79.4% test accuracy.
herbi picks checkpoints on a validation split carved from train instead.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from herbi.train.augment import offline_augment
from herbi.train.data import Dataset
from herbi.train.model import reference_cnn
from herbi.train.trainer import StagePlan

NAME = "reference"
STAGES = ("base", "finetune1", "finetune2")
# The study's test accuracy per stage (CIFAR-100 coarse 11, GPU, 300 epochs, test-selected).
PUBLISHED = {"base": 0.754, "finetune1": 0.788, "finetune2": 0.794}

HPARAMS = {
    "batch_size": 32,  # the study's batch size
    "base_clipvalue": 0.5,  # the study's Adam(clipvalue=0.5); learning rate left at Adam's 1e-3
    "finetune_lr": 1e-5,  # the study's fine-tune learning rate, both fine-tunes
    "augment_copies": 2,  # offline: each train image + 2 augmented copies (7,500 in the study)
    "loss": "categorical_crossentropy",  # one-hot labels, as in the study
    "bn_momentum": 0.99,  # Keras' default, as in the study
}

PRESETS = {
    # The published protocol: hours on a GPU.
    "reference": {"epochs": {"base": 300, "finetune1": 300, "finetune2": 300}},
    # ~20 minutes on a 2-core CPU (~35 s per epoch on 6,750 images).
    "cpu": {"epochs": {"base": 24, "finetune1": 6, "finetune2": 6}},
    # Seconds, for tests: one epoch per stage on 40 images per class (plus their copies).
    "smoke": {"epochs": {"base": 1, "finetune1": 1, "finetune2": 1}, "max_per_class": 40},
}


def limit_per_class(x: np.ndarray, y: np.ndarray, n: int | None):
    if n is None:
        return x, y
    keep = np.concatenate([np.flatnonzero(y == c)[:n] for c in np.unique(y)])
    keep.sort()
    return x[keep], y[keep]


def train_set(ds: Dataset, preset: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The study's offline-augmented train set, built once per run and shared by all stages."""
    x, y = limit_per_class(ds.x_train, ds.y_train, preset.get("max_per_class"))
    return offline_augment(x, y, copies=HPARAMS["augment_copies"], seed=seed)


def plan_stage(
    stage: str,
    previous: keras.Model | None,
    data: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    seed: int,
    hp: dict = HPARAMS,
) -> StagePlan:
    """Compile the stage's model (fresh for ``base``, the previous best otherwise)."""
    x, y = data
    if stage == "base":
        model = reference_cnn(num_classes, bn_momentum=hp["bn_momentum"])
        optimizer = keras.optimizers.Adam(clipvalue=hp["base_clipvalue"])
    else:
        model = previous
        model.trainable = True  # the study unfreezes everything for the fine-tunes
        optimizer = keras.optimizers.Adam(learning_rate=hp["finetune_lr"])
    model.compile(optimizer=optimizer, loss=hp["loss"], metrics=["accuracy"])
    onehot = keras.utils.to_categorical(y, num_classes)
    train = (
        tf.data.Dataset.from_tensor_slices((x, onehot))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(hp["batch_size"])
        .prefetch(tf.data.AUTOTUNE)
    )
    return StagePlan(model, train, len(x))
