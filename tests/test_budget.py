"""``--budget``: parsing, the epoch arithmetic, and refusals that leave nothing behind."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from herbi.common.errors import HerbiError
from herbi.train.budget import RESERVE_SECONDS, RESERVE_SHARE, parse_budget, plan_epochs
from herbi.train.cli import main


def test_parse_budget():
    assert parse_budget("10m") == 600 and parse_budget("90s") == 90
    assert parse_budget("1.5h") == 5400 and parse_budget("600") == 600
    for bad in ("0", "-5m", "ten minutes", "", "0s"):
        with pytest.raises(HerbiError, match="--budget"):
            parse_budget(bad)


def test_epochs_fill_what_the_budget_leaves():
    reserve = RESERVE_SECONDS + RESERVE_SHARE * 600
    plan = plan_epochs(600, elapsed=20, per_epoch=5, preset={"train": 80})
    assert plan.epochs == {"train": int((600 - 20 - reserve) // 5)}
    assert plan.reserve_seconds == reserve
    # Several stages keep the preset's proportions.
    plan = plan_epochs(600, 20, 5, {"base": 24, "finetune1": 6, "finetune2": 6})
    assert plan.epochs["finetune1"] == plan.epochs["finetune2"]
    assert abs(plan.epochs["base"] / plan.epochs["finetune1"] - 4) < 0.3
    total = sum(plan.epochs.values()) * 5
    assert 600 - 20 - reserve - 5 * 3 < total <= 600 - 20 - reserve
    with pytest.raises(HerbiError, match="too short"):
        plan_epochs(50, elapsed=20, per_epoch=5, preset={"train": 80})


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("0", "give a positive time"),
        pytest.param("5s", "too short", marks=pytest.mark.slow),  # refused after timing an epoch
    ],
)
def test_a_refused_budget_is_one_line_and_leaves_no_run_folder(tmp_path, animals5, budget, message):
    out = tmp_path / "run"
    # xs: the epoch timed is the smallest member's; 5 s is refused whatever it takes, since
    # the 30 s kept for scoring and files alone exceed it.
    args = ["--data", str(animals5), "--recipe", "fast", "--preset", "smoke", "--size", "xs",
            "--budget", budget, "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: --budget")
    assert message in result.output
    assert not out.exists()


@pytest.mark.slow
def test_deadline_stops_before_an_epoch_that_would_end_late():
    """The guarantee behind --budget when the machine turns slower than its probe said."""
    import time

    import numpy as np
    import tf_keras as keras

    from herbi.train.trainer import Deadline

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = np.zeros((32, 4), np.float32), np.zeros(32, int)
    said: list[str] = []
    late = model.fit(
        x, y, epochs=20, verbose=0, callbacks=[Deadline(time.monotonic(), said.append)]
    )
    assert len(late.epoch) == 1  # the first epoch ran; the second would have ended late
    assert said == ["[budget] stopping after epoch 1: the next one would end late"]
    ample = Deadline(time.monotonic() + 600, said.append)
    assert len(model.fit(x, y, epochs=3, verbose=0, callbacks=[ample]).epoch) == 3
