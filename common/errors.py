"""The error family's stages above the runtime; the root is :mod:`herbi.runtime.errors`'."""

from __future__ import annotations

from herbi.runtime.errors import HerbiError, first_line

__all__ = ["BenchError", "DataError", "ExportError", "HerbiError", "first_line"]


class DataError(HerbiError):
    """A dataset or run folder cannot be loaded."""


class ExportError(HerbiError):
    """A model, option or conversion failed at export."""


class BenchError(HerbiError):
    """A run, option or artifact the benchmark cannot use."""
