"""Parity check and accuracy gate: does the artifact still do the Keras model's job?

The artifact runs through :meth:`herbi.runtime.Classifier.predict_proba`, the exact code path
a device uses (contract scaling, int8 quantization of the input, dequantization of the output),
side by side with the Keras model on the same uint8 images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from herbi.runtime import Classifier

BATCH = 256


def keras_probs(model, pixels: np.ndarray) -> np.ndarray:
    """The reference: Keras on float32 ``pixels / 255``, as in training."""
    return np.asarray(model.predict(pixels / 255.0, batch_size=BATCH, verbose=0), np.float32)


def artifact_probs(path: Path, pixels: np.ndarray) -> np.ndarray:
    clf = Classifier.load(path)
    return np.concatenate(
        [clf.predict_proba(pixels[i : i + BATCH]) for i in range(0, len(pixels), BATCH)]
        or [np.zeros((0, len(clf.labels)), np.float32)]
    )


def compare(ref: np.ndarray, got: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    """Agreement, max/mean |Δp|, both accuracies and the per-class accuracy change (points).

    An int8 softmax output has 1/256 resolution, so two classes closer than that come out
    exactly tied, and the artifact cannot rank them. ``agreement`` (which the gate uses)
    counts an image as agreeing when Keras's top class is among the artifact's top classes;
    ``agreement_strict`` compares plain argmaxes (a tie resolves to the lower index, as in
    the runtime) and ``ties`` says how many images were tied. Accuracies use plain argmax.
    """
    ref_top, got_top = ref.argmax(1), got.argmax(1)
    at_top = got >= got.max(1, keepdims=True) if len(got) else np.zeros_like(got, bool)
    diff = np.abs(ref.astype(np.float64) - got)
    acc_ref, acc_got = float((ref_top == y).mean()), float((got_top == y).mean())
    per_class = {}
    for i, label in enumerate(labels):
        mask = y == i
        if mask.any():
            a, b = float((ref_top[mask] == i).mean()), float((got_top[mask] == i).mean())
            per_class[label] = {"keras": a, "artifact": b, "change_points": 100 * (b - a)}
    return {
        "images": len(y),
        "agreement": float(at_top[np.arange(len(ref_top)), ref_top].mean()),
        "agreement_strict": float((ref_top == got_top).mean()),
        "ties": int((at_top.sum(1) > 1).sum()),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "accuracy_keras": acc_ref,
        "accuracy_artifact": acc_got,
        "drop_points": 100 * (acc_ref - acc_got),
        "per_class": per_class,
    }


def gate(metrics: dict, min_agreement: float, max_drop: float) -> list[str]:
    """Reasons to reject the artifact (empty when it passes)."""
    reasons = []
    if metrics["agreement"] < min_agreement:
        reasons.append(
            f"agreement with Keras {metrics['agreement']:.3f} < --min-agreement {min_agreement}"
        )
    if metrics["drop_points"] > max_drop:
        reasons.append(f"accuracy drop {metrics['drop_points']:.2f} points > --max-drop {max_drop}")
    return reasons
