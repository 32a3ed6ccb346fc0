"""The "none of these" answer: a score every herbi artifact computes, and one rule to read it.

An artifact's second output is a score, higher for images more like its classes (the contract
names it). An image that scores below the artifact's threshold is ``unknown``. The threshold
is split-conformal: on ``n`` validation images of the known classes it is the
``floor((n + 1) * (1 - keep))``-th smallest score, so a new image of a known class is kept with
probability at least ``keep`` whenever it is exchangeable with those images (Vovk et al.;
Angelopoulos and Bates, "A Gentle Introduction to Conformal Prediction", 2021). It is computed
through the artifact's own runtime, because int8 scores are not float scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from herbi.runtime.errors import ContractError, ModelError

UNKNOWN = "unknown"  # the label of an image that is none of the artifact's classes
SCORES = ("cos_proto", "msp", "maxlogit")  # built by herbi.train.openset
DEFAULT_SCORE = "cos_proto"  # chosen on evidence: docs/openset.md
DEFAULT_KEEP = 0.95


@dataclass(frozen=True)
class Unknown:
    """How an artifact answers "none of these" (the contract's ``unknown`` field).

    ``score``: the second output's name (one of :data:`SCORES`); ``threshold``:
    an image scoring below it is unknown; ``keep``: the share of known-class images the
    threshold keeps, guaranteed as above; ``images``: the validation images it came from.
    """

    score: str
    threshold: float
    keep: float
    images: int

    @classmethod
    def from_dict(cls, raw: object, source: str) -> Unknown:
        """Validate the contract's ``unknown`` object; a malformed one names ``source``."""
        ok = (
            isinstance(raw, dict)
            and isinstance(raw.get("score"), str)
            and type(raw.get("threshold")) in (int, float)
            and math.isfinite(raw["threshold"])
            and type(raw.get("keep")) in (int, float)
            and 0 < raw["keep"] < 1
            and type(raw.get("images")) is int
        )
        if not ok:
            raise ContractError(
                f"{source}: contract field 'unknown' must hold score, threshold, keep (0-1) "
                "and images"
            )
        return cls(raw["score"], float(raw["threshold"]), float(raw["keep"]), raw["images"])


def conformal_threshold(scores: np.ndarray, keep: float) -> float:
    """The split-conformal threshold that keeps a new known-class image with probability at
    least ``keep``; ``-inf`` (keep everything) when too few scores can promise it."""
    if not 0 < keep < 1:
        raise ValueError(f"keep={keep!r}: must be between 0 and 1")
    rank = math.floor((len(scores) + 1) * (1 - keep))
    return float(np.sort(np.asarray(scores, np.float64))[rank - 1]) if rank >= 1 else -math.inf


def is_unknown(scores: np.ndarray, threshold: float | None) -> np.ndarray:
    """The rule every runtime applies (C++ and JavaScript included): score < threshold."""
    if threshold is None:
        return np.zeros(len(scores), bool)
    return np.asarray(scores) < threshold


def output_roles(path: Path, shapes: list) -> list[int]:
    """The output indices in herbi's order: the class probabilities, then the unknown score
    (one value per image) if the artifact has one; converters may store them either way."""
    widths = [int(shape[-1]) if len(shape) == 2 else 0 for shape in shapes]
    classes = [i for i, w in enumerate(widths) if w > 1]
    scores = [i for i, w in enumerate(widths) if w == 1]
    if len(classes) == 1 and len(scores) == len(shapes) - 1 <= 1:
        return classes + scores
    raise ModelError(
        f"{path}: expected class probabilities (N, classes) and at most an unknown score "
        f"(N, 1) as outputs, got shapes {[list(s) for s in shapes]}"
    )
