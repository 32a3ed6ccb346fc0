"""herbi.common: the /proc/cpuinfo parser every figure's machine label comes from, the error
family's one-line messages and TensorFlow's quiet start."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from herbi.common.cpu import parse_cpuinfo
from herbi.common.errors import DataError, HerbiError, first_line
from herbi.common.legacy_keras import TF_CHATTER
from herbi.runtime import ContractError, ImageError, ModelError
from herbi.runtime.errors import HerbiError as RuntimeHerbiError
from herbi.runtime.errors import TFLMError

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
cpu MHz\t\t: 2000.000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
cpu MHz\t\t: 2000.000
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8
"""

EPYC = """processor\t: 0
model name\t: AMD EPYC 7B13
cpu MHz\t\t: 2450.000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma f16c

processor\t: 1
model name\t: AMD EPYC 7B13
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma f16c
"""


@pytest.fixture(autouse=True)
def no_onednn_cap(monkeypatch):
    """The suite also runs under ONEDNN_MAX_CPU_ISA=AVX2; these labels are the uncapped ones."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)


GRAVITON = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp i8mm
CPU implementer\t: 0x41
"""


def test_xeon_with_amx():
    cpu = parse_cpuinfo(XEON)
    assert cpu.name == "Intel(R) Xeon(R) Platinum 8480+" and cpu.mhz == 2000.0
    assert cpu.physical_cores == 2
    assert cpu.has_vnni and cpu.has_amx
    assert {"avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"} <= set(cpu.isa)
    assert cpu.label() == "Intel(R) Xeon(R) Platinum 8480+ (AVX-512, VNNI, BF16, AMX)"


def test_epyc_with_avx2_only_and_hyperthreads():
    cpu = parse_cpuinfo(EPYC)
    assert cpu.physical_cores == 1  # two logical CPUs on one core
    assert not cpu.has_vnni and not cpu.has_amx
    assert "avx512f" not in cpu.isa and "avx2" in cpu.isa
    assert cpu.label() == "AMD EPYC 7B13 (AVX2)"


def test_arm_features_and_missing_fields():
    cpu = parse_cpuinfo(GRAVITON)
    assert {"asimd", "asimddp", "i8mm"} <= set(cpu.isa)
    assert cpu.physical_cores is None and cpu.mhz is None and cpu.name  # falls back to platform
    assert parse_cpuinfo("").flags == frozenset()


def test_a_onednn_cap_is_named_beside_the_cpu(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    label = parse_cpuinfo(XEON).label()
    assert (
        label == "Intel(R) Xeon(R) Platinum 8480+ (AVX-512, VNNI, BF16, AMX), oneDNN capped at AVX2"
    )


def test_one_error_family_caught_once():
    assert HerbiError is RuntimeHerbiError  # one root, re-exported, not a second class
    for error in (ImageError, ContractError, ModelError, TFLMError, DataError):
        assert issubclass(error, HerbiError) and issubclass(error, ValueError)


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (ValueError("bad input\nTraceback detail"), "bad input"),
        (RuntimeError("\n  \n  indented reason  \nmore"), "indented reason"),
        (OSError(), "OSError"),  # an empty message never raises IndexError
        (RuntimeError(" \n "), "RuntimeError"),
    ],
)
def test_first_line(error, line):
    assert first_line(error) == line


# Imports TensorFlow the way herbi-train/herbi-export do, then makes TF fail for real: reading a
# missing file in a graph, which TF's kernel reports as a C++ warning ("W... OP_REQUIRES failed").
QUIET_START = """
import sys
from herbi.common.legacy_keras import quiet_tensorflow
quiet_tensorflow(verbose=sys.argv[1] == "verbose")
import tensorflow as tf
try:
    tf.function(lambda: tf.io.read_file(sys.argv[2]))()
except tf.errors.NotFoundError:
    pass
"""


def tensorflow_stderr(mode: str, missing: str) -> str:
    unset = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLED_DEVICE_TYPES")  # as a user's shell has them
    env = {k: v for k, v in os.environ.items() if k not in unset}
    done = subprocess.run(
        [sys.executable, "-c", QUIET_START, mode, missing],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_tensorflow_starts_quietly_and_still_reports_failures(tmp_path):
    missing = str(tmp_path / "missing.png")
    quiet = tensorflow_stderr("quiet", missing)
    assert not re.search(r"^I\d{4} ", quiet, re.MULTILINE), quiet  # absl INFO lines
    assert "absl::InitializeLog" not in quiet and "failed call to cuInit" not in quiet, quiet
    assert re.search(rf"^W\d{{4}} .*OP_REQUIRES failed.*{re.escape(missing)}", quiet, re.M), quiet
    verbose = tensorflow_stderr("verbose", missing)  # --verbose: TensorFlow's own lines, all
    assert re.search(r"^I\d{4} ", verbose, re.MULTILINE) and "OP_REQUIRES failed" in verbose


@pytest.mark.parametrize(
    ("line", "chatter"),
    [  # lines TensorFlow printed here (2026-12), trimmed after the source location
        ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR", True),
        ("I0000 00:00:1796520136.95 2296 port.cc:153] oneDNN custom operations are on.", True),
        ("E0000 00:00:1796524159.46 19640 cuda_platform.cc:52] failed call to cuInit: INTERNAL", True),
        ("W0000 00:00:1796524126.82 19640 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.", True),
        ("W0000 00:00:1796524126.82 19640 tf_tfl_flatbuffer_helpers.cc:367] Ignored drop_control_dependency.", True),
        ("W0000 00:00:1796524126.90 19640 flatbuffer_export.cc:3851] Skipping runtime version metadata in the model.", True),
        ("W0000 00:00:1796524126.90 19640 op_kernel.cc:1857] OP_REQUIRES failed at whole_file_read_ops.cc", False),
        ("E0000 00:00:1796524126.90 19640 meta_optimizer.cc:966] model_pruner failed: INVALID_ARGUMENT", False),
        ("[tflite-int8] TFLite, full integer int8 with int8 I/O (post-training)", False),
    ],
)  # fmt: skip
def test_tf_chatter_hides_notes_and_keeps_real_warnings(line, chatter):
    assert bool(TF_CHATTER.match(line)) is chatter


def test_a_manifest_with_null_sections_is_one_error_naming_it(tmp_path):
    """from_json refuses null where a record is needed, so no reader meets None later."""
    from herbi.common.run_folder import RunFolder
    from herbi.train.manifest import read_manifest

    run = RunFolder(tmp_path)
    run.manifest.write_text('{"command": "x", "config": null, "data": null}')
    with pytest.raises(DataError, match=r"manifest\.json: not a herbi run manifest"):
        read_manifest(run)
