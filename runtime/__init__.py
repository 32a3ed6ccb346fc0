"""herbi.runtime: the on-device classifier. Needs numpy, Pillow and one backend, never TensorFlow.

It imports nothing from herbi.train or herbi.export, so this folder copied alone to a device
(with ai-edge-litert or onnxruntime installed) classifies images with any herbi artifact.
"""

from herbi.runtime.classifier import Classifier
from herbi.runtime.contract import Contract
from herbi.runtime.errors import ContractError, HerbiError, ImageError, ModelError
from herbi.runtime.prediction import Prediction, Ranked

__all__ = [
    "Classifier",
    "Contract",
    "ContractError",
    "HerbiError",
    "ImageError",
    "ModelError",
    "Prediction",
    "Ranked",
]
