"""Safe decoding of untrusted image files and uploads into upright RGB arrays.

This module and ``image_from_bgr`` are the only ways pixels enter OneEye: everything downstream
can assume an (height, width, 3) uint8 RGB array that fits in memory.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from oneeye.errors import ImageError
from oneeye.types import RGBImage

DEFAULT_MAX_PIXELS = 40_000_000
"""Largest image ``load_image`` decodes by default (a 40-megapixel photo is 120 MB as RGB)."""

DEFAULT_MAX_BYTES = 30 * 1024 * 1024
"""Largest file or upload ``load_image`` reads by default (30 MB)."""

_MEGABYTE = 1024 * 1024

_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
"""The Pillow plugins allowed to parse untrusted data; the others are attack surface we skip."""

_FORMAT_NAMES = {
    "JPEG": "JPEG",
    "MPO": "JPEG",  # phone JPEGs with an embedded depth map or preview open as MPO
    "PNG": "PNG",
    "WEBP": "WebP",
    "BMP": "BMP",
    "GIF": "GIF",
    "TIFF": "TIFF",
}

_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
"""Magic numbers, only to word errors: data that starts like a PNG is a damaged PNG, not junk."""

_NOT_AN_IMAGE = "not an image (the data is not JPEG, PNG, WebP, BMP, GIF or TIFF)"

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def load_image(
    source: bytes | str | os.PathLike[str] | BinaryIO,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_side: int | None = None,
) -> RGBImage:
    """Decode a JPEG, PNG, WebP, BMP, GIF or TIFF into an upright RGB array. Of an animated
    or multi-page file, only the first frame is decoded.

    The EXIF orientation is applied, transparency is composited onto white and 16-bit samples
    are scaled to 8 bits. The declared size is checked before any pixel is decoded, so a small
    file that declares a huge image costs nothing.

    Args:
        source: the encoded image as bytes, a path to a file, or a binary stream (read from its
            current position to the end).
        max_pixels: refuse images with more pixels than this (width times height). Pillow's
            ``Image.MAX_IMAGE_PIXELS``, when lower, is a ceiling on it.
        max_bytes: refuse files or uploads longer than this many bytes.
        max_side: shrink the image (keeping its shape) to at most this many pixels on its
            longer side, before it becomes an array; a JPEG is decoded at a reduced scale
            directly, which costs a fraction of the full decode. ``None``: full size.

    Returns:
        A C-contiguous, writeable (height, width, 3) uint8 array in RGB order.

    Raises:
        ImageError: for anything wrong with the data or the file: missing, unreadable, empty,
            too large, not an image, truncated or damaged. When ``source`` is a path, the
            message names the file.
        ValueError: if ``max_pixels`` or ``max_bytes`` is not positive (a caller bug).
        TypeError: if ``source`` is none of the accepted types (a caller bug).
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    if isinstance(source, bytes):
        if len(source) > max_bytes:
            raise ImageError(_too_many_bytes(len(source), max_bytes))
        return _decode(source, max_pixels, max_side, where="")
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        return _decode(_read_file(path, max_bytes), max_pixels, max_side, where=f"{path}: ")
    if callable(getattr(source, "read", None)):
        return _decode(_read_stream(source, max_bytes), max_pixels, max_side, where="")
    raise TypeError(
        "load_image needs bytes, a path or a binary stream, got " + type(source).__name__
    )


_TURNED = (5, 6, 7, 8)
"""EXIF orientations that turn the picture a quarter: width and height trade places."""


