"""The one reader of ``/proc/cpuinfo``: CPU model, cores and the vector instruction sets.

Every timing and several build decisions depend on the CPU: int8 kernels run several times
faster with VNNI, bfloat16 training pays only with AVX512-BF16 or AMX units, and ONNX
Runtime's int8 weights need ``reduce_range`` without VNNI. Figures are labelled with
:meth:`CpuInfo.label` so a reader knows which machine they came from.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

# The instruction-set extensions that decide which kernels LiteRT (XNNPACK), ONNX Runtime
# (MLAS) and oneDNN pick on x86 and Arm; /proc/cpuinfo lists them among "flags" (x86) or
# "Features" (Arm).
ISA_FLAGS = (
    *("sse4_2", "avx", "avx2", "fma", "f16c"),
    *("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16"),
    *("amx_tile", "amx_int8", "amx_bf16"),
    *("neon", "asimd", "asimddp", "i8mm", "sve"),  # Arm
)
VNNI = {"avx512_vnni", "avx_vnni"}
BF16 = {"avx512_bf16", "amx_bf16"}
# A CPU label names the widest vector ISA the CPU has (the first found), then the units it has.
WIDEST = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("asimd", "NEON"))
EXTRAS = (("VNNI", VNNI), ("BF16", BF16), ("AMX", {"amx_tile"}))


@dataclass(frozen=True)
class CpuInfo:
    name: str
    flags: frozenset[str]
    physical_cores: int | None
    mhz: float | None

    @property
    def isa(self) -> list[str]:
        """The listed extensions this CPU has, in :data:`ISA_FLAGS` order."""
        return [f for f in ISA_FLAGS if f in self.flags]

    @property
    def has_vnni(self) -> bool:
        return bool(self.flags & VNNI)

    @property
    def has_amx(self) -> bool:
        return "amx_bf16" in self.flags

    def label(self) -> str:
        """``<model> (<widest vector ISA>[, VNNI][, BF16][, AMX])[, oneDNN capped at <ISA>]``,
        written beside figures."""
        widest = next((name for flag, name in WIDEST if flag in self.flags), "no AVX2")
        extras = [name for name, flags in EXTRAS if self.flags & flags]
        label = f"{self.name} ({', '.join([widest, *extras])})"
        # A cap on oneDNN changes what TensorFlow computes with, so it goes beside the figures.
        cap = onednn_cap()
        return f"{label}, oneDNN capped at {cap}" if cap else label


def onednn_cap() -> str | None:
    """``ONEDNN_MAX_CPU_ISA`` (upper case), if set: how an AVX2-only CPU is reproduced on a wider
    one; training precision and every figure's CPU label take it into account."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() or None


def parse_cpuinfo(text: str) -> CpuInfo:
    """Model name, flags, physical core count and nominal MHz from ``/proc/cpuinfo`` text."""
    name, flags, cores, mhz, physical_id = None, set(), set(), None, "0"
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and name is None:
            name = value
        elif key in ("flags", "Features"):
            flags.update(value.split())
        elif key == "physical id":
            physical_id = value
        elif key == "core id":
            cores.add((physical_id, value))
        elif key == "cpu MHz" and mhz is None:
            mhz = float(value)
    name = name or platform.processor() or platform.machine()
    return CpuInfo(name, frozenset(flags), len(cores) or None, mhz)


@functools.cache
def cpu_info(path: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """This machine's CPU; an unreadable file gives a CPU with no known flags."""
    try:
        return parse_cpuinfo(path.read_text(errors="replace"))
    except OSError:
        return parse_cpuinfo("")
