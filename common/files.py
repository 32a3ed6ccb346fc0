"""Atomic file writes and JSON, for every file herbi produces.

Each file is written to a temporary name in the same folder and renamed into place, so an
interrupted run never leaves a truncated model or report that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from herbi.common.errors import HerbiError

T = TypeVar("T")


def umask() -> int:
    """The process's file-creation mask (reading it means setting it, so it is put back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix last: savers such as Keras pick the file format from it.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~umask())  # mkstemp's 0600 would hide results from other users
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.replace(path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: Path | str, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: Path | str, obj: object) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path | str) -> dict:
    """A JSON object from ``path``; a missing, unreadable or non-object file is a HerbiError."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HerbiError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HerbiError(f"{path}: not readable JSON ({e})") from None
    if not isinstance(obj, dict):
        raise HerbiError(f"{path}: expected a JSON object")
    return obj


def from_json(cls: type[T], obj: Any) -> T:
    """The record ``cls`` from its ``dataclasses.asdict`` form read back from a file: nested
    records, dicts of records and tuples rebuilt from the field types. Keys ``cls`` lacks are
    ignored and missing fields take their defaults, so older and newer files still read."""
    if not isinstance(obj, dict):
        raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(obj).__name__}")
    hints = get_type_hints(cls)
    return cls(**{f.name: _typed(hints[f.name], obj[f.name]) for f in fields(cls) if f.name in obj})


def _typed(hint: Any, value: Any) -> Any:
    """``value`` as a field typed ``hint`` holds it."""
    origin, args = get_origin(hint), [a for a in get_args(hint) if a is not type(None)]
    if value is None:
        if hint is not Any and type(None) not in get_args(hint):
            raise TypeError(f"null where a {hint} is needed")
        return value
    if is_dataclass(hint):
        return from_json(hint, value)
    if origin in (Union, UnionType):
        return _typed(args[0], value)
    if origin is dict:
        return {k: _typed(args[1], v) for k, v in value.items()}
    return tuple(value) if origin is tuple else value


def save_figure(fig, path: Path) -> None:
    """A ``matplotlib.figure.Figure`` as a PNG, atomically. Figures are made without pyplot, so
    no backend is chosen globally and none is left open."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
