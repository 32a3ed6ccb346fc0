"""herbi.export: turn a trained Keras model into TFLite and ONNX artifacts, each checked.

TensorFlow is used through tf_keras (Keras 2), which tfmot, tf2onnx and the TFLite converter
need; the environment is set here, before any submodule can import TensorFlow.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
