"""The run folder's layout, owned in one place: every stage names its files through it.

``herbi-train`` writes a run folder, ``herbi-export`` adds ``export/`` and ``herbi-bench``
adds ``bench/``; each reads what the stage before wrote. No other module spells a file name
that another stage reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXPORT_REPORT = "export_report.json"  # in any export folder, a run's or a bare model's


@dataclass(frozen=True)
class RunFolder:
    """``runs/<date-time>/`` and the files train, export and bench exchange through it."""

    dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "dir", Path(self.dir))

    @property
    def model(self) -> Path:
        """The final float32 Keras model that export and bench start from."""
        return self.dir / "model.keras"

    def checkpoint(self, stage: str) -> Path:
        """The best model of one training stage."""
        return self.dir / f"{stage}.keras"

    def backup(self, stage: str | None = None) -> Path:
        """``BackupAndRestore``'s folder (per stage), removed once a stage is done."""
        root = self.dir / "backup"
        return root / stage if stage else root

    manifest = property(lambda self: self.dir / "manifest.json")
    state = property(lambda self: self.dir / "state.json")
    history = property(lambda self: self.dir / "history.csv")
    metrics = property(lambda self: self.dir / "metrics.json")
    report = property(lambda self: self.dir / "report.md")
    export = property(lambda self: self.dir / "export")
    export_report = property(lambda self: self.dir / "export" / EXPORT_REPORT)
    bench = property(lambda self: self.dir / "bench")

    def plot(self, name: str) -> Path:
        """``curves``, ``confusion``, ``samples`` or ``augmented`` -> its PNG."""
        return self.dir / f"{name}.png"
