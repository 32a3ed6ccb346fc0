"""What ``Classifier.classify`` returns: the best class and the ranked top-k, as plain values."""

from __future__ import annotations

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
        """JSON-ready form (``herbi-classify --json`` prints this)."""
        return {
            "label": self.label,
            "index": self.index,
            "probability": self.probability,
            "top_k": [r._asdict() for r in self.top_k],
        }


def rank(probs: np.ndarray, labels: list[str], top_k: int) -> list[Prediction]:
    """One Prediction per row of ``probs`` (N, classes); ties go to the lower class index."""
    k = min(top_k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(probs, order, axis=1)
    preds = []
    for indices, values in zip(order.tolist(), best.tolist(), strict=True):
        ranked = tuple(Ranked(labels[i], i, p) for i, p in zip(indices, values, strict=True))
        preds.append(Prediction(*ranked[0], top_k=ranked))
    return preds