def upright_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of an encoded image as ``load_image`` would give it at full size
    (EXIF orientation applied), read from its header without decoding a pixel.

    Raises:
        ImageError: the data is not an image Pillow can open.
    """
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112)
    except MemoryError:
        raise
    except Exception as exc:  # Pillow signals bad data with many exception types.
        raise ImageError(_NOT_AN_IMAGE) from exc
    return (height, width) if orientation in _TURNED else (width, height)


def image_from_bgr(frame: npt.NDArray[np.uint8]) -> RGBImage:
    """Convert an OpenCV BGR frame to an RGB image: the one place BGR becomes RGB.

    Args:
        frame: an (height, width, 3) uint8 array in BGR order, as ``cv2.imread`` and
            ``cv2.VideoCapture.read`` return.

    Returns:
        A new C-contiguous (height, width, 3) uint8 array in RGB order.

    Raises:
        ImageError: if ``frame`` is not a non-empty (height, width, 3) uint8 array.
    """
    if not isinstance(frame, np.ndarray):
        raise ImageError(
            "expected a BGR frame as a numpy array of shape (height, width, 3) and dtype uint8, "
            f"got {type(frame).__name__}"
        )
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ImageError(
            "expected a BGR frame of shape (height, width, 3) and dtype uint8, "
            f"got shape {frame.shape} and dtype {frame.dtype}"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ImageError(f"expected a BGR frame with pixels, got shape {frame.shape}")
    return np.ascontiguousarray(frame[:, :, ::-1])


def _read_file(path: str, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` of a file, checking its size before reading."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > max_bytes:
                raise ImageError(f"{path}: {_too_many_bytes(size, max_bytes)}")
            # The size can lie (a growing file, a pipe, /proc): never read more than the limit.
            data = file.read(max_bytes + 1)
    except FileNotFoundError:
        raise ImageError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory, not an image file") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise ImageError(f"{path}: file is larger than the limit of {_format_bytes(max_bytes)}")
    return data


def _read_stream(stream: BinaryIO, max_bytes: int) -> bytes:
    """Read a stream to its end, refusing to hold more than ``max_bytes`` of it."""
    chunks: list[bytes] = []
    total = 0
    try:
        # A raw or socket-backed stream may return fewer bytes than asked for: loop.
        while total <= max_bytes:
            chunk = stream.read(max_bytes + 1 - total)
            if not chunk:
                break
            if isinstance(chunk, str):
                raise TypeError("load_image needs a binary stream, got one opened in text mode")
            chunks.append(bytes(chunk))
            total += len(chunk)
    except OSError as exc:
        raise ImageError(f"cannot read the image stream ({exc})") from exc
    if total > max_bytes:
        raise ImageError(f"file is larger than the limit of {_format_bytes(max_bytes)}")
    return b"".join(chunks)


def _decode(data: bytes, max_pixels: int, max_side: int | None, *, where: str) -> RGBImage:
    """Decode ``data``; ``where`` prefixes every error message (the path and ": ", or "")."""
    if not data:
        raise ImageError(f"{where}empty file")
    try:
        image = Image.open(io.BytesIO(data), formats=_FORMATS)
    except UnidentifiedImageError as exc:
        known = _sniff_format(data)
        if known is None:
            raise ImageError(f"{where}{_NOT_AN_IMAGE}") from exc
        raise ImageError(f"{where}damaged {known} image: its header cannot be read") from exc
    except MemoryError:
        raise
    except Exception as exc:  # Pillow signals bad data with many exception types.
        raise _decode_error(exc, data, _sniff_format(data), max_pixels, where) from exc

    with image:
        format_name = _FORMAT_NAMES.get(image.format or "")
        _check_pixels(image.size, max_pixels, where)
        if max_side is not None and max(image.size) > max_side:
            # JPEG only (other formats ignore it): decode at 1/2, 1/4 or 1/8 scale, no
            # smaller than max_side; thumbnail() below makes up the rest.
            image.draft(None, (max_side, max_side))
        try:
            image.load()
            if max_side is not None and max(image.size) > max_side:
                image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        except MemoryError:
            raise
        except Exception as exc:  # OSError, SyntaxError, ValueError, EOFError, struct.error...
            raise _decode_error(exc, data, format_name, max_pixels, where) from exc
        try:
            upright = ImageOps.exif_transpose(image)
        except MemoryError:
            raise
        except Exception as exc:
            raise ImageError(
                f"{where}damaged EXIF metadata in the {_kind(format_name)}, so its orientation "
                f"is unknown ({exc})"
            ) from exc
    try:
        return _to_rgb_array(upright)
    except ValueError as exc:  # Pillow has no conversion for the mode (LAB, HSV, ...)
        raise ImageError(
            f"{where}unsupported pixel format in the {_kind(format_name)}: mode {upright.mode}"
        ) from exc


def _check_pixels(size: tuple[int, int], max_pixels: int, where: str) -> None:
    """Refuse an image by its declared size, before its pixels are decoded."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{where}image is {width}x{height}: it has no pixels")
    limit, whose = _pixel_limit(max_pixels)
    if width * height > limit:
        raise ImageError(
            f"{where}image is {width}x{height} ({width * height:,} pixels), "
            f"the limit is {limit:,} pixels{whose}"
        )


