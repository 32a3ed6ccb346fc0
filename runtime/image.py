"""Decode any image a user has into the uint8 RGB array a herbi model was trained on.

Training (the image-folder loader) and the device runtime both call :func:`to_rgb_array`,
so a photo is preprocessed identically in both places. Images come from users, so every file
is treated as hostile: few formats parsed, a huge image refused from its header, and whatever
Pillow raises on a malformed file becomes an :class:`ImageError` naming it.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from herbi.runtime.errors import ImageError

# 32x32 models never need more; a bigger header is refused before any pixel is decoded.
MAX_PIXELS = 64_000_000
RESAMPLE = Image.Resampling.BICUBIC  # antialiased when shrinking (Pillow scales the kernel)
# Parsing only these keeps complex or exotic decoders (TIFF's libtiff, EPS via Ghostscript,
# PSD, ICNS, ...) away from user files; the suffixes are what a folder scan picks up.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

ImageSource = str | os.PathLike | bytes | Image.Image | np.ndarray  # an array: array_to_rgb


def source_name(source: object) -> str:
    """How error messages name an input: its path, or what kind of object it is."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, Image.Image):
        return getattr(source, "filename", "") or f"PIL image {source.mode} {source.size}"
    if isinstance(source, bytes):
        return f"<{len(source)} bytes>"
    return type(source).__name__


def _check_size(img: Image.Image, name: str) -> None:
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"{name}: image has no pixels ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise ImageError(
            f"{name}: {w}x{h} pixels is over the {MAX_PIXELS:,}-pixel limit (refused undecoded)"
        )


_SIGNATURES = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP"}


def _sniff(head: bytes) -> str | None:
    """The format a file's first bytes announce, to tell a damaged image from a non-image."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for magic, kind in _SIGNATURES.items() if head.startswith(magic)), None)


def _decode(fp: io.BufferedIOBase, name: str) -> Image.Image:
    """Parse the header, check the size, then decode the pixels; any failure is an ImageError."""
    try:
        with warnings.catch_warnings():
            # Problems are reported as ImageError. Pillow's warnings (its bomb warning, whose
            # job _check_size does; "corrupt EXIF", "truncated tag" on damaged metadata that
            # it skipped) would only reach stderr as noise.
            warnings.simplefilter("ignore")
            img = Image.open(fp, formats=FORMATS)
            _check_size(img, name)
            img.load()
        return img
    except ImageError:
        raise
    except UnidentifiedImageError:
        fp.seek(0)
        kind = _sniff(fp.read(12))
        if kind:
            raise ImageError(f"{name}: truncated or corrupt {kind} file") from None
        raise ImageError(f"{name}: not an image (or not a {'/'.join(FORMATS)} file)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: image is over Pillow's pixel limit (refused)") from None
    except Exception as e:  # Pillow's plugins raise many kinds on malformed files
        raise ImageError(f"{name}: truncated or corrupt image ({type(e).__name__}: {e})") from None


def open_image(source: ImageSource, label: str) -> Image.Image:
    """Open a path, raw bytes or PIL image, refusing bombs and junk; pixels fully decoded."""
    if isinstance(source, Image.Image):
        _check_size(source, label)
        return source
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{label}: empty (0 bytes)")
        return _decode(io.BytesIO(source), label)
    if not isinstance(source, (str, os.PathLike)):
        raise ImageError(
            f"{label}: not an image (pass a path, bytes, a PIL image or a uint8 HxWx3 array)"
        )
    with _open_regular_file(source, label) as fp:
        if os.fstat(fp.fileno()).st_size == 0:
            raise ImageError(f"{label}: empty file (0 bytes)")
        return _decode(fp, label)


def _open_regular_file(path: str | os.PathLike, label: str) -> io.BufferedReader:
    """Open for reading; a folder, FIFO or device (which could block or never end) is refused."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISREG(mode):
            return open(path, "rb")  # the caller closes it
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise ImageError(f"{label}: cannot open ({getattr(e, 'strerror', None) or e})") from None
    kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
    raise ImageError(f"{label}: cannot open ({kind})")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB without wrapping or clipping 16-bit data."""
    if img.mode.startswith("I;16"):
        wide = np.asarray(img).astype(np.uint32)
        gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)  # 0..65535 -> 0..255, rounded
        return Image.fromarray(gray, "L").convert("RGB")
    if img.mode in ("I", "F"):
        # 32-bit integer/float images carry no declared range: treat them as 16-bit when any
        # value exceeds 8 bits, else as 8-bit values.
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        hi = 65535.0 if arr.max(initial=0) > 255 else 255.0
        gray = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white: a transparent background is not "black pixels".
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def to_rgb_array(
    source: ImageSource, size: tuple[int, int] = (32, 32), name: str | None = None
) -> np.ndarray:
    """Return an ``(height, width, 3)`` uint8 array ready for a model of ``size`` (h, w)."""
    if isinstance(source, np.ndarray):
        return array_to_rgb(source, size, name or "array")
    label = name or source_name(source)
    img = open_image(source, label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as in _decode: damaged EXIF is skipped, not shown
            # A decoded file is ours to rotate in place; a caller's PIL image is left untouched.
            if isinstance(source, Image.Image):
                img = ImageOps.exif_transpose(img)
            else:
                ImageOps.exif_transpose(img, in_place=True)
            img = _to_rgb(img)
            if img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), RESAMPLE)
            return np.asarray(img, dtype=np.uint8)
    except Exception as e:  # bad EXIF, odd modes, lazily-loaded truncated files
        raise ImageError(f"{label}: cannot convert to RGB ({type(e).__name__}: {e})") from None


def array_to_rgb(arr: np.ndarray, size: tuple[int, int], name: str = "array") -> np.ndarray:
    """A uint8 HxW, HxWx1, HxWx3 or HxWx4 array -> ``(h, w, 3)`` pixels, as a decoded image.

    Only uint8 is accepted: a float array's range (0-1? 0-255?) is a guess the runtime will
    not make. An array already of the model's size is returned as is, without a copy.
    """
    if arr.dtype != np.uint8:
        raise ImageError(f"{name}: array of dtype {arr.dtype}; pass uint8 pixels (0-255)")
    if arr.shape == (size[0], size[1], 3):
        return arr
    channels = 1 if arr.ndim == 2 else arr.shape[2] if arr.ndim == 3 else 0
    if channels not in (1, 3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(f"{name}: array of shape {arr.shape}; expected (H, W, 3)")
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    pixels = np.ascontiguousarray(arr.reshape(arr.shape[:2]) if channels == 1 else arr)
    return to_rgb_array(Image.fromarray(pixels, mode), size, name=name)


def is_image_file(path: Path) -> bool:
    """Whether a folder scan should pick this file up (by suffix; hidden files skipped)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def image_files(folder: Path, recursive: bool = True) -> list[Path]:
    """The image files under ``folder``, sorted: recursively, what a folder argument means; one
    level deep, what a class folder of a dataset holds."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and is_image_file(p))
