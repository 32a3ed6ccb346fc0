"""The fast recipe: the model to deploy, a compact residual network trained from scratch.

A shrunk ResNet-9 of Conv-BN-ReLU blocks (each BN folds into its conv, so int8 keeps its
accuracy), trained with on-the-fly crop, flip and CutMix and an average of the weights (EMA).

Four sizes of the network (``SIZES``: ``--size``, ``--fits BOARD``), from MLPerf Tiny scale
to ``l``, the default and the model below.

Headline (stand-in data ``cifar10-animals5``, not CIFAR-100; preset ``cpu`` with its 10-minute
budget, whole command, mean of seeds 0/1/2): 72.9% test accuracy on a 2-core Intel Xeon with
AVX-512, VNNI and AVX512-BF16 but no AMX, float32. Other machines and how the recipe got here:
``docs/recipes.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tf_keras import layers

from herbi.common.boards import Footprint
from herbi.common.errors import DataError
from herbi.runtime.contract import float_input
from herbi.runtime.errors import ImageError
from herbi.runtime.image import image_files, to_rgb_array
from herbi.train.complexity import model_macs
from herbi.train.data import Dataset
from herbi.train.recipe import Recipe, StageInputs, StagePlan, limit_per_class
from herbi.train.sizes import Member

# The size family (``herbi-train --size``; ``--fits`` picks the largest that fits a board).
# Network: a stem conv, then three stages that each start with Conv-BN-ReLU-MaxPool and end
# with a residual block of two Conv-BN-ReLU (ResNet-9 layout, shrunk). One table, airbench
# style: the widths of the stem and stages 1-3, and which stages end with a residual block.
# The arena is set by the 32x32 activations, so the small members keep the stem and stage 1
# narrow (xs: 8 and 12 channels) and spend their parameters in the 8x8 stage. Footprints:
# int8 model array and TFLM arena, measured as train.sizes.FOOTPRINT_MEASURED says.
SIZES = {
    #                 widths           residual            params  MACs  flash  arena  declared
    # accuracy: test, stand-in cifar10-animals5, seeds 0/1/2, --epochs 40 each (every size
    # under 2 minutes), mean and 95% t half-width; 2-core AMD EPYC (AVX-512, no AMX), float32.
    # MLPerf Tiny scale (its ResNet-8: 78k parameters, 12.5M MACs): <= 128 KB and 40 KB.
    "xs": Member((8, 12, 32, 48), (True, True, True),
                 82_237, Footprint(5_382_384, 100_768, 28_240, 35_312), (0.6507, 0.0201)),
    # What a 64 KB-SRAM board takes (a 48 KB arena once herbi.common.boards' reserve is kept).
    "s": Member((8, 16, 32, 64), (True, True, True),
                122_877, Footprint(7_299_392, 142_928, 32_816, 41_024), (0.6707, 0.0434)),
    "m": Member((12, 24, 48, 80), (True, True, True),
                217_161, Footprint(15_004_048, 240_272, 46_096, 57_632), (0.6853, 0.0283)),
    # The model herbi has always trained: narrow enough for 80 epochs in 10 CPU minutes.
    "l": Member((16, 32, 64, 96), (True, True, True),
                339_669, Footprint(25_510_368, 365_832, 59_376, 74_224), (0.6907, 0.0402)),
}  # fmt: skip
DEFAULT_SIZE = "l"

HPARAMS = {
    **SIZES[DEFAULT_SIZE].hparams(),  # network: widths and residual blocks (SIZES)
    "bn_momentum": 0.9,  # ~35 steps per epoch: 0.99 would lag the weights for epochs
    # Optimisation.
    "batch_size": 64,  # ~35 steps per epoch on 2,250 images: enough updates, CPU still busy
    "peak_lr": 0.05,  # SGD-Nesterov peak rate for batch 64 (0.1 at 128, the CIFAR classic)
    "momentum": 0.9,  # Nesterov momentum
    "weight_decay": 2e-2,  # decoupled; = L2 2e-3 under momentum 0.9; BN and biases excluded
    "warmup_fraction": 0.15,  # linear warm-up over the first 15% of steps, then cosine to 0
    "label_smoothing": 0.1,  # softer targets: less over-confidence on 2,250 images
    "ema_decay": 0.99,  # weights averaged over ~100 steps (~3 epochs); evaluated and saved
    # Augmentation, on the fly in tf.data (a new view of every image every epoch).
    "pad": 4,  # reflect-pad 4 pixels, then crop back to 32x32 at a random offset
    "hflip": True,  # left-right flips only: upside-down animals are not in the test set
    "cutmix": 0.5,  # share of batches mixed with CutMix (box area ~ U(0, 1))
}

PRESETS = {
    # A longer schedule for a GPU.
    "full": {"epochs": {"train": 200}},
    # 10 minutes for the whole command on whatever CPU runs it: the epochs are sized to fit
    # (train.budget); --epochs replaces the budget with a fixed count.
    "cpu": {"epochs": {"train": 80}, "budget": "10m"},
    # Seconds, for tests: 6 epochs of 150 images per class (~70 steps) learn something.
    "smoke": {"epochs": {"train": 6}, "max_per_class": 150},
}


def fast_net(num_classes: int, hp: dict = HPARAMS) -> keras.Model:
    """The recipe's network, in the global Keras precision policy (the trainer sets it)."""

    def conv_bn_relu(x: tf.Tensor, filters: int) -> tf.Tensor:
        # BN right after each convolution so that it folds into it at export.
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=hp["bn_momentum"])(x)
        return layers.ReLU()(x)

    stem, *stages = hp["widths"]
    inputs = keras.Input((32, 32, 3), name="image")
    x = conv_bn_relu(inputs, stem)
    for filters, residual in zip(stages, hp["residual"], strict=True):
        x = layers.MaxPooling2D()(conv_bn_relu(x, filters))
        if residual:
            x = layers.Add()([x, conv_bn_relu(conv_bn_relu(x, filters), filters)])
    x = layers.GlobalAveragePooling2D()(x)
    # float32 logits and softmax whatever the compute dtype.
    probs = layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")
    return keras.Model(inputs, probs(x), name="fast_resnet")


