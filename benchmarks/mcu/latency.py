"""Latency on a microcontroller, estimated from published measurements, never measured here.

MLPerf Tiny's image-classification benchmark runs one model, ResNet-8 (12.5M MACs per
image), on real boards; its median throughput, clock and core give each runtime's cycles per
multiply-accumulate. A herbi model's estimate on a board is ``MACs x cycles per MAC / clock``
for every published runtime on the board's core type: a range from TFLite Micro (with
CMSIS-NN where the submission used it) to the fastest published engine. It assumes cycles per
MAC carry over across models of the same kind of layers (3x3 convolutions, int8) and across
chips and clocks of one core type (memory wait states differ: an estimate). A core with no
published figure gets no estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from herbi.common.boards import Board

RESNET8_MACS = 12.5e6  # MLPerf Tiny's image-classification model, per image


@dataclass(frozen=True)
class MlperfResult:
    """One MLPerf Tiny image-classification result (closed division, int8 ResNet-8)."""

    core: str  # as herbi.common.boards.Board.core names it
    system: str  # the board and clock the result was measured on
    clock_mhz: int
    runtime: str
    tflm: bool  # TensorFlow Lite Micro, the runtime herbi's C++ uses
    throughput: float  # median inferences per second, from the result's log
    source: str  # repository and path of the result file

    @property
    def cycles_per_mac(self) -> float:
        return self.clock_mhz * 1e6 / (self.throughput * RESNET8_MACS)


def _result(version: str, path: str) -> str:
    """The result file's address: the results repository of MLPerf Tiny ``version``."""
    return (f"https://github.com/mlcommons/tiny_results_{version}/blob/HEAD/{path}"
            "/ic/performance/results.txt")  # fmt: skip


PUBLISHED: tuple[MlperfResult, ...] = (
    MlperfResult("Cortex-M0+", "NUCLEO-G0B1RE, 64 MHz", 64, "Bosch HALE 1.0.175", False, 0.657,
                 _result("v1.2", "closed/bosch/results/NUCLEO_G0B1RE_int8")),
    MlperfResult("Cortex-M4", "NUCLEO-L4R5ZI, 120 MHz", 120, "TFLM 2.3.1 (reference submission)",
                 True, 1.420, _result("v0.5", "closed/reference/results/Nucleo-L4R5ZI")),
    MlperfResult("Cortex-M4", "NUCLEO-L4R5ZI, 120 MHz", 120, "Plumerai Inference Engine 2023.05",
                 False, 5.961, _result("v1.1", "closed/plumerai/results/NUCLEO-L4R5ZI")),
    MlperfResult("Cortex-M4", "NUCLEO-L4R5ZI, 120 MHz", 120, "ST X-CUBE-AI 9.0", False, 6.056,
                 _result("v1.2", "closed/STMicroelectronics/results/NUCLEO_L4R5ZI")),
    MlperfResult("Cortex-M7", "DISCO-F746NG, 216 MHz", 216, "Plumerai Inference Engine 2023.05",
                 False, 15.904, _result("v1.1", "closed/plumerai/results/DISCO-F746NG")),
    MlperfResult("Cortex-M7", "DISCO-F746NG, 216 MHz", 216, "Bosch HALE 1.0.175", False, 15.986,
                 _result("v1.2", "closed/bosch/results/DISCO_F746NG_int8")),
    MlperfResult("Cortex-M33", "EK-RA6M4, 200 MHz", 200, "TFLM with CMSIS (Renesas)", True, 4.062,
                 _result("v0.7", "closed/renesas/results/EK-RA6M4")),
    MlperfResult("Cortex-M33", "NUCLEO-U575ZI-Q, 160 MHz", 160, "ST X-CUBE-AI 10.2", False, 9.133,
                 _result("v1.3", "closed/STMicroelectronics/results/NUCLEO_U575ZI_Q")),
    MlperfResult("Cortex-M33", "NUCLEO-U575ZI-Q, 160 MHz", 160, "Plumerai Inference Engine 2023.05",
                 False, 9.589, _result("v1.1", "closed/plumerai/results/NUCLEO-U575ZI-Q")),
    MlperfResult("Cortex-M85", "EK-RA8D1, 480 MHz", 480, "TFLM with CMSIS (Renesas)", True,
                 117.948, _result("v1.2", "closed/Renesas/results/EK-RA8D1")),
)  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """One runtime's estimated latency for one model on one board."""

    basis: MlperfResult
    ms: float


def estimates(macs: int, board: Board) -> list[Estimate]:
    """Every published runtime's estimate for ``macs`` per image on ``board``, slowest first
    ([] for a core without published figures)."""
    found = [
        Estimate(p, macs * p.cycles_per_mac / (board.clock_mhz * 1e3))
        for p in PUBLISHED
        if p.core == board.core
    ]
    return sorted(found, key=lambda e: -e.ms)
