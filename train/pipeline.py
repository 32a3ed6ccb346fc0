"""What ``herbi-train`` does once its options are read: settle the schedule, train, write the run.

A new run's folder is created only once the schedule is settled, so a refused option or budget
leaves nothing behind; ``--resume`` continues a run from what its folder recorded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import tf_keras as keras

from herbi.common.boards import limit_text, limits
from herbi.common.errors import HerbiError
from herbi.common.files import atomic_path
from herbi.common.log import Log
from herbi.common.provenance import git_commit, package_versions
from herbi.common.run_folder import RunFolder
from herbi.runtime.unknown import DEFAULT_KEEP, DEFAULT_SCORE
from herbi.train import environment as env
from herbi.train.budget import RESERVE_SECONDS, fit_budget, parse_budget
from herbi.train.data import Dataset, load_dataset
from herbi.train.manifest import (
    DataSection,
    Manifest,
    RunConfig,
    UnknownChoice,
    read_manifest,
    write_manifest,
)
from herbi.train.openset import calibrate
from herbi.train.recipe import Recipe
from herbi.train.recipes import RECIPES
from herbi.train.report import write_metrics, write_plots, write_report
from herbi.train.sizes import largest_fitting
from herbi.train.trainer import train_stages

RUNS = Path("runs")
# ``reference`` was the name of the full schedule before every recipe had one; still accepted.
PRESET_ALIASES = {"reference": "full"}


class OptionError(HerbiError):
    """A command-line option's value herbi-train cannot use; ``option`` names it."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class TrainOptions:
    """What herbi-train was asked for: its command-line options, one field each."""

    data_path: str | None  # --data: CIFAR-100 tarball or folder, or an image folder; None: download
    recipe_name: str
    preset: str | None  # None: full on a GPU, cpu elsewhere
    epochs_text: str | None
    budget_text: str | None
    seed: int
    out: Path | None  # None: runs/<date-time> (runs/latest for --resume)
    resume: bool
    strategy_name: str
    precision: str  # "auto", "float32" or "bfloat16"
    val_fraction: float
    coarse: int
    score: str = DEFAULT_SCORE  # --score: the unknown score
    outliers: Path | None = None  # --outliers: images of none of the classes
    keep: float = DEFAULT_KEEP  # --keep: known-class share its threshold keeps
    size: str | None = None  # --size: the family member; None: the recipe's default
    fits: str | None = None  # --fits: a board key (herbi.common.boards)
    max_arena: str | None = None  # --max-arena, as written (e.g. 48KB)
    max_flash: str | None = None  # --max-flash, as written


