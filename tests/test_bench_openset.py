"""herbi-bench --openset on three classes of the stand-in: 2 folds x 1 seed, smoke preset.

The protocol runs once (module fixture) and each test checks one property of what it wrote:
the report's fields and ranges, the float32 artifact agreeing with the float Keras model under
the same score, far-out-of-distribution images telling feature scores from max softmax, and
a second call reusing every finished run. Bad input needs no training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from herbi.benchmarks.cli import main
from herbi.benchmarks.openset.folds import ARTIFACTS
from herbi.benchmarks.openset.measure import KERAS_SCORES

CLASSES = ("bird", "cat", "deer")
HELD_OUT = "bird,deer"


def three_classes(animals5: Path, root: Path) -> Path:
    """An image folder of three of the stand-in's classes (symlinked, not copied)."""
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        for name in CLASSES:
            (root / split / name).symlink_to(animals5 / split / name)
    return root


def protocol(data: Path, out: Path, *extra: str):
    args = ["--openset", str(data), "--classes", HELD_OUT, "--seeds", "0", "--preset", "smoke"]
    return CliRunner().invoke(main, [*args, "--epochs", "6", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def openset(animals5, cifar100_samples, tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("openset")
    data = three_classes(animals5, root / "data")
    result = protocol(data, root / "out", "--unknowns", str(cifar100_samples))
    assert result.exit_code == 0, result.output
    return data, root / "out", json.loads((root / "out" / "openset.json").read_text())


@pytest.mark.slow
def test_report_has_every_run_row_and_rate(openset):
    _, out, report = openset
    assert [(r["held_out"], r["seed"]) for r in report["runs"]] == [("bird", 0), ("deer", 0)]
    assert list(report["artifacts"]) == list(ARTIFACTS)
    assert list(report["keras"]) == list(KERAS_SCORES)
    sets = {"held_out", "far_ood", "cifar100-samples"}
    for run in report["runs"]:
        for rates in [*run["artifacts"].values(), *run["keras"].values()]:
            assert set(rates["rejected"]) == sets
            values = [rates["auroc"], rates["kept"], rates["accuracy"], *rates["rejected"].values()]
            assert all(0 <= v <= 1 for v in values)
    for row in [*report["artifacts"].values(), *report["keras"].values()]:
        assert all(f["n"] == 2 and f["half_width"] >= 0 for f in row.values())
    md = (out / "openset.md").read_text()
    assert "| figure | tflite-float32 | tflite-int8 |" in md
    assert all(f"| {score} |" in md for score in KERAS_SCORES)


@pytest.mark.slow
def test_float_artifact_matches_the_keras_score_it_carries(openset):
    """The float32 artifact computes cos_proto in its graph, thresholded at export through
    LiteRT; the bench's numpy cos_proto on Keras features must give the same threshold."""
    _, _, report = openset
    for run in report["runs"]:
        artifact, keras = run["artifacts"]["tflite-float32"], run["keras"]["cos_proto"]
        assert artifact["threshold"] == pytest.approx(keras["threshold"], abs=1e-4)
        assert artifact["accuracy"] == pytest.approx(keras["accuracy"], abs=0.01)


@pytest.mark.slow
def test_feature_score_rejects_far_ood_that_max_softmax_keeps(openset):
    """Noise, flat colours, textures and text: max softmax keeps most of them even on a
    trained model (docs/openset.md: 5% rejected against 93%); the smoke models already show
    the gap (about 4x here), asserted as 2x on the mean and a win on every run."""
    _, _, report = openset
    for run in report["runs"]:
        far = {k: run["keras"][k]["rejected"]["far_ood"] for k in ("cos_proto", "msp")}
        assert far["cos_proto"] > far["msp"], (run["held_out"], far)
    mean = {k: report["keras"][k]["rejected far_ood"]["mean"] for k in ("cos_proto", "msp")}
    assert mean["cos_proto"] >= 2 * mean["msp"], mean


@pytest.mark.slow
def test_second_call_reuses_finished_runs(openset, cifar100_samples):
    data, out, report = openset
    logs = sorted((out / "logs").iterdir())
    stamps = [p.stat().st_mtime_ns for p in logs]
    result = protocol(data, out, "--unknowns", str(cifar100_samples))
    assert result.exit_code == 0, result.output
    assert "training without" not in result.output and "exporting" not in result.output
    assert [p.stat().st_mtime_ns for p in logs] == stamps
    assert json.loads((out / "openset.json").read_text())["runs"] == report["runs"]


def test_bad_input_is_one_line_naming_the_argument(animals5, tmp_path):
    data = tmp_path / "two"
    for split in ("train", "test"):
        (data / split).mkdir(parents=True)
        for name in CLASSES[:2]:
            (data / split / name).symlink_to(animals5 / split / name)
    for args, words in (
        (["--openset", str(tmp_path / "none")], "--openset"),
        (["--openset", str(data)], "2 classes"),
        (["--openset", str(animals5), "--classes", "cow"], "--classes: 'cow'"),
        (["--openset", str(animals5), "--unknowns", str(tmp_path / "none")], "--unknowns"),
    ):
        result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert result.output.count("\n") == 1 and words in result.output, result.output
    assert not (tmp_path / "out").exists()
