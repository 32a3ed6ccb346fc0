"""What a training recipe is: one typed value the trainer runs, whatever the recipe.

Every recipe offers the same presets (``full``: its whole schedule, for a GPU; ``cpu``: a
short schedule for a 2-core CPU; ``smoke``: seconds, for tests). The trainer passes each
stage's length in (:class:`StageInputs`), so a learning-rate schedule is sized before ``fit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import tensorflow as tf
import tf_keras as keras

from herbi.common.errors import HerbiError
from herbi.common.log import Log
from herbi.train.data import Dataset
from herbi.train.sizes import Member

PRESETS = ("full", "cpu", "smoke")


@dataclass(frozen=True)
class StageInputs:
    """Everything a recipe needs to plan one stage."""

    stage: str
    epochs: int
    previous: keras.Model | None  # the previous stage's best model (None for the first)
    train_set: tuple[np.ndarray, np.ndarray]  # images and labels (see Recipe.train_set)
    num_classes: int
    seed: int
    size: str | None = None  # the family member to build (Recipe.size); None: one size only
    log: Log = print  # where a recipe says what it built (herbi-train: its own output)

    def steps(self, batch_size: int) -> int:
        """Optimizer steps in the whole stage: what a schedule spans."""
        return self.epochs * math.ceil(len(self.train_set[0]) / batch_size)


@dataclass
class StagePlan:
    """A stage's compiled model and training data.

    ``callbacks`` run before the checkpointing ones, so a callback that swaps weights at the
    end of an epoch (e.g. averaged weights) decides what the best checkpoint holds.
    """

    model: keras.Model
    train: tf.data.Dataset
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)


@dataclass(frozen=True)
class Recipe:
    """A training recipe. ``schedule`` says in words what its ``full`` preset runs."""

    name: str
    stages: tuple[str, ...]
    presets: dict[str, dict]
    schedule: str
    train_set: Callable[[Dataset, dict, int], tuple[np.ndarray, np.ndarray]]
    plan_stage: Callable[[StageInputs], StagePlan]
    bfloat16: bool = False  # whether --precision auto may train it in mixed bfloat16
    outliers: bool = False  # whether its train_set takes --outliers (Outlier Exposure)
    published: dict[str, float] = field(default_factory=dict)
    sizes: Mapping[str, Member] = field(default_factory=dict)  # the size family; {}: one size
    size: str | None = None  # the member this value trains (its default; see sized)

    def __post_init__(self) -> None:
        if set(self.presets) != set(PRESETS):
            raise HerbiError(f"recipe {self.name}: presets must be {PRESETS}")

    def sized(self, size: str | None) -> Recipe:
        """This recipe training family member ``size`` (None: its default size)."""
        if size is None or size == self.size:
            return self
        if size not in self.sizes:
            sizes = ", ".join(self.sizes) or "none: it has one size"
            raise HerbiError(f"recipe {self.name} has no size {size!r} (sizes: {sizes})")
        return replace(self, size=size)


def limit_per_class(x: np.ndarray, y: np.ndarray, n: int | None):
    """The first ``n`` images of each class (all of them for None), in their original order."""
    if n is None:
        return x, y
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:n] for c in np.unique(y)]))
    return x[keep], y[keep]
