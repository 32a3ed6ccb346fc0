"""``herbi-train``: train a recipe into a run folder (models, metrics, plots, report).

    herbi-train                                   # CIFAR-100 coarse 11, cpu or full preset
    herbi-train --data ../shared/data/cifar10-animals5 --recipe fast --preset cpu
    herbi-train --resume --out runs/20261128-170000

With no ``--preset``, the recipe's ``full`` schedule runs where a GPU is present and its short
``cpu`` schedule elsewhere; the first line says which and why.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import click

from herbi.common.errors import HerbiError
from herbi.common.run_folder import RunFolder

RUNS = Path("runs")


def parse_epochs(
    text: str | None, stages: tuple[str, ...], preset: dict[str, int]
) -> dict[str, int]:
    """``5`` (every stage), ``5,2,2`` (per stage in order) or ``base=5,finetune1=2``."""

    def bad(message: str) -> click.BadParameter:
        return click.BadParameter(message, param_hint="--epochs")

    epochs = dict(preset)
    if not text:
        return epochs
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            for p in parts:
                stage, value = p.split("=", 1)
                if stage not in stages:
                    raise bad(f"unknown stage {stage!r} (stages: {', '.join(stages)})")
                epochs[stage] = int(value)
        elif len(parts) == 1:
            epochs = dict.fromkeys(stages, int(parts[0]))
        elif len(parts) == len(stages):
            epochs = dict(zip(stages, map(int, parts), strict=True))
        else:
            raise bad(f"give 1 or {len(stages)} values, or stage=N pairs")
    except ValueError:
        raise bad(f"{text!r} is not a number of epochs") from None
    if any(v < 1 for v in epochs.values()):
        raise bad("every stage needs at least 1 epoch")
    return epochs


# ``reference`` was the name of the full schedule before every recipe had one; still accepted.
PRESET_ALIASES = {"reference": "full"}


def _choose_preset(preset: str | None, recipe, has_gpu: bool) -> tuple[str, str]:
    if preset:
        return PRESET_ALIASES.get(preset, preset), "chosen with --preset"
    if has_gpu:
        return "full", f"a GPU is present: {recipe.schedule}"
    return "cpu", f"no GPU found: the short CPU schedule (pass --preset full for {recipe.schedule})"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data",
    help="CIFAR-100 tarball or folder, or an image folder root/{train,test}/<class>/*. Default: download CIFAR-100.",
)
@click.option(
    "--recipe",
    "recipe_name",
    default="reference",
    show_default=True,
    help="reference: the study's CNN and schedule, faithfully; fast: the improved, edge-sized recipe to deploy.",
)
@click.option(
    "--preset",
    type=click.Choice(["full", "cpu", "smoke", "reference"]),
    help="full = the recipe's whole schedule (GPU; 'reference' is an old name for it), cpu = a short schedule for 2 CPU cores, smoke = seconds (tests). Default: full on a GPU, cpu elsewhere.",
)
@click.option(
    "--epochs",
    "epochs_text",
    help="Override epochs: N for every stage, N,N,N per stage, or stage=N pairs.",
)
@click.option(
    "--budget",
    "budget_text",
    help="Wall-clock time for the whole command (e.g. 10m, 600s); the epochs are sized to fit it on this machine. Default: the preset's (10m for the fast recipe's cpu preset); --epochs overrides it.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    help="Seeds data split, augmentation and weights: same seed, data and machine give the same model.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder. Default: runs/<date-time> (and runs/latest points to it).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run in --out (default runs/latest) from its last finished stage or epoch.",
)
@click.option(
    "--strategy",
    "strategy_name",
    type=click.Choice(["default", "mirrored", "multiworker"]),
    default="default",
    show_default=True,
    help="mirrored: all local GPUs (tf.distribute.MirroredStrategy); multiworker: MultiWorkerMirroredStrategy from TF_CONFIG.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default="auto",
    show_default=True,
    help="Compute precision; auto = mixed bfloat16 for recipes that allow it where the hardware has bfloat16 units, else float32.",
)
@click.option(
    "--val-fraction",
    default=0.1,
    show_default=True,
    help="Share of each train class held out for validation (before augmentation).",
)
@click.option(
    "--coarse",
    default=11,
    show_default=True,
    help="CIFAR-100 superclass to train on (11 = large omnivores and herbivores).",
)
def main(**options) -> None:
    """Train an image classifier into a run folder that export and bench read."""
    try:
        run(**options)
    except HerbiError as e:
        raise click.ClickException(str(e)) from None


def run(
    data, recipe_name, preset, epochs_text, budget_text, seed, out, resume, strategy_name,
    precision, val_fraction, coarse,
) -> Path:  # fmt: skip
    started = time.monotonic()  # before TensorFlow loads: --budget counts the whole command
    from herbi.train import environment as env
    from herbi.train.budget import parse_budget
    from herbi.train.recipes import RECIPES

    if recipe_name not in RECIPES:
        raise click.BadParameter(
            f"{recipe_name!r}; choose from {', '.join(RECIPES)}", param_hint="--recipe"
        )
    recipe = RECIPES[recipe_name]
    if resume:
        return resume_run(RunFolder(out or RUNS / "latest"), strategy_name)

    preset, why = _choose_preset(preset, recipe, bool(env.gpus()))
    click.echo(f"herbi-train: recipe {recipe_name}, preset {preset} ({why})")
    options = recipe.presets[preset]
    resolved, precision_why = env.resolve_precision(precision, recipe.bfloat16)
    budget_text = None if epochs_text else budget_text or options.get("budget")
    if epochs_text and options.get("budget"):
        click.echo(f"herbi-train: --epochs {epochs_text} replaces the preset's time budget")
    cfg = {
        "recipe": recipe_name,
        "preset": preset,
        "epochs": parse_epochs(epochs_text, recipe.stages, options["epochs"]),
        "seed": seed,
        "preset_options": {k: v for k, v in options.items() if k not in ("epochs", "budget")},
        "budget_seconds": parse_budget(budget_text) if budget_text else None,
        "strategy": strategy_name,
        "precision": resolved,
        "precision_reason": precision_why,
    }
    from herbi.train.data import load_dataset
    from herbi.train.run import data_config

    ds = load_dataset(data, val_fraction, seed, coarse)
    if env.is_chief():
        run_dir = out or RUNS / datetime.now().strftime("%Y%m%d-%H%M%S")
    else:
        # Every worker runs the same steps (saving takes part in collective ops), but only the
        # chief's files are kept: the others write into a folder deleted at the end.
        click.echo(f"herbi-train: {env.worker_name()}; the chief writes the run folder")
        out = run_dir = Path(tempfile.mkdtemp(prefix="herbi-worker-"))
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise click.BadParameter(
            f"{run_dir} exists and is not empty (use --resume to continue it)", param_hint="--out"
        )
    manifest = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "config": cfg,
        "data": data_config(ds, data, val_fraction, seed, coarse),
        "status": "running",
    }
    new = NewRun(started, point_latest=out is None)
    return _train(RunFolder(run_dir), recipe, ds, manifest, strategy_name, new=new)


def resume_run(run: RunFolder, strategy_name: str) -> Path:
    from herbi.train.recipes import RECIPES
    from herbi.train.run import dataset_from_config

    manifest = run.read_manifest()
    if manifest.get("status") == "finished":
        click.echo(f"herbi-train: {run.dir} already finished; nothing to resume")
        return run.dir
    cfg = manifest["config"]
    click.echo(f"herbi-train: resuming {run.dir} (recipe {cfg['recipe']}, preset {cfg['preset']})")
    ds = dataset_from_config(manifest["data"])
    return _train(run, RECIPES[cfg["recipe"]], ds, manifest, strategy_name)


def _train(
    run: RunFolder,
    recipe,
    ds,
    manifest: dict,
    strategy_name: str,
    new: NewRun | None = None,
) -> Path:
    """Train into ``run`` (a new run when ``new`` says when the command started, else a
    resumed one): the folder is created only once the schedule is settled, so a refused
    budget leaves nothing behind."""
    import tf_keras as keras

    from herbi.common.files import atomic_path, write_json
    from herbi.common.provenance import git_commit, package_versions
    from herbi.train import environment as env
    from herbi.train.budget import RESERVE_SECONDS
    from herbi.train.report import model_summary, write_metrics, write_plots, write_report
    from herbi.train.trainer import TrainConfig, train_stages

    cfg = manifest["config"]
    strategy = env.make_strategy(strategy_name)
    env.seed_everything(cfg["seed"])
    manifest.update(
        device=env.device_description(),
        packages=package_versions(),
        git_commit=git_commit(),
        replicas=strategy.num_replicas_in_sync,
    )
    precision = cfg.get("precision", "float32")  # runs from before --precision: float32
    click.echo(f"data: {ds.source}; images per class: {ds.counts()}")
    click.echo(
        f"device: {manifest['device']}; precision {precision}; "
        f"strategy {strategy_name} ({strategy.num_replicas_in_sync} replica(s)); "
        f"run folder {run.dir}"
    )

    start = time.perf_counter()
    data = recipe.train_set(ds, cfg["preset_options"], cfg["seed"])
    deadline = None
    if new:
        if cfg.get("budget_seconds"):
            plan = _fit_budget(recipe, ds, data, cfg, strategy, precision, new.started)
            cfg["epochs"], manifest["budget"] = plan.epochs, plan.to_dict()
            env.seed_everything(cfg["seed"])  # the probe drew random numbers; start afresh
            # What is left once scoring and files are done.
            deadline = new.started + cfg["budget_seconds"] - RESERVE_SECONDS
        _create(run.dir, new.point_latest)
    write_json(run.manifest, manifest)
    config = TrainConfig(cfg["epochs"], cfg["seed"], precision, deadline)
    stages = train_stages(recipe, ds, data, config, run, strategy, resume=new is None)
    final = recipe.stages[-1]
    with atomic_path(run.model) as tmp:
        shutil.copyfile(run.checkpoint(final), tmp)
    model = keras.models.load_model(run.model)
    metrics = write_metrics(run, ds, stages, final)
    manifest.update(
        status="finished",
        wall_seconds=round(manifest.get("wall_seconds", 0) + time.perf_counter() - start, 1),
        command_seconds=round(time.monotonic() - new.started, 1) if new else None,
        stage_wall_seconds={s: r["wall_seconds"] for s, r in stages.items()},
        parameters=model.count_params(),
    )
    write_plots(run, ds, metrics, data)
    write_report(run, ds, recipe, manifest, metrics, model_summary(model))
    write_json(run.manifest, manifest)
    accuracy, digest = stages[final]["test"]["accuracy"], weights_sha256(model)
    if not env.is_chief():
        shutil.rmtree(run.dir, ignore_errors=True)
        click.echo(f"done: {env.worker_name()}, weights sha256 {digest[:16]}")
        return run.dir
    click.echo(
        f"done: {run.dir} — test accuracy {accuracy:.4f} ({ds.source}); weights sha256 "
        f"{digest[:16]}; see report.md"
    )
    return run.dir


def _fit_budget(recipe, ds, data, cfg, strategy, precision, started):
    from herbi.train.budget import plan_epochs, probe

    first = recipe.stages[0]
    click.echo(f"[budget] {cfg['budget_seconds']:.0f} s: timing {first} on this machine")
    per_epoch = probe(recipe, ds, data, cfg["seed"], strategy, precision)
    plan = plan_epochs(cfg["budget_seconds"], time.monotonic() - started, per_epoch, cfg["epochs"])
    click.echo(
        f"[budget] {per_epoch:.1f} s per epoch here: epochs {plan.epochs} "
        f"({plan.reserve_seconds:.0f} s kept for scoring and files)"
    )
    return plan


def weights_sha256(model) -> str:
    """One digest of every weight: equal digests mean the same trained model (workers in
    sync, a seeded run repeated)."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(w.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class NewRun:
    started: float  # time.monotonic() when the command started: what --budget counts from
    point_latest: bool  # runs/latest -> this run (the default --out)


def _create(run_dir: Path, point_latest: bool) -> None:
    """Make the run folder; with ``point_latest``, runs/latest -> it, so `make export` /
    `make bench` find the newest run."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise click.BadParameter(
            f"{run_dir}: cannot create ({e.strerror})", param_hint="--out"
        ) from None
    if point_latest:
        tmp = run_dir.parent / f".latest.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name)
        tmp.replace(run_dir.parent / "latest")
