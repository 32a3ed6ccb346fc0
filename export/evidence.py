"""The evidence on an artifact: does it still do the Keras model's job, image for image?

:func:`evaluate` runs it through :meth:`herbi.runtime.Classifier.predict_proba` (a device's
code path) beside the Keras model's probabilities on the same images (:class:`Reference`):
the typed :class:`Evidence` export's gate judges and the bench reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from herbi.export.gate import PairedTest, ParityImages, paired_test
from herbi.runtime import Classifier

BATCH = 256


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
    if len(ref) == 0:
        return 1.0
    at_top = got >= got.max(1, keepdims=True)
    return float(at_top[np.arange(len(ref)), ref.argmax(1)].mean())


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

    def accuracy(self) -> dict[str, float]:
        """Keras' own validation and test accuracy (export_report.json's ``keras``)."""
        v, y_val = self.images.val_images, self.images.labels[: self.images.val_images]
        return {
            "val_accuracy": float((self.parity[:v].argmax(1) == y_val).mean()),
            "test_accuracy": float((self.test.argmax(1) == self.y_test).mean()),
        }


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
