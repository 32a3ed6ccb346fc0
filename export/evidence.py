"""The evidence on an artifact: does it still do the Keras model's job, image for image?

Every evidence type lives here. :func:`evaluate` runs an artifact through
:meth:`herbi.runtime.Classifier.predict_proba` (a device's code path) beside the Keras model's
probabilities on the same images (:class:`Reference`): agreement (no labels needed) on
validation plus train images outside the calibration set (:class:`ParityImages`), and the
accuracy drop on validation as a paired test (:func:`paired_test`). The typed
:class:`Evidence` is what export's gate (herbi.export.gate) judges and the bench reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binomtest, norm

from herbi.common.errors import ExportError
from herbi.runtime import Classifier

BATCH = 256
CONFIDENCE = 0.95  # of the drop's interval, the one --hard-limit bounds


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
    dataset, calibration: np.ndarray, train_sample: int, seed: int = 0
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


@dataclass(frozen=True)
class Parity:
    """An artifact against Keras on one set of labelled images (agreements as the functions of
    those names measure them; ``ties``: images with tied top classes; drops: Keras minus
    artifact, in accuracy points)."""

    images: int
    agreement: float
    agreement_tie_aware: float
    ties: int
    max_abs_diff: float
    mean_abs_diff: float
    accuracy_keras: float
    accuracy_artifact: float
    drop_points: float
    per_class_change_points: dict[str, float]


def artifact_probs(path: Path, pixels: np.ndarray, backend: str | None = None) -> np.ndarray:
    clf = Classifier.load(path, backend=backend)
    return np.concatenate(
        [clf.predict_proba(pixels[i : i + BATCH]) for i in range(0, len(pixels), BATCH)]
        or [np.zeros((0, len(clf.labels)), np.float32)]
    )


def tie_aware_agreement(ref: np.ndarray, got: np.ndarray) -> float:
    """Share of images whose Keras top class is among the artifact's top classes (an int8
    softmax has 1/256 resolution: two classes closer than that tie, and count as agreeing)."""
    at_top = got >= got.max(1, keepdims=True)
    return float(at_top[np.arange(len(ref)), ref.argmax(1)].mean()) if len(ref) else 1.0


def strict_agreement(ref: np.ndarray, got: np.ndarray) -> float:
    """Share of images with the same argmax (a tie resolves to the lower index, as in the
    runtime); on labelled images ``|accuracy change| <= 1 - strict_agreement``."""
    return float((ref.argmax(1) == got.argmax(1)).mean()) if len(ref) else 1.0


def compare(ref: np.ndarray, got: np.ndarray, y: np.ndarray, labels: list[str]) -> Parity:
    """``got`` (the artifact's probabilities) against ``ref`` (Keras's) on labels ``y``."""
    ref_top, got_top = ref.argmax(1), got.argmax(1)
    diff = np.abs(ref.astype(np.float64) - got)
    acc_ref, acc_got = float((ref_top == y).mean()), float((got_top == y).mean())
    per_class = {
        label: 100 * float((got_top[y == i] == i).mean() - (ref_top[y == i] == i).mean())
        for i, label in enumerate(labels)
        if (y == i).any()
    }
    return Parity(
        images=len(y),
        agreement=strict_agreement(ref, got),
        agreement_tie_aware=tie_aware_agreement(ref, got),
        ties=int(((got >= got.max(1, keepdims=True)).sum(1) > 1).sum()),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        accuracy_keras=acc_ref,
        accuracy_artifact=acc_got,
        drop_points=100 * (acc_ref - acc_got),
        per_class_change_points=per_class,
    )


@dataclass(frozen=True)
class Agreement:
    """Agreement with Keras on the gate's parity images: the gated tie-aware figure on all of
    them, and each part alone (train images were fitted, so the model is surer of them and
    quantization flips fewer: the validation figure is the conservative one)."""

    images: str
    count: int
    agreement: float
    agreement_strict: float
    agreement_val: float
    agreement_train: float

    @classmethod
    def measure(cls, images: ParityImages, ref: np.ndarray, got: np.ndarray) -> Agreement:
        v = images.val_images
        return cls(
            images.description,
            len(ref),
            tie_aware_agreement(ref, got),
            strict_agreement(ref, got),
            tie_aware_agreement(ref[:v], got[:v]),
            tie_aware_agreement(ref[v:], got[v:]),
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


@dataclass(frozen=True)
class Reference:
    """The Keras model's probabilities on the gate's parity images (validation first) and on
    the test split, with the labels they are scored against."""

    images: ParityImages
    parity: np.ndarray
    x_test: np.ndarray  # uint8 test images
    test: np.ndarray
    y_test: np.ndarray
    labels: list[str]

    def accuracy(self) -> KerasAccuracy:
        """Keras' own validation and test accuracy (export_report.json's ``keras``)."""
        v, y_val = self.images.val_images, self.images.labels[: self.images.val_images]
        return KerasAccuracy(
            float((self.parity[:v].argmax(1) == y_val).mean()),
            float((self.test.argmax(1) == self.y_test).mean()),
        )


@dataclass(frozen=True)
class KerasAccuracy:
    """The Keras model's own accuracy on the splits its artifacts are compared on."""

    val_accuracy: float
    test_accuracy: float


@dataclass(frozen=True)
class Evidence:
    """One model against the reference: parity and the paired test on validation (what the
    gate judges) and on the test split (only reported), agreement on the parity images."""

    val: Parity
    test: Parity
    agreement: Agreement
    paired_val: PairedTest
    paired_test: PairedTest
    test_probs: np.ndarray


@dataclass(frozen=True)
class GateEvidence:
    """What the gate judged: agreement on the parity images, the paired test on validation."""

    agreement: Agreement
    paired_val: PairedTest
    summary: str


def paired(ref: np.ndarray, got: np.ndarray, y: np.ndarray) -> PairedTest:
    return paired_test(ref.argmax(1) == y, got.argmax(1) == y)


def judged(ref: Reference, parity: np.ndarray, test: np.ndarray) -> Evidence:
    """The evidence of a model whose probabilities on the parity images and the test split
    are ``parity`` and ``test``."""
    v = ref.images.val_images
    y_val = ref.images.labels[:v]
    return Evidence(
        val=compare(ref.parity[:v], parity[:v], y_val, ref.labels),
        test=compare(ref.test, test, ref.y_test, ref.labels),
        agreement=Agreement.measure(ref.images, ref.parity, parity),
        paired_val=paired(ref.parity[:v], parity[:v], y_val),
        paired_test=paired(ref.test, test, ref.y_test),
        test_probs=test,
    )


def evaluate(model: Path, backend: str | None, ref: Reference) -> Evidence:
    """Run the artifact ``model`` (through ``backend``) on the parity images and the test split."""
    return judged(
        ref,
        artifact_probs(model, ref.images.pixels, backend),
        artifact_probs(model, ref.x_test, backend),
    )
