"""What a benchmark reads from a run folder, copied at the start so it cannot change underneath.

herbi-export or herbi-train may rewrite a run folder while a benchmark of it is going. A
rejected artifact (``*.rejected``) is measured too: what a format loses is what a reader wants
to see; its copy carries the name the runtime expects.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from herbi.common.errors import BenchError
from herbi.common.files import read_json
from herbi.common.run_folder import RunFolder
from herbi.export.artifacts import REJECTED
from herbi.export.calibration import calibration_indices
from herbi.export.evidence import ParityImages, parity_images
from herbi.export.formats import FORMATS
from herbi.runtime.contract import sha256_file


@dataclass(frozen=True)
class Snapshot:
    """One artifact as measured: where it came from, the copy, the digest of its model file
    (for a folder artifact, the model inside), export's verdict."""

    source: Path
    path: Path
    model: Path  # the copy's model file
    source_model: Path
    sha256: str
    rejected: list[str] | None = None

    def changed(self) -> bool:
        """Whether the run folder's model file is gone or differs from what was measured."""
        return not self.source_model.is_file() or sha256_file(self.source_model) != self.sha256


def copy_model(
    source: Path,
    path: Path,
    files: list[Path],
    rejected: list[str] | None = None,
    model=lambda path: path,
) -> Snapshot:
    """Copy an artifact's ``files`` (the model or folder first, then e.g. its TFLite sidecar)
    to ``path``; ``model`` maps an artifact to its model file."""
    suffix = REJECTED if rejected else ""
    for f in files:
        original = source.parent / (f.name + suffix)
        if original.is_dir():
            shutil.copytree(original, f)
        elif original.is_file():  # a missing sidecar fails at load, in the format's row
            shutil.copyfile(original, f)
    return Snapshot(source, path, model(path), model(source), sha256_file(model(path)), rejected)


@dataclass(frozen=True)
class ExportedRun:
    """A run folder with its Keras model and its export folder, checked before measuring."""

    run: RunFolder
    export_report: dict
    calibration_images: int  # what export's gate judged on, as its report records it
    parity_train_images: int

    def parity_images(self, dataset) -> ParityImages:
        """The images export's gate measured agreement on: validation, then train images."""
        calibration = calibration_indices(dataset.y_train, self.calibration_images)
        return parity_images(dataset, calibration, self.parity_train_images)

    @classmethod
    def open(cls, run_dir: Path | str) -> ExportedRun:
        run = RunFolder(Path(run_dir))
        if not run.dir.is_dir():
            raise BenchError(f"{run.dir}: no such run folder (--run)")
        if not run.model.is_file():
            raise BenchError(f"{run.dir}: not a run folder (no {run.model.name} inside)")
        if not run.export_report.is_file():
            raise BenchError(
                f"{run.dir}: nothing exported yet (no {run.export.name}/{run.export_report.name});"
                f" run herbi-export --model {run.dir} --format all first"
            )
        report = read_json(run.export_report)
        try:
            return cls(
                run, report, report["calibration"]["images"], report["gate"]["parity_train_images"]
            )
        except (KeyError, TypeError):
            raise BenchError(f"{run.export_report}: not an export report; export again") from None

    def locate(self, name: str) -> tuple[Path, list[str] | None] | None:
        """The artifact file of format ``name`` and, if export's gate rejected it, why; None
        when the format was not exported at all."""
        path = self.run.export / FORMATS[name].filename
        if path.exists():
            return path, None
        rejected = path.with_name(path.name + REJECTED)
        if not rejected.exists():
            return None
        entry = self.export_report.get("artifacts", {}).get(name, {})
        return rejected, entry.get("reasons") or [f"marked {REJECTED} by herbi-export"]

    def not_exported(self, name: str) -> str:
        return f"not exported (no {FORMATS[name].filename} in {self.run.export})"

    def snapshot(self, formats: list[str], folder: Path) -> dict[str, Snapshot | None]:
        """Copies of the Keras model (key ``"keras"``) and of each format's artifact (None if
        it was not exported), all taken now, before anything is measured."""
        folder.mkdir(parents=True, exist_ok=True)
        keras = folder / self.run.model.name
        copies: dict[str, Snapshot | None] = {"keras": copy_model(self.run.model, keras, [keras])}
        for name in formats:
            found, fmt = self.locate(name), FORMATS[name]
            path = folder / fmt.filename
            copies[name] = found and copy_model(
                found[0], path, fmt.files(path), found[1], fmt.model
            )
        return copies
