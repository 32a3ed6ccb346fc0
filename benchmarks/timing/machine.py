"""Which machine the figures come from: CPU model, cores, vector instruction sets, load.

Latency and GMAC/s only mean something next to the CPU that produced them: int8 kernels run
several times faster with VNNI, float kernels with AVX-512.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Machine:
    """The machine section of a report: the CPU, its cores and instruction sets, the load."""

    cpu: str
    cpu_label: str
    architecture: str
    logical_cpus: int | None
    usable_cpus: int
    physical_cores: int | None
    cpu_mhz: float | None
    isa: list[str]
    os: str
    python: str
    load_average_start: list[float] | None
    load_average_end: list[float] | None


def describe(load_average_start: list[float] | None) -> Machine:
    """This machine, the load average now being the run's end."""
    cpu = cpu_info()
    return Machine(cpu.name, cpu.label(), platform.machine(), os.cpu_count(), usable_cores(),
                   cpu.physical_cores, cpu.mhz, cpu.isa, platform.platform(),
                   platform.python_version(), load_average_start, load_average())  # fmt: skip
