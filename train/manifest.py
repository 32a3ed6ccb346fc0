"""``manifest.json``: what a run was asked for and what it used, written and read here alone.

herbi-train writes it; herbi-export and herbi-bench read it to rebuild the very splits the run
used and the unknown score it chose. Every default for a field an older run lacks lives here,
once, as a dataclass default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from herbi.common.errors import DataError
from herbi.common.files import from_json, read_json, write_json
from herbi.common.run_folder import RunFolder
from herbi.runtime.unknown import DEFAULT_KEEP, DEFAULT_SCORE
from herbi.train.data import Dataset, load_dataset


@dataclass(frozen=True)
class UnknownChoice:
    """The unknown score an artifact computes and the known-image share its threshold keeps."""

    score: str = DEFAULT_SCORE
    keep: float = DEFAULT_KEEP


@dataclass(frozen=True)
class BudgetPlan:
    """What ``--budget`` bought on this machine; shown in report.md."""

    budget_seconds: float
    elapsed_before_training: float
    probe_seconds_per_epoch: float
    reserve_seconds: float
    epochs: dict[str, int]


@dataclass(frozen=True)
class RunConfig:
    """The schedule herbi-train settled on before training: preset, epochs, budget, precision."""

    recipe: str
    preset: str
    epochs: dict[str, int]
    seed: int
    preset_options: dict[str, Any]  # what the recipe's train_set reads (e.g. max_per_class)
    strategy: str
    size: str | None = None  # None: the recipe's default size (runs from before --size)
    budget_seconds: float | None = None
    precision: str = "float32"  # runs from before --precision trained in float32
    precision_reason: str = "the default"
    unknown: UnknownChoice = UnknownChoice()


@dataclass(frozen=True)
class DataSection:
    """Where the images came from and how they were split: enough to rebuild every split."""

    source: str | None  # None: CIFAR-100 downloaded
    description: str
    coarse: int
    val_fraction: float
    split_seed: int
    class_names: list[str]
    fingerprint: str
    counts: dict[str, dict[str, int]]

    @classmethod
    def of(cls, ds: Dataset, source: str | None, val_fraction: float, seed: int, coarse: int):
        """The section for ``ds``, loaded from ``source`` with these split settings."""
        where = str(Path(source).resolve()) if source else None
        return cls(where, ds.source, coarse, val_fraction, seed, ds.class_names,
                   ds.fingerprint(), ds.counts())  # fmt: skip

    def load(self, source: str | Path | None = None) -> Dataset:
        """The run's dataset, split as it was (from ``source`` instead, split the same way);
        its own source must still hold the same images."""
        src = source if source is not None else self.source
        ds = load_dataset(src, self.val_fraction, self.split_seed, self.coarse)
        if source is None and ds.fingerprint() != self.fingerprint:
            raise DataError(f"{src}: the data changed since the run (fingerprint differs)")
        return ds


@dataclass(frozen=True)
class Manifest:
    """A run's manifest; ``status`` is ``running`` until the final model is written."""

    command: str
    config: RunConfig
    data: DataSection
    status: str = "running"
    device: str | None = None
    packages: dict[str, str] | None = None
    git_commit: str | None = None
    replicas: int | None = None
    budget: BudgetPlan | None = None
    wall_seconds: float = 0.0  # training time over every session of a resumed run
    command_seconds: float | None = None
    stage_wall_seconds: dict[str, float] | None = None
    parameters: int | None = None


def write_manifest(run: RunFolder, manifest: Manifest) -> None:
    write_json(run.manifest, asdict(manifest))


def read_manifest(run: RunFolder) -> Manifest:
    """The run's manifest; a missing or malformed field is one error naming the file."""
    try:
        return from_json(Manifest, read_json(run.manifest))
    except (KeyError, TypeError, AttributeError) as e:
        raise DataError(
            f"{run.manifest}: not a herbi run manifest ({type(e).__name__}: {e})"
        ) from None


def run_dataset(run_dir: Path | str, source: str | Path | None = None) -> Dataset:
    """The dataset run ``run_dir`` trained on (or ``source``, split the same way)."""
    return read_manifest(RunFolder(run_dir)).data.load(source)
