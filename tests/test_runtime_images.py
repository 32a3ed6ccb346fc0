"""The decoder: real CIFAR-100 pixels, every image mode a user may have, and hostile files.

Expected pixels are worked out independently of Pillow wherever that is possible (a small
PNG decoder below, known palette and colour values), so a wrong conversion cannot pass by
agreeing with itself.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from herbi.runtime.image import MAX_PIXELS, ImageError, array_to_rgb, to_rgb_array


def decode_png_rgb8(data: bytes) -> np.ndarray:
    """Reference decoder for 8-bit RGB, non-interlaced PNG files, written from the PNG spec."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, color, interlace) == (8, 2, 0)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), w * 3, [], [0] * (w * 3)
    for y in range(h):
        kind, line, cur = raw[y * (stride + 1)], raw[y * (stride + 1) + 1 :], [0] * stride
        for x in range(stride):
            a, b = cur[x - 3] if x >= 3 else 0, prev[x]
            c = prev[x - 3] if x >= 3 else 0
            p = a + b - c
            paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
            cur[x] = (line[x] + (0, a, b, (a + b) // 2, paeth)[kind]) & 255
        rows.append(cur)
        prev = cur
    return np.array(rows, np.uint8).reshape(h, w, 3)


def test_cifar100_samples_decode_to_their_exact_pixels(cifar100_samples):
    files = sorted(cifar100_samples.glob("*.png"))
    assert len(files) == 20
    for path in files:
        pixels = to_rgb_array(path)
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
        np.testing.assert_array_equal(pixels, decode_png_rgb8(path.read_bytes()), str(path))


def save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


def test_grayscale_becomes_equal_rgb_channels(tmp_path):
    gray = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) % 256
    out = to_rgb_array(save(Image.fromarray(gray.astype(np.uint8), "L"), tmp_path / "g.png"))
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    values = np.arange(32 * 32).reshape(32, 32) % 256
    img = Image.fromarray((values * 257).astype(np.uint16))  # 16-bit: v * 257 is v in 8 bits
    path = save(img, tmp_path / "deep.png")
    with Image.open(path) as check:
        assert check.mode == "I;16"  # really a 16-bit file
    np.testing.assert_array_equal(to_rgb_array(path)[..., 0], values)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:, :16] = (10, 20, 30, 255)  # opaque
    rgba[:, 16:] = (0, 0, 0, 0)  # fully transparent
    rgba[0, 0] = (200, 0, 0, 128)  # half transparent red over white
    out = to_rgb_array(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert (out[1:, :16] == (10, 20, 30)).all()
    assert (out[:, 16:] == 255).all()
    np.testing.assert_allclose(out[0, 0], (227, 127, 127), atol=2)


def test_palette_maps_through_its_palette(tmp_path):
    index = (np.arange(32 * 32).reshape(32, 32) % 200).astype(np.uint8)
    img = Image.fromarray(index, "P")
    palette = [(i, 255 - i, 7) for i in range(256)]
    img.putpalette([c for rgb in palette for c in rgb])
    out = to_rgb_array(save(img, tmp_path / "p.png"))
    np.testing.assert_array_equal(out, np.array(palette, np.uint8)[index])


def test_palette_with_transparency(tmp_path):
    img = Image.fromarray(np.ones((32, 32), np.uint8), "P")
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    img.info["transparency"] = 1
    out = to_rgb_array(save(img, tmp_path / "t.gif", transparency=1))
    assert (out == 255).all()  # the transparent index shows the white background


def test_cmyk_jpeg(tmp_path):
    path = save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), tmp_path / "c.jpg", quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    out = to_rgb_array(path).astype(int)
    np.testing.assert_allclose(out.mean((0, 1)), (255, 0, 0), atol=12)  # pure red


