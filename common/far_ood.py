"""Images of nothing herbi's classes could be: the far-out-of-distribution unknowns.

Generated, so tests and benchmarks need no image folder: uniform noise, flat colours, stripe
textures and a line of text scaled down to the model's size, a quarter each (seeded, so the
same call gives the same images everywhere).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def far_ood(n: int = 200, size: tuple[int, int] = (32, 32), seed: int = 0) -> np.ndarray:
    """``n`` uint8 RGB images ``(n, h, w, 3)``, the four kinds in equal shares, in order."""
    rng = np.random.default_rng(seed)
    h, w = size
    counts = [n // 4] * 3 + [n - 3 * (n // 4)]
    noise = rng.integers(0, 256, (counts[0], h, w, 3), dtype=np.uint8)
    flat = np.broadcast_to(
        rng.integers(0, 256, (counts[1], 1, 1, 3), dtype=np.uint8), (counts[1], h, w, 3)
    )
    yy, xx = np.mgrid[0:h, 0:w]
    textures = [
        ((np.sin(fy * yy + fx * xx) > 0)[..., None] * rng.integers(0, 256, 3)).astype(np.uint8)
        for fy, fx in rng.uniform(0.2, 1.5, (counts[2], 2))
    ]
    return np.concatenate([noise, flat, np.stack(textures), text_images(counts[3], size, rng)])


def text_images(n: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A line of text on a plain background, drawn at 3x and scaled down (Pillow's font)."""
    images = []
    for i in range(n):
        colours = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(2)]
        page = Image.new("RGB", (size[1] * 3, size[0] * 3), colours[0])
        ImageDraw.Draw(page).text((5, size[0]), f"herbi {i}", fill=colours[1])
        images.append(np.asarray(page.resize(size[::-1], Image.BICUBIC)))
    return np.stack(images)
