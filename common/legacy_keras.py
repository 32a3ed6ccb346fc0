"""Keras 2 for every stage that loads TensorFlow, and a quiet TensorFlow start for the commands.

tfmot, tf2onnx's ``from_keras`` and ``TFLiteConverter.from_keras_model`` need Keras 2
(``tf_keras``); with Keras 3 they fail (see ../shared/verified-stack.txt). TensorFlow reads
``TF_USE_LEGACY_KERAS`` once, at import, so each entry point calls this first.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys

from herbi.runtime.native import filtered_stderr

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# The level the user asked for, read before use_legacy_keras() sets herbi's library default.
USER_LOG_LEVEL = os.environ.get(LOG_LEVEL)
# Lines TensorFlow's libraries log while they load, before absl is initialised, ignore
# TF_CPP_MIN_LOG_LEVEL: absl's banner about them and its INFO lines ("I0000 00:00:...
# port.cc:153] oneDNN custom operations are on", "cudart_stub.cc:31] Could not find cuda
# drivers"). Warnings (W), errors (E) and fatal lines (F) are passed on.
LOAD_CHATTER = re.compile(r"WARNING: All log messages before absl::InitializeLog|I\d{4} \d\d:")


def use_legacy_keras() -> None:
    """Keras 2 through tf_keras, and TensorFlow's C++ INFO/WARNING lines silenced."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault(LOG_LEVEL, "2")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Keras 2, and TensorFlow imported without its informational start-up lines.

    Unless ``verbose`` or the user set ``TF_CPP_MIN_LOG_LEVEL``: C++ INFO lines off (level 1,
    so warnings and errors still show), the lines logged while TensorFlow loads filtered at fd
    2, and on a Linux machine without a CUDA driver the GPU device types are not enabled. TF's
    probe of a GPU there logs ``failed call to cuInit`` as an ERROR, which no log level can hide
    without hiding real errors; not probing a GPU that cannot be used removes the line.
    """
    use_legacy_keras()
    if USER_LOG_LEVEL is not None or "tensorflow" in sys.modules:
        return
    os.environ[LOG_LEVEL] = "0" if verbose else "1"
    if verbose:
        return
    if sys.platform.startswith("linux") and not loads("libcuda.so.1"):
        os.environ.setdefault("TF_ENABLED_DEVICE_TYPES", "CPU,XLA_CPU")
    with filtered_stderr(LOAD_CHATTER.match):
        import tensorflow  # noqa: F401


def loads(library: str) -> bool:
    """Whether the shared library ``library`` can be loaded (the CUDA driver: TF's own test)."""
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True