def test_one_pixel_image_fills_the_input(tmp_path):
    out = to_rgb_array(save(Image.new("RGB", (1, 1), (9, 80, 200)), tmp_path / "dot.png"))
    assert out.shape == (32, 32, 3) and (out == (9, 80, 200)).all()


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((16, 32, 3), np.uint8)  # wide image: left half red, right half blue
    arr[:, :16] = (255, 0, 0)
    arr[:, 16:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: the left edge becomes the top
    path = save(Image.fromarray(arr), tmp_path / "phone.jpg", exif=exif, quality=95)
    out = to_rgb_array(path).astype(int)
    assert out[:12, :, 0].mean() > 200 and out[:12, :, 2].mean() < 50  # top: red
    assert out[-12:, :, 2].mean() > 200 and out[-12:, :, 0].mean() < 50  # bottom: blue


def test_resize_is_antialiased(tmp_path):
    checker = ((np.indices((320, 320)).sum(0) % 2) * 255).astype(np.uint8)
    out = to_rgb_array(save(Image.fromarray(checker, "L"), tmp_path / "fine.png"))
    # Each output pixel averages a 10x10 patch; sampling without a filter gives 0 or 255.
    assert np.abs(out.astype(int) - 127).max() <= 8


def test_arrays_of_other_layouts_convert_like_images():
    gray = np.full((8, 8), 50, np.uint8)
    assert (array_to_rgb(gray, (32, 32)) == 50).all()
    assert (array_to_rgb(gray[..., None], (32, 32)) == 50).all()
    rgba = np.zeros((32, 32, 4), np.uint8)
    assert (array_to_rgb(rgba, (32, 32)) == 255).all()  # transparent -> white
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert array_to_rgb(rgb, (32, 32)) is rgb  # already model-sized: no copy


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((32, 32, 3), np.nan), "dtype float64"),
        (np.zeros((32, 32, 3), np.float32), "dtype float32"),
        (np.zeros((32, 32, 2), np.uint8), "shape"),
        (np.zeros((32,), np.uint8), "shape"),
        (np.zeros((0, 32, 3), np.uint8), "shape"),
        (np.zeros((2, 32, 32, 3), np.uint8), "shape"),
    ],
)
def test_bad_arrays_are_refused(array, message):
    with pytest.raises(ImageError, match=message):
        array_to_rgb(array, (32, 32), "arr")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with (almost) no pixel data behind it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [100_000, 9_000])  # over Pillow's own limit; over only ours
def test_decompression_bomb_is_refused_from_its_header(tmp_path, side):
    """The file holds a header and 1 KB of pixel data: an error about the pixel limit (not
    about truncated data) shows that it was refused before any pixel was decoded."""
    assert side * side > MAX_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    with pytest.raises(ImageError, match=r"bomb\.png: .*(limit)"):
        to_rgb_array(path)


def noise_file(tmp_path: Path, fmt: str) -> Path:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return save(Image.fromarray(noise), tmp_path / f"noise.{fmt}")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.png", b"", "empty file"),
        ("notes.jpg", b"this is a shopping list, not a photo\n" * 20, "not an image"),
        ("figure.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n", "not an image"),
        ("half.png", lambda tmp: noise_file(tmp, "png").read_bytes()[:3000], "truncated"),
        ("half.jpg", lambda tmp: noise_file(tmp, "jpg").read_bytes()[:1500], "truncated"),
        ("header.png", lambda tmp: noise_file(tmp, "png").read_bytes()[:40], "truncated"),
    ],
)
def test_bad_files_get_a_clear_error_naming_them(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content(tmp_path) if callable(content) else content)
    with pytest.raises(ImageError, match=f"{name}: .*{message}"):
        to_rgb_array(path)


def test_missing_file_folder_and_non_images(tmp_path):
    with pytest.raises(ImageError, match=r"gone\.png: cannot open"):
        to_rgb_array(tmp_path / "gone.png")
    with pytest.raises(ImageError, match="cannot open"):
        to_rgb_array(tmp_path)
    with pytest.raises(ImageError, match="empty"):
        to_rgb_array(b"")
    with pytest.raises(ImageError, match="int: not an image"):
        to_rgb_array(42)  # type: ignore[arg-type]


def test_truncated_file_opened_lazily_by_the_caller(tmp_path):
    path = tmp_path / "lazy.png"
    path.write_bytes(noise_file(tmp_path, "png").read_bytes()[:3000])
    with Image.open(io.BytesIO(path.read_bytes())) as img, pytest.raises(ImageError):
        to_rgb_array(img)
