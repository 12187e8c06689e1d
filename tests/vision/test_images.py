"""Tests for oneeye.vision.images. Every image is made here, in memory or under tmp_path."""

from __future__ import annotations

import contextlib
import io
import re
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageFile

from oneeye.errors import ImageError
from oneeye.vision.images import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    image_from_bgr,
    load_image,
    upright_size,
)

MB = 1024 * 1024
ORIENTATION = 0x0112
"""The EXIF Orientation tag."""

NOT_AN_IMAGE = r"not an image \(the data is not JPEG, PNG, WebP, BMP, GIF or TIFF\)"

Array = npt.NDArray[np.uint8]
Source = bytes | str | Path | BinaryIO


# --- making images -------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    """``image`` saved in ``fmt`` with Pillow, as bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def handmade_png(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes) -> bytes:
    """A PNG whose header says whatever we like; ``idat`` is the compressed pixel data as is."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def sixteen_bit_png(samples: npt.NDArray[np.uint16], colour_type: int) -> bytes:
    """A 16-bit PNG of (height, width, channels) samples (Pillow cannot write 16-bit colour)."""
    big_endian = samples.astype(">u2")
    rows = b"".join(b"\x00" + row.tobytes() for row in big_endian)  # filter type 0 per row
    return handmade_png(samples.shape[1], samples.shape[0], 16, colour_type, zlib.compress(rows))


def colour_pattern(height: int = 5, width: int = 6) -> Array:
    """Every pixel a different colour, so a swapped channel or a flipped axis shows."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 40 + 5, y * 50 + 3, (x * 7 + y * 31) % 256], axis=-1).astype(np.uint8)


def noise(height: int = 64, width: int = 64) -> Array:
    """Incompressible pixels, so the encoded file is long enough to cut in half."""
    return np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)


def grey_to_rgb(grey: npt.NDArray[Any]) -> Array:
    return np.stack([grey, grey, grey], axis=-1).astype(np.uint8)


