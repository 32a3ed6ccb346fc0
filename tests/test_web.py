"""The exported web page in real headless Chromium agrees with herbi.runtime on the same files.

The page is written from the tiny run's ONNX artifacts, served on 127.0.0.1 and driven through
its ordinary file input. Every image's 32x32 input pixels (read back from the page's canvas),
answer (a class, or unknown), probabilities and unknown score are compared with
``Classifier`` on the same file: the 20 real CIFAR-100 images, larger photos built here to
reach each preprocessing path (upscale, antialiased downscale of a JPEG, Pillow's
vertical-first pass order, transparency on white, EXIF rotation, grayscale, a palette GIF),
generated far-out-of-distribution images and the run's own train images. Without Chromium the browser tests are skipped with
the reason; under CI (``$CI`` set) they fail instead, so CI never passes by skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from urllib.request import urlopen

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from herbi.benchmarks.timing.browser import (
    BrowserMissing,
    chromium_page,
    classify_files,
    find_chromium,
)
from herbi.common.errors import ExportError
from herbi.common.far_ood import far_ood
from herbi.export import serve
from herbi.export.formats import PageFacts, update_info
from herbi.export.web_export import ORT_ENV, write_web
from herbi.runtime import Classifier
from herbi.runtime.image import to_rgb_array

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DOCS_SCREENSHOT = REPO / "docs" / "web-page.png"
# int8 runs the same QDQ kernels in WebAssembly as ONNX Runtime on the CPU: measured
# bit-identical here; float32 sums in another order (the issue asks for 1e-4).
TOLERANCE = {"onnx-int8": 1e-6, "onnx-float32": 1e-4}


@pytest.fixture(scope="session")  # session: set up before the tiny model is built, not after
def chromium() -> Path:
    """The system Chromium and Playwright, or a skip (a failure under CI) saying what is missing."""
    try:
        path = find_chromium()
        with chromium_page(path):
            pass
    except BrowserMissing as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {e}")
        pytest.skip(str(e))
    return path


def _noisy(img: Image.Image, seed: int, amount: int = 24) -> Image.Image:
    """Photo-like fine texture, so a resize has high frequencies to get wrong."""
    rng = np.random.default_rng(seed)
    arr = np.asarray(img, dtype=np.int16)
    arr = arr + rng.integers(-amount, amount + 1, arr.shape, dtype=np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), img.mode)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, cifar100_samples) -> list[Path]:
    """Larger images, each reaching another part of the preprocessing, from real images."""
    out = tmp_path_factory.mktemp("photos")
    real = [Image.open(p).convert("RGB") for p in sorted(cifar100_samples.glob("*.png"))[:8]]
    bicubic = Image.Resampling.BICUBIC

    def grown(i: int, size: tuple[int, int]) -> Image.Image:
        return _noisy(real[i].resize(size, bicubic), seed=i)

    paths = []

    def save(img: Image.Image, name: str, **kwargs) -> None:
        img.save(out / name, **kwargs)
        paths.append(out / name)

    save(real[0].resize((97, 61), bicubic), "upscaled-97x61.png")
    save(grown(1, (301, 227)), "photo-301x227.jpg", quality=90)
    save(grown(2, (1024, 768)), "photo-1024x768.jpg", quality=85)
    save(grown(3, (45, 400)), "tall-45x400.png")  # Pillow resizes vertically first here
    rgba = grown(4, (130, 90)).convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, 130).astype(np.uint8), (90, 1))  # 0 (clear) .. 255
    rgba.putalpha(Image.fromarray(alpha, "L"))
    save(rgba, "transparent-130x90.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    save(grown(5, (160, 120)), "rotated-exif-160x120.jpg", quality=92, exif=exif.tobytes())
    save(grown(6, (88, 70)).convert("L"), "gray-88x70.png")
    palette = grown(7, (75, 50)).quantize(64)
    save(palette, "palette-75x50.gif", transparency=0)
    return paths


@pytest.fixture(scope="module")
def not_an_image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("junk") / "notes.txt"
    path.write_text("shopping list: apples, bread\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def far_and_known(tmp_path_factory, tiny_run) -> tuple[list[Path], list[Path]]:
    """16 generated far-OOD images (noise, flat colours, textures, text) and 16 of the run's
    train images, as 32x32 PNG files."""
    from herbi.train.manifest import run_dataset

    out = tmp_path_factory.mktemp("far_and_known")
    groups = {"far": far_ood(16), "train": run_dataset(tiny_run).x_train[:16]}
    paths = {name: [out / f"{name}-{i:02d}.png" for i in range(16)] for name in groups}
    for name, images in groups.items():
        for path, image in zip(paths[name], images, strict=True):
            Image.fromarray(image).save(path)
    return paths["far"], paths["train"]


# Each card's text beside its data attributes.
READ_ANSWERS = """() => [...document.querySelectorAll('.result')].map((card) => ({
  ...card.dataset,
  message: card.querySelector('.message').textContent,
  why: card.querySelector('.why').textContent,
}))"""


def _check_answer(card: dict, clf: Classifier, path: Path, tolerance: float) -> bool:
    """The card says what herbi.runtime answers for ``path``; whether it said unknown."""
    pred = clf.classify(path)
    assert card["label"] == pred.label, path.name  # "unknown", or the same top class
    assert card["unknown"] == str(pred.unknown).lower()
    assert float(card["threshold"]) == pred.threshold == clf.unknown.threshold
    score = float(card["score"])
    assert abs(score - pred.score) <= tolerance
    if pred.unknown:
        assert card["message"] == f"none of: {', '.join(clf.labels)}"
        assert f"score {score:.3f} < threshold {pred.threshold:.3f}" in card["why"]
    else:
        assert card["message"] == pred.label and " ≥ threshold " in card["why"]
    return pred.unknown


def _info(tiny_run: Path, fmt: str) -> dict:
    """What herbi-export passes: the format and the data the model was trained on."""
    data = json.loads((tiny_run / "manifest.json").read_text(encoding="utf-8"))["data"]
    kind = "int8 (QDQ)" if "int8" in fmt else "float32"
    return {
        "format": fmt,
        "description": f"ONNX {kind}, a tiny test model trained for seconds",
        "dataset": f"{Path(data['source']).name} ({len(data['class_names'])} classes, real images)",
    }


@pytest.mark.parametrize("fmt", ["onnx-int8", "onnx-float32"])
def test_page_agrees_with_runtime(
    fmt,
    chromium,
    tiny_run,
    tiny_artifacts,
    cifar100_samples,
    photos,
    far_and_known,
    not_an_image,
    tmp_path,
):
    web = tmp_path / "web"
    write_web(tiny_artifacts / f"{fmt}.onnx", web, _info(tiny_run, fmt))
    samples = sorted(cifar100_samples.glob("*.png"))
    far, known = far_and_known
    images = [*samples, *photos, *far, *known]
    with serve.start_server(web) as url, chromium_page(chromium) as page:
        cards = {c.file: c for c in classify_files(page, url, [*images, not_an_image])}
        answers = {a["file"]: a for a in page.evaluate(READ_ANSWERS)}

    assert sorted(cards) == sorted(f.name for f in [*images, not_an_image])
    assert cards[not_an_image.name].error and cards[not_an_image.name].label is None
    clf = Classifier.load(tiny_artifacts / f"{fmt}.onnx")
    h, w = clf.input_size
    differing, max_dp = {}, 0.0
    for path in images:
        card = cards[path.name]
        assert card.error is None, f"{path.name}: {card.error}"
        pixels = to_rgb_array(path, (h, w))
        seen = np.array(card.pixels, np.uint8).reshape(h, w, 4)[..., :3]
        differing[path.name] = int(np.count_nonzero(seen != pixels))
        want = clf.predict_proba(pixels[np.newaxis])[0]
        got = np.array(card.probabilities, np.float32)
        max_dp = max(max_dp, float(np.abs(got - want).max()))
        assert card.probability == pytest.approx(float(got.max()), abs=0)
    unknown = {p.name: _check_answer(answers[p.name], clf, p, TOLERANCE[fmt]) for p in images}
    print(
        f"\n{fmt}: answers identical on {len(images)} images (unknown: {sum(unknown.values())}, "
        f"of {len(far)} far-OOD {sum(unknown[p.name] for p in far)}, of {len(known)} train "
        f"{sum(unknown[p.name] for p in known)}), max |dp| {max_dp:.2e}, pixel values differing "
        f"from Pillow: {sum(differing.values())} "
        f"({sum(v for k, v in differing.items() if k in {p.name for p in photos})} "
        f"on {len(photos)} photos larger than {w}x{h})"
    )
    assert {k: v for k, v in differing.items() if v} == {}
    assert max_dp <= TOLERANCE[fmt]
    # both answers on the page: the tiny model rejects most far-OOD images, keeps most of its own
    assert sum(unknown[p.name] for p in far) > len(far) / 2
    assert sum(unknown[p.name] for p in known) < len(known) / 2


@pytest.mark.skipif(
    not os.environ.get("HERBI_UPDATE_SCREENSHOT"), reason="updates docs/web-page.png when asked"
)
def test_screenshot(
    chromium, tiny_run, tiny_artifacts, cifar100_samples, photos, not_an_image, tmp_path
):
    """The README's picture of a page with results (HERBI_UPDATE_SCREENSHOT=1 to update it)."""
    web = tmp_path / "web"
    write_web(tiny_artifacts / "onnx-int8.onnx", web, _info(tiny_run, "web-int8"))
    files = [*sorted(cifar100_samples.glob("*.png"))[10:13], photos[5], photos[4], not_an_image]
    shot = tiny_run / "web-page.png"
    with serve.start_server(web) as url, chromium_page(chromium, (1100, 800)) as page:
        cards = classify_files(page, url, files)
        page.screenshot(path=str(shot), full_page=True)
    assert [c.file for c in cards] == [f.name for f in files]
    with Image.open(shot) as img:
        assert img.width == 1100 and img.height >= 800
    DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_missing_runtime_files_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(ORT_ENV, str(tmp_path / "empty"))
    with pytest.raises(ExportError, match=r"npm ci") as err:
        write_web(tmp_path / "model.onnx", tmp_path / "web", {})
    assert "\n" not in str(err.value)
    assert not (tmp_path / "web").exists()


