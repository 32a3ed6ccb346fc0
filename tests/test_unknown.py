"""The unknown answer: the conformal rule, the contract field, and the same decision from every
format in the registry (issue 20). The TFLM C++ example and the web page are checked against
the same runtime in test_tflm.py and test_web.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from herbi.common.far_ood import far_ood
from herbi.export.formats import FORMATS
from herbi.runtime import Classifier, ContractError
from herbi.runtime.cli import main as classify_main
from herbi.runtime.contract import Contract
from herbi.runtime.unknown import UNKNOWN, Unknown, conformal_threshold

# float32 scores this far from the threshold are decided alike by the int8 artifacts, whose
# scores differ from float32 by up to ~0.07 on the tiny model's generated images
MARGIN = 0.1


def test_conformal_threshold_is_the_rank_the_guarantee_needs():
    scores = np.arange(1, 100, dtype=float)  # n = 99: floor(100 * 0.05) = 5th smallest
    assert conformal_threshold(scores, 0.95) == 5.0
    assert conformal_threshold(scores[:18], 0.95) == -np.inf  # 19 * 0.05 < 1: cannot promise it
    with pytest.raises(ValueError, match="keep"):
        conformal_threshold(scores, 1.0)


def test_conformal_threshold_keeps_what_it_promises_on_new_images():
    # n = 200, keep 0.9: the 20th smallest score; a new exchangeable score is at or above it
    # with probability exactly 1 - 20/201 = 0.9005 >= 0.9.
    rng = np.random.default_rng(0)
    kept = [
        (rng.normal(size=1000) >= conformal_threshold(rng.normal(size=200), 0.9)).mean()
        for _ in range(400)
    ]
    standard_error = np.std(kept) / np.sqrt(len(kept))
    assert abs(np.mean(kept) - (1 - 20 / 201)) < 4 * standard_error


def test_contract_carries_the_unknown_field_and_refuses_a_bad_one():
    contract = Contract(["a", "b"], unknown=Unknown("cos_proto", 0.75, 0.95, 250))
    assert Contract.from_json(contract.to_json(), "m.json") == contract
    raw = json.loads(contract.to_json())
    raw["unknown"]["keep"] = 1.5
    with pytest.raises(ContractError, match=r"m\.json: contract field 'unknown'"):
        Contract.from_json(json.dumps(raw), "m.json")


def artifact(folder, name) -> tuple:
    """The artifact's model file and the runtime engine export checked it with."""
    fmt = FORMATS[name]
    return fmt.model(folder / fmt.filename), fmt.backend


@pytest.fixture(scope="module")
def decisive(tiny_artifacts, tiny_run):
    """Images the float32 artifact decides with a margin: known (validation images scoring
    well above the threshold) and unknown (generated images well below it)."""
    from herbi.train.manifest import run_dataset

    clf = Classifier.load(artifact(tiny_artifacts, "tflite-float32")[0])
    t = clf.unknown.threshold
    known = run_dataset(tiny_run).x_val[:100]
    far = far_ood()
    known = known[clf.predict(known)[1] > t + MARGIN][:10]
    unknown = far[clf.predict(far)[1] < t - MARGIN][:10]
    assert len(known) >= 3 and len(unknown) >= 3, "the tiny model decides too few images"
    return np.concatenate([known, unknown]), np.r_[np.zeros(len(known)), np.ones(len(unknown))]


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_answers_unknown_the_same_way(tiny_artifacts, decisive, name):
    images, expected = decisive
    model, backend = artifact(tiny_artifacts, name)
    clf = Classifier.load(model, backend=backend)
    assert clf.contract.unknown.score == "cos_proto" and clf.contract.unknown.keep == 0.95
    preds = clf.classify(images, top_k=2)
    assert [p.unknown for p in preds] == expected.astype(bool).tolist()
    for p in preds:
        assert p.threshold == clf.unknown.threshold and len(p.top_k) == 2
        assert (p.label == UNKNOWN) == (p.score < p.threshold)
    assert not any(p.unknown for p in clf.classify(images, threshold=None))


@pytest.mark.parametrize("name", list(FORMATS))
def test_herbi_classify_says_unknown_with_score_and_threshold(
    tiny_artifacts, decisive, tmp_path, name
):
    images, expected = decisive
    png = tmp_path / "none-of-them.png"
    Image.fromarray(images[expected.argmax()]).save(png)
    model, backend = artifact(tiny_artifacts, name)
    args = [str(model), str(png), *(["--backend", backend] if backend else [])]
    out = CliRunner().invoke(classify_main, args).output
    assert f"{png}\tunknown (score " in out and " < threshold " in out and "; nearest: " in out
    accepted = CliRunner().invoke(classify_main, [*args, "--accept-all"]).output
    assert UNKNOWN not in accepted
    line = json.loads(CliRunner().invoke(classify_main, [*args, "--json"]).output)
    assert line["unknown"] and line["label"] == UNKNOWN and line["score"] < line["threshold"]


def test_the_run_report_states_the_float_threshold(fast_run):
    from herbi.common.files import read_json

    run, _ = fast_run
    unknown = read_json(run / "metrics.json")["unknown"]
    assert unknown["score"] == "cos_proto" and unknown["keep"] == 0.95
    assert 0.8 <= unknown["test_kept"] <= 1 and 0 <= unknown["far_ood_rejected"] <= 1
    assert f"below **{unknown['threshold']:.4f}**" in (run / "report.md").read_text()
    manifest = read_json(run / "manifest.json")
    assert manifest["config"]["unknown"] == {"score": "cos_proto", "keep": 0.95}


@pytest.mark.slow
def test_outliers_train_towards_an_unsure_answer(animals5, tmp_path):
    from herbi.common.files import read_json
    from herbi.train.cli import main

    outliers = tmp_path / "none-of-them"
    outliers.mkdir()
    for i, image in enumerate(far_ood(40, seed=7)):
        Image.fromarray(image).save(outliers / f"{i}.png")
    args = ["--data", str(animals5), "--recipe", "fast", "--preset", "smoke", "--epochs", "1",
            "--size", "xs"]  # fmt: skip
    out = tmp_path / "run"
    done = CliRunner().invoke(main, [*args, "--outliers", str(outliers), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert read_json(out / "manifest.json")["config"]["preset_options"]["outliers"] == str(outliers)
    wrong = CliRunner().invoke(main, [*args[:2], "--outliers", str(outliers)])
    assert wrong.exit_code == 2 and "--outliers" in wrong.output and "reference" in wrong.output
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = CliRunner().invoke(
        main, [*args, "--outliers", str(empty), "--out", str(tmp_path / "x")]
    )
    assert nothing.exit_code != 0 and f"--outliers {empty}: holds no image files" in nothing.output