def on_white(rgba: Array) -> Array:
    """What compositing RGBA onto white should give, computed independently of Pillow."""
    colour = rgba[..., :3].astype(np.float64)
    alpha = rgba[..., 3:].astype(np.float64) / 255.0
    return np.rint(colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def alpha_pattern() -> Array:
    """RGBA with fully transparent, half-transparent and opaque columns."""
    rgba = np.zeros((5, 4, 4), dtype=np.uint8)
    rgba[..., :3] = colour_pattern(5, 4)
    rgba[..., 3] = np.array([0, 64, 128, 255], dtype=np.uint8)
    return rgba


def smooth_pattern() -> Array:
    """Gradients in every channel: lossy codecs keep them within a few levels."""
    y, x = np.mgrid[0:32, 0:64]
    return np.stack([x * 4, y * 8, 255 - x * 2 - y * 2], axis=-1).astype(np.uint8)


def quadrants(height: int, width: int) -> Array:
    """Red, green / blue, yellow quadrants: no symmetry, and JPEG-friendly 16-pixel blocks."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    half_h, half_w = height // 2, width // 2
    image[:half_h, :half_w] = (255, 0, 0)
    image[:half_h, half_w:] = (0, 255, 0)
    image[half_h:, :half_w] = (0, 0, 255)
    image[half_h:, half_w:] = (255, 255, 0)
    return image


# --- good inputs: (encoded bytes, expected RGB, tolerance) ----------------------------------

Made = tuple[bytes, Array]


def png_rgb() -> Made:
    pixels = colour_pattern()
    return encode(Image.fromarray(pixels), "PNG"), pixels


def png_rgba() -> Made:
    rgba = alpha_pattern()
    return encode(Image.fromarray(rgba, "RGBA"), "PNG"), on_white(rgba)


def palette_image(transparent_index: int | None = None) -> tuple[Image.Image, Array]:
    palette = np.array([[200, 10, 20], [30, 220, 40], [50, 60, 230], [240, 240, 10]], np.uint8)
    indices = (np.arange(30).reshape(5, 6) % 4).astype(np.uint8)
    image = Image.fromarray(indices, "L").convert("P")
    image.putpalette(palette.flatten().tolist())
    expected = palette[indices]
    if transparent_index is not None:
        image.info["transparency"] = transparent_index
        expected[indices == transparent_index] = (255, 255, 255)
    return image, expected


def png_palette() -> Made:
    image, expected = palette_image()
    return encode(image, "PNG"), expected


def png_palette_transparent() -> Made:
    image, expected = palette_image(transparent_index=2)
    return encode(image, "PNG", transparency=2), expected


def png_grey() -> Made:
    grey = colour_pattern()[..., 0]
    return encode(Image.fromarray(grey, "L"), "PNG"), grey_to_rgb(grey)


def png_grey_alpha() -> Made:
    rgba = alpha_pattern()
    grey = rgba[..., 0]
    image = Image.merge("LA", [Image.fromarray(grey, "L"), Image.fromarray(rgba[..., 3], "L")])
    expected = on_white(np.dstack([grey, grey, grey, rgba[..., 3]]))
    return encode(image, "PNG"), expected


def png_one_bit() -> Made:
    bits = np.array([[0, 1, 1, 0, 1], [1, 0, 0, 1, 0]], dtype=bool)
    return encode(Image.fromarray(bits), "PNG"), grey_to_rgb(bits.astype(np.uint8) * 255)


SIXTEEN_BIT = np.array([[0, 255, 256, 1000], [32768, 40000, 65280, 65535]], dtype=np.uint16)
"""16-bit samples and what they become in 8 bits (the high byte), written out by hand.

Clipping, which Pillow's own convert() does, would turn all but the first into 255.
"""
SIXTEEN_BIT_AS_EIGHT = np.array([[0, 0, 1, 3], [128, 156, 255, 255]], dtype=np.uint8)


def png_16_bit_grey() -> Made:
    image = Image.fromarray(SIXTEEN_BIT)
    assert image.mode == "I;16"
    return encode(image, "PNG"), grey_to_rgb(SIXTEEN_BIT_AS_EIGHT)


def png_16_bit_rgb() -> Made:
    samples = np.stack([SIXTEEN_BIT, SIXTEEN_BIT[::-1], SIXTEEN_BIT[:, ::-1]], axis=-1)
    expected = np.stack(
        [SIXTEEN_BIT_AS_EIGHT, SIXTEEN_BIT_AS_EIGHT[::-1], SIXTEEN_BIT_AS_EIGHT[:, ::-1]], axis=-1
    )
    return sixteen_bit_png(samples, colour_type=2), expected


def png_16_bit_rgba() -> Made:
    alpha = np.array([[65535, 0, 65535, 0], [65535, 65535, 0, 65535]], dtype=np.uint16)
    samples = np.stack([SIXTEEN_BIT, SIXTEEN_BIT, SIXTEEN_BIT[::-1], alpha], axis=-1)
    expected = np.stack(
        [SIXTEEN_BIT_AS_EIGHT, SIXTEEN_BIT_AS_EIGHT, SIXTEEN_BIT_AS_EIGHT[::-1]], -1
    )
    expected[alpha == 0] = (255, 255, 255)
    return sixteen_bit_png(samples, colour_type=6), expected


def jpeg_rgb() -> Made:
    pixels = smooth_pattern()
    return encode(Image.fromarray(pixels), "JPEG", quality=95), pixels


def jpeg_grey() -> Made:
    grey = quadrants(32, 64)[..., 1]
    return encode(Image.fromarray(grey, "L"), "JPEG", quality=95), grey_to_rgb(grey)


def jpeg_cmyk() -> Made:
    cyan = Image.new("CMYK", (32, 16), (255, 0, 0, 0))
    return encode(cyan, "JPEG", quality=95), np.full((16, 32, 3), (0, 255, 255), np.uint8)


def webp_lossless() -> Made:
    pixels = colour_pattern()
    return encode(Image.fromarray(pixels), "WEBP", lossless=True), pixels


def webp_lossy() -> Made:
    pixels = smooth_pattern()
    return encode(Image.fromarray(pixels), "WEBP", quality=95), pixels


def webp_rgba() -> Made:
    rgba = alpha_pattern()
    made = encode(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True, exact=True)
    return made, on_white(rgba)


def bmp_rgb() -> Made:
    pixels = colour_pattern()
    return encode(Image.fromarray(pixels), "BMP"), pixels


def bmp_palette() -> Made:
    image, expected = palette_image()
    return encode(image, "BMP"), expected


def gif_first_frame() -> Made:
    first, expected = palette_image()
    second = Image.new("P", first.size, 3)
    second.putpalette([9, 9, 9] * 4)
    return encode(first, "GIF", save_all=True, append_images=[second]), expected


def gif_transparent() -> Made:
    image, expected = palette_image(transparent_index=1)
    return encode(image, "GIF", transparency=1), expected


def tiff_rgb() -> Made:
    pixels = colour_pattern()
    return encode(Image.fromarray(pixels), "TIFF"), pixels


def tiff_rgba() -> Made:
    rgba = alpha_pattern()
    return encode(Image.fromarray(rgba, "RGBA"), "TIFF"), on_white(rgba)


def tiff_16_bit_little_endian() -> Made:
    return encode(Image.fromarray(SIXTEEN_BIT), "TIFF"), grey_to_rgb(SIXTEEN_BIT_AS_EIGHT)


def tiff_16_bit_big_endian() -> Made:
    image = Image.fromarray(SIXTEEN_BIT.astype(">u2"))
    assert image.mode == "I;16B"
    return encode(image, "TIFF"), grey_to_rgb(SIXTEEN_BIT_AS_EIGHT)


def tiff_32_bit_integer() -> Made:
    """Mode "I": read as 16-bit samples, anything outside 0..65535 clipped."""
    values = np.array([[-5, 0, 255, 256], [1000, 65535, 65536, 100_000]], dtype=np.int32)
    image = Image.fromarray(values)
    assert image.mode == "I"
    return encode(image, "TIFF"), grey_to_rgb(np.array([[0, 0, 0, 1], [3, 255, 255, 255]]))


def tiff_cmyk() -> Made:
    red = Image.new("CMYK", (6, 5), (0, 255, 255, 0))
    return encode(red, "TIFF"), np.full((5, 6, 3), (255, 0, 0), np.uint8)


@pytest.mark.parametrize(
    ("make", "tolerance"),
    [
        pytest.param(png_rgb, 0, id="png-rgb"),
        pytest.param(png_rgba, 1, id="png-rgba"),
        pytest.param(png_palette, 0, id="png-palette"),
        pytest.param(png_palette_transparent, 0, id="png-palette-transparent"),
        pytest.param(png_grey, 0, id="png-grey"),
        pytest.param(png_grey_alpha, 1, id="png-grey-alpha"),
        pytest.param(png_one_bit, 0, id="png-1-bit"),
        pytest.param(png_16_bit_grey, 0, id="png-16-bit-grey"),
        pytest.param(png_16_bit_rgb, 0, id="png-16-bit-rgb"),
        pytest.param(png_16_bit_rgba, 0, id="png-16-bit-rgba"),
        pytest.param(jpeg_rgb, 10, id="jpeg-rgb"),
        pytest.param(jpeg_grey, 8, id="jpeg-grey"),
        pytest.param(jpeg_cmyk, 8, id="jpeg-cmyk"),
        pytest.param(webp_lossless, 0, id="webp-lossless"),
        pytest.param(webp_lossy, 10, id="webp-lossy"),
        pytest.param(webp_rgba, 1, id="webp-rgba"),
        pytest.param(bmp_rgb, 0, id="bmp-rgb"),
        pytest.param(bmp_palette, 0, id="bmp-palette"),
        pytest.param(gif_first_frame, 0, id="gif-first-frame"),
        pytest.param(gif_transparent, 0, id="gif-transparent"),
        pytest.param(tiff_rgb, 0, id="tiff-rgb"),
        pytest.param(tiff_rgba, 1, id="tiff-rgba"),
        pytest.param(tiff_16_bit_little_endian, 0, id="tiff-16-bit-le"),
        pytest.param(tiff_16_bit_big_endian, 0, id="tiff-16-bit-be"),
        pytest.param(tiff_32_bit_integer, 0, id="tiff-32-bit-int"),
        pytest.param(tiff_cmyk, 0, id="tiff-cmyk"),
    ],
)
def test_decodes_each_format_and_mode_to_rgb(make: Callable[[], Made], tolerance: int) -> None:
    data, expected = make()

    image = load_image(data)

    assert image.dtype == np.uint8
    assert image.shape == expected.shape
    assert image.flags.c_contiguous
    difference = np.abs(image.astype(np.int16) - expected.astype(np.int16))
    assert int(difference.max()) <= tolerance, f"pixels off by up to {difference.max()}"


def test_result_is_writeable_and_independent() -> None:
    data, _ = png_rgb()

    first, second = load_image(data), load_image(data)
    first[0, 0] = (1, 2, 3)

    assert first.flags.writeable
    assert tuple(second[0, 0]) != (1, 2, 3)


# --- sources ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "as_source",
    [
        pytest.param(lambda data, path: data, id="bytes"),
        pytest.param(lambda data, path: str(path), id="str-path"),
        pytest.param(lambda data, path: path, id="pathlib"),
        pytest.param(lambda data, path: io.BytesIO(data), id="bytesio"),
        pytest.param(lambda data, path: path.open("rb"), id="open-file"),
        pytest.param(lambda data, path: io.BufferedReader(io.BytesIO(data), 7), id="small-reads"),
    ],
)
def test_reads_every_kind_of_source(
    tmp_path: Path, as_source: Callable[[bytes, Path], Source]
) -> None:
    data, expected = png_rgb()
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    source = as_source(data, path)

    image = load_image(source)

    if isinstance(source, io.IOBase):
        source.close()
    np.testing.assert_array_equal(image, expected)


def test_reads_a_stream_from_its_current_position() -> None:
    data, expected = png_rgb()
    stream = io.BytesIO(b"multipart preamble" + data)
    stream.seek(len(b"multipart preamble"))

    np.testing.assert_array_equal(load_image(stream), expected)


def test_wrong_arguments_are_caller_bugs_not_image_errors() -> None:
    data, _ = png_rgb()
    with pytest.raises(ValueError, match="max_pixels must be >= 1, got 0"):
        load_image(data, max_pixels=0)
    with pytest.raises(ValueError, match="max_bytes must be >= 1, got -1"):
        load_image(data, max_bytes=-1)
    with pytest.raises(TypeError, match="needs bytes, a path or a binary stream, got int"):
        load_image(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text mode"):
        load_image(io.StringIO("not bytes"))  # type: ignore[arg-type]


# --- EXIF orientation ---------------------------------------------------------------------

STORED_FOR_ORIENTATION: dict[int, Callable[[Array], Array]] = {
    1: lambda upright: upright,
    2: lambda upright: upright[:, ::-1],
    3: lambda upright: upright[::-1, ::-1],
    4: lambda upright: upright[::-1, :],
    5: lambda upright: upright.transpose(1, 0, 2),
    6: lambda upright: np.rot90(upright, k=1),
    7: lambda upright: upright[::-1, ::-1].transpose(1, 0, 2),
    8: lambda upright: np.rot90(upright, k=-1),
}
"""How a camera stores an upright picture under each EXIF orientation, from the EXIF table.

Orientation n says where the stored 0th row and 0th column belong when the picture is viewed
upright: 1 top/left, 2 top/right, 3 bottom/right, 4 bottom/left, 5 left/top, 6 right/top,
7 right/bottom, 8 left/bottom. (6 is a phone held upright: the sensor's top row is the
picture's right edge.)
"""


@pytest.mark.parametrize("orientation", sorted(STORED_FOR_ORIENTATION))
def test_applies_exif_orientation(orientation: int) -> None:
    upright = quadrants(32, 64)
    stored = np.ascontiguousarray(STORED_FOR_ORIENTATION[orientation](upright))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    data = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif.tobytes())

    image = load_image(data)

    assert image.shape == upright.shape
    corners = {"top-left": (8, 16), "top-right": (8, 48), "bottom-left": (24, 16)}
    for corner, (row, column) in corners.items():
        error = np.abs(image[row, column].astype(int) - upright[row, column].astype(int)).max()
        assert error <= 8, f"{corner} is {image[row, column]}, expected {upright[row, column]}"


# --- bad inputs ---------------------------------------------------------------------------


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space and is never read."""
    with path.open("wb") as file:
        file.truncate(size)
    return path


def cut_in_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


@dataclass(frozen=True)
class BadInput:
    make: Callable[[Path], Source]
    """Builds the source in a temporary folder."""
    expected_error: str
    """A regular expression for the whole message; ``{path}`` stands for the source's path."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES


BAD_INPUTS = [
    pytest.param(
        BadInput(lambda tmp: np.random.default_rng(3).bytes(1000), NOT_AN_IMAGE),
        id="random-bytes",
    ),
    pytest.param(
        BadInput(
            lambda tmp: write(tmp / "notes.jpg", b"Dear diary,\n" * 20), "{path}: " + NOT_AN_IMAGE
        ),
        id="text-file",
    ),
    pytest.param(BadInput(lambda tmp: b"", "empty file"), id="empty-bytes"),
    pytest.param(
        BadInput(lambda tmp: write(tmp / "a.png", b""), "{path}: empty file"), id="empty-file"
    ),
    pytest.param(BadInput(lambda tmp: io.BytesIO(), "empty file"), id="empty-stream"),
    pytest.param(
        BadInput(
            lambda tmp: cut_in_half(encode(Image.fromarray(noise()), "JPEG")),
            "truncated image: the JPEG data ends early",
        ),
        id="truncated-jpeg",
    ),
    pytest.param(
        BadInput(
            lambda tmp: write(
                tmp / "cut.png", cut_in_half(encode(Image.fromarray(noise()), "PNG"))
            ),
            "{path}: truncated image: the PNG data ends early",
        ),
        id="truncated-png-file",
    ),
    pytest.param(
        BadInput(
            lambda tmp: cut_in_half(encode(Image.fromarray(noise()), "WEBP")),
            "truncated image: the WebP data ends early",
        ),
        id="truncated-webp",
    ),
    pytest.param(
        BadInput(
            lambda tmp: cut_in_half(encode(Image.fromarray(noise()), "GIF")),
            "truncated image: the GIF data ends early",
        ),
        id="truncated-gif",
    ),
    pytest.param(
        BadInput(lambda tmp: b"GIF89a\x01\x00", "damaged GIF image: its header cannot be read"),
        id="gif-header-only",
    ),
    pytest.param(
        BadInput(
            lambda tmp: handmade_png(4, 4, 8, 2, b"this is not zlib data"),
            r"damaged PNG image \(.+\)",
        ),
        id="damaged-png",
    ),
    pytest.param(
        # The pixel data is empty: had it been decoded, the error would say "truncated".
        BadInput(
            lambda tmp: handmade_png(8000, 6000, 8, 2, zlib.compress(b"")),
            r"image is 8000x6000 \(48,000,000 pixels\), the limit is 40,000,000 pixels",
        ),
        id="declares-48-megapixels",
    ),
    pytest.param(
        # Over twice Pillow's own limit: Pillow refuses it while reading the header.
        BadInput(
            lambda tmp: handmade_png(40000, 40000, 8, 2, zlib.compress(b"")),
            r"image is too large: more than [\d,]+ pixels, the limit is 40,000,000 pixels",
        ),
        id="declares-40000x40000",
    ),
    pytest.param(
        BadInput(
            lambda tmp: write(tmp / "big.png", encode(Image.new("RGB", (100, 100)), "PNG")),
            r"{path}: image is 100x100 \(10,000 pixels\), the limit is 9,999 pixels",
            max_pixels=9_999,
        ),
        id="over-max-pixels-file",
    ),
    pytest.param(
        BadInput(
            lambda tmp: handmade_png(0, 4, 8, 2, zlib.compress(b"")),
            "damaged PNG image: its header cannot be read",
        ),
        id="zero-width-png",
    ),
    pytest.param(
        BadInput(
            lambda tmp: encode(Image.new("F", (4, 4), 0.5), "TIFF"),
            "unsupported pixel format in the TIFF image: mode F",
        ),
        id="float-tiff",
    ),
    pytest.param(
        BadInput(
            lambda tmp: bytes(1001), "file is 1,001 bytes, the limit is 1,000 bytes", max_bytes=1000
        ),
        id="too-many-bytes",
    ),
    pytest.param(
        BadInput(
            lambda tmp: sparse_file(tmp / "huge.jpg", int(35.2 * MB)),
            r"{path}: file is 35\.2 MB, the limit is 30 MB",
        ),
        id="too-many-bytes-file",
    ),
    pytest.param(
        BadInput(
            lambda tmp: sparse_file(tmp / "just-over.jpg", DEFAULT_MAX_BYTES + 1),
            "{path}: file is 31,457,281 bytes, the limit is 31,457,280 bytes",
        ),
        id="one-byte-too-many-file",
    ),
    pytest.param(
        BadInput(
            lambda tmp: io.BytesIO(bytes(2 * MB)),
            "file is larger than the limit of 1 MB",
            max_bytes=MB,
        ),
        id="too-many-bytes-stream",
    ),
    pytest.param(
        BadInput(lambda tmp: tmp / "missing.jpg", "file not found: {path}"), id="missing-file"
    ),
    pytest.param(
        BadInput(lambda tmp: tmp, "{path}: is a directory, not an image file"), id="directory"
    ),
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_image_error_saying_what_is_wrong(tmp_path: Path, case: BadInput) -> None:
    source = case.make(tmp_path)
    path = re.escape(str(source)) if isinstance(source, Path) else ""
    expected = case.expected_error.replace("{path}", path)

    with pytest.raises(ImageError) as raised:
        load_image(source, max_pixels=case.max_pixels, max_bytes=case.max_bytes)

    assert re.fullmatch(expected, str(raised.value)), str(raised.value)


def test_limits_are_inclusive() -> None:
    data = encode(Image.new("RGB", (100, 100), (1, 2, 3)), "PNG")

    image = load_image(data, max_pixels=10_000, max_bytes=len(data))

    assert image.shape == (100, 100, 3)


def test_declared_size_is_checked_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def load_must_not_run(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load_must_not_run)
    data = encode(Image.new("RGB", (100, 100)), "PNG")

    with pytest.raises(ImageError, match="the limit is 9,999 pixels"):
        load_image(data, max_pixels=9_999)


def test_pillow_warning_zone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between Pillow's limit and twice it, Pillow only warns: that must still be an error."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    data = encode(Image.new("RGB", (40, 30)), "PNG")

    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(ImageError) as raised:
        load_image(data)

    assert str(raised.value) == (
        "image is 40x30 (1,200 pixels), the limit is 1,000 pixels (Pillow's Image.MAX_IMAGE_PIXELS)"
    )


def test_pillow_decompression_bomb_error_becomes_image_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    data = encode(Image.new("RGB", (50, 50)), "PNG")

    with pytest.raises(ImageError) as raised:
        load_image(data)

    assert str(raised.value) == (
        "image is too large: more than 2,000 pixels, the limit is 1,000 pixels "
        "(Pillow's Image.MAX_IMAGE_PIXELS)"
    )
    assert isinstance(raised.value.__cause__, Image.DecompressionBombError)


def test_no_pillow_limit_leaves_max_pixels_in_charge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    data = encode(Image.new("RGB", (40, 30)), "PNG")

    assert load_image(data, max_pixels=1_200).shape == (30, 40, 3)
    with pytest.raises(ImageError, match=r"the limit is 1,199 pixels$"):
        load_image(data, max_pixels=1_199)


def test_leaves_pillow_and_warnings_settings_alone(tmp_path: Path) -> None:
    pillow_limit = Image.MAX_IMAGE_PIXELS
    filters = list(warnings.filters)
    good, _ = png_rgb()
    sources: list[Source] = [
        good,
        cut_in_half(encode(Image.fromarray(noise()), "JPEG")),
        handmade_png(40000, 40000, 8, 2, b""),
        handmade_png(8000, 6000, 8, 2, b""),
        tmp_path / "missing.png",
    ]

    for source in sources:
        with contextlib.suppress(ImageError):
            load_image(source)

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert pillow_limit == Image.MAX_IMAGE_PIXELS
    assert warnings.filters == filters


# Pillow warns about the damaged metadata it skips; expected here.
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_damaged_files_raise_only_image_error(fmt: str) -> None:
    """Flip bytes and cut files at random (seeded): the answer is an image or an ImageError."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    params: dict[str, Any] = {"exif": exif.tobytes()} if fmt in ("JPEG", "PNG", "WEBP") else {}
    original = encode(Image.fromarray(colour_pattern(24, 20)), fmt, **params)
    rng = np.random.default_rng(11)
    outcomes = {"decoded": 0, "refused": 0}

    for _ in range(150):
        damaged = bytearray(original)
        for _ in range(int(rng.integers(1, 4))):
            # Half the flips land in the first 64 bytes, where the headers are.
            limit = 64 if rng.random() < 0.5 else len(damaged)
            damaged[int(rng.integers(0, limit))] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            damaged = damaged[: int(rng.integers(1, len(damaged)))]
        try:
            image = load_image(bytes(damaged))
        except ImageError:
            outcomes["refused"] += 1
        else:
            assert image.dtype == np.uint8
            assert image.ndim == 3
            assert image.shape[2] == 3
            outcomes["decoded"] += 1

    assert outcomes["refused"] > 0, outcomes


# --- BGR frames ---------------------------------------------------------------------------


def test_image_from_bgr_swaps_channels_into_a_new_array() -> None:
    frame = np.zeros((2, 3, 3), dtype=np.uint8)
    frame[0, 0] = (1, 2, 3)  # blue, green, red
    frame[1, 2] = (200, 100, 50)

    image = image_from_bgr(frame)

    assert tuple(image[0, 0]) == (3, 2, 1)
    assert tuple(image[1, 2]) == (50, 100, 200)
    assert image.flags.c_contiguous
    assert not np.shares_memory(image, frame)


@pytest.mark.parametrize(
    ("frame", "expected_error"),
    [
        pytest.param(
            np.zeros((4, 5), np.uint8),
            r"expected a BGR frame of shape \(height, width, 3\) and dtype uint8, "
            r"got shape \(4, 5\) and dtype uint8",
            id="grey",
        ),
        pytest.param(
            np.zeros((4, 5, 4), np.uint8),
            r".*got shape \(4, 5, 4\) and dtype uint8",
            id="bgra",
        ),
        pytest.param(
            np.zeros((4, 5, 3), np.float32),
            r".*got shape \(4, 5, 3\) and dtype float32",
            id="float",
        ),
        pytest.param(
            np.zeros((4, 5, 3), np.uint16), r".*got shape \(4, 5, 3\) and dtype uint16", id="uint16"
        ),
        pytest.param(
            np.zeros((0, 5, 3), np.uint8),
            r"expected a BGR frame with pixels, got shape \(0, 5, 3\)",
            id="empty",
        ),
        pytest.param(
            [[[0, 0, 0]]],
            r"expected a BGR frame as a numpy array of shape \(height, width, 3\) and dtype "
            r"uint8, got list",
            id="list",
        ),
    ],
)
def test_image_from_bgr_rejects_other_arrays(frame: Any, expected_error: str) -> None:
    with pytest.raises(ImageError) as raised:
        image_from_bgr(frame)

    assert re.fullmatch(expected_error, str(raised.value)), str(raised.value)


# --- shrinking and multi-frame files ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "size", "expected"),
    [
        ("JPEG", (3000, 2000), (667, 1000)),
        ("PNG", (2000, 3000), (1000, 667)),
        ("PNG", (800, 600), (600, 800)),  # already small: untouched
    ],
)
def test_max_side_shrinks_before_the_array_is_made(
    fmt: str, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, fmt)
    image = load_image(buffer.getvalue(), max_side=1000)
    assert image.shape[:2] == expected
    assert abs(int(image[10, 10, 0]) - 200) <= 3


def test_a_multi_frame_file_decodes_its_first_frame_only() -> None:
    frames = [Image.new("RGB", (600, 400), colour) for colour in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=40)
    image = load_image(buffer.getvalue(), max_side=300)
    assert image.shape == (200, 300, 3)
    assert tuple(int(v) for v in image[100, 150]) == (255, 0, 0)


@pytest.mark.parametrize(("orientation", "expected"), [(1, (40, 30)), (6, (30, 40))])
def test_upright_size_reads_the_header_and_turns_with_exif(
    orientation: int, expected: tuple[int, int]
) -> None:
    image = Image.new("RGB", (40, 30))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    assert upright_size(out.getvalue()) == expected
    assert load_image(out.getvalue()).shape[1::-1] == expected


def test_upright_size_of_something_not_an_image_is_an_image_error() -> None:
    with pytest.raises(ImageError):
        upright_size(b"not an image at all")
