"""The accuracy gate's statistics: does quantization really damage the model, or is it noise?

Agreement with Keras (no labels needed) is measured on validation plus train images outside the
calibration set; the accuracy drop on validation only, as a paired test (:func:`paired_test`).
:func:`judge` refuses on significant damage, not on noise (docs/export.md says how).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binomtest, norm

from herbi.common.errors import ExportError

# Defaults of the gate's options; docs/export.md gives the measurements that chose each.
DEFAULT_TRAIN_SAMPLE = 5000  # train images beside validation: agreement's error ~0.2 points
DEFAULT_MIN_AGREEMENT = 0.97  # over 5 standard errors under the reference model's int8 agreement
DEFAULT_MAX_DROP = 1.0  # accuracy points, refused only when also significant at DEFAULT_ALPHA
DEFAULT_ALPHA = 0.05  # of the exact McNemar test
DEFAULT_HARD_LIMIT = 5.0  # points: the drop's 95% upper bound must rule out a loss this large
CONFIDENCE = 0.95  # of the drop's interval, the one --hard-limit bounds


@dataclass(frozen=True)
class GateOptions:
    """The gate's strictness (``herbi-export`` options of the same names)."""

    min_agreement: float = DEFAULT_MIN_AGREEMENT
    max_drop: float = DEFAULT_MAX_DROP
    hard_limit: float = DEFAULT_HARD_LIMIT
    alpha: float = DEFAULT_ALPHA
    train_images: int = DEFAULT_TRAIN_SAMPLE

    def __post_init__(self) -> None:
        """A one-line ExportError naming the option out of range."""
        if not 0 <= self.min_agreement <= 1:
            raise ExportError(f"--min-agreement {self.min_agreement}: must lie in [0, 1]")
        if not 0 < self.alpha < 1:
            raise ExportError(f"--alpha {self.alpha}: must lie strictly between 0 and 1")
        if not self.hard_limit > 0:
            raise ExportError(
                f"--hard-limit {self.hard_limit}: must be a positive number of points"
            )
        if self.train_images < 0:
            raise ExportError(f"--parity-train-images {self.train_images}: must be 0 or more")


@dataclass(frozen=True)
class ParityImages:
    """The images agreement is measured on: the validation split first, then the train sample."""

    pixels: np.ndarray  # uint8 (N, H, W, 3)
    labels: np.ndarray  # int (N,): their true classes; agreement itself ignores them
    val_images: int
    train_images: int
    train_available: int  # train images outside the calibration set
    calibration_images: int

    @property
    def description(self) -> str:
        """Which images were used, for the log and the report (e.g. "250 validation images")."""
        if self.train_images == 0:
            return f"{self.val_images:,} validation images"
        calibration = f"{self.calibration_images:,} calibration images"
        if self.train_images < self.train_available:
            which = f"a seeded sample, not the {calibration}"
        else:
            which = f"all the train images outside the {calibration}"
        return f"{self.val_images:,} validation + {self.train_images:,} train images ({which})"


def parity_images(
    dataset, calibration: np.ndarray, train_sample: int = DEFAULT_TRAIN_SAMPLE, seed: int = 0
) -> ParityImages:
    """Every validation image plus up to ``train_sample`` train images not in ``calibration``
    (a :class:`herbi.train.data.Dataset`'s; seeded, so a report can be reproduced)."""
    outside = np.setdiff1d(np.arange(len(dataset.y_train)), calibration)
    take = min(train_sample, len(outside))
    picked = np.sort(np.random.default_rng(seed).choice(outside, take, replace=False))
    return ParityImages(
        pixels=np.concatenate([dataset.x_val, dataset.x_train[picked]]),
        labels=np.concatenate([dataset.y_val, dataset.y_train[picked]]),
        val_images=len(dataset.y_val),
        train_images=take,
        train_available=len(outside),
        calibration_images=len(np.unique(calibration)),
    )


@dataclass(frozen=True, kw_only=True)
class PairedTest:
    """Keras vs the artifact on the same labelled images (fields named as the reports name them);
    drops are Keras minus artifact, in accuracy points (positive: the artifact is worse)."""

    images: int
    keras_correct: int
    artifact_correct: int
    keras_right_artifact_wrong: int  # the discordant pairs
    artifact_right_keras_wrong: int
    drop_points: float
    interval_points: tuple[float, float]
    confidence: float = CONFIDENCE
    interval_method: str = "Tango score"
    p_value: float  # exact two-sided McNemar
    test: str = "exact McNemar (two-sided binomial on the discordant pairs)"

    def rounded(self) -> PairedTest:
        """As the reports publish it: rounded to what 250-ish images can say."""
        low, high = self.interval_points
        return replace(
            self,
            drop_points=round(self.drop_points, 3),
            p_value=float(f"{self.p_value:.3g}"),
            interval_points=(round(low, 3), round(high, 3)),
        )


