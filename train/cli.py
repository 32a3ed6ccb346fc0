"""``herbi-train``: train a recipe into a run folder (models, metrics, plots, report).

    herbi-train                                   # CIFAR-100 coarse 11, cpu or full preset
    herbi-train --data ../shared/data/cifar10-animals5 --recipe fast --preset cpu
    herbi-train --resume --out runs/20261128-170000

With no ``--preset``, the recipe's ``full`` schedule runs where a GPU is present and its short
``cpu`` schedule elsewhere; the first line says which and why. This module reads the options
and prints errors; :mod:`herbi.train.pipeline` does the work.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from herbi.common.errors import HerbiError
from herbi.common.legacy_keras import quiet_tensorflow
from herbi.common.options import keep_option, score_option
from herbi.runtime.unknown import DEFAULT_KEEP, DEFAULT_SCORE


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option(
    "--data",
    "data_path",
    help="CIFAR-100 tarball or folder, or an image folder root/{train,test}/<class>/*. Default: download CIFAR-100.",
)
@click.option(
    "--recipe",
    "recipe_name",
    default="reference",
    help="reference: the study's CNN and schedule, faithfully; fast: the improved, edge-sized recipe to deploy.",
)
@click.option(
    "--size",
    help="Fast recipe: the family member to train, xs, s, m or l (docs/recipes.md). Default: l, the model herbi has always trained.",
)
@click.option(
    "--fits",
    metavar="BOARD",
    help="Fast recipe: train the largest size whose int8 model fits BOARD (e.g. stm32l432kc), its memory less a reserve for TFLM and the application; see herbi.common.boards.",
)
@click.option(
    "--max-arena",
    help="Fast recipe: train the largest size whose declared TFLite Micro arena is at most this, e.g. 48KB (with --fits: the tighter).",
)
@click.option(
    "--max-flash",
    help="Fast recipe: train the largest size whose int8 model array is at most this, e.g. 176KB (with --fits: the tighter).",
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
    help="mirrored: all local GPUs (tf.distribute.MirroredStrategy); multiworker: MultiWorkerMirroredStrategy from TF_CONFIG.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default="auto",
    help="Compute precision; auto = mixed bfloat16 for recipes that allow it where the hardware has bfloat16 units, else float32.",
)
@click.option(
    "--val-fraction",
    default=0.1,
    help="Share of each train class held out for validation (before augmentation).",
)
@click.option(
    "--coarse",
    default=11,
    help="CIFAR-100 superclass to train on (11 = large omnivores and herbivores).",
)
@score_option(
    DEFAULT_SCORE,
    "The unknown score the model's artifacts compute: cosine to the nearest class mean of the features (cos_proto), max softmax (msp) or max logit.",
)
@keep_option(
    DEFAULT_KEEP,
    "Share of known-class images the unknown threshold keeps (split-conformal on the validation images); herbi-export sets each artifact's own.",
)
@click.option(
    "--outliers",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of images of none of the classes (fast recipe): trained towards an unsure answer (Outlier Exposure), at most as many as the training images. Never use images of the classes you will test unknowns with.",
)
@click.option(
    "--verbose",
    is_flag=True,
    help="Show TensorFlow's informational start-up lines, hidden unless TF_CPP_MIN_LOG_LEVEL=0.",
)
def main(verbose: bool, **options) -> None:
    """Train an image classifier into a run folder that export and bench read."""
    started = time.monotonic()  # --budget counts the whole command, TensorFlow's start included
    quiet_tensorflow(verbose)
    from herbi.train.pipeline import OptionError, TrainOptions, run  # TensorFlow loads here

    try:
        run(TrainOptions(**options), started, click.echo)
    except HerbiError as e:
        if isinstance(e, OptionError):  # exit 2 and "Invalid value for '--x'", as click does
            raise click.BadParameter(str(e), param_hint=e.option) from None
        raise click.ClickException(str(e)) from None
