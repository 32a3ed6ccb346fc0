"""One open-set model measured: how well its unknown score tells its classes from the rest.

Every figure compares the known classes' **test** images with images of no known class: the
held-out class (near out-of-distribution: all its train and test images, none seen in
training), generated far-out-of-distribution images, and any further folders given. An
artifact is scored through ``herbi.runtime.Classifier`` at the threshold its own contract
carries, because that is what a device answers with (int8 scores are not float scores). The
float Keras model is also scored with scores no artifact carries (``energy``, ``knn10``), each
thresholded the way export thresholds an artifact: split-conformal on the validation images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import logsumexp, softmax
from sklearn.metrics import roc_auc_score

from herbi.common.errors import BenchError
from herbi.runtime import Classifier
from herbi.runtime.contract import PIXEL_SCALE, float_input
from herbi.runtime.image import image_files, to_rgb_array
from herbi.runtime.unknown import conformal_threshold

KERAS_SCORES = ("msp", "maxlogit", "energy", "cos_proto", "knn10")
KNN = 10  # knn10: cosine similarity to the 10th nearest train feature (Sun et al., ICML 2022)


@dataclass(frozen=True)
class Images:
    """What one run is scored on, uint8 ``(N, h, w, 3)``: its validation and test splits,
    and the unknowns by name (``held_out``, ``far_ood``, then each ``--unknowns`` folder)."""

    val: np.ndarray
    test: np.ndarray
    y_test: np.ndarray
    unknowns: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Rates:
    """One score of one model. ``auroc``: known test images against the held-out class
    (threshold-free); ``kept``: the known test images the threshold keeps; ``rejected``:
    per unknown set, the share scoring below the threshold; ``accuracy``: closed-set, test."""

    auroc: float
    kept: float
    rejected: dict[str, float]
    accuracy: float
    threshold: float


def folder_images(folder: Path) -> np.ndarray:
    """Every image file under ``folder`` (sorted), decoded as the runtime decodes them."""
    files = image_files(folder)
    if not files:
        raise BenchError(f"--unknowns {folder}: no images found")
    return np.stack([to_rgb_array(p) for p in files])


def rates(scores: dict[str, np.ndarray], threshold: float, accuracy: float) -> Rates:
    """Figures from the scores of the known test images (``test``) and of each unknown set."""
    known, near = scores["test"], scores["held_out"]
    truth = np.r_[np.ones(len(known)), np.zeros(len(near))]
    return Rates(
        auroc=float(roc_auc_score(truth, np.r_[known, near])),
        kept=float(np.mean(known >= threshold)),
        rejected={k: float(np.mean(s < threshold)) for k, s in scores.items() if k != "test"},
        accuracy=accuracy,
        threshold=float(threshold),
    )


def artifact_rates(path: Path, images: Images) -> Rates:
    """An exported artifact through herbi's runtime, at its contract's own threshold."""
    clf = Classifier.load(path)
    if clf.unknown is None:
        raise BenchError(f"{path}: has no unknown threshold (export it again)")
    probs, known = clf.predict(images.test)
    scores = {"test": known} | {k: clf.predict(v)[1] for k, v in images.unknowns.items()}
    accuracy = float(np.mean(probs.argmax(1) == images.y_test))
    return rates(scores, clf.unknown.threshold, accuracy)


@dataclass(frozen=True)
class Fitted:
    """What the Keras scores compare features with: the float head refitted (``kernel``,
    ``bias``), the class prototypes and the unit-length train features."""

    kernel: np.ndarray
    bias: np.ndarray
    prototypes: np.ndarray
    train_unit: np.ndarray

    def logits(self, features: np.ndarray) -> np.ndarray:
        return features @ self.kernel + self.bias


def feature_scores(features: np.ndarray, fitted: Fitted) -> dict[str, np.ndarray]:
    """Every Keras score (higher = more like a known class) from penultimate features."""
    logits = fitted.logits(features)
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    nearest = -np.partition(-(unit @ fitted.train_unit.T), KNN - 1, axis=1)[:, KNN - 1]
    return {
        "msp": softmax(logits, axis=1).max(1),
        "maxlogit": logits.max(1),
        "energy": logsumexp(logits, axis=1),
        "cos_proto": (unit @ fitted.prototypes).max(1),
        "knn10": nearest,
    }


def keras_rates(model_path: Path, images: Images, train: tuple, keep: float) -> dict[str, Rates]:
    """The run's float Keras model under every score in ``KERAS_SCORES``; ``train`` is its
    (un-augmented) train split ``(pixels, labels)``, which cos_proto and knn10 compare with."""
    from herbi.export.source import load_keras
    from herbi.train.openset import features_model, fit_head

    model = load_keras(model_path)
    embed = features_model(model)

    def features(pixels: np.ndarray) -> np.ndarray:
        return embed.predict(float_input(pixels), batch_size=256, verbose=0).astype(np.float64)

    kernel, bias = fit_head(model, "maxlogit", *train, PIXEL_SCALE).weights
    train_features = features(train[0])
    fitted = Fitted(
        kernel.astype(np.float64),
        bias.astype(np.float64),
        fit_head(model, "cos_proto", *train, PIXEL_SCALE).weights[0],
        train_features / np.linalg.norm(train_features, axis=1, keepdims=True),
    )
    sets = {"val": images.val, "test": images.test, **images.unknowns}
    feats = {k: features(v) for k, v in sets.items()}
    scores = {k: feature_scores(f, fitted) for k, f in feats.items()}
    predicted = fitted.logits(feats["test"]).argmax(1)
    accuracy = float(np.mean(predicted == images.y_test))
    return {
        name: rates(
            {k: s[name] for k, s in scores.items() if k != "val"},
            conformal_threshold(scores["val"][name], keep),
            accuracy,
        )
        for name in KERAS_SCORES
    }
