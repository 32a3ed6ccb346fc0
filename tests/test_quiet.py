"""A quiet start whatever ``TF_CPP_MIN_LOG_LEVEL`` says, and Keras 2 without import side
effects (issue 27).

herbi-train runs its whole start-up here (TensorFlow's import, the GPU probe, herbi's first
line) and stops at a missing ``--data``: a few seconds a case; herbi-bench likewise stops at a
missing ``--run`` once TensorFlow has started. herbi-export's end-to-end run
is test_export.py's ``test_console_script_starts_quietly``, under the level 2 that
conftest.py sets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from herbi.common.legacy_keras import use_legacy_keras
from herbi.runtime.errors import HerbiError

# What herbi-train printed first when a level was set (issue 27): absl's banner (twice), the
# oneDNN and cudart INFO lines, and the failed CUDA probe as an ERROR line.
CHATTER = ("absl::InitializeLog", "oneDNN", "cudart", "cuInit", "I0000 ")


def user_env(level: str | None) -> dict[str, str]:
    """This environment as a user's shell has it: no TF_* variable but ``level``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    return env if level is None else {**env, "TF_CPP_MIN_LOG_LEVEL": level}


def test_herbi_train_speaks_first_at_every_level(tmp_path):
    """herbi-train unset, 1, 2 and 3 side by side, and herbi-bench at 2 (each start is mostly TensorFlow's import)."""
    missing = tmp_path / "missing"
    exe = Path(sys.executable).parent / "herbi-train"
    starts = {
        level: subprocess.Popen(
            [exe, "--data", str(missing), "--preset", "smoke"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=user_env(level),
        )
        for level in (None, "1", "2", "3")
    }
    # herbi-bench loads TensorFlow before it reads its run (the Keras reference, --openset).
    bench = subprocess.Popen(
        [exe.with_name("herbi-bench"), "--run", str(missing)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=user_env("2"),
    )
    out, err = bench.communicate(timeout=300)
    assert bench.returncode == 1 and out == "", out + err
    assert err.splitlines() == [f"Error: {missing}: no such run folder (--run)"], err
    for level, start in starts.items():
        out, err = start.communicate(timeout=300)
        said = f"TF_CPP_MIN_LOG_LEVEL={level}:\n{out}{err}"
        assert not [line for line in said.splitlines() if any(c in line for c in CHATTER)], said
        assert out.startswith("herbi-train: recipe reference, preset smoke"), said
        assert start.returncode == 1, said
        assert err.splitlines() == [f"Error: {missing}: no such file or folder (--data)"], said


# herbi's packages and command modules, imported as a library user or --help does; then the
# modules that import TensorFlow (herbi.train's), before anything sets TF_USE_LEGACY_KERAS.
IMPORTS = """
import os, sys
before = dict(os.environ)
import herbi.train, herbi.export, herbi.export.api, herbi.export.serve, herbi.runtime.cli
import herbi.train.cli, herbi.export.cli, herbi.benchmarks.cli
changed = sorted(k for k in set(os.environ) ^ set(before) if k.startswith("TF_"))
assert not changed and "tensorflow" not in sys.modules, (changed, sys.modules.get("tensorflow"))
import herbi.train.recipes.reference  # imports TensorFlow
from herbi.common.legacy_keras import use_legacy_keras
use_legacy_keras()  # what herbi-export's load_keras does first
import tensorflow as tf
assert tf.keras.__name__.startswith("tf_keras."), tf.keras.__name__
"""


def test_importing_herbi_changes_no_setting_and_keras_2_still_follows():
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS], capture_output=True, text=True, env=user_env("3")
    )
    assert done.returncode == 0, done.stderr


def test_a_keras_3_tensorflow_is_refused_in_one_line(monkeypatch):
    use_legacy_keras()  # this process: tf.keras is Keras 2 (conftest.py)
    keras_3 = SimpleNamespace(keras=SimpleNamespace(__name__="keras._tf_keras.keras"))
    monkeypatch.setitem(sys.modules, "tensorflow", keras_3)  # tf.keras's name under Keras 3
    with pytest.raises(HerbiError, match="Keras 3: set TF_USE_LEGACY_KERAS=1 before TensorFlow"):
        use_legacy_keras()
