"""Keras 2 for every stage that loads TensorFlow, and a quiet TensorFlow start for the commands.

tfmot, tf2onnx's ``from_keras`` and ``TFLiteConverter.from_keras_model`` need Keras 2
(``tf_keras``); with Keras 3 they fail (see ../shared/verified-stack.txt). TensorFlow picks
``tf.keras`` by ``TF_USE_LEGACY_KERAS`` on first use, so herbi sets it then, not on import.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from contextlib import AbstractContextManager, nullcontext

from herbi.runtime.errors import HerbiError
from herbi.runtime.native import filtered_stderr

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
    """Route ``tf.keras`` to Keras 2 before herbi first uses TensorFlow, which may be imported
    already (herbi.train's modules import it); a ``tf.keras`` already Keras 3 is one clear error
    instead of tfmot's or tf2onnx's."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    tf = sys.modules.get("tensorflow")
    if tf is not None and not tf.keras.__name__.startswith("tf_keras."):
        raise HerbiError("tf.keras is Keras 3: set TF_USE_LEGACY_KERAS=1 before TensorFlow loads")


def quiet_tensorflow(verbose: bool = False) -> None:
    """Keras 2, and TensorFlow imported without its chatter (the commands that load it).

    Only ``verbose`` or ``TF_CPP_MIN_LOG_LEVEL=0`` shows all of TensorFlow's lines. Otherwise
    a level the user set stands (herbi's is 1: warnings and errors show), :data:`TF_CHATTER`
    is filtered at fd 2, which no level hides, and with no CUDA driver there is no GPU probe:
    it logs ``failed call to cuInit`` as an ERROR.
    """
    use_legacy_keras()
    if "tensorflow" in sys.modules:
        return
    if verbose or os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1") == "0":
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
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
