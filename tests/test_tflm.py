"""The microcontroller target: TFLite Micro measurements, the generated C++ and the TFLM backend.

Everything runs for real: the TFLM interpreter from ``tflite-micro``, the system C++ compiler
on the generated source, LiteRT as the independent reference for ops and outputs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from herbi.common import boards
from herbi.common.errors import ExportError, HerbiError
from herbi.common.far_ood import far_ood
from herbi.common.units import parse_size
from herbi.export.tflm import RESOLVER_METHODS, measure
from herbi.export.tflm_source import c_threshold, write_sources
from herbi.export.to_tflite import convert
from herbi.runtime import Classifier
from herbi.runtime.backends import LiteRTBackend
from herbi.runtime.contract import read_sidecar
from herbi.runtime.micro import TFLMBackend, TFLMError, tflm_interpreter
from herbi.runtime.quantize import exact_table, input_map
from herbi.runtime.unknown import output_roles

LABELS = ["bird", "cat", "deer", "dog", 'horse "é"']  # a quote and UTF-8 must survive C++

HOST = r"""
#include <cstdint>
#include <cstdio>
#include "herbi_model.h"

// The model array, then the input table, to stdout; the constants, one per line, to stderr.
int main() {
  std::fwrite(kHerbiModel, 1, kHerbiModelLen, stdout);
  std::fwrite(kHerbiPixelToInput, 1, 256, stdout);
  std::fprintf(stderr, "%u\n%u\n%zu\n%d\n", kHerbiModelLen,
               static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(kHerbiModel) % 16),
               kHerbiTensorArenaSize, kHerbiNumLabels);
  std::fprintf(stderr, "%d\n%s\n%.9g\n%.9g\n%d\n%d\n", kHerbiHasUnknown, kHerbiUnknownScore,
               kHerbiUnknownThreshold, kHerbiUnknownKeep, kHerbiUnknownImages, kHerbiUnknown);
  for (int i = 0; i < kHerbiNumLabels; ++i) std::fprintf(stderr, "%s\n", kHerbiLabels[i]);
  return 0;
}
"""


@pytest.fixture(scope="module")
def int8_model(tiny_artifacts) -> tuple[Path, bytes]:
    path = tiny_artifacts / "tflite-int8.tflite"
    return path, path.read_bytes()


@pytest.fixture(scope="module")
def footprint(int8_model):
    return measure(int8_model[1])


@pytest.fixture(scope="module")
def input_quant(int8_model) -> tuple[float, int]:
    """The int8 input's (scale, zero point), as export recorded them in the sidecar."""
    quant = json.loads(int8_model[0].with_suffix(".json").read_text())["quantization"]["input"]
    return quant["scale"], quant["zero_point"]


