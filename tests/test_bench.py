"""herbi-bench on the tiny run and its real artifacts: report structure and consistent figures.

The benchmark runs once with ``--quick`` (module fixture) and every test checks one property
of what it wrote against the files, a recomputation through herbi.runtime, or the report's
own other figures. Failures are exercised on copies of the run: a truncated artifact, a
missing folder, options it cannot use.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from herbi.benchmarks.cli import main
from herbi.export.formats import FORMATS
from herbi.runtime import Classifier
from herbi.runtime.contract import sha256_file

pytestmark = pytest.mark.slow

KERAS_ROWS = ("keras", "keras-predict")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(tiny_run: Path, export: Path, folder: Path) -> Path:
    """A run folder sharing the tiny run's model and manifest, with ``export`` as its export/."""
    folder.mkdir()
    for name in ("model.keras", "manifest.json"):
        (folder / name).symlink_to(tiny_run / name)
    (folder / "export").symlink_to(export)
    return folder


def bench(*args: str):
    return CliRunner().invoke(main, ["--quick", *args])


@pytest.fixture(scope="module")
def benched(tiny_run, tiny_artifacts, tmp_path_factory) -> tuple[Path, dict, object]:
    run = make_run(tiny_run, tiny_artifacts, tmp_path_factory.mktemp("bench") / "run")
    result = bench("--run", str(run), "--threads", "1")
    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads((run / "bench" / "report.json").read_text())
    return run, report, result


@pytest.fixture(scope="module")
def test_split(tiny_run):
    from herbi.train.manifest import run_dataset

    ds = run_dataset(tiny_run)
    return ds.x_test, ds.y_test


def timings(report: dict):
    for row in report["rows"].values():
        for threads, t in row["timing"].items():
            yield row["name"], threads, t


