"""The exported web page in a real browser: headless Chromium (the system's), driven by Playwright.

Times are the browser's real clock (``performance.now()``): Chromium's
``--virtual-time-budget`` fakes that clock, so it is never used here.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

from herbi.common.errors import BenchError
from herbi.export.serve import start_server

# Debian's chromium package puts the browser here; /usr/bin/chromium is a wrapper script.
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium",)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ENV = "HERBI_CHROMIUM"
GZIP_LEVEL = 6  # the default of nginx's and most hosts' on-the-fly compression
TIMEOUT_MS = 180_000  # a slow machine compiles the 14 MB WebAssembly runtime in seconds


class BrowserMissing(BenchError):
    """No Chromium, or no Playwright to drive it; the message says what to install."""


def find_chromium() -> Path:
    """The system Chromium: $HERBI_CHROMIUM, Debian's binary, or one on PATH."""
    candidates = [os.environ.get(CHROMIUM_ENV), *CHROMIUM_PATHS, *map(shutil.which, CHROMIUM_NAMES)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise BrowserMissing(
        f"no Chromium found (looked at ${CHROMIUM_ENV}, {', '.join(CHROMIUM_PATHS)} and "
        f"{', '.join(CHROMIUM_NAMES)} on PATH); install it with `apt-get install chromium`"
    )


@contextlib.contextmanager
def chromium_page(executable: Path | None = None, viewport: tuple[int, int] = (1280, 900)):
    """A fresh headless Chromium (empty profile: nothing cached) and one page in it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserMissing(
            "playwright is not installed (pip install playwright; it drives the system Chromium "
            "and needs no browser download)"
        ) from None
    executable = executable or find_chromium()
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to start as root or in most containers; the
        # browser only ever loads herbi's own page from 127.0.0.1.
        browser = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        finally:
            browser.close()


# Every card's state; the canvas holds the exact uint8 pixels the model was given.
_READ_CARDS = """() => [...document.querySelectorAll('.result')].map((card) => {
  const canvas = card.querySelector('.seen canvas');
  const pixels = canvas && card.dataset.label !== undefined
    ? Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data)
    : null;
  return {...card.dataset, pixels, width: canvas && canvas.width, height: canvas && canvas.height};
})"""


@dataclass(frozen=True)
class Card:
    """One result card as the page shows it (``error`` set instead of a label for a bad file)."""

    file: str
    label: str | None
    probability: float | None
    probabilities: list[float] | None
    ms: float | None
    error: str | None
    pixels: list[int] | None  # RGBA of the model's input, row-major, when classified


def classify_files(page, url: str, files: list[Path]) -> list[Card]:
    """Open ``url``, give ``files`` to the page's file input, wait for every card to finish."""
    problems: list[str] = []  # console errors and uncaught exceptions, for the error message
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.set_input_files("#files", [str(f) for f in files])
    done = "document.querySelectorAll('.result[data-label], .result[data-error]').length"
    try:
        page.wait_for_function(f"{done} >= {len(files)}", timeout=TIMEOUT_MS)
    except Exception as e:  # playwright's TimeoutError, or the page crashed
        seen = "; ".join(problems[-3:]) or "no console errors"
        raise BenchError(f"{url}: the page did not finish {len(files)} files ({seen})") from e
    cards = []
    for raw in page.evaluate(_READ_CARDS):
        probs = raw.get("probabilities")
        cards.append(
            Card(
                file=raw["file"],
                label=raw.get("label"),
                probability=float(raw["probability"]) if "probability" in raw else None,
                probabilities=[float(p) for p in probs.split(",")] if probs else None,
                ms=float(raw["ms"]) if "ms" in raw else None,
                error=raw.get("error"),
                pixels=raw["pixels"],
            )
        )
    return cards


def download_size(web_dir: Path) -> dict[str, list[int]]:
    """``{"model": [raw, gzipped], "runtime": ..., "page": ..., "total": ...}`` in bytes."""
    parts = {"model": [0, 0], "runtime": [0, 0], "page": [0, 0]}
    for path in sorted(p for p in Path(web_dir).rglob("*") if p.is_file()):
        data = path.read_bytes()
        part = "model" if path.suffix == ".onnx" else "runtime" if "ort" in path.parts else "page"
        parts[part][0] += len(data)
        parts[part][1] += len(gzip.compress(data, GZIP_LEVEL, mtime=0))
    parts["total"] = [sum(p[i] for p in parts.values()) for i in (0, 1)]
    return parts


@dataclass(frozen=True)
class BrowserTiming:
    """A cold page load and its per-image model time, real time, in headless Chromium.

    ``load_to_first_result_ms``: navigation start to the first result shown, the images being
    chosen as soon as the page has loaded (the model loads meanwhile). ``model_ready_ms``:
    navigation start to the model session created (most of it compiling the WebAssembly).
    ``first_image_ms``: the first ``session.run`` (cold). ``per_image_ms`` /
    ``per_image_p90_ms``: median / 90th percentile of the other runs.
    """

    browser: str
    images: int
    model_ready_ms: float
    load_to_first_result_ms: float
    first_image_ms: float
    per_image_ms: float
    per_image_p90_ms: float
    download_bytes: int
    download_gzip_bytes: int
    download_parts: dict[str, list[int]]


def measure_page(web_dir: Path, images: list[Path]) -> BrowserTiming:
    """Load the page in a fresh headless Chromium, classify ``images`` (at least two), time it."""
    if len(images) < 2:
        raise BenchError("measure_page: give at least two images (one cold run, one warm)")
    with start_server(web_dir) as url, chromium_page() as page:
        cards = classify_files(page, url, images)
        timing = page.evaluate("window.herbiTiming")
        version = page.context.browser.version
    failed = [c for c in cards if c.error]
    if failed:
        raise BenchError(f"{failed[0].file}: the page could not classify it ({failed[0].error})")
    times = [c.ms for c in cards]
    warm = sorted(times[1:])
    sizes = download_size(web_dir)
    return BrowserTiming(
        browser=f"Chromium {version} (headless)",
        images=len(cards),
        model_ready_ms=round(timing["modelReadyMs"], 1),
        load_to_first_result_ms=round(timing["firstResultMs"], 1),
        first_image_ms=times[0],
        per_image_ms=statistics.median(warm),
        per_image_p90_ms=warm[min(len(warm) - 1, int(0.9 * len(warm)))],
        download_bytes=sizes["total"][0],
        download_gzip_bytes=sizes["total"][1],
        download_parts=sizes,
    )
