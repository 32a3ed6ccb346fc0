"""herbi.runtime: the on-device classifier. Needs numpy, Pillow and one backend, never TensorFlow.

It imports nothing from herbi.train or herbi.export, so this folder copied alone to a device
(with ai-edge-litert or onnxruntime installed) classifies images with any herbi artifact.
"""

from herbi.runtime.backends import ModelError
from herbi.runtime.classifier import Classifier
from herbi.runtime.contract import Contract, ContractError
from herbi.runtime.image import ImageError
from herbi.runtime.prediction import Prediction, Ranked

__all__ = [
    "Classifier",
    "Contract",
    "ContractError",
    "ImageError",
    "ModelError",
    "Prediction",
    "Ranked",
]
