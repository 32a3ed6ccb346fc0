"""``herbi-classify MODEL IMAGE_OR_DIR...``: classify image files with an exported model.

One line per image on stdout (``--json``: one JSON object per line), in argument order; an
image the model's unknown score places outside its classes says ``unknown``, with the score and
the threshold (``--accept-all``: always a class); folders are scanned recursively for image
files and quoted globs are expanded. An image that cannot be read is reported by name on stderr
and the rest still run. Exit status: 0 when every image was classified, 1 when some could not
be (or an argument matched nothing), 2 for a bad command line or a model that cannot be loaded.
"""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

import click
import numpy as np

from herbi.runtime.backends import BACKENDS
from herbi.runtime.classifier import CONTRACT, Classifier
from herbi.runtime.errors import HerbiError, ImageError
from herbi.runtime.image import image_files, to_rgb_array
from herbi.runtime.prediction import Prediction, rank
from herbi.runtime.unknown import UNKNOWN

# Images decoded and run per model call: big enough to run as a batch, small enough that
# output streams and memory stays flat on a folder of any size.
CHUNK = 64


def expand(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Arguments -> (image files in order, messages for arguments that matched nothing)."""
    files: list[str] = []
    problems: list[str] = []
    for arg in args:
        path = Path(arg)
        if path.exists():
            files.extend(_scan(path, problems))
        elif any(c in arg for c in "*?["):  # a pattern the shell left
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                problems.append(f"{arg}: no files match this pattern")
            for match in matches:
                files.extend(_scan(Path(match), problems))
        else:
            problems.append(f"{arg}: no such file or folder")
    return files, problems


def _scan(path: Path, problems: list[str]) -> list[str]:
    """A file is taken as given; a folder yields its image files, recursively and sorted."""
    if not path.is_dir():
        return [str(path)]
    found = [str(p) for p in image_files(path)]
    if not found:
        problems.append(f"{path}: folder holds no image files")
    return found


def format_line(file: str, pred: Prediction, as_json: bool) -> str:
    """``file<TAB>label 0.912, label2 0.051``, ``file<TAB>unknown (score 0.41 < threshold
    0.70); nearest: label 0.745, ...`` or one JSON object."""
    if as_json:
        return json.dumps({"file": file, **pred.to_dict()})
    ranked = ", ".join(f"{r.label} {r.probability:.3f}" for r in pred.top_k)
    if pred.unknown:
        why = f"score {pred.score:.3f} < threshold {pred.threshold:.3f}"
        return f"{file}\t{UNKNOWN} ({why}); nearest: {ranked}"
    return f"{file}\t{ranked}"


def _error(message: str) -> None:
    click.echo(f"herbi-classify: {message}", err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, metavar="IMAGE_OR_DIR...")
@click.option(
    "--top-k",
    "-k",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many classes to show per image, most probable first.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--accept-all", is_flag=True, help="Always name a class: ignore the model's unknown threshold."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads for the model (default: the backend's own).",
)
@click.option(
    "--backend",
    type=click.Choice(list(BACKENDS)),
    help="Engine (default: by the file's suffix); tflm runs a .tflite with TensorFlow Lite Micro's kernels.",
)
def main(
    model: Path,
    images: tuple[str, ...],
    top_k: int,
    as_json: bool,
    accept_all: bool,
    threads: int | None,
    backend: str | None,
):
    """Classify IMAGE_OR_DIR... (files, folders, globs) with MODEL (.tflite or .onnx)."""
    try:
        clf = Classifier.load(model, threads=threads, backend=backend)
    except HerbiError as e:  # the message names the file
        raise click.BadParameter(str(e), param_hint="MODEL") from None
    threshold = None if accept_all else clf.threshold_for(CONTRACT)
    files, problems = expand(images)
    for message in problems:
        _error(message)
    failed = 0
    for start in range(0, len(files), CHUNK):
        names, pixels = [], []
        for file in files[start : start + CHUNK]:
            try:
                pixels.append(to_rgb_array(file, clf.input_size))
                names.append(file)
            except ImageError as e:
                failed += 1
                _error(str(e))
        if not names:
            continue
        preds = rank(*clf.predict(np.stack(pixels)), clf.labels, top_k, threshold)
        click.echo("\n".join(format_line(n, p, as_json) for n, p in zip(names, preds, strict=True)))
    if failed:
        _error(f"{failed} of {len(files)} images could not be classified")
    sys.exit(1 if failed or problems or not files else 0)
