"""herbi's one error family: a command prints a :class:`HerbiError` as one line, no traceback.

The root is here, in the bottom layer, and ``herbi.common.errors`` re-exports it; each part
raises its own subclass so a message says where it came from, and a command catches the root.
"""

from __future__ import annotations


class HerbiError(ValueError):
    """An input, option or file herbi cannot use; the message names the file or argument."""


class ImageError(HerbiError):
    """An input cannot be turned into an image; the message names it."""


class ContractError(HerbiError):
    """The artifact's contract is missing, malformed or does not match the model file."""


class ModelError(HerbiError):
    """A model file cannot be loaded or is not a herbi classifier; the message names it."""


class TFLMError(HerbiError):
    """TFLM refused or failed a model; the message is TFLM's own first log line about it."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of ``error``'s message, or its type name when it has none."""
    return next((s.strip() for s in str(error).splitlines() if s.strip()), type(error).__name__)
