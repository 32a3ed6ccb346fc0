"""What ``Classifier.classify`` returns: the best class and the ranked top-k, as plain values."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Ranked(NamedTuple):
    """One entry of a top-k list; unpacks as ``label, index, probability``."""

    label: str
    index: int
    probability: float


@dataclass(frozen=True)
class Prediction:
    """The most probable class of one image and the ``top_k`` best, most probable first."""

    label: str
    index: int
    probability: float
    top_k: tuple[Ranked, ...]

    def to_dict(self) -> dict:
        """JSON-ready form (``herbi-classify --json`` prints this).

        Probabilities are rounded to 6 decimals: they come from float32, which carries about
        7 significant digits, so more would only print noise (0.30000001192092896).
        """

        def entry(r: Prediction | Ranked) -> dict:
            return {"label": r.label, "index": r.index, "probability": round(r.probability, 6)}

        return {**entry(self), "top_k": [entry(r) for r in self.top_k]}


def rank(probs: np.ndarray, labels: list[str], top_k: int) -> list[Prediction]:
    """One Prediction per row of ``probs`` (N, classes); ties go to the lower class index.

    Plain Python on ``tolist()`` rows: for a handful of classes this is several times faster
    than NumPy's argsort machinery, and it is the per-call cost of every ``classify``.
    """
    classes = range(probs.shape[1])
    k = min(top_k, len(classes))
    preds = []
    for row in probs.tolist():
        best = heapq.nlargest(k, classes, key=row.__getitem__)  # stable, like sorted()
        ranked = tuple(Ranked(labels[i], i, row[i]) for i in best)
        preds.append(Prediction(*ranked[0], top_k=ranked))
    return preds
