"""Memory sizes as people write them on a command line (``65536``, ``256KB``, ``1MB``)."""

from __future__ import annotations

import math
import re

from herbi.common.errors import HerbiError

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(|b|k|kb|kib|m|mb|mib)\s*", re.IGNORECASE)
_KIB, _MIB = 1 << 10, 1 << 20
_UNITS = {"": 1, "b": 1, "k": _KIB, "kb": _KIB, "kib": _KIB, "m": _MIB, "mb": _MIB, "mib": _MIB}


def parse_size(text: str, option: str) -> int:
    """Bytes of ``65536``, ``256KB`` or ``1MB`` (KB = 1024 bytes, as datasheets count memory);
    an error names ``option``."""
    found = _SIZE.fullmatch(str(text))
    if not found:
        raise HerbiError(f"{option} {text!r}: not a size (write e.g. 65536, 256KB or 1MB)")
    size = math.floor(float(found[1]) * _UNITS[found[2].lower()])
    if size <= 0:
        raise HerbiError(f"{option} {text!r}: must be more than 0 bytes")
    return size
