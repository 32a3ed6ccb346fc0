"""The open-set protocol's models: one per held-out class and seed, trained and exported.

Each fold is an image folder of every class but the held-out one (symlinks to the source's
``train/<class>`` and ``test/<class>``, so nothing is copied), kept in the output folder
because a run's manifest names its data and export rebuilds the splits from it. Training runs
``herbi-train`` in a fresh interpreter, one at a time: the trainer sets process-wide state
(precision policy, seeds) and the CPU is better spent on one training than shared by two.
A run or export already finished in the output folder is reused, so an interrupted protocol
continues where it stopped.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from herbi.common.errors import BenchError
from herbi.common.log import Log
from herbi.common.run_folder import RunFolder
from herbi.train.manifest import read_manifest

FAR_OOD = 200  # generated images, a quarter of each kind
ARTIFACTS = ("tflite-float32", "tflite-int8")  # float and int8, through the same runtime
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Protocol:
    """What ``herbi-bench --openset`` was asked for (its options of the same names)."""

    data: Path  # an image folder: train/<class>/ and test/<class>/
    held_out: tuple[str, ...]  # the classes each fold holds out, in turn
    seeds: tuple[int, ...]
    epochs: int  # a fixed count: the same schedule on every machine
    preset: str | None  # herbi-train's --preset (None: its default)
    keep: float  # the share of known-class images each threshold keeps
    score: str  # the unknown score the artifacts compute
    unknowns: tuple[Path, ...] = ()  # further folders of images of no known class
    out: Path = Path("openset")
    far_ood: int = FAR_OOD  # generated far-out-of-distribution images each run is scored on

    def run_dir(self, held: str, seed: int) -> Path:
        return self.out / "runs" / f"{held}-{seed}"


def classes_of(data: Path) -> list[str]:
    """The class folders of ``data/train`` (each also in ``data/test``); errors name --openset."""
    missing = [s for s in SPLITS if not (data / s).is_dir()]
    if missing:
        raise BenchError(f"--openset {data}: no {missing[0]}/ folder (expected train/ and test/)")
    classes = sorted(d.name for d in (data / "train").iterdir() if d.is_dir())
    absent = [c for c in classes if not (data / "test" / c).is_dir()]
    if absent:
        raise BenchError(f"--openset {data}: test/ lacks class folders {absent}")
    if len(classes) < 3:
        raise BenchError(
            f"--openset {data}: {len(classes)} classes; holding one out needs at least 3"
        )
    return classes


def fold_data(protocol: Protocol, held: str) -> Path:
    """``<out>/folds/without-<held>``: the source folder less one class, as symlinks."""
    fold = protocol.out / "folds" / f"without-{held}"
    for split in SPLITS:
        for source in sorted((protocol.data / split).iterdir()):
            link = fold / split / source.name
            if source.is_dir() and source.name != held and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source.resolve(), target_is_directory=True)
    return fold


def train(protocol: Protocol, held: str, seed: int, log: Log) -> RunFolder:
    """Train one fold's model with herbi-train: skipped when the run has finished, resumed
    (``--resume``) when an earlier call was interrupted."""
    run = RunFolder(protocol.run_dir(held, seed))
    started = run.manifest.is_file()
    if started:
        check_settings(run, protocol)
        if read_manifest(run).status == "finished":
            return run
    exe = Path(sys.executable).parent / "herbi-train"
    if not exe.is_file():
        raise BenchError(f"{exe}: not found (install herbi with its train extra)")
    logfile = protocol.out / "logs" / f"train-{held}-{seed}.txt"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    log(f"training without {held}, seed {seed} (log: {logfile})")
    args = ["--resume"] if started else train_args(protocol, held, seed)
    with logfile.open("a" if started else "w") as f:
        proc = subprocess.run([exe, *args, "--out", str(run.dir)], stdout=f, stderr=f)
    if proc.returncode != 0:
        last = logfile.read_text().strip().splitlines() or ["no output"]
        raise BenchError(f"herbi-train without {held}, seed {seed} failed: {last[-1]}")
    return run


def train_args(protocol: Protocol, held: str, seed: int) -> list[str]:
    """herbi-train's options for one fold (the fast recipe: the model herbi deploys)."""
    args = ["--recipe", "fast", "--seed", str(seed), "--epochs", str(protocol.epochs)]
    args += ["--data", str(fold_data(protocol, held))]
    return args + (["--preset", protocol.preset] if protocol.preset else [])


def check_settings(run: RunFolder, protocol: Protocol) -> None:
    """A run is reused (or resumed) only if it was trained as this protocol asks."""
    config = read_manifest(run).config
    epochs = config.epochs.get("train")
    if epochs != protocol.epochs or (protocol.preset and config.preset != protocol.preset):
        raise BenchError(
            f"{run.dir}: trained with preset {config.preset}, {epochs} epochs; "
            "choose another --out for other settings"
        )


def export(run: RunFolder, protocol: Protocol, log: Log) -> dict[str, Path]:
    """The run's float32 and int8 artifacts, exported as ``herbi-export --no-check`` would
    (skipped when both exist with this protocol's score and keep): format -> model file."""
    from herbi.export.api import ExportOptions, export_model
    from herbi.export.formats import FORMATS
    from herbi.export.source import load_source
    from herbi.runtime import Classifier

    paths = {name: FORMATS[name].model(run.export / FORMATS[name].filename) for name in ARTIFACTS}
    wanted = (protocol.score, protocol.keep)

    def current(path: Path) -> bool:
        unknown = path.is_file() and Classifier.load(path).unknown
        return bool(unknown) and (unknown.score, unknown.keep) == wanted

    if not all(current(p) for p in paths.values()):
        log(f"exporting {run.dir.name}: {', '.join(ARTIFACTS)}")
        options = ExportOptions(
            list(ARTIFACTS), parity_check=False, score=protocol.score, keep=protocol.keep
        )
        report = export_model(load_source(run.dir), run.export, options, log=lambda _: None)
        failed = report.names("failed")
        if failed:
            reason = report.artifacts[failed[0]].reasons[0]
            raise BenchError(f"{run.dir}: export failed: {reason}")
    return paths
