"""Export stage: every registry format is built once (``tiny_artifacts``) and held to its promise.

Each artifact must load in herbi's runtime, carry the dataset's labels, match the Keras model
within its format's tolerance through ``Classifier.predict_proba`` (the device's code path) and
pass its graph check (the gate's own test, with a damaged export, is in test_gate.py), and bad
command lines must end in one line, not a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from herbi.common.errors import ExportError
from herbi.export import evidence
from herbi.export.api import ExportOptions, export_model
from herbi.export.checks import onnx_problems, tflite_problems
from herbi.export.cli import main
from herbi.export.formats import FORMATS, TFLITE, BuildInputs, select
from herbi.export.to_tflite import build_int8
from herbi.runtime import Classifier, ContractError
from herbi.runtime.contract import (
    METADATA_KEY,
    PIXEL_SCALE,
    Contract,
    float_input,
    read_sidecar,
    sha256_file,
)
from herbi.train.evaluate import keras_probs

pytestmark = pytest.mark.slow
TFLITE_FORMATS = [n for n, f in FORMATS.items() if f.container is TFLITE]
# What the tests accept from the tiny model, per format: (largest max |probability difference|
# against Keras, smallest argmax agreement) on the validation split. Sanity bounds for a model
# trained for seconds; a real model is judged by export's gate instead.
TOLERANCES = {
    "tflite-float32": (1e-4, 0.99),
    "tflite-float16": (0.01, 0.98),
    "tflite-dynamic": (0.05, 0.95),
    "tflite-int8": (0.1, 0.95),
    "tflite-qat-int8": (0.2, 0.85),
    "onnx-float32": (1e-4, 0.99),
    "onnx-int8": (0.1, 0.95),
    "tflm-int8": (0.1, 0.95),
    "web-int8": (0.1, 0.95),
    "web-float32": (1e-4, 0.99),
}


def build_inputs(model, calibration: np.ndarray) -> BuildInputs:
    labels = np.zeros(len(calibration), int)
    return BuildInputs(
        model, None, calibration, (calibration, labels), (calibration, labels), PIXEL_SCALE
    )


@pytest.fixture(scope="module")
def reference(tiny_run):
    """The run's exact splits and the Keras model's validation probabilities."""
    import tf_keras as keras

    from herbi.train.manifest import run_dataset

    ds = run_dataset(tiny_run)
    model = keras.models.load_model(tiny_run / "model.keras", compile=False)
    return ds, keras_probs(model, ds.x_val)


@pytest.fixture(scope="module")
def report(tiny_artifacts) -> dict:
    return json.loads((tiny_artifacts / "export_report.json").read_text())


def run_cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


# --- every artifact, parametrized over the one registry ------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_artifact_loads_and_matches_keras(fmt, tiny_artifacts, reference, report):
    spec = FORMATS[fmt]
    tolerance, min_agreement = TOLERANCES[fmt]
    ds, ref = reference
    clf = Classifier.load(spec.model(tiny_artifacts / spec.filename), backend=spec.backend)
    assert clf.labels == ds.class_names
    assert clf.contract.format == fmt
    assert clf.input_size == (32, 32)
    probs = clf.predict_proba(ds.x_val)
    agreement = float((probs.argmax(1) == ref.argmax(1)).mean())
    max_diff = float(np.abs(probs - ref).max())
    assert agreement >= min_agreement, f"{fmt}: agreement {agreement:.3f}"
    assert max_diff <= tolerance, f"{fmt}: max |dp| {max_diff:.4f}"
    # The report says what this independent measurement says.
    entry = report["artifacts"][fmt]
    assert entry["val"]["agreement"] == pytest.approx(agreement, abs=1e-9)
    assert entry["val"]["agreement_tie_aware"] >= entry["val"]["agreement"]
    assert entry["val"]["max_abs_diff"] == pytest.approx(max_diff, abs=1e-6)
    assert entry["graph_problems"] == []
    assert entry["size_kb"] == pytest.approx(clf.path.stat().st_size / 1024, abs=0.1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_artifact_carries_its_contract(fmt, tiny_artifacts, reference):
    spec = FORMATS[fmt]
    path = spec.model(tiny_artifacts / spec.filename)
    if path.suffix == ".tflite":
        contract = read_sidecar(path)
        assert contract.sha256 == sha256_file(path)
    else:
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        contract = Contract.from_json(meta[METADATA_KEY], str(path))
        assert contract.sha256 is None
    assert contract.labels == reference[0].class_names
    assert contract.scale == pytest.approx(1 / 255)
    if spec.int8:
        # int8 I/O (TFLite): input [0, 1] -> int8 codes -128..127; the QDQ boundary (ONNX):
        # uint8 activations, codes 0..255.
        q = contract.quantization["input"]
        assert q["scale"] == pytest.approx(1 / 255, rel=0.02)
        assert q["zero_point"] == (-128 if path.suffix == ".tflite" else 0)
    if path.suffix == ".tflite" and spec.int8:
        from ai_edge_litert.interpreter import Interpreter

        detail = Interpreter(model_path=str(path)).get_input_details()[0]
        assert detail["dtype"] == np.int8
        assert detail["quantization"] == pytest.approx(
            (contract.quantization["input"]["scale"], contract.quantization["input"]["zero_point"])
        )


@pytest.mark.parametrize("fmt", TFLITE_FORMATS)
def test_sidecar_of_another_model_is_refused(fmt, tiny_artifacts, tmp_path):
    other = next(n for n in TFLITE_FORMATS if n != fmt)
    shutil.copy(tiny_artifacts / f"{fmt}.tflite", tmp_path / "model.tflite")
    shutil.copy(tiny_artifacts / f"{other}.json", tmp_path / "model.json")
    with pytest.raises(ContractError, match="sha256"):
        Classifier.load(tmp_path / "model.tflite")


def test_report_and_files(tiny_artifacts, report):
    names = {p.name for p in tiny_artifacts.iterdir()}
    for fmt, spec in FORMATS.items():
        assert spec.filename in names
        assert (f"{fmt}.json" in names) == (spec.container is TFLITE)
    assert not [n for n in names if ".tmp" in n], "a temporary file was left behind"
    assert ".staging" not in names
    assert report["calibration"]["split"] == "train"
    assert set(report["artifacts"]) == set(FORMATS)
    assert 0.25 < report["keras"]["val_accuracy"] <= 1


# --- graph checks ----------------------------------------------------------------------------


def test_graph_check_flags_float_compute(tiny_artifacts):
    problems = tflite_problems(tiny_artifacts / "tflite-float32.tflite", int8=True)
    assert problems and all("float" in p for p in problems)
    assert onnx_problems(tiny_artifacts / "onnx-float32.onnx", int8=True)


def test_graph_check_flags_unfolded_batch_norm(tmp_path):
    """A BatchNormalization after pooling cannot fold into a conv: its Mul/Add must be caught."""
    import tf_keras as keras
    from tf_keras import layers

    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(8, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.BatchNormalization(),
            layers.Dense(5, activation="softmax"),
        ]
    )
    model.layers[2].set_weights([np.full(8, v, np.float32) for v in (2.0, 0.5, 0.1, 3.0)])
    calib = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    path = tmp_path / "bn.tflite"
    path.write_bytes(build_int8(build_inputs(model, calib)))
    problems = tflite_problems(path, int8=True)
    assert any("MUL" in p for p in problems) and any("ADD" in p for p in problems)


def test_onnx_checker_rejects_a_broken_graph(tiny_artifacts, tmp_path):
    import onnx

    model = onnx.load(str(tiny_artifacts / "onnx-float32.onnx"))
    model.graph.node[1].input[0] = "no_such_tensor"
    path = tmp_path / "broken.onnx"
    path.write_bytes(model.SerializeToString())
    assert any("onnx.checker" in p for p in onnx_problems(path, int8=False))


# --- the command line ------------------------------------------------------------------------


def test_cli_accepts_a_good_export_with_debug_tables(tiny_run, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "--model", tiny_run, "--format", "onnx", "--quantize", "int8", "--out", out,
        "--min-agreement", "0.9", "--max-drop", "5", "--debug-quant",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "onnx-int8" in result.output and "ok" in result.output
    assert (out / "onnx-int8.onnx").is_file()
    rows = (out / "onnx-int8.debug.csv").read_text().splitlines()
    assert rows[0].startswith("kind,tensor,qdq_sqnr_db,vs_float_sqnr_db") and len(rows) > 5


def test_tflite_debug_table(tiny_run, tiny_artifacts, tmp_path):
    from herbi.export.calibration import calibration_indices
    from herbi.export.source import load_source

    src = load_source(tiny_run)
    ds = src.dataset
    calib = ds.x_train[calibration_indices(ds.y_train, 50)]
    inputs = BuildInputs(
        src.model,
        None,
        calib,
        (ds.x_train, ds.y_train),
        (ds.x_val, ds.y_val),
        PIXEL_SCALE,
    )
    fmt = FORMATS["tflite-int8"]
    header, *rows = fmt.debug(inputs, tiny_artifacts / fmt.filename).splitlines()
    assert "rmse_over_scale" in header and "CONV_2D" in "\n".join(rows)


# --- format selection and bad command lines --------------------------------------------------


def test_select_maps_the_cli_words_to_the_registry():
    assert select("tflite") == ["tflite-int8"]
    assert select("tflite", "none") == ["tflite-float32"]
    assert select("tflite", "float16") == ["tflite-float16"]
    assert select("tflite", "dynamic") == ["tflite-dynamic"]
    assert select("tflite", qat=True) == ["tflite-qat-int8"]
    assert select("onnx") == ["onnx-float32"]
    assert select("onnx", "int8") == ["onnx-int8"]
    assert select("all") == list(FORMATS)
    assert select("onnx-int8") == ["onnx-int8"]
    for bad in (("bogus",), ("onnx", "float16"), ("onnx", None, True), ("all", "int8")):
        with pytest.raises(ExportError):
            select(*bad)


def test_registry_imports_without_tensorflow():
    code = (
        "import sys, herbi.export.formats as f; assert f.FORMATS; "
        "assert not [m for m in sys.modules if m.startswith(('tensorflow', 'tf_keras', 'onnx'))]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _keras_file(tmp_path, model) -> str:
    path = tmp_path / "model.keras"
    model.save(path)
    return str(path)


@pytest.fixture
def bad_inputs(tmp_path, tiny_run, animals5):
    """Each bad command line (without --data when the model is a run folder)."""
    import tf_keras as keras

    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes((tiny_run / "model.keras").read_bytes()[:5000])
    bad_zip = tmp_path / "garbage.keras"
    with zipfile.ZipFile(bad_zip, "w") as z:
        z.writestr("config.json", "{not json")
    tabular = keras.Sequential([keras.Input((10,)), keras.layers.Dense(5, activation="softmax")])
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    data = ["--data", animals5]
    return {
        "text file": ["--model", text, *data],
        "truncated .keras": ["--model", truncated, *data],
        "corrupt .keras": ["--model", bad_zip, *data],
        "non-image input": ["--model", _keras_file(tmp_path, tabular), *data],
        "missing model": ["--model", tmp_path / "nope.keras", *data],
        "bare model without --data": ["--model", tiny_run / "model.keras"],
        "unknown format": ["--model", tiny_run, "--format", "bogus"],
        "quantize for onnx": ["--model", tiny_run, "--format", "onnx", "--quantize", "float16"],
        "unwritable --out": ["--model", tiny_run, "--out", blocker / "sub"],
    }


def test_bad_inputs_fail_in_one_line(bad_inputs):
    for case, args in bad_inputs.items():
        result = run_cli(*args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1, f"{case}: exit {result.exit_code}\n{result.output}"
        assert len(lines) == 1 and lines[0].startswith("Error: "), f"{case}: {result.output}"
        assert isinstance(result.exception, SystemExit), f"{case}: {result.exception!r}"


def test_console_script_prints_one_line_for_an_unknown_format(tiny_run):
    exe = Path(sys.executable).parent / "herbi-export"
    proc = subprocess.run(
        [exe, "--model", str(tiny_run), "--format", "bogus"], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "unknown format 'bogus'" in proc.stderr


def test_console_script_starts_quietly(tiny_run, tmp_path):
    """TensorFlow's start-up, the CUDA probe tf2onnx repeats and the converters' notes are
    hidden; herbi speaks first (the converters' note lines: tests/test_common.py)."""
    exe = Path(sys.executable).parent / "herbi-export"
    args = ["--model", tiny_run, "--format", "onnx", "--out", tmp_path]
    proc = subprocess.run([exe, *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("[onnx-float32] "), proc.stderr
    assert not re.search(r"^[IWEF]\d{4} ", proc.stderr, re.MULTILINE), proc.stderr
    assert "absl::InitializeLog" not in proc.stderr, proc.stderr


# --- a batch norm after the activation (the reference CNN's layout) --------------------------


@pytest.fixture(scope="module")
def bn_after_relu(tiny_run):
    """A Source whose model has BatchNormalization after ReLU, which no converter can fold."""
    import tf_keras as keras
    from tf_keras import layers

    from herbi.export.source import Source
    from herbi.train.manifest import run_dataset

    ds = run_dataset(tiny_run)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.BatchNormalization(momentum=0.9),
            layers.MaxPooling2D(4),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.BatchNormalization(momentum=0.9),
            layers.GlobalAveragePooling2D(),
            layers.Dense(ds.num_classes, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(ds.x_train[:512] / 255.0, ds.y_train[:512], epochs=1, verbose=0)
    return Source(model, tiny_run / "bn_after_relu.keras", ds)


def test_batch_norm_after_activation_becomes_an_exact_depthwise_conv(bn_after_relu):
    import tf_keras as keras

    from herbi.export.rewrite import affine_batchnorms

    model, rewritten = affine_batchnorms(bn_after_relu.model)
    assert len(rewritten) == 2
    assert not any(isinstance(la, keras.layers.BatchNormalization) for la in model.layers)
    x = bn_after_relu.dataset.x_val[:64] / 255.0
    np.testing.assert_allclose(
        model.predict(x, verbose=0), bn_after_relu.model.predict(x, verbose=0), atol=1e-5
    )
    # A model whose batch norms all fold is left alone.
    same, none = affine_batchnorms(model)
    assert same is model and none == []


def test_graph_check_catches_an_unfolded_batch_norm(bn_after_relu, tmp_path):
    from herbi.export.calibration import calibration_indices
    from herbi.export.to_tflite import convert, int8_converter

    ds = bn_after_relu.dataset
    calibration = float_input(ds.x_train[calibration_indices(ds.y_train, 64)])
    raw = convert(int8_converter(bn_after_relu.model, calibration))
    path = tmp_path / "raw.tflite"
    path.write_bytes(raw)
    problems = tflite_problems(path, int8=True)
    assert any("MUL" in p and "unfolded batch norm" in p for p in problems)


def test_batch_norm_after_activation_exports_clean_int8(bn_after_relu, tmp_path):
    formats = ["tflite-int8", "tflite-qat-int8", "onnx-int8"]
    options = ExportOptions(formats, 64, gate=False, qat_epochs=1, qat_samples=128)
    report = export_model(bn_after_relu, tmp_path, options)
    assert len(report.batchnorms_as_depthwise) == 2
    for fmt in formats:  # QAT too: tfmot alone refuses a batch norm that is not after a conv
        entry = report.artifacts[fmt]
        assert entry.status == "ok", entry.reasons
        assert entry.graph_problems == []
        assert entry.val.agreement_tie_aware > 0.8
        path = tmp_path / FORMATS[fmt].filename
        assert Classifier.load(path).labels == bn_after_relu.labels


def test_agreement_counts_exact_int8_ties_separately():
    from herbi.export.evidence import compare

    ref = np.array([[0.6, 0.4], [0.3, 0.7], [0.55, 0.45]], np.float32)
    got = np.array([[0.5, 0.5], [0.5, 0.5], [0.4, 0.6]], np.float32)  # two ties, one flip
    m = compare(ref, got, np.array([0, 1, 0]), ["a", "b"])
    assert m.ties == 2
    assert m.agreement_tie_aware == pytest.approx(2 / 3)  # the tie holding Keras's class agrees
    assert m.agreement == pytest.approx(1 / 3)  # argmax of a tie is the lower index
    assert m.accuracy_artifact == pytest.approx(1 / 3)


def test_a_failing_format_is_reported_and_the_others_still_built(tiny_run, tmp_path, monkeypatch):
    def broken(inputs):
        raise ExportError("converter exploded")  # the step names the format it was building

    spec = dataclasses.replace(FORMATS["tflite-float32"], name="tflite-broken", build=broken)
    monkeypatch.setitem(FORMATS, spec.name, spec)
    from herbi.export.source import load_source

    stale = tmp_path / spec.filename  # an earlier export's file must not pass for this run's
    stale.write_bytes(b"old")
    options = ExportOptions([spec.name, "tflite-float32"])
    report = export_model(load_source(tiny_run), tmp_path, options)
    assert report.names("failed") == [spec.name]
    assert not stale.exists()
    assert report.artifacts["tflite-float32"].status == "ok"
    result = run_cli("--model", tiny_run, "--format", spec.name, "--out", tmp_path / "cli")
    assert result.exit_code == 1
    assert "Error: tflite-broken: converter exploded" in result.output


# --- QAT ---------------------------------------------------------------------------------------


def test_calibrate_ranges_sets_activation_ranges_to_the_observed_ones():
    """One EMA step from tfmot's [-6, 6] would leave the max at 5.995; the inversion in
    calibrate_ranges lands on the observed range: inputs in [0, 1] times a weight of 2."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from herbi.export.qat import ACTIVATION_RANGE, calibrate_ranges

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(1, 1, use_bias=False)])
    model.layers[0].set_weights([np.full((1, 1, 1, 1), 2.0, np.float32)])
    q_model = tfmot.quantization.keras.quantize_model(model)
    calibrate_ranges(q_model, np.linspace(0, 1, 128, dtype=np.float32).reshape(8, 4, 4, 1), 1)
    ranges = {
        v.name.split("/")[-1].split(":")[0]: float(v.numpy())
        for v in q_model.non_trainable_weights
        if ACTIVATION_RANGE.search(v.name)
    }
    assert ranges["post_activation_min"] == pytest.approx(0.0, abs=1e-6)
    assert ranges["post_activation_max"] == pytest.approx(2.0, rel=1e-3)


def test_qat_artifact_and_the_reduce_range_reason(tiny_artifacts, report):
    clf = Classifier.load(tiny_artifacts / "tflite-qat-int8.tflite")
    assert clf.contract.format == "tflite-qat-int8" and clf.backend.input_dtype == np.int8
    assert report["reduce_range"]["reason"].startswith("auto: this CPU")


# --- an artifact appears under its name only once judged ----------------------------------------


def test_a_killed_export_leaves_no_unjudged_artifact(tiny_run, tmp_path, monkeypatch):
    """Interrupted while the first artifact is checked: nothing under a final name; the next
    export clears what was staged and publishes judged files only."""
    from herbi.export.source import load_source

    def killed(*_):
        raise KeyboardInterrupt  # what a kill does to the export, as far as files go

    source = load_source(tiny_run)
    options = ExportOptions(["tflite-float32"])
    monkeypatch.setattr(evidence, "artifact_probs", killed)
    with pytest.raises(KeyboardInterrupt):
        export_model(source, tmp_path, options, log=lambda *_: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging"]
    assert sorted(p.name for p in (tmp_path / ".staging").iterdir()) == [
        "tflite-float32.json",
        "tflite-float32.tflite",
    ]
    monkeypatch.undo()
    report = export_model(source, tmp_path, options, log=lambda *_: None)
    assert report.artifacts["tflite-float32"].status == "ok"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "export_report.json",
        "tflite-float32.json",
        "tflite-float32.tflite",
    ]
