"""Shared fixtures: the real datasets in ../shared/data and a tiny run trained in seconds.

``tiny_run`` is a genuine run folder (``model.keras`` + ``manifest.json``) holding a small CNN
trained for a few seconds on the real stand-in images, so export, runtime and benchmark tests
exercise real conversions on a model that has learned something (not one constant class).

Every test that trains or converts is marked ``slow`` here, so ``pytest -m "not slow"`` is the
quick subset: those that use a trained fixture, and those in files that train in their tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from herbi.common.legacy_keras import use_legacy_keras

use_legacy_keras()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the commands tests start quiet at any level

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HERBI_SHARED_DATA", REPO.parent / "shared" / "data"))
ANIMALS5 = SHARED_DATA / "cifar10-animals5"
CIFAR100_SAMPLES = SHARED_DATA / "cifar100-samples"


# Fixtures that train a model (or export a trained one); a test using one, directly or through
# another fixture, trains or converts.
TRAINED_FIXTURES = {"tiny_run", "tiny_artifacts", "smoke_run", "fast_run"}
# Files whose tests also train or convert without those fixtures (their own tiny models,
# herbi-train in a subprocess).
TRAINING_FILES = {"test_train.py", "test_recipes.py", "test_tflm.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TRAINED_FIXTURES & set(item.fixturenames) or item.path.name in TRAINING_FILES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def animals5() -> Path:
    if not (ANIMALS5 / "train").is_dir():
        pytest.skip(f"real stand-in dataset not found at {ANIMALS5} (see shared/data/README.md)")
    return ANIMALS5


@pytest.fixture(scope="session")
def cifar100_samples() -> Path:
    if not CIFAR100_SAMPLES.is_dir():
        pytest.skip(f"CIFAR-100 sample images not found at {CIFAR100_SAMPLES}")
    return CIFAR100_SAMPLES


def train_tiny_model(ds, epochs: int = 8, seed: int = 0):
    """A ~15k-parameter CNN, BN momentum 0.9 so a few epochs give a meaningful model."""
    import tf_keras as keras
    from tf_keras import layers

    from herbi.runtime.contract import float_input

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3), name="image"),
            layers.Conv2D(16, 3, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
            layers.GlobalAveragePooling2D(),
            layers.Dense(ds.num_classes, activation="softmax", name="probabilities"),
        ],
        name="tiny_cnn",
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(float_input(ds.x_train), ds.y_train, batch_size=64, epochs=epochs, verbose=0)
    return model


@pytest.fixture(scope="session")
def fast_run(tmp_path_factory, animals5) -> tuple[Path, str]:
    """herbi-train's fast recipe, smoke preset: a real run folder of the deployed architecture
    (10 convolutions, 3 residual adds, 3 max-pools), and what the command printed."""
    from click.testing import CliRunner

    from herbi.train.cli import main

    out = tmp_path_factory.mktemp("runs") / "fast-smoke"
    args = ["--recipe", "fast", "--preset", "smoke", "--seed", "3", "--out", str(out)]
    result = CliRunner().invoke(main, ["--data", str(animals5), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, animals5) -> Path:
    """A run folder like herbi-train's: model.keras + manifest.json."""
    from herbi.common.run_folder import RunFolder
    from herbi.train.data import load_dataset
    from herbi.train.manifest import DataSection, Manifest, RunConfig, write_manifest

    run = RunFolder(tmp_path_factory.mktemp("tiny_run"))
    ds = load_dataset(animals5, val_fraction=0.1, seed=0)
    model = train_tiny_model(ds)
    model.save(run.model)
    config = RunConfig("tiny-test", "smoke", {"train": 8}, 0, {}, "default")
    write_manifest(run, Manifest("tiny", config, DataSection.of(ds, str(animals5), 0.1, 0, 11)))
    return run.dir


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_run) -> Path:
    """``tiny_run`` exported once to every registry format: the run's ``export/`` folder.

    Holds ``<format>.tflite`` + ``<format>.json`` sidecars, ``<format>.onnx`` and
    ``export_report.json``. The gate is off so every artifact is on disk under its normal
    name whatever the tiny model's numbers; QAT gets one epoch on a train subset. Agreement is
    measured on the validation split and 250 train images (not all 2,050 outside calibration):
    every format, herbi-bench included, runs the parity images, and the tests compare those
    figures with each other and with recomputations, which holds at any sample size.
    """
    from herbi.common.run_folder import RunFolder
    from herbi.export.api import ExportOptions, export_model
    from herbi.export.formats import FORMATS
    from herbi.export.gate import GateOptions
    from herbi.export.source import load_source

    out = RunFolder(tiny_run).export
    options = ExportOptions(list(FORMATS), calibration_size=200, gate=False,
                            gate_options=GateOptions(train_images=250), qat_epochs=1,
                            qat_samples=800)  # fmt: skip
    export_model(load_source(tiny_run), out, options, log=lambda *_: None)
    return out
