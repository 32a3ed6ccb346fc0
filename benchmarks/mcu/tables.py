"""The microcontroller section's estimates: latency per board from published MLPerf Tiny
results, flash with TFLite Micro's share, and the fast recipe's size family as a Pareto table.

Everything here is labelled an estimate or a recorded figure: the only microcontroller figures
this machine measures are the arena and the model array (herbi.export.tflm).
"""

from __future__ import annotations

from herbi.benchmarks.mcu.latency import Estimate, estimates
from herbi.benchmarks.tables import NONE, Column, ms, table
from herbi.common.boards import BOARDS, KB, TFLM_FLASH, Board
from herbi.train.sizes import Member


def _span(values: list[float]) -> str:
    low, high = ms(min(values)), ms(max(values))
    return low if low == high else f"{low}–{high}"


def _basis(e: Estimate) -> str:
    p = e.basis
    return (f"{p.runtime}: {ms(e.ms)} ms ({p.cycles_per_mac:.2f} cycles/MAC, "
            f"[{p.system}]({p.source}))")  # fmt: skip


def latency_columns(macs: int) -> list[Column]:
    """Columns for a table of boards (items whose first element is a Board): the latency
    range across published runtimes for ``macs`` per image, and where each figure comes from."""

    def span(v: tuple) -> str:
        found = estimates(macs, v[0])
        return _span([e.ms for e in found]) if found else NONE

    def basis(v: tuple) -> str:
        return "; ".join(map(_basis, estimates(macs, v[0]))) or "no published figure for this core"

    return [("latency ms, **estimate**", span),
            ("from (runtime: estimate, cycles per MAC, MLPerf Tiny result)", basis)]  # fmt: skip


def flash_estimate(model_bytes: int) -> str:
    """The program's flash for inference: the model array plus TFLite Micro's share (a range;
    the application is not counted)."""
    low, high = (model_bytes + share for share in TFLM_FLASH)
    return (f"Flash, **estimate**: model array {model_bytes / KB:.1f} KB + TFLite Micro "
            f"{TFLM_FLASH[0] // KB}–{TFLM_FLASH[1] // KB} KB = {low / KB:.0f}–{high / KB:.0f} KB "
            "(the application not counted; herbi.common.boards says where the range comes "
            "from).")  # fmt: skip


def smallest_board(member: Member) -> Board | None:
    """The board with the least SRAM (then flash) that takes ``member`` with the reserves."""
    f = member.footprint
    fitting = [
        b
        for b in BOARDS
        if f.declared_arena_bytes <= b.model_arena and f.flash_bytes <= b.model_flash
    ]
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
        ("parameters", lambda v: f"{v[1].footprint.params:,}"),
        ("MACs per image", lambda v: f"{v[1].footprint.macs / 1e6:.1f}M"),
        ("int8 array KB", lambda v: f"{v[1].footprint.flash_bytes / KB:.1f}"),
        ("arena KB, declared (measured)", lambda v: f"{v[1].footprint.declared_arena_bytes / KB:.1f}"
         f" ({v[1].footprint.arena_bytes / KB:.1f})"),
        ("accuracy, 3 seeds (mean ± 95% CI)", lambda v: accuracy(v[1])),
        ("smallest board it fits", lambda v: board(v[1])),
    ]  # fmt: skip
    return table(columns, list(sizes.items()))