def warmup_cosine(steps: int, hp: dict = HPARAMS) -> keras.optimizers.schedules.CosineDecay:
    """Linear warm-up from 0 to the peak rate over ``warmup_fraction`` of ``steps``, then
    cosine decay to 0; it reads the optimizer's step counter, so a resumed stage continues
    where it stopped."""
    warmup = max(int(hp["warmup_fraction"] * steps), 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(steps - warmup, 1),
        warmup_target=hp["peak_lr"],
        warmup_steps=warmup,
    )


class WeightAverage(keras.callbacks.Callback):
    """An exponential moving average of the trainable weights, updated every step.

    The decay ramps up as ``(1 + t) / (10 + t)`` to ``decay`` (as TF's
    ``ExponentialMovingAverage`` does), so short runs average recent weights rather than the
    random initial ones. The averaged weights are swapped in for validation and at every
    epoch end (so the best checkpoint, written after this callback, holds them) and swapped
    out again to train. After ``--resume`` the average restarts from the restored weights.
    """

    def __init__(self, decay: float):
        super().__init__()
        self.decay, self.swapped = decay, False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.shadow = [tf.Variable(w, trainable=False) for w in self.model.trainable_weights]

    @tf.function
    def _update(self) -> None:
        t = tf.cast(self.model.optimizer.iterations, tf.float32)
        decay = tf.minimum(self.decay, (1 + t) / (10 + t))
        for s, w in zip(self.shadow, self.model.trainable_weights, strict=True):
            s.assign(decay * s + (1 - decay) * w)

    @tf.function
    def _swap(self) -> None:
        for s, w in zip(self.shadow, self.model.trainable_weights, strict=True):
            current = tf.identity(w)
            w.assign(s)
            s.assign(current)

    def _set(self, averaged: bool) -> None:
        if self.swapped != averaged:
            self._swap()
            self.swapped = averaged

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._update()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._set(True)

    def on_test_end(self, logs: dict | None = None) -> None:
        self._set(False)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._set(False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._set(True)


def train_set(ds: Dataset, preset: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The train split as model inputs: augmentation happens on the fly in ``plan_stage``.

    With ``outliers`` (``herbi-train --outliers DIR``), images of none of the classes follow,
    labelled -1: their target is the uniform distribution (Outlier Exposure, Hendrycks et al.,
    ICLR 2019), so the model learns to be unsure of what it must answer ``unknown``.
    """
    x, y = limit_per_class(ds.x_train, ds.y_train, preset.get("max_per_class"))
    if preset.get("outliers"):
        others = outlier_images(Path(preset["outliers"]), x.shape[1:3], len(x), seed)
        x, y = np.concatenate([x, others]), np.concatenate([y, np.full(len(others), -1)])
    return float_input(x), y


def outlier_images(folder: Path, size: tuple[int, int], most: int, seed: int) -> np.ndarray:
    """Up to ``most`` images of ``folder`` (recursively; a seeded sample of a bigger folder, so
    outliers never outnumber the training images), as uint8 arrays of ``size``."""
    files = image_files(folder)
    if not files:
        raise DataError(f"--outliers {folder}: holds no image files")
    if len(files) > most:
        files = sorted(np.random.default_rng(seed).choice(files, most, replace=False))
    try:
        return np.stack([to_rgb_array(f, size) for f in files])
    except ImageError as e:
        raise DataError(f"--outliers: {e}") from None


def box(key: tf.Tensor, height: int, width: int, size: tf.Tensor) -> tf.Tensor:
    """A ``size`` x ``size`` boolean square at a random centre (cut off at the border)."""
    centre = tf.cast(tf.random.stateless_uniform([2], key) * [height, width], tf.int32)
    top, left = tf.unstack(centre - size // 2)
    rows, cols = tf.range(height), tf.range(width)
    rows = (rows >= top) & (rows < top + size)
    cols = (cols >= left) & (cols < left + size)
    return rows[:, None] & cols[None, :]


def augmented(
    x: np.ndarray, y: np.ndarray, num_classes: int, seed: int, hp: dict = HPARAMS
) -> tf.data.Dataset:
    """Shuffled batches with a fresh random crop and flip of every image every epoch, and
    CutMix across each batch.

    Stateless ops seeded from a per-epoch random stream keep runs repeatable under TF's op
    determinism while both cores augment in parallel.
    """
    pad = hp["pad"]
    height, width = x.shape[1:3]

    def augment(image: tf.Tensor, label: tf.Tensor, key: tf.Tensor):
        crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
        padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        image = tf.image.stateless_random_crop(padded, tf.shape(image), crop_key)
        if hp["hflip"]:
            image = tf.image.stateless_random_flip_left_right(image, flip_key)
        return image, label

    def cutmix(images: tf.Tensor, labels: tf.Tensor, key: tf.Tensor):
        # Paste a box of the batch's reversed twin into every image; labels mix by its area.
        lam_key, use_key, box_key = tf.unstack(tf.random.experimental.stateless_split(key, 3))
        use = tf.random.stateless_uniform([], use_key) < hp["cutmix"]
        side = tf.sqrt(1.0 - tf.random.stateless_uniform([], lam_key)) * height
        inside = box(box_key, height, width, tf.cast(side, tf.int32)) & use
        area = tf.reduce_mean(tf.cast(inside, tf.float32))
        images = tf.where(inside[None, ..., None], images[::-1], images)
        return images, (1 - area) * labels + area * labels[::-1]

    # An outlier (label -1) has the uniform target.
    onehot = np.where(y[:, None] < 0, 1 / num_classes, np.eye(num_classes)[np.maximum(y, 0)])
    onehot = onehot.astype(np.float32)
    image_keys, batch_keys = (
        tf.data.Dataset.random(seed=seed + i, rerandomize_each_iteration=True).batch(2)
        for i in range(2)
    )
    images = tf.data.Dataset.from_tensor_slices((x, onehot)).shuffle(
        len(x), seed=seed, reshuffle_each_iteration=True
    )
    batches = (
        tf.data.Dataset.zip((images, image_keys))
        .map(lambda pair, key: augment(*pair, key), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(hp["batch_size"])
    )
    return (
        tf.data.Dataset.zip((batches, batch_keys))
        .map(lambda pair, key: cutmix(*pair, key), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def plan_stage(s: StageInputs, hp: dict = HPARAMS) -> StagePlan:
    """Build and compile the network of the size ``s`` asks for (``hp``'s own where None);
    the schedule spans exactly this stage's steps."""
    x, y = s.train_set
    if s.size is not None:
        hp = {**hp, **SIZES[s.size].hparams()}
    model = fast_net(s.num_classes, hp)
    s.log(
        f"[{s.stage}] fast network, size {s.size or DEFAULT_SIZE}: "
        f"{model.count_params():,} parameters, "
        f"{model_macs(model) / 1e6:.1f}M multiply-accumulates per image"
    )
    optimizer = keras.optimizers.SGD(
        warmup_cosine(s.steps(hp["batch_size"]), hp),
        momentum=hp["momentum"],
        nesterov=True,
        weight_decay=hp["weight_decay"],
    )
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=hp["label_smoothing"]),
        metrics=["accuracy"],
    )
    return StagePlan(
        model,
        augmented(x, y, s.num_classes, s.seed, hp),
        callbacks=[WeightAverage(hp["ema_decay"])],
    )


RECIPE = Recipe(
    name="fast",
    stages=("train",),
    presets=PRESETS,
    schedule="the fast recipe's 200-epoch schedule",
    train_set=train_set,
    plan_stage=plan_stage,
    bfloat16=True,
    outliers=True,
    sizes=SIZES,
    size=DEFAULT_SIZE,
)
