"""The benchmark stage's own error: a run, option or artifact it cannot use, in one line."""

from __future__ import annotations


class BenchError(ValueError):
    """An input or option is unusable; the message names the file or option at fault."""
