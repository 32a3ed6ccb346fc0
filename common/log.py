"""The one logging convention: library code reports progress through a ``Log`` its caller gives."""

from collections.abc import Callable

Log = Callable[[str], None]
