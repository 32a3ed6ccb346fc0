"""The accuracy gate's verdict: does quantization really damage the model, or is it noise?

The evidence it judges is measured in herbi.export.evidence; :func:`judge` refuses on
significant damage, not on noise (docs/export.md says how).
"""

from __future__ import annotations

from dataclasses import dataclass

from herbi.common.errors import ExportError
from herbi.export.evidence import PairedTest


@dataclass(frozen=True)
class GateOptions:
    """The gate's strictness (``herbi-export`` options of the same names); docs/export.md gives
    the measurements that chose each default."""

    min_agreement: float = 0.97  # over 5 standard errors under the reference model's int8 agreement
    max_drop: float = 1.0  # accuracy points, refused only when also significant at ``alpha``
    hard_limit: float = 5.0  # points: the drop's 95% upper bound must rule out a loss this large
    alpha: float = 0.05  # of the exact McNemar test
    train_images: int = 5000  # train images beside validation: agreement's error ~0.2 points

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
