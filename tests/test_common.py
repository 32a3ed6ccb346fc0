"""herbi.common: the /proc/cpuinfo parser every figure's machine label comes from."""

from __future__ import annotations

import pytest

from herbi.common.cpu import parse_cpuinfo

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
cpu MHz\t\t: 2000.000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
cpu MHz\t\t: 2000.000
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8
"""

EPYC = """processor\t: 0
model name\t: AMD EPYC 7B13
cpu MHz\t\t: 2450.000
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma f16c

processor\t: 1
model name\t: AMD EPYC 7B13
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma f16c
"""


@pytest.fixture(autouse=True)
def no_onednn_cap(monkeypatch):
    """The suite also runs under ONEDNN_MAX_CPU_ISA=AVX2; these labels are the uncapped ones."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)


GRAVITON = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp i8mm
CPU implementer\t: 0x41
"""


def test_xeon_with_amx():
    cpu = parse_cpuinfo(XEON)
    assert cpu.name == "Intel(R) Xeon(R) Platinum 8480+" and cpu.mhz == 2000.0
    assert cpu.physical_cores == 2
    assert cpu.has_vnni and cpu.has_amx
    assert {"avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16"} <= set(cpu.isa)
    assert cpu.label() == "Intel(R) Xeon(R) Platinum 8480+ (AVX-512, VNNI, BF16, AMX)"


def test_epyc_with_avx2_only_and_hyperthreads():
    cpu = parse_cpuinfo(EPYC)
    assert cpu.physical_cores == 1  # two logical CPUs on one core
    assert not cpu.has_vnni and not cpu.has_amx
    assert "avx512f" not in cpu.isa and "avx2" in cpu.isa
    assert cpu.label() == "AMD EPYC 7B13 (AVX2)"


def test_arm_features_and_missing_fields():
    cpu = parse_cpuinfo(GRAVITON)
    assert {"asimd", "asimddp", "i8mm"} <= set(cpu.isa)
    assert cpu.physical_cores is None and cpu.mhz is None and cpu.name  # falls back to platform
    assert parse_cpuinfo("").flags == frozenset()


def test_a_onednn_cap_is_named_beside_the_cpu(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    label = parse_cpuinfo(XEON).label()
    assert (
        label == "Intel(R) Xeon(R) Platinum 8480+ (AVX-512, VNNI, BF16, AMX), oneDNN capped at AVX2"
    )
