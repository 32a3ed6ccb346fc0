"""The accuracy gate's statistics: does quantization really damage the model, or is it noise?

Two kinds of evidence, each on the images that suit it:

* **Agreement** with Keras needs no labels, so it is measured on every validation image plus a
  seeded sample of train images that were *not* used for calibration (their activations set
  the int8 ranges, so they would flatter the artifact). On a few thousand images it is a tight
  measure of quantization damage: on the same images ``|accuracy change| <= 1 - agreement``.
* **Accuracy** needs labels and the gate never looks at the test split, so the drop is measured
  on the validation split only, as a *paired* comparison: Keras and the artifact see the same
  images, and only the images on which exactly one of them is right (the discordant pairs)
  carry information about the difference. :func:`paired_test` gives the exact McNemar p-value
  and a confidence interval for the drop; :func:`judge` refuses on significant damage, not on a
  raw difference of three images out of 250 (one image is 0.4 points there, and each accuracy
  alone has a binomial standard error of about 3 points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binomtest, norm

from herbi.common.errors import ExportError
from herbi.export.parity import strict_agreement, tie_aware_agreement

# Train images added to the validation split for the agreement measure. With agreement near
# 0.985, its standard error on N images is sqrt(0.985 * 0.015 / N): 0.77 points on the 250
# validation images alone, 0.26 on 2,200 and 0.17 on 5,250; int8 inference on 5,000 small
# images stays a matter of seconds. Smaller datasets give what they have: the 5-class stand-in
# has 2,250 train images after the validation split, 1,950 of them outside the calibration set.
DEFAULT_TRAIN_SAMPLE = 5000

# Agreement (tie-aware) below which an artifact is refused: more than 3% of images changed
# their top class, so accuracy may have moved by up to 3 points. Measured on the stand-in data
# (250 validation + 1,950 train images, Xeon with AVX-512 VNNI): the reference recipe's int8
# models agree on 0.983 (a base-stage checkpoint) and 0.986-0.987 (the final model, TFLite and
# ONNX, ONNX also with 7-bit reduce-range weights as on CPUs without VNNI), every disagreeing
# image being one Keras itself ranks within 0.09 between its top two classes; the fast
# recipe's on 0.997-0.9995. 0.98 would leave the reference model 7 to 15 images from refusal;
# 0.97 leaves 29 to 37, over 5 standard errors (0.0132 / 0.0026), while a collapsed model
# (agreement 0.08 in tests/test_gate.py) or one flipping 5% of images (4 standard errors under
# it) is still refused.
DEFAULT_MIN_AGREEMENT = 0.97

# Tolerated drop in accuracy points, as before; it now refuses only when the drop is also
# statistically significant at DEFAULT_ALPHA.
DEFAULT_MAX_DROP = 1.0

# Significance level of the exact McNemar test. With 250 images, the example (a net
# 3-image drop, 1.2 points) has p = 0.25 if all three discordant pairs go against the artifact
# (3 vs 0) and p >= 0.38 when some go its way, far from 0.05; the smallest one-sided split that
# is significant is 6 vs 0 (p = 0.031, 2.4 points). A harmless artifact is refused only when
# chance both makes p < 0.05 and puts the drop above --max-drop: at most 2.5% per int8 format,
# and in practice far less because it also needs a 3-image net loss.
DEFAULT_ALPHA = 0.05

# Refuse when the upper end of the 95% interval of the drop exceeds this many points: "the
# data cannot rule out a 5-point loss". On 250 images the bound is 1.51 points with no
# discordant pair at all and 3.47-4.10 points for the example (3 vs 0 ... 6 vs 3), so
# that passes with at least 0.9 points to spare; 6 vs 0 (5.14) and 9 vs 3 (5.67) are refused.
# A validation split needs at least z^2 * (1 - 0.05) / 0.05 = 73 images before even a
# perfect artifact (no discordant pair) can pass; below that, raise --hard-limit.
DEFAULT_HARD_LIMIT = 5.0
CONFIDENCE = 0.95  # of the drop's interval, the one --hard-limit bounds


@dataclass(frozen=True)
class GateOptions:
    """The gate's strictness (``herbi-export`` options of the same names)."""

    min_agreement: float = DEFAULT_MIN_AGREEMENT
    max_drop: float = DEFAULT_MAX_DROP
    hard_limit: float = DEFAULT_HARD_LIMIT
    alpha: float = DEFAULT_ALPHA
    train_images: int = DEFAULT_TRAIN_SAMPLE

    def check(self) -> GateOptions:
        """Itself, or a one-line ExportError naming the option out of range."""
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
        return self


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
        """E.g. "250 validation + 1,950 train images (all the train images outside the 300
        calibration images)": which images were used, for the log and the report."""
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
    """Every validation image plus up to ``train_sample`` train images not in ``calibration``.

    ``dataset`` is a :class:`herbi.train.data.Dataset`; ``calibration`` holds the indices
    :func:`calibration_indices` gave. The sample is seeded so a report can be reproduced, and
    sorted so it reads the train split in order. The test split is never touched.
    ``train_sample`` is checked by :meth:`GateOptions.check`.
    """
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


