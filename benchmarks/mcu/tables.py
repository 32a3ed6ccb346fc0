"""The microcontroller section's estimates: which boards an artifact fits with its latency on
each from published MLPerf Tiny results, flash with TFLite Micro's share, the unknown score's
cost, and the fast recipe's size family as a Pareto table.

Everything here is labelled an estimate or a recorded figure: the only microcontroller figures
this machine measures are the arena and the model array (herbi.export.tflm).
"""

from __future__ import annotations

from herbi.benchmarks.mcu.latency import estimates
from herbi.benchmarks.mcu.unknown_cost import UnknownCost
from herbi.common.boards import BOARDS, KB, TFLM_FLASH, Board, Footprint, board_fits
from herbi.common.markdown import NONE, Column, ms, signed, table
from herbi.train.sizes import ACCURACY_MEASURED, FOOTPRINT_MEASURED, Member

FAMILY_PNG = "size_family.png"  # drawn once a size's accuracy is recorded (train.sizes.Member)


def flash_estimate(model_bytes: int) -> str:
    """The program's flash for inference: the model array plus TFLite Micro's share (a range;
    the application is not counted)."""
    low, high = (model_bytes + share for share in TFLM_FLASH)
    return (f"Flash, **estimate**: model array {model_bytes / KB:.1f} KB + TFLite Micro "
            f"{TFLM_FLASH[0] // KB}–{TFLM_FLASH[1] // KB} KB = {low / KB:.0f}–{high / KB:.0f} KB "
            "(the application not counted; herbi.common.boards says where the range comes "
            "from).")  # fmt: skip


def boards_section(name: str, footprint: Footprint) -> list[str]:
    """Which common boards the artifact ``name`` fits, each with its estimated latency: the
    range across published runtimes, and where each figure comes from."""

    def span(v: tuple) -> str:
        times = [ms(e.ms) for e in estimates(footprint.macs, v[0])]  # slowest first
        if not times:
            return NONE
        return times[0] if times[0] == times[-1] else f"{times[-1]}–{times[0]}"

    def basis(v: tuple) -> str:
        said = [
            f"{e.basis.runtime}: {ms(e.ms)} ms ({e.basis.cycles_per_mac:.2f} cycles/MAC, "
            f"[{e.basis.system}]({e.basis.source}))"
            for e in estimates(footprint.macs, v[0])
        ]
        return "; ".join(said) or "no published figure for this core"

    columns: list[Column] = [
        ("board", lambda v: f"[{v[0].name}]({v[0].source})"),
        ("core", lambda v: f"{v[0].core}, {v[0].clock_mhz} MHz"),
        ("fits", lambda v: "yes" if v[1] else "**no**"),
        ("why", lambda v: v[2]),
        ("latency ms, **estimate**", span),
        ("from (runtime: estimate, cycles per MAC, MLPerf Tiny result)", basis),
    ]
    return ["", f"Fits ({name}: declared arena in one SRAM block, model array in flash, "
            "each less the reserve herbi.common.boards states; latency: MACs x cycles "
            "per MAC / clock from published MLPerf Tiny results, an estimate):",
            "", *table(columns, board_fits(footprint)),
            "", flash_estimate(footprint.flash_bytes)]  # fmt: skip


def unknown_cost_table(costs: list[tuple[str, UnknownCost]]) -> list[str]:
    """The unknown decision's cost on a microcontroller: each artifact against the same int8
    classifier converted without the score (flash, arena and ops measured by TFLite Micro)."""
    columns: list[Column] = [
        ("format", lambda v: v[0]),
        ("extra flash", lambda v: f"{v[1].flash_bytes:,} B"),
        ("extra arena, declared (measured)", lambda v: f"{v[1].declared_arena_bytes:,} B"
         f" ({v[1].arena_bytes:,} B)"),
        ("extra MACs", lambda v: f"{v[1].macs:,}"),
        ("extra ops", lambda v: ", ".join(v[1].ops) or "-"),
        ("host time, TFLM reference kernels", lambda v: f"{v[1].host_ms_with:.2f} vs "
         f"{v[1].host_ms_without:.2f} ms ({signed(100 * v[1].host_time_share)}%)"),
    ]  # fmt: skip
    if not costs:
        return []
    return ["", "The unknown decision's cost (the artifact against its classifier alone, "
            "converted the same way; time: this host, not a microcontroller):", "",
            *table(columns, costs)]  # fmt: skip


def smallest_board(member: Member) -> Board | None:
    """The board with the least SRAM (then flash) that takes ``member`` with the reserves."""
    fitting = [b for b in BOARDS if b.limits.admits(member.footprint)]
    return min(fitting, key=lambda b: (b.sram_bytes, b.flash_bytes), default=None)


def family_table(sizes: dict[str, Member]) -> list[str]:
    """The size family's Pareto table: cost against recorded accuracy, smallest first."""

    def accuracy(m: Member) -> str:
        if m.accuracy is None:
            return "to be measured"
        mean, half = m.accuracy
        return f"{100 * mean:.1f}% ± {100 * half:.1f}"

    def board(m: Member) -> str:
        b = smallest_board(m)
        return NONE if b is None else f"{b.key} ({b.sram_bytes // KB} KB SRAM)"

    columns: list[Column] = [
        ("size", lambda v: v[0]),
        ("widths (stem, stages)", lambda v: ", ".join(map(str, v[1].widths))),
        ("parameters", lambda v: f"{v[1].params:,}"),
        ("MACs per image", lambda v: f"{v[1].footprint.macs / 1e6:.1f}M"),
        ("int8 array KB", lambda v: f"{v[1].footprint.flash_bytes / KB:.1f}"),
        ("arena KB, declared (measured)", lambda v: f"{v[1].footprint.declared_arena_bytes / KB:.1f}"
         f" ({v[1].footprint.arena_bytes / KB:.1f})"),
        ("accuracy, 3 seeds (mean ± 95% CI)", lambda v: accuracy(v[1])),
        ("smallest board it fits", lambda v: board(v[1])),
    ]  # fmt: skip
    return table(columns, sizes.items())


def family_measured() -> dict[str, Member]:
    """The fast recipe's sizes whose accuracy is recorded (what the family plot draws)."""
    from herbi.train.recipes.fast import SIZES  # TensorFlow: only when drawn

    return {name: m for name, m in SIZES.items() if m.accuracy is not None}


def family_section() -> list[str]:
    """The fast recipe's size family, with its plot once an accuracy is recorded."""
    from herbi.train.recipes.fast import SIZES

    lines = ["", "The fast recipe's sizes (herbi-train --size or --fits; footprints "
             f"recorded: {FOOTPRINT_MEASURED}; accuracy: {ACCURACY_MEASURED}):", "",
             *family_table(SIZES)]  # fmt: skip
    return lines + (["", f"![accuracy against flash]({FAMILY_PNG})"] if family_measured() else [])