def parse_epochs(
    text: str | None, stages: tuple[str, ...], preset: dict[str, int]
) -> dict[str, int]:
    """``5`` (every stage), ``5,2,2`` (per stage in order) or ``base=5,finetune1=2``."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if all("=" in p for p in parts):
        given = dict(p.split("=", 1) for p in parts)
    elif len(parts) in (1, len(stages)):
        given = dict(zip(stages, parts * len(stages) if len(parts) == 1 else parts, strict=True))
    else:
        raise OptionError("--epochs", f"give 1 or {len(stages)} values, or stage=N pairs")
    unknown = sorted(given.keys() - set(stages))
    if unknown:
        raise OptionError("--epochs", f"unknown stage {unknown[0]!r} (stages: {', '.join(stages)})")
    try:
        epochs = {**preset, **{stage: int(value) for stage, value in given.items()}}
    except ValueError:
        raise OptionError("--epochs", f"{text!r} is not a number of epochs") from None
    if any(v < 1 for v in epochs.values()):
        raise OptionError("--epochs", "every stage needs at least 1 epoch")
    return epochs


def run(options: TrainOptions, started: float, log: Log) -> Path:
    """Train what ``options`` ask for, or resume it, into a run folder; return the folder.
    ``started`` is when the command started (``time.monotonic()``): what --budget counts from."""
    if options.recipe_name not in RECIPES:
        raise OptionError("--recipe", f"{options.recipe_name!r}; choose from {', '.join(RECIPES)}")
    if options.resume:
        return resume(RunFolder(options.out or RUNS / "latest"), options.strategy_name, log)
    recipe = RECIPES[options.recipe_name]
    recipe = recipe.sized(choose_size(options, recipe, log))
    config = settle_config(options, recipe, log)
    ds = load_dataset(options.data_path, options.val_fraction, options.seed, options.coarse)
    run, point_latest = new_run_dir(options.out, log)
    manifest = Manifest(
        " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        config,
        DataSection.of(ds, options.data_path, options.val_fraction, options.seed, options.coarse),
    )
    return train(run, recipe, ds, manifest, options.strategy_name, log, started, point_latest)


def choose_size(options: TrainOptions, recipe: Recipe, log: Log) -> str | None:
    """The family member to train: --size's, or the largest whose recorded int8 footprint fits
    --fits's board (less the reserves herbi.common.boards states) and --max-arena/--max-flash;
    None: the recipe's default. The first lines herbi-train prints say which and why."""
    limited = [o for o in ("fits", "max_arena", "max_flash") if getattr(options, o)]
    if not limited:
        if options.size is not None and options.size not in recipe.sizes:
            sizes = ", ".join(recipe.sizes)
            said = f"choose from {sizes}" if sizes else f"recipe {recipe.name} has one size"
            raise OptionError("--size", f"{options.size!r}; {said}")
        return options.size
    flag = "--" + limited[0].replace("_", "-")
    if options.size is not None:
        raise OptionError(flag, "give --size or the limits to fit, not both")
    if not recipe.sizes:
        raise OptionError(flag, f"recipe {recipe.name} has one size (the fast recipe has several)")
    try:
        limit = limits(options.fits, options.max_arena, options.max_flash)
    except HerbiError as e:
        raise OptionError(flag, str(e)) from None
    arena, flash = limit_text(limit.max_arena), limit_text(limit.max_flash)
    size = largest_fitting(recipe.sizes, limit)
    if size is None:
        smallest = min(recipe.sizes.values(), key=lambda m: m.params).footprint
        raise OptionError(flag, f"no size fits an arena of {arena} and a model "
                          f"array of {flash} (the smallest needs "
                          f"{smallest.declared_arena_bytes:,} and {smallest.flash_bytes:,} "
                          "bytes)")  # fmt: skip
    footprint = recipe.sizes[size].footprint
    log(
        f"herbi-train: size {size}, the largest that fits {options.fits or 'the limits'}: "
        f"arena {footprint.declared_arena_bytes:,} bytes (limit: {arena}), model "
        f"array {footprint.flash_bytes:,} bytes (limit: {flash}); recorded int8 "
        "footprints"
    )
    return size


def settle_config(options: TrainOptions, recipe: Recipe, log: Log) -> RunConfig:
    """The manifest's ``config`` section: preset (and why: the first line herbi-train prints),
    epochs, time budget and precision."""
    if options.preset:
        preset, why = PRESET_ALIASES.get(options.preset, options.preset), "chosen with --preset"
    elif env.gpus():
        preset, why = "full", f"a GPU is present: {recipe.schedule}"
    else:
        preset = "cpu"
        why = f"no GPU found: the short CPU schedule (pass --preset full for {recipe.schedule})"
    size = f", size {recipe.size}" if recipe.size else ""
    log(f"herbi-train: recipe {options.recipe_name}{size}, preset {preset} ({why})")
    preset_options = recipe.presets[preset]
    # What the recipe's train_set reads from its preset (e.g. max_per_class).
    train_set_options = {k: v for k, v in preset_options.items() if k not in ("epochs", "budget")}
    if options.outliers:
        if not recipe.outliers:
            raise OptionError("--outliers", f"the {recipe.name} recipe does not take outliers")
        train_set_options["outliers"] = str(Path(options.outliers).resolve())
    precision, precision_why = env.resolve_precision(options.precision, recipe.bfloat16)
    epochs_text = options.epochs_text
    budget_text = None if epochs_text else options.budget_text or preset_options.get("budget")
    if epochs_text and preset_options.get("budget"):
        log(f"herbi-train: --epochs {epochs_text} replaces the preset's time budget")
    return RunConfig(
        recipe=options.recipe_name,
        size=recipe.size,
        preset=preset,
        epochs=parse_epochs(epochs_text, recipe.stages, preset_options["epochs"]),
        seed=options.seed,
        preset_options=train_set_options,
        budget_seconds=parse_budget(budget_text) if budget_text else None,
        strategy=options.strategy_name,
        precision=precision,
        precision_reason=precision_why,
        unknown=UnknownChoice(options.score, options.keep),
    )


