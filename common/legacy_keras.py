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

# The user's TF_CPP_MIN_LOG_LEVEL, read before use_legacy_keras() sets herbi's library default.
USER_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
# What TF's libraries log while they load, before absl is set up, ignores the log level: absl's
# banner and its INFO lines (oneDNN is on, no CUDA drivers). W, E and F lines are passed on.
LOAD_CHATTER = re.compile(r"WARNING: All log messages before absl::InitializeLog|I\d{4} \d\d:")


def use_legacy_keras() -> None:
    """Keras 2 through tf_keras, and TensorFlow's C++ INFO/WARNING lines silenced."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Keras 2, and TensorFlow imported without its informational lines (herbi-train/export).

    Unless ``verbose`` or the user set ``TF_CPP_MIN_LOG_LEVEL``: level 1 (warnings and errors
    show), the load-time lines filtered at fd 2, and with no CUDA driver no GPU probe: it logs
    ``failed call to cuInit`` as an ERROR, which no level hides without hiding real errors.
    """
    use_legacy_keras()
    if USER_LOG_LEVEL is not None or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "1"
    if verbose:
        return
    try:
        ctypes.CDLL("libcuda.so.1")  # the CUDA driver, as TF looks for it
    except OSError:
        if sys.platform.startswith("linux"):
            os.environ.setdefault("TF_ENABLED_DEVICE_TYPES", "CPU,XLA_CPU")
    with filtered_stderr(LOAD_CHATTER.match):
        import tensorflow  # noqa: F401
