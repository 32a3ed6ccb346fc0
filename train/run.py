"""Recreate a run's dataset from its manifest, so export and benchmarks see the same splits."""

from __future__ import annotations

from pathlib import Path

from herbi.common.errors import DataError
from herbi.common.run_folder import RunFolder
from herbi.train.data import Dataset, load_dataset


def data_config(
    ds: Dataset, source: str | None, val_fraction: float, seed: int, coarse: int
) -> dict:
    return {
        "source": str(Path(source).resolve()) if source else None,
        "description": ds.source,
        "coarse": coarse,
        "val_fraction": val_fraction,
        "split_seed": seed,
        "class_names": ds.class_names,
        "fingerprint": ds.fingerprint(),
        "counts": ds.counts(),
    }


def dataset_from_config(section: dict, source: str | Path | None = None) -> Dataset:
    """Load the dataset a run used, from its manifest's data ``section`` (or ``source``
    instead, split the same way)."""
    try:
        src = source if source is not None else section["source"]
        ds = load_dataset(src, section["val_fraction"], section["split_seed"], section["coarse"])
    except KeyError as e:
        raise DataError(f"manifest data section lacks {e}") from None
    if source is None and ds.fingerprint() != section.get("fingerprint"):
        raise DataError(f"{src}: the data changed since the run (fingerprint differs)")
    return ds


def run_dataset(run_dir: Path | str, source: str | Path | None = None) -> Dataset:
    run = RunFolder(run_dir)
    manifest = run.read_manifest()
    if "data" not in manifest:
        raise DataError(f"{run.manifest}: no data section")
    return dataset_from_config(manifest["data"], source)
