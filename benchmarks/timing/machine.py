"""Which machine the figures come from: CPU model, cores, vector instruction sets, load.

Latency and GMAC/s only mean something next to the CPU that produced them: int8 kernels run
several times faster with VNNI, float kernels with AVX-512.
"""

from __future__ import annotations

import os
import platform

from herbi.common.cpu import cpu_info


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


def describe(load_average_start: list[float] | None) -> dict:
    """The machine section of the report, the load average now being the run's end."""
    cpu = cpu_info()
    return {
        "cpu": cpu.name,
        "cpu_label": cpu.label(),
        "architecture": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable_cores(),
        "physical_cores": cpu.physical_cores,
        "cpu_mhz": cpu.mhz,
        "isa": cpu.isa,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_start": load_average_start,
        "load_average_end": load_average(),
    }
