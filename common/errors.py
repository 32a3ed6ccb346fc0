"""herbi's one error family: every command prints a :class:`HerbiError` as one line, no traceback.

Each stage raises its own subclass so a message says where it came from, and a command catches
the base class.
"""

from __future__ import annotations


class HerbiError(ValueError):
    """An input, option or file herbi cannot use; the message names the file or argument."""


class DataError(HerbiError):
    """A dataset or run folder cannot be loaded."""


class ExportError(HerbiError):
    """A model, option or conversion failed at export."""


class BenchError(HerbiError):
    """A run, option or artifact the benchmark cannot use."""