@pytest.fixture(scope="module")
def sources(int8_model, footprint, input_quant, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tflm")
    contract = replace(read_sidecar(int8_model[0]), labels=LABELS)
    write_sources(int8_model[1], footprint, contract, out)
    return out


# CI must compile: there a missing g++ fails the test instead of skipping it.
needs_gxx = pytest.mark.skipif(
    shutil.which("g++") is None and not os.environ.get("CI"),
    reason="needs the system C++ compiler g++",
)


@needs_gxx
def test_generated_source_compiles_to_the_model_bytes(
    int8_model, footprint, input_quant, sources, tmp_path
):
    _, data = int8_model
    (tmp_path / "main.cc").write_text(HOST)
    exe = tmp_path / "host"
    built = subprocess.run(
        ["g++", "-std=c++17", "-Wall", "-Werror", f"-I{sources}", str(tmp_path / "main.cc"),
         str(sources / "herbi_model.cc"), "-o", str(exe)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    done = subprocess.run([str(exe)], check=True, capture_output=True, timeout=30)
    assert done.stdout[: len(data)] == data
    table = np.frombuffer(done.stdout[len(data) :], np.int8)
    assert np.array_equal(table, exact_table(1 / 255, np.dtype(np.int8), input_quant))
    lines = done.stderr.decode("utf-8").splitlines()
    length, alignment, arena, n_labels, has, score, threshold, keep, images, code, *labels = lines
    unknown = read_sidecar(int8_model[0]).unknown
    assert (has, score, int(images), int(code)) == ("1", unknown.score, unknown.images, -2)
    assert np.float32(keep) == np.float32(unknown.keep)
    # the threshold is a float32 score's value, so it is stored exactly
    assert float(np.float32(threshold)) == unknown.threshold
    assert int(length) == len(data)
    assert int(alignment) == 0
    assert (
        "alignas(16) const unsigned char kHerbiModel[]" in (sources / "herbi_model.cc").read_text()
    )
    declared = footprint.declared_arena_bytes
    assert int(arena) == declared and declared % 16 == 0
    assert 0 <= declared - footprint.arena_bytes * (1 + boards.ARENA_MARGIN) < 16
    assert int(n_labels) == len(LABELS) and labels == LABELS


# A stand-in for TFLite Micro's headers (no TFLM C++ library here): the types and calls the
# generated code uses, declared as TFLM declares them. The interpreter is defined in REPLAY.
TFLM_STUB = """#pragma once
#include <cstddef>
#include <cstdint>

enum TfLiteStatus {{ kTfLiteOk = 0, kTfLiteError = 1 }};
struct TfLiteQuantizationParams {{ float scale; int32_t zero_point; }};
union TfLitePtrUnion {{ int8_t* int8; }};
struct TfLiteTensor {{ TfLitePtrUnion data; TfLiteQuantizationParams params; size_t bytes; }};

namespace tflite {{
struct Model;
inline const Model* GetModel(const void* data) {{ return static_cast<const Model*>(data); }}

template <unsigned int tOpCount>
class MicroMutableOpResolver {{
 public:
{methods}
}};

class MicroInterpreter {{
 public:
  template <unsigned int tOpCount>
  MicroInterpreter(const Model*, const MicroMutableOpResolver<tOpCount>&, uint8_t*, size_t) {{}}
  TfLiteStatus AllocateTensors();
  TfLiteTensor* input(size_t index);
  TfLiteTensor* output(size_t index);
  size_t outputs_size() const;
  TfLiteStatus Invoke();
}};
}}  // namespace tflite
"""

# The stand-in interpreter replays the real one's outputs and records the input it was given;
# main() runs HerbiClassify on every image. argv: images (uint8), replay (see replay_file), seen.
REPLAY = r"""
#include <cstdio>
#include <vector>

#include "herbi_model.h"
#include "tensorflow/lite/micro/micro_interpreter.h"

int HerbiClassify(const uint8_t* pixels, float* probability, float* score);

static std::FILE *replay, *seen;
static int8_t input_data[kHerbiInputHeight * kHerbiInputWidth * kHerbiInputChannels];
static TfLiteTensor input_tensor = {{input_data}, {0.0f, 0}, sizeof input_data};
static std::vector<std::vector<int8_t>> output_data;
static std::vector<TfLiteTensor> outputs;

namespace tflite {
TfLiteStatus MicroInterpreter::AllocateTensors() {
  uint32_t count = 0, bytes = 0;
  float scale = 0;
  int32_t zero_point = 0;
  if (std::fread(&count, 4, 1, replay) != 1) return kTfLiteError;
  output_data.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    if (std::fread(&bytes, 4, 1, replay) != 1 || std::fread(&scale, 4, 1, replay) != 1 ||
        std::fread(&zero_point, 4, 1, replay) != 1) return kTfLiteError;
    output_data[i].resize(bytes);
    outputs.push_back({{output_data[i].data()}, {scale, zero_point}, bytes});
  }
  return kTfLiteOk;
}
TfLiteTensor* MicroInterpreter::input(size_t) { return &input_tensor; }
TfLiteTensor* MicroInterpreter::output(size_t index) { return &outputs[index]; }
size_t MicroInterpreter::outputs_size() const { return outputs.size(); }
TfLiteStatus MicroInterpreter::Invoke() {
  std::fwrite(input_data, 1, sizeof input_data, seen);
  for (auto& data : output_data) {
    if (std::fread(data.data(), 1, data.size(), replay) != data.size()) return kTfLiteError;
  }
  return kTfLiteOk;
}
}  // namespace tflite

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  std::FILE* images = std::fopen(argv[1], "rb");
  replay = std::fopen(argv[2], "rb");
  seen = std::fopen(argv[3], "wb");
  static uint8_t pixels[sizeof input_data];
  while (std::fread(pixels, 1, sizeof pixels, images) == sizeof pixels) {
    float probability = 0, score = 0;
    const int answer = HerbiClassify(pixels, &probability, &score);
    std::printf("%d %.9g %.9g\n", answer, probability, score);
  }
  return 0;
}
"""


def replay_file(data: bytes, x: np.ndarray, order: list[int]) -> bytes:
    """The real TFLM interpreter's outputs for the int8 images ``x``, in ``order``: their
    count, each one's bytes, scale and zero point, then every image's output bytes."""
    interp = tflm_interpreter(data)
    details = [interp.get_output_details(i) for i in order]
    head = [np.uint32(len(order)).tobytes()]
    for d in details:
        q = d["quantization_parameters"]
        head += [np.uint32(np.prod(d["shape"])).tobytes(), q["scales"][:1].tobytes()]
        head.append(q["zero_points"][:1].astype(np.int32).tobytes())
    body = []
    for row in x:
        interp.set_input(row[None], 0)
        interp.invoke()
        body += [interp.get_output(i).tobytes() for i in order]
    return b"".join(head + body)


@needs_gxx
def test_example_answers_as_the_runtime(tiny_run, tiny_artifacts, tmp_path):
    """The README's HerbiClassify, compiled with the exported folder's sources, gives the
    runtime's answer (label index, or kHerbiUnknown), probability and score, bit for bit, on
    generated unknowns and the run's own train images; whichever order the outputs come in.

    TFLite Micro's kernels are the Python ``tflm`` backend's (no TFLM C++ library here): a
    stand-in interpreter replays their outputs, and records the inputs the example wrote.
    (Linked once by hand with TFLM's own C++ built from source, tflite-micro 90b983c, the
    example answered 80 such images as the ``tflm`` backend, bit for bit.)"""
    from herbi.train.manifest import run_dataset

    folder = tiny_artifacts / "tflm-int8"
    model = folder / "model.tflite"
    images = np.concatenate([far_ood(16), run_dataset(tiny_run).x_train[:16]])
    clf = Classifier.load(model, backend="tflm")
    preds = clf.classify(images)
    # both answers occur: the tiny model rejects most far-OOD images (12 of 16, all the flat
    # colours and text) and keeps most of its train images (13 of 16)
    assert sum(p.unknown for p in preds[:16]) > 8 and sum(p.unknown for p in preds[16:]) < 8
    stub = tmp_path / "tensorflow" / "lite" / "micro"
    stub.mkdir(parents=True)
    methods = "\n".join(
        f"  TfLiteStatus {m}() {{ return kTfLiteOk; }}" for m in RESOLVER_METHODS.values()
    )
    (stub / "micro_mutable_op_resolver.h").write_text(TFLM_STUB.format(methods=methods))
    (stub / "micro_interpreter.h").write_text(
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n'
    )
    example = (folder / "README.md").read_text().split("```cpp\n")[1].split("```")[0]
    (tmp_path / "example.cc").write_text(example)
    (tmp_path / "replay.cc").write_text(REPLAY)
    exe = tmp_path / "classify"
    built = subprocess.run(
        ["g++", "-std=c++17", "-Wall", "-Werror", f"-I{tmp_path}", f"-I{folder}",
         str(tmp_path / "example.cc"), str(tmp_path / "replay.cc"),
         str(folder / "herbi_model.cc"), "-o", str(exe)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    x = input_map(clf.contract.scale, clf.backend.input_dtype, clf.backend.input_quant)(images)
    (tmp_path / "images.bin").write_bytes(images.tobytes())
    data = model.read_bytes()
    for order in ([0, 1], [1, 0]):
        (tmp_path / "replay.bin").write_bytes(replay_file(data, x, order))
        args = [str(tmp_path / name) for name in ("images.bin", "replay.bin", "seen.bin")]
        done = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "seen.bin").read_bytes() == x.tobytes()
        got = [line.split() for line in done.stdout.splitlines()]
        want = [[str(-2 if p.unknown else p.index), p.probability, p.score] for p in preds]
        assert [[a, np.float32(p), np.float32(s)] for a, p, s in got] == want


def test_threshold_literal_keeps_the_strict_rule():
    """A threshold that is no float32 is stored as the next one up: for every float32 score,
    ``score < stored`` is then ``score < threshold``."""
    for value in (0.7, 0.1, -0.7, 1 / 3, 0.7946683764457703, 0.5):
        stored = np.float32(c_threshold(value).removesuffix("f"))
        below = np.nextafter(stored, np.float32(-np.inf))
        assert float(stored) >= value > float(below)


def test_ops_header_registers_exactly_the_model_ops(int8_model, footprint, sources):
    from ai_edge_litert.interpreter import Interpreter

    litert_ops = {op["op_name"] for op in Interpreter(str(int8_model[0]))._get_ops_details()}
    header = (sources / "herbi_ops.h").read_text()
    methods = re.findall(r"resolver\.(Add\w+)\(\)", header)
    by_method = {m: op for op, m in RESOLVER_METHODS.items()}
    assert sorted(by_method[m] for m in methods) == sorted(litert_ops) == list(footprint.ops)
    assert len(methods) == len(set(methods))
    n = int(re.search(r"kHerbiNumOps = (\d+);", header)[1])
    assert n == len(litert_ops)
    assert "tflite::MicroMutableOpResolver<kHerbiNumOps>" in header


def test_arena_is_what_tflm_needs(int8_model, footprint):
    _, data = int8_model
    assert footprint.arena_head > 0 and footprint.arena_tail > 0
    assert footprint.arena_bytes == footprint.arena_head + footprint.arena_tail
    assert footprint.flash_bytes == len(data)
    assert footprint.macs > 0
    zeros = np.zeros((1, 32, 32, 3), np.int8)
    exact = tflm_interpreter(data, footprint.arena_bytes)  # the measured arena is enough ...
    exact.set_input(zeros, 0)
    exact.invoke()
    with pytest.raises(TFLMError, match=r"(?i)allocate|buffer"):  # ... and needed
        tflm_interpreter(data, footprint.arena_bytes - footprint.arena_tail)


def litert_reference(data: bytes, x: np.ndarray) -> list[np.ndarray]:
    """LiteRT with its reference op resolver (no XNNPACK), one image at a time; the outputs in
    herbi's order (probabilities, then the unknown score)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(
        model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF
    )
    interp.allocate_tensors()
    details = interp.get_output_details()
    targets = [details[i]["index"] for i in output_roles(Path(), [d["shape"] for d in details])]
    source = interp.get_input_details()[0]["index"]
    out = []
    for row in x:
        interp.set_tensor(source, row[None])
        interp.invoke()
        out.append([interp.get_tensor(target)[0] for target in targets])
    return [np.array(column) for column in zip(*out, strict=True)]


def test_tflm_backend_agrees_with_litert(int8_model, tiny_run):
    from herbi.train.manifest import run_dataset

    path, data = int8_model
    tflm, litert = TFLMBackend(path, data, None), LiteRTBackend(path, data, None)
    assert tflm.name == "tflm" and tflm.contract == litert.contract
    for attr in ("input_dtype", "input_quant", "output_quants"):
        assert getattr(tflm, attr) == getattr(litert, attr), attr
    assert tflm.input_shape == (1, 32, 32, 3) and tflm.output_shape == (1, len(LABELS))
    images = run_dataset(tiny_run).x_val
    x = input_map(tflm.contract.scale, tflm.input_dtype, tflm.input_quant)(images)
    probs, scores = tflm.run(x)
    assert probs.shape == (len(images), len(LABELS)) and probs.dtype == np.int8
    assert scores.shape == (len(images), 1) and scores.dtype == np.int8
    # Against LiteRT's *reference* kernels: portable integer C++ like TFLM's, so the comparison
    # does not depend on the CPU (LiteRT's default XNNPACK kernels round differently per ISA:
    # up to 3 steps apart with AVX-512, 5 with float32 training and an AVX2 oneDNN cap).
    # Measured: the fast model 1 step at most (99.6% of images identical) on AVX-512 and AVX2;
    # the tiny model's fully connected requantization 1 step and its softmax 2.
    want_probs, want_scores = litert_reference(data, x)
    for got, want in ((probs, want_probs), (scores, want_scores)):
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 2
    assert np.mean(probs.argmax(1) == want_probs.argmax(1)) >= 0.99


def test_op_tflm_lacks_is_refused_by_name(capfd):
    """GELU: LiteRT has an int8 kernel for it, TFLite Micro has none."""
    import tensorflow as tf
    import tf_keras as keras
    from ai_edge_litert.interpreter import Interpreter

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.Activation("gelu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.random((1, 8, 8, 3), np.float32)] for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    data = convert(conv)
    litert = Interpreter(model_content=data)
    assert "GELU" in {op["op_name"] for op in litert._get_ops_details()}
    litert.allocate_tensors()
    litert.invoke()  # LiteRT runs it
    capfd.readouterr()
    with pytest.raises(ExportError, match="op GELU, which TFLite Micro has no kernel for"):
        measure(data)
    assert capfd.readouterr().err == ""  # TFLM's own log line went into the message only


def test_sizes_limits_and_boards(footprint):
    assert parse_size("65536", "--max-arena") == 65536
    assert parse_size("256KB", "--max-arena") == 256 * 1024
    assert parse_size("1MB", "--max-flash") == parse_size("1 mib", "--max-flash") == 1 << 20
    for junk in ("lots", "-1", "0", "1GB", "2 KBs"):
        with pytest.raises(HerbiError, match=r"^--max-flash "):
            parse_size(junk, "--max-flash")
    assert boards.Limits().problems(footprint) == []
    assert boards.Limits(1 << 20, 1 << 20).problems(footprint) == []
    arena = footprint.declared_arena_bytes
    reasons = boards.Limits(arena - 1, footprint.flash_bytes - 1).problems(footprint)
    assert len(reasons) == 2 and "--max-arena" in reasons[0] and "--max-flash" in reasons[1]
    assert boards.Limits(arena, footprint.flash_bytes).problems(footprint) == []
    table = boards.board_fits(footprint)
    assert [row[0] for row in table] == list(boards.BOARDS)
    assert all(ok == (b.model_arena >= arena and b.model_flash >= footprint.flash_bytes)
               for b, ok, _ in table)  # fmt: skip
    assert any(ok for _, ok, _ in table)
    big = boards.Footprint(macs=0, flash_bytes=100 * 1024, arena_bytes=0,
                           declared_arena_bytes=300 * 1024)  # fmt: skip
    too_big = {b.name: ok for b, ok, _ in boards.board_fits(big)}
    assert not too_big["nRF52840 (e.g. Arduino Nano 33 BLE Sense)"]
    assert too_big["ESP32-S3 (ESP32-S3-WROOM-1-N8)"]


PROBE = """
import sys
from pathlib import Path
import numpy as np
from herbi.runtime.micro import TFLMBackend
path = Path(sys.argv[1])
backend = TFLMBackend(path, path.read_bytes(), None)
backend.run(np.zeros((2, 32, 32, 3), np.int8))
heavy = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tf2onnx", "onnx")
print(sorted(n for n in sys.modules if n.split(".")[0] in heavy or n.startswith("herbi.train")))
"""


def test_tflm_backend_imports_no_tensorflow_and_prints_nothing(int8_model):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(int8_model[0])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]" and done.stderr == ""


def test_herbi_export_format_tflm_writes_sources_and_enforces_limits(
    tiny_run, tiny_artifacts, tmp_path
):
    """The exported folder and the footprint in the report; through the command line,
    --max-arena and --max-flash."""
    from click.testing import CliRunner

    from herbi.export.cli import EXIT_REJECTED, main

    def export(*args: str):
        out = tmp_path / "out"
        return CliRunner().invoke(main, ["--model", str(tiny_run), "--format", "tflm",
                                         "--out", str(out), *args]), out  # fmt: skip

    folder = tiny_artifacts / "tflm-int8"
    names = {p.name for p in folder.iterdir()}
    assert {"herbi_model.h", "herbi_model.cc", "herbi_ops.h", "README.md", "model.tflite"} <= names
    report = json.loads((tiny_artifacts / "export_report.json").read_text())
    entry = report["artifacts"]["tflm-int8"]
    assert entry["footprint"] == json.loads((folder / "footprint.json").read_text())
    footprint = entry["footprint"]
    assert footprint["arena_bytes"] == footprint["arena_head"] + footprint["arena_tail"] > 0
    assert footprint["flash_bytes"] == (folder / "model.tflite").stat().st_size
    assert entry["val"]["agreement"] >= 0.95  # TFLM's kernels ran the gate's parity check
    small = f"{footprint['declared_arena_bytes'] - 1}"
    result, out = export("--max-arena", small, "--no-check")  # the limit alone decides
    assert result.exit_code == EXIT_REJECTED, result.output
    assert "exceeds --max-arena" in result.output and (out / "tflm-int8.rejected").is_dir()
    result, _ = export("--max-flash", "lots")
    assert result.exit_code == 1 and "--max-flash 'lots'" in result.output
