"""``herbi-classify``: output per image, folder and glob expansion, bad files, exit status."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from herbi.runtime import Classifier
from herbi.runtime.cli import CHUNK, main


def run(*args: str | Path):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def model(tiny_artifacts) -> Path:
    return tiny_artifacts / "tflite-int8.tflite"


def test_one_line_per_image_matching_the_library(model, cifar100_samples):
    result = run(model, cifar100_samples, "--top-k", "2")
    assert result.exit_code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    files = sorted(str(p) for p in cifar100_samples.glob("*.png"))
    assert [line.split("\t")[0] for line in lines] == files
    preds = Classifier.load(model).classify(files, top_k=2)
    assert 0 < sum(p.unknown for p in preds) < len(preds)  # CIFAR-100 images: some rejected
    for line, pred in zip(lines, preds, strict=True):
        answer = line.split("\t")[1]
        if pred.unknown:
            assert answer.startswith(f"unknown (score {pred.score:.3f} < threshold ")
            answer = answer.split("; nearest: ")[1]
        ranked = answer.split(", ")
        assert [r.split(" ")[0] for r in ranked] == [r.label for r in pred.top_k]
        assert float(ranked[0].split(" ")[1]) == pytest.approx(pred.probability, abs=5e-4)


def test_json_lines_over_more_than_one_chunk(tiny_artifacts, animals5):
    folder = animals5 / "test" / "bird"
    files = sorted(str(p) for p in folder.iterdir())
    assert len(files) > CHUNK  # the folder runs as two model batches
    model = tiny_artifacts / "onnx-int8.onnx"
    result = run(model, folder, "--json", "-k", "3", "--threads", "1")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == files
    preds = Classifier.load(model).classify(files, top_k=3)
    assert [r["index"] for r in records] == [p.index for p in preds]
    for record in records:
        assert record["top_k"][0]["label"] == record["label"] or record["unknown"]
        assert record["unknown"] == (record["score"] < record["threshold"])
        probs = [k["probability"] for k in record["top_k"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)


@pytest.fixture
def tree(tmp_path, cifar100_samples) -> Path:
    """tmp/a/{x.png, notes.txt, b/y.jpg, b/z.PNG}."""
    src = sorted(cifar100_samples.glob("*.png"))
    (tmp_path / "a" / "b").mkdir(parents=True)
    shutil.copy(src[0], tmp_path / "a" / "x.png")
    Image.open(src[1]).save(tmp_path / "a" / "b" / "y.jpg")
    shutil.copy(src[2], tmp_path / "a" / "b" / "z.PNG")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    return tmp_path / "a"


def classified(result) -> list[str]:
    return [Path(line.split("\t")[0]).name for line in result.stdout.splitlines()]


def test_folders_expand_recursively_and_globs_expand(model, tree):
    assert classified(run(model, tree)) == ["y.jpg", "z.PNG", "x.png"]  # notes.txt skipped
    assert classified(run(model, f"{tree}/**/*.jpg")) == ["y.jpg"]
    assert classified(run(model, f"{tree}/*.png", tree / "b" / "y.jpg")) == ["x.png", "y.jpg"]


def test_unreadable_images_are_named_on_stderr_and_the_rest_run(model, tree):
    (tree / "broken.jpg").write_text("I am text")
    (tree / "empty.png").write_bytes(b"")
    good = (tree / "x.png").read_bytes()
    (tree / "cut.png").write_bytes(good[: len(good) // 2])
    result = run(model, tree, tree / "missing.png", f"{tree}/*.webp")
    assert result.exit_code == 1
    assert classified(result) == ["y.jpg", "z.PNG", "x.png"]
    err = result.stderr
    for name in ("broken.jpg", "empty.png", "cut.png", "missing.png", "*.webp"):
        assert name in err
    assert "3 of 6 images could not be classified" in err
    assert "Traceback" not in err


def test_an_explicit_file_is_tried_whatever_its_name(model, tree):
    result = run(model, tree / "notes.txt", tree / "x.png")
    assert result.exit_code == 1
    assert "notes.txt: not an image" in result.stderr
    assert classified(result) == ["x.png"]


def test_empty_folder_is_an_error(model, tmp_path):
    result = run(model, tmp_path)
    assert result.exit_code == 1 and "holds no image files" in result.stderr


def test_bad_model_or_arguments_exit_2(tmp_path, model, tree):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    result = run(bad, tree)
    assert result.exit_code == 2 and "bad.onnx: not a valid ONNX model" in result.stderr
    assert run(tmp_path / "nope.tflite", tree).exit_code == 2
    assert run(model).exit_code == 2  # no images given
    assert run(model, tree, "--threads", "0").exit_code == 2
    assert run(model, tree, "--top-k", "0").exit_code == 2


def test_console_script_keeps_stderr_clean(model, cifar100_samples):
    """The installed entry point; LiteRT's INFO banner must not reach stderr."""
    script = Path(sys.executable).with_name("herbi-classify")
    sample = sorted(cifar100_samples.glob("*.png"))[6]
    done = subprocess.run(
        [script, model, sample, "--json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["file"] == str(sample)
