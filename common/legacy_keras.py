"""Keras 2 for every stage that loads TensorFlow, set before TensorFlow is first imported.

tfmot, tf2onnx's ``from_keras`` and ``TFLiteConverter.from_keras_model`` need Keras 2
(``tf_keras``); with Keras 3 they fail (see ../shared/verified-stack.txt). TensorFlow reads
``TF_USE_LEGACY_KERAS`` once, at import, so each entry point calls this first.
"""

from __future__ import annotations

import os


def use_legacy_keras() -> None:
    """Keras 2 through tf_keras, and TensorFlow's C++ INFO/WARNING lines silenced."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
