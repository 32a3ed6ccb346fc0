"""Command-line options that herbi-train, herbi-export and herbi-bench share, declared once so
that their types and choices cannot drift apart; each command says what the option does there."""

from __future__ import annotations

from collections.abc import Callable

import click

from herbi.runtime.unknown import SCORES


def score_option(default: str | None, help: str) -> Callable:
    """``--score``: one of the unknown scores an artifact can compute."""
    return click.option(
        "--score", type=click.Choice(SCORES), default=default, show_default=bool(default), help=help
    )


def keep_option(default: float | None, help: str) -> Callable:
    """``--keep``: the share of known-class images the unknown threshold keeps, strictly between
    0 and 1 (all or none promises nothing)."""
    keep = click.FloatRange(0, 1, min_open=True, max_open=True)
    return click.option("--keep", type=keep, default=default, show_default=bool(default), help=help)