def test_writes_every_file_and_a_row_per_format(benched):
    run, report, result = benched
    out = run / "bench"
    for png in ("accuracy_vs_latency.png", "size.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    assert set(report["rows"]) == {*KERAS_ROWS, *FORMATS}
    assert all(r["status"] == "ok" for r in report["rows"].values())
    assert report["failed"] == report["skipped"] == []
    md = (out / "report.md").read_text()
    summary = md.split("## Summary", 1)[1].split("\n\n")[1].splitlines()
    names = [line.split("|")[1].strip().strip("*") for line in summary[2:]]
    assert names[:-1] == [*KERAS_ROWS, *FORMATS]
    assert names[-1].startswith("study, published")  # the reference row, marked as such
    assert "not on CIFAR-100" in md and "not on CIFAR-100" in result.stdout
    assert "| tflite-int8 |" in result.stdout  # the table is also printed
    assert "Fastest artifact that passed export's gate on " in result.stdout
    for text in (result.output, md):  # each finding once, on screen and in the report
        assert text.count("onnx-int8 against onnx-float32 (batch-1 p50)") == 1


def test_header_names_machine_packages_and_data(benched, tiny_run):
    _, report, _ = benched
    m = report["machine"]
    assert m["cpu"] and m["usable_cpus"] >= 1 and isinstance(m["isa"], list)
    assert {"onnxruntime", "ai-edge-litert", "tensorflow", "numpy"} <= set(report["packages"])
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert report["dataset"]["fingerprint"] == manifest["data"]["fingerprint"]
    assert report["dataset"]["same_as_run"] and report["dataset"]["images"] == 500
    assert report["model_complexity"]["macs_per_image"] > 0
    assert report["settings"]["threads"][0] == 1 and report["settings"]["quick"]


def test_sizes_are_the_files_sizes(benched):
    run, report, _ = benched
    keras_bytes = (run / "model.keras").stat().st_size
    assert report["changed_during_run"] == []
    for name, row in report["rows"].items():
        model = FORMATS[name].model(run / row["file"]) if name in FORMATS else run / row["file"]
        assert row["sha256"] == sha256_file(model)
        size = model.stat().st_size
        assert row["size_bytes"] == size
        assert row["size_kb"] == pytest.approx(size / 1024)
        assert row["size_ratio"] == pytest.approx(size / keras_bytes)
    for name, fmt in FORMATS.items():
        assert report["rows"][name]["file"] == f"export/{fmt.filename}"


def test_accuracy_and_agreement_match_a_recomputation(benched, tiny_run, test_split):
    """Every artifact through herbi.runtime on the test split, Keras through tf_keras."""
    import tf_keras as keras

    run, report, _ = benched
    x, y = test_split
    model = keras.models.load_model(tiny_run / "model.keras", compile=False)
    ref = model.predict(x / 255.0, batch_size=256, verbose=0)
    assert report["rows"]["keras"]["quality"]["scores"]["accuracy"] == pytest.approx(
        (ref.argmax(1) == y).mean()
    )
    for name, fmt in FORMATS.items():
        probs = Classifier.load(fmt.model(run / "export" / fmt.filename), backend=fmt.backend)
        probs = probs.predict_proba(x)
        q = report["rows"][name]["quality"]
        accuracy = (probs.argmax(1) == y).mean()
        assert q["scores"]["accuracy"] == pytest.approx(accuracy), name
        assert q["agreement"] == pytest.approx((probs.argmax(1) == ref.argmax(1)).mean()), name
        assert q["agreement"] <= q["agreement_tie_aware"] <= 1.0
        assert q["max_prob_diff"] == pytest.approx(np.abs(probs - ref).max(), abs=1e-6), name
        lo, hi = q["scores"]["accuracy_ci95"]
        assert lo < accuracy < hi
        assert q["accuracy_change_points"] == pytest.approx(
            100 * (accuracy - (ref.argmax(1) == y).mean())
        )
        assert set(q["scores"]["per_class"]) == set(report["dataset"]["class_names"])


def test_latencies_are_positive_and_ordered(benched):
    _, report, _ = benched
    macs = report["model_complexity"]["macs_per_image"]
    budget = report["settings"]["batch1_budget"]["runs"]
    seen = set()
    for name, threads, t in timings(report):
        seen.add((name, threads))
        b1 = t["batch1"]
        assert 0 < b1["min_ms"] <= b1["p50_ms"] <= b1["p90_ms"] <= b1["p99_ms"], (name, threads)
        assert b1["runs"] >= budget
        tp = t["throughput"]
        assert tp["batch"] == report["settings"]["large_batch"]
        assert tp["images_per_s"] == pytest.approx(tp["batch"] / (tp["p50_ms"] / 1e3))
        assert t["gmacs_batch1"] == pytest.approx(macs / 1e9 / (b1["p50_ms"] / 1e3))
        assert t["gmacs_large_batch"] == pytest.approx(macs / 1e9 * tp["images_per_s"])
    threads = {str(n) for n in report["settings"]["threads"]}
    in_python = [
        n for n in report["rows"] if n not in FORMATS or FORMATS[n].container.runs_in == "python"
    ]
    assert seen == {(n, t) for n in in_python for t in threads}


def test_web_pages_are_timed_in_the_browser(benched):
    _, report, _ = benched
    pages = [n for n, f in FORMATS.items() if f.container.runs_in == "browser"]
    assert pages
    for name in pages:
        row = report["rows"][name]
        b = row["browser"]
        assert row["timing"] == {} and b["images"] == report["settings"]["browser_images"]
        assert 0 < b["per_image_ms"] <= b["per_image_p90_ms"]
        assert 0 < b["model_ready_ms"] <= b["load_to_first_result_ms"]
        parts = b["download_parts"]
        assert b["download_bytes"] == parts["total"][0] > parts["model"][0] == row["size_bytes"]
        assert 0 < b["download_gzip_bytes"] < b["download_bytes"]


def test_int8_onnx_rows_show_what_the_engines_run(benched):
    run, report, _ = benched
    graphs = [n for n, f in FORMATS.items() if f.int8 and f.container.graph]
    assert graphs
    for name, row in report["rows"].items():
        if name not in graphs:
            assert row.get("engine_graph") is None
            continue
        ops, nnapi = row["engine_graph"]["census"]["ops"], row["engine_graph"]["mobile"]["nnapi"]
        assert ops.get("QLinearConv", 0) >= 3 and "Conv" not in ops  # the tiny CNN's 3 convs
        assert ops.get("Transpose", 0) <= 2
        assert nnapi["supported"] == nnapi["nodes"] > 0 and nnapi["partitions"] == 1
    text = (run / "bench" / "report.md").read_text()
    assert "What the engines run of the int8 ONNX models" in text and "100.0%" in text
    assert re.search(r"onnx-int8 against onnx-float32 \(batch-1 p50\): [\d.]+x at 1 thread", text)


def test_overhead_cold_start_and_memory(benched):
    _, report, _ = benched
    for name, fmt in FORMATS.items():
        if fmt.container.runs_in != "python":
            continue
        row = report["rows"][name]
        assert row["tensorflow_imported"] is False  # timed without TensorFlow in the process
        for t in row["timing"].values():
            if row["backend"] == "tflm":  # no separate engine API to compare herbi with
                assert t["overhead"] is None
                continue
            o = t["overhead"]
            assert o["bare_output_matches"]
            assert o["overhead_ms"] == pytest.approx(o["classify"]["p50_ms"] - o["bare"]["p50_ms"])
        c = row["cold_start"]
        phases = (
            c["interpreter_start_ms"] + c["import_ms"] + c["load_ms"] + c["first_prediction_ms"]
        )
        assert 0 < phases <= c["cold_start_ms"] + 1e-6
        # The worker's own peak, not the parent's (which holds TensorFlow) inherited via fork.
        assert 0 < c["peak_rss_mb"] < 400
        assert c["tensorflow_imported"] is False
    for name in KERAS_ROWS:
        assert report["rows"][name]["tensorflow_imported"] is True
        assert report["rows"][name]["cold_start"]["cold_start_ms"] > 0


def test_corrupt_artifact_fails_its_row_and_the_exit_status(
    tiny_run, tiny_artifacts, tmp_path, monkeypatch
):
    export = tmp_path / "export"
    export.mkdir()
    for name in ("tflite-int8.tflite", "tflite-int8.json", "onnx-int8.onnx", "export_report.json"):
        shutil.copy(tiny_artifacts / name, export / name)
    data = (export / "tflite-int8.tflite").read_bytes()
    (export / "tflite-int8.tflite").write_bytes(data[: len(data) // 2])
    # A rejected export stays on disk as *.rejected: measured all the same, and marked.
    for name in ("tflite-float16.tflite", "tflite-float16.json"):
        shutil.copy(tiny_artifacts / name, export / f"{name}.rejected")
    run = make_run(tiny_run, export, tmp_path / "run")
    monkeypatch.chdir(tmp_path)  # a relative --run, as `make bench` passes runs/latest

    result = bench("--run", "run", "--threads", "1")

    assert result.exit_code == 3, result.output + result.stderr
    report = json.loads((run / "bench" / "report.json").read_text())
    rows = report["rows"]
    assert report["failed"] == ["tflite-int8"]
    assert "corrupt" in rows["tflite-int8"]["error"]
    assert rows["onnx-int8"]["status"] == "ok" and rows["keras"]["status"] == "ok"
    assert rows["tflite-float16"]["status"] == "ok"
    assert rows["tflite-float16"]["rejected_at_export"] == ["marked .rejected by herbi-export"]
    assert rows["tflite-float16"]["file"] == "export/tflite-float16.tflite.rejected"
    assert rows["tflite-float32"]["status"] == "skipped"
    assert "not exported" in rows["tflite-float32"]["error"]
    md = (run / "bench" / "report.md").read_text()
    assert "| tflite-float16 (rejected at export) |" in md
    assert "**tflite-int8** (failed)" in md
    assert "failed: tflite-int8" in result.stderr


def test_bad_run_is_one_line_error(tmp_path):
    exe = Path(sys.executable).parent / "herbi-bench"
    done = subprocess.run(
        [str(exe), "--run", str(tmp_path / "nope"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"Error: {tmp_path / 'nope'}: no such run folder (--run)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--formats", "tflite-int9"], "unknown format 'tflite-int9'"),
        (["--formats", "onnx-int8", "--threads", "two"], "'two' is not a whole number"),
        (["--formats", "tflite-float32"], "--formats tflite-float32: not exported"),
    ],
)
def test_bad_options_are_one_line_errors(tiny_run, tiny_artifacts, tmp_path, args, message):
    export = tmp_path / "export"
    export.mkdir()
    for name in ("onnx-int8.onnx", "export_report.json"):
        shutil.copy(tiny_artifacts / name, export)
    run = make_run(tiny_run, export, tmp_path / "run")
    result = bench("--run", str(run), *args)
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (run / "bench").exists()


def test_a_test_split_smaller_than_the_browser_sample(tiny_run, tiny_artifacts, animals5, tmp_path):
    """A test split under ``browser_images`` (50 without --quick) is written whole, not overrun."""
    from herbi.benchmarks.measure import write_test_images
    from herbi.benchmarks.records import Settings
    from herbi.benchmarks.run_folder import ExportedRun
    from herbi.train.manifest import run_dataset

    data = tmp_path / "data"
    data.mkdir()
    (data / "train").symlink_to(animals5 / "train")
    for folder in sorted((animals5 / "test").iterdir()):
        (data / "test" / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:2]:
            shutil.copy(image, data / "test" / folder.name)
    run = ExportedRun.open(make_run(tiny_run, tiny_artifacts, tmp_path / "run"))
    ds = run_dataset(run.run.dir, str(data))
    settings = Settings.make((1,), None, quick=False)
    assert len(ds.x_test) == 10 < settings.browser_images

    test = write_test_images(ds.x_test, tmp_path, settings.browser_images)

    assert len(test.images) == 10
    assert np.array_equal(np.load(test.pixels), ds.x_test)
    for pixels, path in zip(ds.x_test, test.images, strict=True):
        assert np.array_equal(np.asarray(Image.open(path)), pixels)


def test_run_without_export_folder(tiny_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").symlink_to(tiny_run / "model.keras")
    result = bench("--run", str(run))
    assert result.exit_code == 1
    assert "nothing exported yet" in result.stderr and "herbi-export" in result.stderr


def test_bench_and_export_report_the_same_gate_evidence(benched, tiny_artifacts):
    """Agreement on the same parity images as export's gate, and the paired interval of the
    test-split change beside the raw change."""
    _, report, _ = benched
    exported = json.loads((tiny_artifacts / "export_report.json").read_text())
    assert report["parity_images"] == exported["gate"]["parity_images"]
    for name in FORMATS:
        q = report["rows"][name]["quality"]
        gate = exported["artifacts"][name]["gate"]["agreement"]
        assert q["agreement_parity_images"] == pytest.approx(gate["agreement"], abs=1e-12)
        low, high = q["paired"]["interval_points"]
        assert low <= q["paired"]["drop_points"] <= high
        assert q["paired"]["drop_points"] == pytest.approx(-q["accuracy_change_points"])
