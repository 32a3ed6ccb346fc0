"""Decode any image a user has into the uint8 RGB array a herbi model was trained on.

Training (the image-folder loader) and the device runtime both call :func:`to_rgb_array`,
so a photo is preprocessed identically in both places: EXIF orientation applied, any mode
(grayscale, palette, RGBA, CMYK, 16-bit) converted to 8-bit RGB, then an antialiased resize.
Huge images are refused from their header, before their pixels are decoded.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# A decompression bomb is refused from the header: 32x32 models never need more than this.
MAX_PIXELS = 64_000_000
RESAMPLE = Image.Resampling.BICUBIC  # antialiased when shrinking (Pillow scales the kernel)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class ImageError(ValueError):
    """An input cannot be turned into an image; the message names it."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB without wrapping or clipping 16-bit data."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(np.nan_to_num(arr) / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white: a transparent background is not "black pixels".
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode != "RGB":
        return img.convert("RGB")
    return img


def open_image(
    source: str | os.PathLike | bytes | Image.Image, name: str | None = None
) -> Image.Image:
    """Open a path, raw bytes or PIL image and fully decode it, refusing bombs and junk."""
    if isinstance(source, Image.Image):
        return source
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as e:
        raise ImageError(f"{label}: cannot open ({e.strerror or e})") from None
    with fp:
        try:
            with Image.open(fp) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise ImageError(f"{label}: {w}x{h} pixels is over the {MAX_PIXELS:,} limit")
                if w < 1 or h < 1:
                    raise ImageError(f"{label}: image has no pixels")
                img.load()
                return img.copy()
        except ImageError:
            raise
        except UnidentifiedImageError:
            raise ImageError(f"{label}: not an image file Pillow can read") from None
        except Image.DecompressionBombError:
            raise ImageError(f"{label}: image is over Pillow's pixel limit") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise ImageError(f"{label}: truncated or corrupt image ({e})") from None


def to_rgb_array(
    source: str | os.PathLike | bytes | Image.Image,
    size: tuple[int, int] = (32, 32),
    name: str | None = None,
) -> np.ndarray:
    """Return an ``(height, width, 3)`` uint8 array ready for a model of ``size`` (h, w)."""
    img = open_image(source, name)
    label = name or (source.filename if isinstance(source, Image.Image) else str(source))
    try:
        img = ImageOps.exif_transpose(img) or img
        img = _to_rgb(img)
        if img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), RESAMPLE)
    except (OSError, ValueError) as e:
        raise ImageError(f"{label}: cannot convert to RGB ({e})") from None
    return np.asarray(img, dtype=np.uint8)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
