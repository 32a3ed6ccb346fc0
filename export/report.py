"""export_report.json: what herbi-export built, judged and decided, typed until it is written."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from herbi.common.boards import Footprint
from herbi.common.errors import HerbiError
from herbi.common.files import read_json, write_json
from herbi.export.evidence import GateEvidence, KerasAccuracy, Parity
from herbi.runtime.unknown import Unknown


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """The images int8 ranges were fitted on."""

    split: str = "train"
    images: int
    stratified: bool = True


@dataclass(frozen=True)
class UnknownSetting:
    """The unknown score every artifact computes and the known-class share its threshold keeps,
    promised on this many validation images."""

    score: str
    keep: float
    validation_images: int


@dataclass(frozen=True)
class ReduceRange:
    """``--reduce-range``: 7-bit ONNX int8 weights (for CPUs without VNNI) or not, and why."""

    onnx_int8_7bit_weights: bool
    reason: str


@dataclass(frozen=True, kw_only=True)
class GateSettings:
    """What the gate was asked (herbi-export's options) and which images it judged on."""

    enabled: bool
    max_arena_bytes: int | None
    max_flash_bytes: int | None
    parity_images: str
    parity_train_images: int
    paired_split: str = "val"
    reported_split: str = "test"
    min_agreement: float
    max_drop_points: float
    hard_limit_points: float
    alpha: float
    test: str = "exact McNemar on the discordant pairs; Tango score interval (95%)"


@dataclass(frozen=True)
class ArtifactResult:
    """One format's outcome: ``ok``, ``rejected`` (files kept as ``*.rejected``) or ``failed``
    (its conversion raised; no file)."""

    status: str
    reasons: list[str]
    file: str | None = None
    size_kb: float | None = None
    sha256: str | None = None
    build_seconds: float | None = None
    graph_problems: list[str] = field(default_factory=list)
    val: Parity | None = None
    test: Parity | None = None
    gate: GateEvidence | None = None
    footprint: Footprint | None = None  # a microcontroller artifact's arena and flash
    debug_csv: str | None = None
    unknown: Unknown | None = None  # its calibrated "none of these" threshold


@dataclass(frozen=True)
class ExportReport:
    model: str
    data: str
    labels: list[str]
    calibration: Calibration
    unknown: UnknownSetting
    reduce_range: ReduceRange
    batchnorms_as_depthwise: list[str]
    gate: GateSettings
    keras: KerasAccuracy | None  # None: no parity check
    artifacts: dict[str, ArtifactResult] = field(default_factory=dict)

    def names(self, status: str) -> list[str]:
        return [n for n, a in self.artifacts.items() if a.status == status]


def write_report(report: ExportReport, path: Path) -> None:
    """``report`` plus the entries of formats an earlier export left in the same folder, so
    exporting one format does not lose what the report said of the others; with the lists of
    rejected and failed formats."""
    new = asdict(report)
    try:
        old = {k: v for k, v in read_json(path).get("artifacts", {}).items()
               if k not in new["artifacts"]}  # fmt: skip
    except HerbiError:  # no earlier report, or not one herbi can read: start afresh
        old = {}
    artifacts = {**old, **new["artifacts"]}
    by_status = {s: [n for n, a in artifacts.items() if a.get("status") == s]
                 for s in ("rejected", "failed")}  # fmt: skip
    write_json(path, {**new, "artifacts": artifacts, **by_status})