def test_reexport_replaces_the_folder(tiny_run, tiny_artifacts, tmp_path):
    web = tmp_path / "web"
    write_web(tiny_artifacts / "onnx-float32.onnx", web, _info(tiny_run, "web-float32"))
    (web / "stale.txt").write_text("from an earlier export")
    files = write_web(tiny_artifacts / "onnx-int8.onnx", web, _info(tiny_run, "web-int8"))
    names = sorted(str(f.relative_to(web)) for f in files)
    assert "stale.txt" not in names and {"index.html", "model.json", "model.onnx"} <= set(names)
    assert "ort/ort-wasm-simd-threaded.wasm" in names
    assert [p.name for p in tmp_path.iterdir()] == ["web"]  # no temporary folder left
    info = json.loads((web / "model.json").read_text())
    assert info["format"] == "web-int8" and info["contract"]["format"] == "onnx-int8"
    assert info["size_bytes"] == (tiny_artifacts / "onnx-int8.onnx").stat().st_size
    # the copy keeps its contract inside: the Python runtime loads it as it is
    assert Classifier.load(web / "model.onnx").labels == info["classes"]
    facts = PageFacts("a description", "a dataset", 0.75, "2026-01-01", "ok")
    update_info(web, facts)
    assert json.loads((web / "model.json").read_text()) == {**info, **asdict(facts)}


def test_serve_finds_the_page_or_says_why(tmp_path):
    export = tmp_path / "run" / "export"
    for name in ("web-float32", "web-int8"):
        (export / name).mkdir(parents=True)
        (export / name / "index.html").write_text("<!doctype html>")
    web = export / "web-int8"  # preferred: --format web defaults to int8
    for given in (tmp_path / "run", export, web):
        assert serve.find_web_dir(given) == web
    result = CliRunner().invoke(serve.main, [str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {tmp_path / 'nowhere'}: no such folder"]
    with serve.start_server(web) as url:
        with urlopen(url + "index.html") as response:
            assert response.headers["Content-Type"].startswith("text/html")
        (web / "x.wasm").write_bytes(b"\0asm")
        with urlopen(url + "x.wasm") as response:
            assert response.headers["Content-Type"] == "application/wasm"