def agreement_report(images: ParityImages, ref_probs: np.ndarray, got_probs: np.ndarray) -> dict:
    """The agreement figures for ``export_report.json`` and the bench: the gated tie-aware
    agreement on all parity images, and each part alone (train images were fitted, so the
    model is surer of them and quantization flips fewer: the validation figure is the
    conservative one)."""
    v = images.val_images
    return {
        "images": images.description,
        "count": len(ref_probs),
        "agreement": tie_aware_agreement(ref_probs, got_probs),
        "agreement_strict": strict_agreement(ref_probs, got_probs),
        "agreement_val": tie_aware_agreement(ref_probs[:v], got_probs[:v]),
        "agreement_train": tie_aware_agreement(ref_probs[v:], got_probs[v:]),
    }


@dataclass(frozen=True)
class PairedTest:
    """Keras vs the artifact on the same labelled images; drops are Keras minus artifact, in
    accuracy points (positive: the artifact is worse)."""

    n: int
    keras_correct: int
    artifact_correct: int
    keras_only: int  # discordant: Keras right, artifact wrong
    artifact_only: int  # discordant: artifact right, Keras wrong
    drop_points: float
    low_points: float
    high_points: float
    confidence: float
    p_value: float  # exact two-sided McNemar

    def to_dict(self) -> dict:
        """JSON-ready, rounded to what 250-ish images can say."""
        return {
            "images": self.n,
            "keras_correct": self.keras_correct,
            "artifact_correct": self.artifact_correct,
            "keras_right_artifact_wrong": self.keras_only,
            "artifact_right_keras_wrong": self.artifact_only,
            "drop_points": round(self.drop_points, 3),
            "interval_points": [round(self.low_points, 3), round(self.high_points, 3)],
            "confidence": self.confidence,
            "interval_method": "Tango score",
            "p_value": float(f"{self.p_value:.3g}"),
            "test": "exact McNemar (two-sided binomial on the discordant pairs)",
        }


def tango_score(b: int, c: int, n: int, delta: float) -> float:
    """Tango's score statistic for a paired difference ``delta`` of proportions.

    ``b`` and ``c`` are the discordant counts (first right only, second right only) out of
    ``n`` pairs; the variance uses the maximum-likelihood cell probability constrained to
    ``delta`` (Tango 1998, Statistics in Medicine 17:891). At ``delta = 0`` it is McNemar's
    ``(b - c) / sqrt(b + c)``.
    """
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
    """Exact McNemar test and Tango interval for the accuracy drop on the same images.

    The p-value is the exact (conditional) McNemar test: under "no difference" each of the
    ``b + c`` discordant images is equally likely to favour either model, so ``b`` is
    Binomial(b + c, 1/2); exact because with 250 images there are often fewer than ten
    discordant pairs, where the chi-square approximation is unreliable.

    The interval is Tango's score interval for a difference of paired proportions, chosen
    because (a) it is among the intervals Fagerland, Lydersen and Laake recommend for paired
    proportions (Statistics in Medicine 2014, 33:2850), with coverage close to nominal even
    for small counts; (b) it never collapses: with no discordant pair on n images it still spans
    +-z^2 / (n + z^2) (1.5 points on 250), where a Wald interval would claim zero width and a
    paired bootstrap resamples nothing; (c) it inverts the same score statistic as McNemar's
    test, so it excludes 0 exactly when the asymptotic McNemar test rejects; and (d) it is
    deterministic, so two machines that see the same predictions report the same bounds.
    """
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
        n=n,
        keras_correct=int(k.sum()),
        artifact_correct=int(a.sum()),
        keras_only=b,
        artifact_only=c,
        drop_points=100 * (b - c) / n,
        low_points=100 * low,
        high_points=100 * high,
        confidence=CONFIDENCE,
        p_value=float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0,
    )


def judge(
    test: PairedTest,
    agreement: float,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    max_drop: float = DEFAULT_MAX_DROP,
    hard_limit: float = DEFAULT_HARD_LIMIT,
    alpha: float = DEFAULT_ALPHA,
) -> list[str]:
    """Reasons to refuse the artifact, one line each naming its option (empty: it passes):
    agreement under ``min_agreement``, a drop both significant and above ``max_drop``, or an
    interval whose upper end exceeds ``hard_limit`` (the data cannot rule out a loss that large)."""
    reasons = []
    if agreement < min_agreement:
        reasons.append(f"agreement with Keras {agreement:.4f} < --min-agreement {min_agreement}")
    if test.p_value < alpha and test.drop_points > max_drop:
        reasons.append(
            f"accuracy drop {test.drop_points:.2f} points > --max-drop {max_drop} and significant"
            f" (McNemar p = {test.p_value:.2g} < --alpha {alpha}, {test.n} validation images)"
        )
    if test.high_points > hard_limit:
        reasons.append(
            f"accuracy drop may reach {test.high_points:.2f} points (upper end of its "
            f"{test.confidence:.0%} interval, {test.n} validation images) > --hard-limit "
            f"{hard_limit}"
        )
    return reasons


def summary_line(test: PairedTest) -> str:
    """The evidence in one line, e.g. "250 images: Keras right/artifact wrong 5, artifact
    right/Keras wrong 2; drop 1.20 points (95% CI -1.12 to 3.90); McNemar p = 0.45"."""
    return (
        f"{test.n} images: Keras right/artifact wrong {test.keras_only}, artifact right/Keras "
        f"wrong {test.artifact_only}; drop {test.drop_points:.2f} points ({test.confidence:.0%} "
        f"CI {test.low_points:.2f} to {test.high_points:.2f}); McNemar p = {test.p_value:.2g}"
    )