def tango_score(b: int, c: int, n: int, delta: float) -> float:
    """Tango's score statistic (Statistics in Medicine 17:891) for a paired difference ``delta``
    of proportions, ``b`` and ``c`` the discordant counts out of ``n`` pairs."""
    num = b - c - n * delta
    if num == 0:
        return 0.0
    a_, b_, c_ = 2 * n, -b - c + (2 * n - b + c) * delta, -c * delta * (1 - delta)
    p21 = (math.sqrt(max(b_ * b_ - 4 * a_ * c_, 0.0)) - b_) / (2 * a_)
    var = n * (2 * p21 + delta * (1 - delta))
    return num / math.sqrt(var) if var > 0 else math.copysign(math.inf, num)


def tango_interval(b: int, c: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Tango's score interval for the paired difference ``(b - c) / n``: every ``delta`` whose
    score statistic stays within +-z. The statistic decreases in ``delta``, so each end is
    one root, found by bisection-type search between the estimate and -1 or 1."""
    z = float(norm.ppf(0.5 + confidence / 2))
    est, edge = (b - c) / n, 1 - 1e-12
    low, high = -1.0, 1.0
    if tango_score(b, c, n, -edge) > z:
        low = brentq(lambda d: tango_score(b, c, n, d) - z, -edge, est, xtol=1e-12)
    if tango_score(b, c, n, edge) < -z:
        high = brentq(lambda d: tango_score(b, c, n, d) + z, est, edge, xtol=1e-12)
    return low, high


def paired_test(keras_correct: np.ndarray, artifact_correct: np.ndarray) -> PairedTest:
    """Exact McNemar test and Tango interval for the accuracy drop on the same images: exact,
    as 250 images often give under ten discordant pairs (docs/export.md has the interval's why)."""
    k = np.asarray(keras_correct, bool)
    a = np.asarray(artifact_correct, bool)
    if k.shape != a.shape or k.ndim != 1:
        raise ExportError(f"paired test: {k.shape} and {a.shape} are not two equal 1-D vectors")
    n = len(k)
    if n == 0:
        raise ExportError("paired test: no labelled validation images to compare on")
    b, c = int((k & ~a).sum()), int((a & ~k).sum())
    low, high = tango_interval(b, c, n)
    return PairedTest(
        images=n,
        keras_correct=int(k.sum()),
        artifact_correct=int(a.sum()),
        keras_right_artifact_wrong=b,
        artifact_right_keras_wrong=c,
        drop_points=100 * (b - c) / n,
        interval_points=(100 * low, 100 * high),
        p_value=float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0,
    )


def judge(test: PairedTest, agreement: float, options: GateOptions) -> list[str]:
    """Reasons to refuse the artifact, one line each naming its option (empty: it passes):
    agreement under ``--min-agreement``, a drop both significant and above ``--max-drop``, or an
    interval whose upper end exceeds ``--hard-limit`` (the data cannot rule out a loss that
    large)."""
    o, high = options, test.interval_points[1]
    reasons = []
    if agreement < o.min_agreement:
        reasons.append(f"agreement with Keras {agreement:.4f} < --min-agreement {o.min_agreement}")
    if test.p_value < o.alpha and test.drop_points > o.max_drop:
        reasons.append(
            f"accuracy drop {test.drop_points:.2f} points > --max-drop {o.max_drop} and significant"
            f" (McNemar p = {test.p_value:.2g} < --alpha {o.alpha}, {test.images} validation images)"
        )
    if high > o.hard_limit:
        reasons.append(
            f"accuracy drop may reach {high:.2f} points (upper end of its {test.confidence:.0%} "
            f"interval, {test.images} validation images) > --hard-limit {o.hard_limit}"
        )
    return reasons


def summary_line(test: PairedTest) -> str:
    """The evidence in one line, e.g. "250 images: Keras right/artifact wrong 5, artifact
    right/Keras wrong 2; drop 1.20 points (95% CI -1.12 to 3.90); McNemar p = 0.45"."""
    low, high = test.interval_points
    return (
        f"{test.images} images: Keras right/artifact wrong {test.keras_right_artifact_wrong}, "
        f"artifact right/Keras wrong {test.artifact_right_keras_wrong}; drop "
        f"{test.drop_points:.2f} points ({test.confidence:.0%} CI {low:.2f} to {high:.2f}); "
        f"McNemar p = {test.p_value:.2g}"
    )