def new_run_dir(out: Path | None, log: Log) -> tuple[RunFolder, bool]:
    """Where this process writes a new run, and whether runs/latest is to point there."""
    if not env.is_chief():
        # Every worker runs the same steps (saving takes part in collective ops), but only the
        # chief's files are kept: the others write into a folder deleted at the end.
        log(f"herbi-train: {env.worker_name()}; the chief writes the run folder")
        return RunFolder(tempfile.mkdtemp(prefix="herbi-worker-")), False
    run_dir = out or RUNS / datetime.now().strftime("%Y%m%d-%H%M%S")
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise OptionError(
            "--out", f"{run_dir} exists and is not empty (use --resume to continue it)"
        )
    return RunFolder(run_dir), out is None


def resume(run: RunFolder, strategy_name: str, log: Log) -> Path:
    """Continue an interrupted run from its last finished stage or epoch."""
    manifest = read_manifest(run)
    if manifest.status == "finished":
        log(f"herbi-train: {run.dir} already finished; nothing to resume")
        return run.dir
    config = manifest.config
    log(f"herbi-train: resuming {run.dir} (recipe {config.recipe}, preset {config.preset})")
    recipe = RECIPES[config.recipe].sized(config.size)
    return train(run, recipe, manifest.data.load(), manifest, strategy_name, log)


def train(
    run: RunFolder,
    recipe: Recipe,
    ds: Dataset,
    manifest: Manifest,
    strategy_name: str,
    log: Log,
    started: float | None = None,
    point_latest: bool = False,
) -> Path:
    """Train into ``run``: a new run when ``started`` says when the command started, else a
    resumed one; then write the final model, metrics, plots, report and manifest."""
    config = manifest.config
    strategy = env.make_strategy(strategy_name)
    env.seed_everything(config.seed)
    manifest = replace(
        manifest,
        device=env.device_description(),
        packages=package_versions(),
        git_commit=git_commit(),
        replicas=strategy.num_replicas_in_sync,
    )
    log(f"data: {ds.source}; images per class: {ds.counts()}")
    log(
        f"device: {manifest.device}; precision {config.precision}; "
        f"strategy {strategy_name} ({strategy.num_replicas_in_sync} replica(s)); "
        f"run folder {run.dir}"
    )
    start_time = time.perf_counter()
    train_set = recipe.train_set(ds, config.preset_options, config.seed)
    deadline = None
    if started is not None:
        if config.budget_seconds:
            plan = fit_budget(recipe, ds, train_set, config, strategy, started, log)
            config = replace(config, epochs=plan.epochs)
            manifest = replace(manifest, config=config, budget=plan)
            deadline = started + plan.budget_seconds - RESERVE_SECONDS
        create(run.dir, point_latest)
    write_manifest(run, manifest)
    stages = train_stages(recipe, ds, train_set, config, deadline, run, strategy, log)
    with atomic_path(run.model) as tmp:
        shutil.copyfile(run.checkpoint(stages[-1].stage), tmp)
    model = keras.models.load_model(run.model)
    calibration = calibrate(model, ds, config.unknown.score, config.unknown.keep)
    write_metrics(run, ds, stages, calibration)
    manifest = replace(
        manifest,
        status="finished",
        wall_seconds=round(manifest.wall_seconds + time.perf_counter() - start_time, 1),
        command_seconds=None if started is None else round(time.monotonic() - started, 1),
        stage_wall_seconds={r.stage: r.wall_seconds for r in stages},
        parameters=model.count_params(),
    )
    write_plots(run, ds, stages[-1], train_set)
    write_report(run, ds, recipe, manifest, stages, calibration, model)
    write_manifest(run, manifest)
    return done(run, ds, stages[-1].test.accuracy, model, log)


def done(run: RunFolder, ds: Dataset, accuracy: float, model, log: Log) -> Path:
    """The last line: where the run is and the digest of its weights (a worker's folder goes);
    equal digests mean the same trained model (workers in sync, a seeded run repeated)."""
    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    if not env.is_chief():
        shutil.rmtree(run.dir, ignore_errors=True)
        log(f"done: {env.worker_name()}, weights sha256 {digest[:16]}")
        return run.dir
    log(
        f"done: {run.dir} — test accuracy {accuracy:.4f} ({ds.source}); weights sha256 "
        f"{digest[:16]}; see report.md"
    )
    return run.dir


def create(run_dir: Path, point_latest: bool) -> None:
    """Make the run folder; with ``point_latest``, runs/latest -> it, so `make export` /
    `make bench` find the newest run."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OptionError("--out", f"{run_dir}: cannot create ({e.strerror})") from None
    if point_latest:
        tmp = run_dir.parent / f".latest.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name)
        tmp.replace(run_dir.parent / "latest")
