"""herbi.train: datasets, the reference CNN and its recipes, and the ``herbi-train`` command.

TensorFlow is used through tf_keras (Keras 2), which tfmot and tf2onnx need; the environment
is set here, before any submodule can import TensorFlow.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
