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
    text = []  # a line of text on a plain background, drawn at 3x and scaled down
    for i in range(counts[3]):
        back, ink = (tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(2))
        page = Image.new("RGB", (w * 3, h * 3), back)
        ImageDraw.Draw(page).text((5, h), f"herbi {i}", fill=ink)
        text.append(np.asarray(page.resize((w, h), Image.BICUBIC)))
    return np.concatenate([noise, flat, np.stack(textures), np.stack(text)])
