"""What ``Classifier.classify`` returns: the answer (a class, or ``unknown``), the ranked top-k
classes and the unknown score beside its threshold, as plain values."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from herbi.runtime.unknown import UNKNOWN, is_unknown


class Ranked(NamedTuple):
    """One entry of a top-k list; unpacks as ``label, index, probability``."""

    label: str
    index: int
    probability: float


@dataclass(frozen=True)
class Prediction:
    """The answer for one image and its ``top_k`` classes, most probable first.

    The answer is the most probable class, or ``label="unknown"`` (``index=-1``) when the
    image's ``score`` is below ``threshold``; ``probability`` is then the best class's.
    ``score`` is None for an artifact without one; ``threshold`` None when none was applied.
    """

    label: str
    index: int
    probability: float
    top_k: tuple[Ranked, ...]
    score: float | None = None
    threshold: float | None = None

    @property
    def unknown(self) -> bool:
        return self.index < 0

    def to_dict(self) -> dict:
        """JSON-ready form (``herbi-classify --json`` prints this).

        Probabilities are rounded to 6 decimals: they come from float32, which carries about
        7 significant digits, so more would only print noise (0.30000001192092896).
        """

        def entry(r: Prediction | Ranked) -> dict:
            return {"label": r.label, "index": r.index, "probability": round(r.probability, 6)}

        out = {**entry(self), "unknown": self.unknown}
        if self.score is not None:
            out["score"] = round(self.score, 6)
        if self.threshold is not None:
            out["threshold"] = round(self.threshold, 6)
        return {**out, "top_k": [entry(r) for r in self.top_k]}


def rank(
    probs: np.ndarray,
    scores: np.ndarray | None,
    labels: list[str],
    top_k: int,
    threshold: float | None = None,
) -> list[Prediction]:
    """One Prediction per row of ``probs`` (N, classes); ties go to the lower class index. A
    row whose score is below ``threshold`` is ``unknown``.

    Plain Python on ``tolist()`` rows: for a handful of classes this is several times faster
    than NumPy's argsort machinery, and it is the per-call cost of every ``classify``.
    """
    classes = range(probs.shape[1])
    k = min(top_k, len(classes))
    rows = probs.tolist()
    if scores is None:  # Classifier.threshold_for refuses a threshold without scores
        scores_list, outside = [None] * len(rows), [False] * len(rows)
    else:
        scores_list, outside = scores.tolist(), is_unknown(scores, threshold).tolist()
    preds = []
    for row, score, out in zip(rows, scores_list, outside, strict=True):
        best = heapq.nlargest(k, classes, key=row.__getitem__)  # stable, like sorted()
        ranked = tuple(Ranked(labels[i], i, row[i]) for i in best)
        answer = Ranked(UNKNOWN, -1, ranked[0].probability) if out else ranked[0]
        preds.append(Prediction(*answer, top_k=ranked, score=score, threshold=threshold))
    return preds
