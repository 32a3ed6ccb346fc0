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
from contextlib import AbstractContextManager, nullcontext

from herbi.runtime.native import filtered_stderr

# The user's TF_CPP_MIN_LOG_LEVEL, read before use_legacy_keras() sets herbi's library default.
USER_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
# TensorFlow's lines on fd 2 that ignore the log level or carry no news: absl's pre-init banner,
# INFO lines (oneDNN is on, no CUDA drivers), the CUDA probe on a machine without a GPU driver
# (tf2onnx's graph optimizer probes again), and the converters' notes on options they ignore.
# Every other warning and error is passed on.
TF_CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog|I\d{4} \d\d:|fully_quantize: \d, "
    r"inference_type|[EW]\d{4} \d\d:.*("
    r"failed call to cuInit|Ignored output_format|Ignored drop_control_dependency"
    r"|Skipping runtime version metadata)"
)


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
    with without_chatter():
        import tensorflow  # noqa: F401


def without_chatter() -> AbstractContextManager:
    """Drop :data:`TF_CHATTER` from fd 2 meanwhile, unless all of it was asked for (``--verbose``
    or ``TF_CPP_MIN_LOG_LEVEL=0``); what remains is written when the block ends."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return nullcontext()
    return filtered_stderr(TF_CHATTER.match)
