"""herbi.export: turn a trained Keras model into TFLite and ONNX artifacts, each checked."""

from herbi.common.legacy_keras import use_legacy_keras

use_legacy_keras()
