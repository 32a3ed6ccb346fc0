"""The browser target: a static folder that classifies images on the device, offline once loaded.

The page template (``export/web/``) needs no framework or build step, so any static host can
serve the folder as it is. It is built beside the target and swapped in: a re-export never
leaves a mix of old and new files, and an interrupted one leaves the previous page intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from herbi.common.errors import ExportError
from herbi.common.files import umask, write_json
from herbi.export.artifacts import replace_with
from herbi.runtime import Classifier

SCHEMA = "herbi.web/1"
TEMPLATE = Path(__file__).with_name("web")
PAGE_FILES = ("index.html", "app.js", "model.js", "pixels.js", "style.css")
MODEL_FILE = "model.onnx"
INFO_FILE = "model.json"
RUNTIME_DIR = "ort"
# The WebAssembly build of onnxruntime-web as an ES module: the loader, its Emscripten glue and
# the SIMD binary (the same binary serves one thread or several).
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
RUNTIME_PACKAGE = "onnxruntime-web"
# Where `npm ci` puts the pinned package: the repository root (this file is export/...);
# HERBI_ORT_WEB points elsewhere (an installed herbi has no node_modules beside it).
NODE_MODULES = Path(__file__).resolve().parents[1] / "node_modules"
ORT_ENV = "HERBI_ORT_WEB"


def runtime_dist() -> Path:
    """The folder holding onnxruntime-web's ``dist`` files; ExportError (one line) if absent."""
    dist = Path(os.environ.get(ORT_ENV) or NODE_MODULES / RUNTIME_PACKAGE / "dist")
    missing = [name for name in RUNTIME_FILES if not (dist / name).is_file()]
    if missing:
        raise ExportError(
            f"{dist}: onnxruntime-web files missing ({', '.join(missing)}); run `npm ci` in the "
            f"herbi repository (or `make install`), or set {ORT_ENV} to a folder that has them"
        )
    return dist


def runtime_version(dist: Path) -> str:
    """The npm package's version, from the package.json above ``dist`` ("unknown" if none)."""
    try:
        return json.loads((dist.parent / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"


def model_info(onnx_path: Path, dist: Path, info: Mapping[str, object]) -> dict:
    """``model.json``: the contract and the info panel's facts (``info``: what only the caller
    knows). Loaded with herbi.runtime first, so a file the device cannot run fails here."""
    classifier = Classifier.load(onnx_path, threads=1)
    backend = classifier.backend
    if backend.name != "onnxruntime" or backend.input_dtype != np.float32:
        raise ExportError(
            f"{onnx_path}: the web page runs ONNX models with a float32 input "
            f"(got {backend.name}, {backend.input_dtype})"
        )
    contract = classifier.contract
    return {
        **info,
        "schema": SCHEMA,
        "model": MODEL_FILE,
        "size_bytes": onnx_path.stat().st_size,
        "classes": list(contract.labels),
        "input_shape": list(backend.input_shape),
        "contract": json.loads(contract.to_json()),
        "runtime": {
            "name": RUNTIME_PACKAGE,
            "version": runtime_version(dist),
            "backend": "wasm",
            "files": [f"{RUNTIME_DIR}/{name}" for name in RUNTIME_FILES],
            "bytes": sum((dist / name).stat().st_size for name in RUNTIME_FILES),
        },
    }


def write_web(onnx_path: Path, out_dir: Path, info: Mapping[str, object]) -> list[Path]:
    """Write the page for ``onnx_path`` into ``out_dir`` (replaced whole); return its files."""
    dist = runtime_dist()
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir}: exists and is not a folder")
    meta = model_info(onnx_path, dist, info)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp's 0700 would hide the page from a web server
        for name in PAGE_FILES:
            shutil.copyfile(TEMPLATE / name, tmp / name)
        (tmp / RUNTIME_DIR).mkdir()
        for name in RUNTIME_FILES:
            shutil.copyfile(dist / name, tmp / RUNTIME_DIR / name)
        shutil.copyfile(onnx_path, tmp / MODEL_FILE)
        write_json(tmp / INFO_FILE, meta)
        replace_with(tmp, out_dir)
    except OSError as e:
        raise ExportError(f"{out_dir}: cannot write the web page ({e.strerror or e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when swapped in
    return sorted(p for p in out_dir.rglob("*") if p.is_file())
