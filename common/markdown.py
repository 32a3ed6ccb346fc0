"""Markdown tables built one way: each column is a header and a function from one item to its cell.

A column's header and format sit on one line, so every report (bench, open-set, microcontroller)
builds its tables alike; the number formats here are the cells those tables share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Column = tuple[str, Callable[..., str]]
NONE = "—"  # a cell with no figure


def row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def table(columns: list[Column], items: Iterable, optional: bool = False) -> list[str]:
    """A table's lines, one row per item; ``optional``: no items, no table at all (its section
    does not apply)."""
    items = list(items)
    if optional and not items:
        return []
    lines = [row(h for h, _ in columns), "|" + "---|" * len(columns)]
    return lines + [row(cell(item) for _, cell in columns) for item in items]


def ms(x: float) -> str:
    """Milliseconds: three decimals under 10 ms, one above."""
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def signed(x: float) -> str:
    return f"{x:+.1f}"
