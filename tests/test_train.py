"""The reference recipe end to end on the smoke preset: run folder, determinism, resume, strategy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from herbi.common.files import atomic_path
from herbi.train.cli import main
from herbi.train.recipes.fast import SIZES

RUN_FILES = {
    "base.keras",
    "finetune1.keras",
    "finetune2.keras",
    "model.keras",
    "history.csv",
    "metrics.json",
    "curves.png",
    "confusion.png",
    "samples.png",
    "augmented.png",
    "manifest.json",
    "report.md",
    "state.json",
}


def train(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def weights(path):
    import tf_keras as keras

    return keras.models.load_model(path).get_weights()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, animals5):
    out = tmp_path_factory.mktemp("runs") / "smoke"
    result = train("--data", str(animals5), "--preset", "smoke", "--seed", "7", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


def test_reference_cnn_matches_the_study():
    from tf_keras import layers

    from herbi.train.complexity import model_macs
    from herbi.train.recipes.reference import reference_cnn

    model = reference_cnn(5)
    assert model.count_params() == 357_413
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 896
    block = [layers.Conv2D, layers.BatchNormalization] * 2 + [layers.MaxPooling2D, layers.Dropout]
    expected = block * 3 + [
        layers.GlobalAveragePooling2D,
        layers.Dense,
        layers.Dropout,
        layers.Dense,
    ]
    assert [type(layer) for layer in model.layers] == expected
    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 32, 64, 64, 128, 128]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    drops = [layer.rate for layer in model.layers if isinstance(layer, layers.Dropout)]
    assert drops == [0.25, 0.3, 0.35, 0.5]
    # Worked by hand: 0.88M + 9.44M (32x32) + 4.72M + 9.44M (16x16) + 4.72M + 9.44M (8x8) + 0.07M.
    assert model_macs(model) == 38_701_568


@pytest.mark.slow
def test_smoke_run_writes_a_complete_run_folder(smoke_run, animals5):
    out, output = smoke_run
    assert output.splitlines()[0].startswith("herbi-train: recipe reference, preset smoke")
    assert {p.name for p in out.iterdir()} >= RUN_FILES
    assert not list(out.glob(".*tmp*")) and not (out / "backup").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["stages"]) == ["base", "finetune1", "finetune2"]
    for stage in metrics["stages"].values():
        for split, n in (("val", 250), ("test", 500)):
            s = stage[split]
            assert s["n"] == n and 0 <= s["accuracy"] <= 1
            lo, hi = s["accuracy_ci95"]
            assert lo <= s["accuracy"] <= hi
            assert np.sum(s["confusion"]) == n
            assert set(metrics["class_names"]) <= set(s["per_class"])
    assert metrics["counts"]["train"]["bird"] == 450
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["parameters"] == 357_413
    assert set(manifest["stage_wall_seconds"]) == {"base", "finetune1", "finetune2"}
    assert manifest["data"]["fingerprint"] and manifest["packages"]["tensorflow"]
    report = (out / "report.md").read_text()
    assert "image folder" in report and "not CIFAR-100" in report and "75.4%" in report
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 3  # header + one epoch per stage
    # The final model is the last stage's best checkpoint.
    for a, b in zip(weights(out / "model.keras"), weights(out / "finetune2.keras"), strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_initial_weights():
    """The first stage's model as the pipeline seeds and builds it: the same seed gives the same
    weights, another seed others. What training does from there is repeated exactly in
    test_resume_after_a_stage_repeats_the_uninterrupted_run."""
    from herbi.train import environment as env
    from herbi.train.recipe import StageInputs
    from herbi.train.recipes import RECIPES

    def initial(seed: int) -> list[np.ndarray]:
        env.seed_everything(seed)
        data = (np.zeros((4, 32, 32, 3), np.float32), np.arange(4) % 2)
        plan = RECIPES["reference"].plan_stage(StageInputs("base", 1, None, data, 5, seed))
        return plan.model.get_weights()

    first, again, other = initial(7), initial(7), initial(8)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.slow
def test_resume_after_a_stage_repeats_the_uninterrupted_run(smoke_run, tmp_path):
    """Interrupted after base: the resumed run skips it, trains the fine-tunes, and ends with
    the uninterrupted run's weights to the bit (same seed, same weights)."""
    import shutil

    out, _ = smoke_run
    run = tmp_path / "interrupted"
    shutil.copytree(out, run)
    # Interrupt after base: neither fine-tune finished.
    state = json.loads((run / "state.json").read_text())
    del state["stages"]["finetune1"], state["stages"]["finetune2"]
    (run / "state.json").write_text(json.dumps(state))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "running"
    (run / "manifest.json").write_text(json.dumps(manifest))
    for name in ("finetune1.keras", "finetune2.keras", "model.keras", "report.md"):
        (run / name).unlink()
    history = (run / "history.csv").read_text().splitlines()
    (run / "history.csv").write_text(
        "\n".join(h for h in history if not h.startswith("finetune")) + "\n"
    )
    result = train("--resume", "--out", str(run))
    assert result.exit_code == 0, result.output
    assert "[base] already finished" in result.output
    assert "[finetune1] 1 epochs" in result.output and "[finetune2] 1 epochs" in result.output
    assert (run / "model.keras").exists() and (run / "report.md").exists()
    assert json.loads((run / "manifest.json").read_text())["status"] == "finished"
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 3
    for a, b in zip(weights(out / "model.keras"), weights(run / "model.keras"), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_data_fails_before_training(tmp_path):
    result = CliRunner().invoke(
        main, ["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    assert "missing: no such file or folder" in result.output
    assert "Traceback" not in result.output and "[base]" not in result.output


def test_bad_epochs_and_existing_out_are_refused(tmp_path, animals5):
    result = CliRunner().invoke(
        main, ["--data", str(animals5), "--epochs", "1,2", "--preset", "smoke"]
    )
    assert result.exit_code == 2 and "--epochs" in result.output
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(
        main, ["--data", str(animals5), "--preset", "smoke", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "not empty" in result.output
    assert (tmp_path / "r" / "keep.txt").read_text() == "mine"


def test_quiet_tensorflow_runs_before_tensorflow_loads(monkeypatch):
    """herbi-train's module imports no TensorFlow, and main passes --verbose through first."""
    import herbi.train.cli as cli

    code = "import sys, herbi.train.cli; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
    calls = []
    monkeypatch.setattr(cli, "quiet_tensorflow", calls.append)
    result = CliRunner().invoke(main, ["--verbose", "--recipe", "bogus"])
    assert calls == [True] and result.exit_code == 2 and "--recipe" in result.output


def test_atomic_path_leaves_target_untouched_on_failure(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("previous")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


MIRRORED = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from herbi.train.cli import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpus(animals5, tmp_path):
    out = tmp_path / "mirrored"
    args = [
        "--data",
        str(animals5),
        "--recipe",
        "fast",
        "--preset",
        "smoke",
        "--epochs",
        "1",
        "--size",
        "xs",
        "--strategy",
        "mirrored",
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "strategy mirrored (2 replica(s))" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["replicas"] == 2 and manifest["status"] == "finished"
    # A whole model: more bytes than its float32 weights alone.
    assert (out / "model.keras").stat().st_size > 4 * SIZES["xs"].params


def free_ports(n: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multiworker_trains_in_sync_and_only_the_chief_writes(animals5, tmp_path):
    """Two workers on 127.0.0.1 (TF_CONFIG): one run folder, the same final weights."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    exe = os.path.join(os.path.dirname(sys.executable), "herbi-train")
    procs = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        args = ["--data", str(animals5), "--recipe", "fast", "--preset", "smoke", "--epochs", "1",
                "--size", "xs", "--precision", "float32", "--strategy", "multiworker",
                "--out", str(tmp_path / f"out{index}")]  # fmt: skip
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs.append(subprocess.Popen([exe, *args], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))  # fmt: skip
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out0"]  # worker 1 wrote nothing
    manifest = json.loads((tmp_path / "out0" / "manifest.json").read_text())
    assert manifest["replicas"] == 2 and manifest["status"] == "finished"
    assert "worker 1 of 2; the chief writes the run folder" in outputs[1]
    digests = [out.split("weights sha256 ")[1].split(";")[0].split()[0] for out in outputs]
    assert digests[0] == digests[1]
    assert not list(Path(tempfile.gettempdir()).glob("herbi-worker-*"))


def test_a_state_file_herbi_cannot_read_is_one_error_naming_it(tmp_path):
    """--resume over a state.json of another form (an older herbi's) says so, no traceback."""
    from herbi.common.errors import HerbiError
    from herbi.train.trainer import read_state

    state = tmp_path / "state.json"
    state.write_text('{"stages": {"base": {"epochs": 1, "val": {"accuracy": 0.5}}}}')
    with pytest.raises(HerbiError, match=r"state\.json: not readable as finished stages"):
        read_state(state)
