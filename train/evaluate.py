"""Score a model on one split: accuracy with its 95% CI, per-class scores, confusion matrix.

The interval (Wilson's, from scipy) lets every report state how well each figure is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from herbi.runtime.contract import PIXEL_SCALE, float_input


def accuracy_ci(correct: int, total: int) -> tuple[float, float]:
    """Wilson 95% confidence interval of an accuracy measured on ``total`` images."""
    if total == 0:
        return (0.0, 0.0)
    ci = binomtest(int(correct), int(total)).proportion_ci(confidence_level=0.95, method="wilson")
    return (float(ci.low), float(ci.high))


@dataclass(frozen=True)
class ClassScore:
    """Precision, recall and F1 of one class, or their mean over the classes."""

    precision: float
    recall: float
    f1: float
    support: int  # images of the class (all images for a mean)

    def report_row(self) -> dict[str, float]:
        """This score as a row of sklearn's classification report."""
        values = (self.precision, self.recall, self.f1, float(self.support))
        return dict(zip(("precision", "recall", "f1-score", "support"), values, strict=True))


@dataclass(frozen=True)
class Scores:
    """All the figures a report needs about one split."""

    n: int
    accuracy: float
    accuracy_ci95: tuple[float, float]
    macro_f1: float
    per_class: dict[str, ClassScore]
    confusion: list[list[int]]
    macro: ClassScore  # the unweighted mean over classes
    weighted: ClassScore  # the mean weighted by support

    def to_dict(self) -> dict:
        """metrics.json's form, as ever: ``per_class`` is sklearn's classification report."""
        report: dict[str, object] = {name: c.report_row() for name, c in self.per_class.items()}
        report["accuracy"] = self.accuracy
        report["macro avg"] = self.macro.report_row()
        report["weighted avg"] = self.weighted.report_row()
        fields = {k: v for k, v in vars(self).items() if k not in ("macro", "weighted")}
        return {**fields, "per_class": report}


def score(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> Scores:
    """All the figures a report needs from true labels and predicted probabilities."""
    pred = probs.argmax(axis=1)
    labels = list(range(len(class_names)))
    correct, n = int((pred == y_true).sum()), len(y_true)

    def prf(average: str | None) -> tuple:
        return precision_recall_fscore_support(
            y_true, pred, labels=labels, average=average, zero_division=0
        )

    p, r, f1, support = prf(None)
    per_class = {
        name: ClassScore(float(p[i]), float(r[i]), float(f1[i]), int(support[i]))
        for i, name in enumerate(class_names)
    }
    macro, weighted = (ClassScore(*prf(a)[:3], int(support.sum())) for a in ("macro", "weighted"))
    confusion = confusion_matrix(y_true, pred, labels=labels).tolist()
    accuracy = correct / max(n, 1)
    return Scores(
        n, accuracy, accuracy_ci(correct, n), macro.f1, per_class, confusion, macro, weighted
    )


def keras_probs(model, pixels: np.ndarray, scale: float = PIXEL_SCALE) -> np.ndarray:
    """A Keras model's float32 probabilities for uint8 images, fed exactly as in training.

    The one reference every parity check, gate and benchmark compares artifacts with.
    """
    return np.asarray(
        model.predict(float_input(pixels, scale), batch_size=256, verbose=0), np.float32
    )
