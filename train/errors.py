"""Errors that herbi's command-line tools print as one clear line instead of a traceback."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset cannot be loaded; the message names the file or argument at fault."""
