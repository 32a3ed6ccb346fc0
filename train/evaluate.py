"""Score a model on one split: accuracy with its 95% CI, per-class report, confusion matrix.

Used after every stage on the validation split (which picks checkpoints) and on the test
split (which is only reported). The interval is Wilson's, from scipy: with 500 test images
a 79% accuracy is known to about +-3.6 points, which the reports state next to each figure.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import classification_report, confusion_matrix, f1_score

from herbi.runtime.contract import PIXEL_SCALE, float_input


def accuracy_ci(correct: int, total: int) -> tuple[float, float]:
    """Wilson 95% confidence interval of an accuracy measured on ``total`` images."""
    if total == 0:
        return (0.0, 0.0)
    ci = binomtest(int(correct), int(total)).proportion_ci(confidence_level=0.95, method="wilson")
    return (float(ci.low), float(ci.high))


def score(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """All the figures a report needs from true labels and predicted probabilities."""
    pred = probs.argmax(axis=1)
    labels = list(range(len(class_names)))
    correct = int((pred == y_true).sum())
    return {
        "n": len(y_true),
        "accuracy": correct / max(len(y_true), 1),
        "accuracy_ci95": accuracy_ci(correct, len(y_true)),
        "macro_f1": float(f1_score(y_true, pred, labels=labels, average="macro", zero_division=0)),
        "per_class": classification_report(
            y_true, pred, labels=labels, target_names=class_names, output_dict=True, zero_division=0
        ),
        "confusion": confusion_matrix(y_true, pred, labels=labels).tolist(),
    }


def keras_probs(model, pixels: np.ndarray, scale: float = PIXEL_SCALE) -> np.ndarray:
    """A Keras model's float32 probabilities for uint8 images, fed exactly as in training.

    The one reference every parity check, gate and benchmark compares artifacts with.
    """
    return np.asarray(
        model.predict(float_input(pixels, scale), batch_size=256, verbose=0), np.float32
    )
