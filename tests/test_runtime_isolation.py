"""The runtime never touches TensorFlow, training or export code, and works copied alone.

Both checks run in fresh interpreters: the test process itself has TensorFlow loaded (the
artifacts were exported in it), so ``sys.modules`` here proves nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import herbi.runtime

RUNTIME = Path(herbi.runtime.__file__).parent
HEAVY = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tf2onnx", "onnx")

PROBE = """
import json, sys
{prelude}
import herbi.runtime
from herbi.runtime import Classifier
preds = [Classifier.load(m).classify(sys.argv[1], top_k=2).to_dict() for m in sys.argv[2:]]
heavy = {heavy!r}
loaded = sorted(
    n for n in sys.modules
    if n.split(".")[0] in heavy or n.startswith(("herbi.train", "herbi.export"))
)
print(json.dumps({{"file": herbi.runtime.__file__, "loaded": loaded, "preds": preds}}))
"""

# A device: only the copied folder provides herbi (the development install's finder is
# removed), and everything the device lacks fails to import.
DEVICE = """
import importlib.abc
sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in repr(f)]
sys.path.insert(0, {root!r})
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {absent!r} or name.startswith(("herbi.train", "herbi.export")):
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on this device)")
sys.meta_path.insert(0, Missing())
"""


def probe(image: Path, models: list[Path], prelude: str = "") -> dict:
    script = PROBE.format(prelude=prelude, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", script, str(image), *map(str, models)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_tensorflow_is_not_imported(tiny_artifacts, cifar100_samples):
    """TensorFlow is installed here; loading and classifying must still not import it."""
    image = cifar100_samples / "cifar100_06_15.png"
    models = [tiny_artifacts / "tflite-int8.tflite", tiny_artifacts / "onnx-int8.onnx"]
    report = probe(image, models)
    assert report["loaded"] == []
    assert len(report["preds"]) == 2


def test_works_copied_alone_with_one_backend(tiny_artifacts, cifar100_samples, tmp_path):
    device = tmp_path / "device"
    shutil.copytree(RUNTIME, device / "herbi" / "runtime", ignore=shutil.ignore_patterns("*.pyc"))
    image = cifar100_samples / "cifar100_06_15.png"
    for model, other_backend in [
        (tiny_artifacts / "tflite-int8.tflite", "onnxruntime"),
        (tiny_artifacts / "onnx-int8.onnx", "ai_edge_litert"),
    ]:
        absent = (*HEAVY, other_backend)
        report = probe(image, [model], DEVICE.format(root=str(device), absent=absent))
        assert report["file"].startswith(str(device))
        assert report["loaded"] == []
        expected = herbi.runtime.Classifier.load(model).classify(image, top_k=2).to_dict()
        assert report["preds"] == [expected]
