"""What native code (LiteRT, TFLite Micro, TensorFlow) writes straight to fds 1 and 2.

C++ loggers bypass Python's ``sys.stderr``: they can only be caught at the file descriptor,
and herbi's commands keep stderr for one-line errors.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from herbi.runtime.errors import first_line


@contextmanager
def native_output(fds: tuple[int, ...] = (1, 2)) -> Iterator[list[str]]:
    """Send what is written to ``fds`` to a temporary file meanwhile.

    The yielded list receives those lines when the block ends (also when it raises). A
    process started with one of them closed gets no capture: a descriptor saved there would be
    overwritten by the redirection itself.
    """
    lines: list[str] = []
    if not all(_is_open(fd) for fd in fds):
        yield lines
        return
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    saved = [os.dup(fd) for fd in fds]  # fds are taken, so these are other descriptors
    try:
        with tempfile.TemporaryFile() as tmp:
            for fd in fds:
                os.dup2(tmp.fileno(), fd)
            try:
                yield lines
            finally:
                for fd, copy in zip(fds, saved, strict=True):
                    os.dup2(copy, fd)
                tmp.seek(0)
                lines.extend(tmp.read().decode("utf-8", "replace").splitlines())
    finally:
        for fd in saved:
            os.close(fd)


@contextmanager
def filtered_stderr(drop: Callable[[str], object]) -> Iterator[None]:
    """Pass on to stderr every line written to fd 2 meanwhile except those ``drop`` matches."""
    lines: list[str] = []
    try:
        with native_output((2,)) as lines:
            yield
    finally:
        kept = [line for line in lines if not drop(line)]
        if kept:
            os.write(2, ("\n".join(kept) + "\n").encode())


def native_reason(lines: list[str], error: BaseException) -> str:
    """The most telling line of a native failure: the library's own first log line (captured
    by :func:`native_output`), else the first line of the exception it raised."""
    return next((s.strip() for s in lines if s.strip()), None) or first_line(error)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
