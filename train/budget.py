"""``--budget``: size a recipe's schedule so the whole command ends within a wall-clock budget.

A fixed epoch count cannot promise a time on every CPU, so the trainer times one epoch of the
first stage here, with everything a real epoch does, and fills what the budget leaves after a
reserve for scoring and files; it also stops before an epoch that would end late
(``trainer.Deadline``). The measurements behind these choices: ``docs/recipes.md``.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from pathlib import Path

import tf_keras as keras

from herbi.common.errors import HerbiError
from herbi.common.log import Log
from herbi.train.data import Dataset
from herbi.train.environment import seed_everything
from herbi.train.manifest import BudgetPlan, RunConfig
from herbi.train.recipe import Recipe, StageInputs
from herbi.train.trainer import BestCheckpoint, compute_precision, validation_set

UNITS = {"s": 1, "m": 60, "h": 3600, "": 1}
# Kept back for what follows the last epoch (scoring, plots, report, model copy) and for epochs
# slower than the probe's (other load, a slower stretch).
RESERVE_SECONDS, RESERVE_SHARE = 30.0, 0.08
PROBE_EPOCHS = 2


def parse_budget(text: str) -> float:
    """``10m``, ``90s``, ``1.5h`` or plain seconds -> seconds; junk or <= 0 is a HerbiError."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text or "")
    seconds = float(match[1]) * UNITS[match[2]] if match else 0.0
    if seconds <= 0:
        raise HerbiError(f"--budget {text!r}: give a positive time such as 10m, 600s or 1h")
    return seconds


class EpochTime(keras.callbacks.Callback):
    """Seconds the last epoch took (the probe times its second, warmed-up epoch)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds = time.perf_counter() - self._start


def fit_budget(
    recipe: Recipe,
    ds: Dataset,
    train_set: tuple,
    config: RunConfig,
    strategy,
    started: float,
    log: Log,
) -> BudgetPlan:
    """The epochs that fit --budget here: the command must stop by ``started`` plus the budget
    less what scoring and files need. Epoch 2 of a throwaway model of the first stage is timed,
    in the run's precision, with the trainer's own per-epoch callbacks writing into a
    temporary folder."""
    budget = config.budget_seconds
    log(f"[budget] {budget:.0f} s: timing {recipe.stages[0]} on this machine")
    timer = EpochTime()
    inputs = StageInputs(recipe.stages[0], PROBE_EPOCHS, None, train_set, ds.num_classes,
                         config.seed, recipe.size, log)  # fmt: skip
    probe_dir = tempfile.TemporaryDirectory(prefix="herbi-probe-")
    with compute_precision(config.precision), probe_dir as tmp:
        with strategy.scope():
            plan = recipe.plan_stage(inputs)
        saves = [keras.callbacks.BackupAndRestore(f"{tmp}/backup"),
                 BestCheckpoint(Path(tmp, "best.keras"))]  # fmt: skip
        plan.model.fit(plan.train, validation_data=validation_set(ds), epochs=PROBE_EPOCHS,
                       verbose=0, callbacks=[*plan.callbacks, *saves, timer])  # fmt: skip
    budget_plan = plan_epochs(budget, time.monotonic() - started, timer.seconds, config.epochs)
    log(
        f"[budget] {timer.seconds:.1f} s per epoch here: epochs {budget_plan.epochs} "
        f"({budget_plan.reserve_seconds:.0f} s kept for scoring and files)"
    )
    seed_everything(config.seed)  # the probe drew random numbers; start afresh
    return budget_plan


def plan_epochs(
    budget: float, elapsed: float, per_epoch: float, preset: dict[str, int]
) -> BudgetPlan:
    """Scale the preset's epochs (same share per stage) to fill ``budget`` seconds."""
    reserve = RESERVE_SECONDS + RESERVE_SHARE * budget
    left = budget - elapsed - reserve
    if left < per_epoch * len(preset):
        raise HerbiError(
            f"--budget {budget:.0f}s is too short: {elapsed:.0f} s already went to loading data "
            f"and measuring ({per_epoch:.1f} s per epoch here), {reserve:.0f} s are kept for "
            f"scoring and files, and not one epoch per stage fits in the rest"
        )
    scale = left / (per_epoch * sum(preset.values()))
    epochs = {stage: max(1, math.floor(n * scale)) for stage, n in preset.items()}
    return BudgetPlan(*(round(v, 2) for v in (budget, elapsed, per_epoch, reserve)), epochs)
