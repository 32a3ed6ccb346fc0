"""The project installs as the `herbi` package and its commands answer --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {
    "common": "herbi.common",
    "train": "herbi.train",
    "export": "herbi.export",
    "runtime": "herbi.runtime",
    "benchmarks": "herbi.benchmarks",
}


def test_plain_install_ships_every_subpackage(tmp_path):
    """`pip install .` (not editable) must carry every folder that has an __init__.py."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for folder in FOLDERS:
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.relative_to(REPO / folder)
            assert (tmp_path / "herbi" / folder / rel).is_file(), f"{rel} missing from the wheel"
    assert not (tmp_path / "herbi" / "__init__.py").exists()  # herbi is a namespace package


@pytest.mark.parametrize(
    "command", ["herbi-train", "herbi-export", "herbi-classify", "herbi-bench", "herbi-serve"]
)
def test_console_scripts_explain_themselves(command):
    exe = Path(sys.executable).parent / command
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout and len(proc.stdout.splitlines()) > 5


def test_runtime_imports_without_tensorflow():
    code = "import sys, herbi.runtime; bad = [m for m in sys.modules if m.split('.')[0] == 'tensorflow' or m.startswith(('herbi.train', 'herbi.export'))]; print(bad); sys.exit(bool(bad))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
