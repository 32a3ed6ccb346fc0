"""The export stage's own error: a model or option that cannot be exported, in one line."""

from __future__ import annotations


class ExportError(ValueError):
    """An input, option or conversion failed; the message names the file or format at fault."""
