"""Which machine the figures come from: CPU model, cores, vector instruction sets, load.

Latency and GMAC/s only mean something next to the CPU that produced them: int8 kernels run
several times faster with VNNI, float kernels with AVX-512. The load average is recorded at the
start and end of a run because figures measured beside other busy processes are noisy.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The instruction-set extensions that decide which kernels LiteRT (XNNPACK) and ONNX Runtime
# (MLAS) pick on x86 and Arm; /proc/cpuinfo lists them among "flags" (x86) or "Features" (Arm).
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "neon",
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
)


def cpuinfo(text: str) -> dict:
    """Model name, flags and physical core count from the text of ``/proc/cpuinfo``."""
    name, flags, cores, mhz = None, set(), set(), None
    physical_id = "0"
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
    return {"name": name, "flags": flags, "physical_cores": len(cores) or None, "mhz": mhz}


def usable_cores() -> int:
    """Logical CPUs this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe() -> dict:
    """The machine section of the report."""
    try:
        info = cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        info = {"name": None, "flags": set(), "physical_cores": None, "mhz": None}
    return {
        "cpu": info["name"] or platform.processor() or platform.machine(),
        "architecture": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable_cores(),
        "physical_cores": info["physical_cores"],
        "cpu_mhz": info["mhz"],
        "isa": [f for f in ISA_FLAGS if f in info["flags"]],
        "os": platform.platform(),
        "python": platform.python_version(),
    }
