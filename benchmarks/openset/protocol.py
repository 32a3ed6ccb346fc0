"""``herbi-bench --openset``: leave-one-class-out open-set measurements, float and int8.

Each class of an image folder is held out in turn and a model trained on the others, for each
seed (``folds``); every model's float32 and int8 artifacts and its float Keras model are scored
on the known classes' test images against the held-out class, generated far-out-of-distribution
images and any further folders (``measure``); the summary gives every figure with a 95% interval
over runs (``report``). A finished run's figures are kept in its folder, so the protocol resumes
where it stopped.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from herbi.benchmarks.openset.folds import SPLITS, Protocol, export, train
from herbi.benchmarks.openset.report import (
    OpensetReport,
    RunFigures,
    RunSettings,
    summarize,
    write_report,
)
from herbi.benchmarks.timing.machine import describe, load_average
from herbi.common.far_ood import far_ood
from herbi.common.files import write_json
from herbi.common.log import Log

RUN_FIGURES = "openset.json"  # in each run folder: its figures, reused when settings match


def run_protocol(protocol: Protocol, log: Log) -> OpensetReport:
    """Every fold x seed trained, exported and measured; the summary written to ``out``."""
    from herbi.benchmarks.openset.measure import folder_images

    load_start = load_average()
    unknowns = {"far_ood": far_ood(protocol.far_ood)}
    unknowns |= {folder.name: folder_images(folder) for folder in protocol.unknowns}
    runs = [
        measured(protocol, held, seed, unknowns, log)
        for seed in protocol.seeds
        for held in protocol.held_out
    ]
    report = OpensetReport(
        protocol,
        describe(load_start),
        sorted({run.preset for run in runs}),
        sorted({run.precision for run in runs}),
        runs,
        summarize([run.artifacts for run in runs]),
        summarize([run.keras for run in runs]),
    )
    write_report(report, protocol.out)
    return report


def measured(
    protocol: Protocol, held: str, seed: int, unknowns: dict[str, np.ndarray], log: Log
) -> RunFigures:
    """One run's figures: trained, exported and scored, or read back from an earlier call."""
    from herbi.benchmarks.openset.measure import Images, artifact_rates, keras_rates
    from herbi.runtime.image import image_files, to_rgb_array
    from herbi.train.manifest import read_manifest

    run = train(protocol, held, seed, log)
    artifacts = export(run, protocol, log)
    folders = [str(folder.resolve()) for folder in protocol.unknowns]
    settings = RunSettings(protocol.keep, protocol.score, folders, protocol.far_ood)
    cache = run.dir / RUN_FIGURES
    cached = RunFigures.read(cache, settings)
    if cached is not None:
        return cached
    log(f"scoring {run.dir.name}")
    manifest = read_manifest(run)
    ds, config = manifest.data.load(), manifest.config
    # One level deep, as training reads a class folder (train.imagefolder).
    held_out = [p for s in SPLITS for p in image_files(protocol.data / s / held, recursive=False)]
    near = np.stack([to_rgb_array(p) for p in held_out])  # all of them: none seen in training
    images = Images(ds.x_val, ds.x_test, ds.y_test, {"held_out": near, **unknowns})
    keras = keras_rates(run.model, images, (ds.x_train, ds.y_train), protocol.keep)
    rates = {k: artifact_rates(p, images) for k, p in artifacts.items()}
    result = RunFigures(held, seed, str(run.dir), settings, config.preset, config.precision,
                        rates, keras)  # fmt: skip
    write_json(cache, asdict(result))
    return result