def _pixel_limit(max_pixels: int) -> tuple[int, str]:
    """The effective pixel limit and, when it is Pillow's, a note saying so.

    Pillow only warns between ``Image.MAX_IMAGE_PIXELS`` and twice that. Treating its limit as
    a ceiling turns that warning into an ``ImageError`` without changing the process-wide
    warnings filters, which ``warnings.catch_warnings`` does and which is not thread-safe.
    """
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit is not None and pillow_limit < max_pixels:
        return pillow_limit, " (Pillow's Image.MAX_IMAGE_PIXELS)"
    return max_pixels, ""


def _decode_error(
    exc: Exception, data: bytes, format_name: str | None, max_pixels: int, where: str
) -> ImageError:
    """Word an exception Pillow raised while parsing or decoding ``data`` (of ``format_name``)."""
    if isinstance(exc, Image.DecompressionBombError):
        # Pillow refuses more than twice its limit before our own check sees the size.
        pillow_limit = Image.MAX_IMAGE_PIXELS or 0
        limit, whose = _pixel_limit(max_pixels)
        return ImageError(
            f"{where}image is too large: more than {2 * pillow_limit:,} pixels, "
            f"the limit is {limit:,} pixels{whose}"
        )
    if isinstance(exc, EOFError) or "truncated" in str(exc).lower() or _riff_is_cut(data):
        the_data = f"the {format_name} data" if format_name else "the data"
        return ImageError(f"{where}truncated image: {the_data} ends early")
    return ImageError(f"{where}damaged {_kind(format_name)} ({exc})")


def _kind(format_name: str | None) -> str:
    """'PNG image', or just 'image' when the format is unknown."""
    return f"{format_name} image" if format_name else "image"


def _riff_is_cut(data: bytes) -> bool:
    """True for a WebP whose RIFF header declares more bytes than there are.

    libwebp reports a cut file only as "could not create decoder object".
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return False
    return int.from_bytes(data[4:8], "little") + 8 > len(data)


def _sniff_format(data: bytes) -> str | None:
    """The format ``data`` claims to be by its magic number, for error messages only."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def _to_rgb_array(image: Image.Image) -> RGBImage:
    """Convert a decoded image of any mode to an (height, width, 3) uint8 RGB array."""
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "I":
        # Pillow's convert() clips 16-bit samples to 0..255, which turns most of the picture
        # white. Scale instead. Mode "I" (32-bit integers, e.g. some TIFFs) is read as 16-bit
        # samples too, as older Pillow opened 16-bit PNGs; values outside 0..65535 are clipped.
        # Dropping the low byte is what Pillow does for 16-bit RGB(A) and LA PNGs, so grey and
        # colour 16-bit files come out alike.
        samples = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
        grey = (samples >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.stack([grey, grey, grey], axis=-1))
    if image.mode == "F":
        # Floating-point samples have no agreed range (0..1? 0..255? metres?): refuse to guess.
        raise ValueError("floating-point images are not supported")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        # Transparent pixels hold arbitrary colour, usually black. Compositing onto white shows
        # the picture the way browsers and photo viewers do, so a cut-out portrait becomes a
        # portrait on white, not a face outlined against black (which also skews detection).
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    array = np.array(image, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"conversion to RGB gave an array of shape {array.shape}")
    return np.ascontiguousarray(array)


def _too_many_bytes(size: int, limit: int) -> str:
    """'file is 35.2 MB, the limit is 30 MB', in bytes where megabytes would hide the excess."""
    actual, allowed = _format_bytes(size), _format_bytes(limit)
    if actual == allowed:
        actual, allowed = f"{size:,} bytes", f"{limit:,} bytes"
    return f"file is {actual}, the limit is {allowed}"


def _format_bytes(size: int) -> str:
    """A byte count for people: megabytes to one decimal from 1 MB up, else bytes."""
    if size < _MEGABYTE:
        return f"{size:,} bytes"
    return f"{size / _MEGABYTE:.1f}".removesuffix(".0") + " MB"
