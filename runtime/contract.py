"""The contract an exported model carries, so the device needs nothing but the file.

A herbi artifact says which labels its outputs mean, what input size it takes and how pixels
are scaled. ONNX files carry it inside (``metadata_props["herbi"]``); a ``.tflite`` file has a
JSON sidecar beside it (``model.tflite`` -> ``model.json``) that also records the model's
sha256, so a sidecar paired with the wrong model is refused instead of silently mislabelling.

:func:`float_input` is the one map from uint8 pixels to a float model input, so training,
calibration, parity checks, benchmarks and the runtime feed a model bit-identical values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from herbi.runtime.errors import ContractError
from herbi.runtime.quantize import exact_table
from herbi.runtime.unknown import Unknown

SCHEMA = "herbi.contract/1"
METADATA_KEY = "herbi"
PIXEL_SCALE = 1.0 / 255.0  # uint8 pixels -> [0, 1], as every herbi model is trained


def float_input(pixels: np.ndarray, scale: float = PIXEL_SCALE) -> np.ndarray:
    """float32 model input for uint8 ``pixels`` of any shape: ``pixels * scale`` computed in
    float64, rounded once to float32 (the runtime's exact table, so no path differs by an ulp).
    """
    return np.take(exact_table(scale, np.dtype(np.float32), None), pixels)


@dataclass(frozen=True)
class Contract:
    """What a runtime must know to feed a model and read its answer.

    ``scale`` maps uint8 pixels to the model's float input (``x = pixels * scale``); int8 I/O
    quantization parameters are read from the model itself by the runtime and only recorded
    here (``quantization``) for humans and reports. ``unknown``: how the artifact answers "none
    of these" (None: it always names a class).
    """

    labels: list[str]
    input_size: tuple[int, int] = (32, 32)
    scale: float = PIXEL_SCALE
    format: str = ""
    quantization: dict = field(default_factory=dict)
    sha256: str | None = None
    unknown: Unknown | None = None
    schema: str = SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> Contract:
        """Parse and validate; every malformed field is a ContractError naming ``source``."""
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise ContractError(f"{source}: metadata is not valid JSON ({e})") from None
        if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
            raise ContractError(f"{source}: not a herbi contract (expected schema {SCHEMA!r})")
        labels = raw.get("labels")
        named = isinstance(labels, list) and all(isinstance(s, str) and s for s in labels)
        if not named or not labels:
            raise ContractError(f"{source}: contract has no list of labels")
        if len(set(labels)) != len(labels):
            raise ContractError(f"{source}: contract labels are not unique")
        size = raw.get("input_size")
        pair = isinstance(size, list) and len(size) == 2
        if not pair or not all(type(v) is int and v > 0 for v in size):
            raise ContractError(f"{source}: contract input_size must be [height, width] > 0")
        scale = raw.get("scale")
        if type(scale) not in (int, float) or not 0 < scale < float("inf"):
            raise ContractError(f"{source}: contract scale must be a positive number")
        quantization = raw.get("quantization") or {}
        sha256 = raw.get("sha256")
        if not isinstance(quantization, dict) or not isinstance(sha256, (str, type(None))):
            raise ContractError(f"{source}: contract quantization/sha256 fields are malformed")
        unknown = raw.get("unknown")
        unknown = None if unknown is None else Unknown.from_dict(unknown, source)
        fmt = str(raw.get("format", ""))
        return cls(labels, (size[0], size[1]), float(scale), fmt, quantization, sha256, unknown)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sidecar_path(model_path: Path | str) -> Path:
    """``model.tflite`` -> ``model.json``."""
    return Path(model_path).with_suffix(".json")


def read_sidecar(model_path: Path | str, data: bytes | None = None) -> Contract:
    """Read the sidecar of a ``.tflite`` model and check its sha256 against the model.

    Pass the model's bytes as ``data`` when they are already in memory (the runtime hashes
    exactly the bytes it then loads, so the file cannot change in between).
    """
    model_path = Path(model_path)
    side = sidecar_path(model_path)
    if not side.is_file():
        raise ContractError(
            f"{model_path}: no contract sidecar {side.name} beside it; "
            "export the model with herbi-export, which writes both"
        )
    try:
        text = side.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ContractError(f"{side}: cannot read ({e.strerror or e})") from None
    contract = Contract.from_json(text, str(side))
    actual = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(model_path)
    if contract.sha256 != actual:
        raise ContractError(
            f"{model_path}: does not match its contract {side.name} (sha256 {actual[:12]}... "
            f"!= {str(contract.sha256)[:12]}...): the model file is corrupt or truncated, or "
            "the sidecar belongs to another model"
        )
    return contract
