"""Where a figure came from: package versions and herbi's git commit (no TensorFlow import)."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

PACKAGES = (
    *("herbi", "tensorflow", "tf-keras", "tensorflow-model-optimization"),
    *("tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "tflite-micro"),
    *("numpy", "scikit-learn", "Pillow"),
)


def package_versions() -> dict[str, str]:
    """Python and every package a stage's figures depend on ("not installed" when absent)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str | None:
    """The commit of herbi's own source, when it runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
