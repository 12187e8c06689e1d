"""Pictures of what the pipeline sees: boxes, names and distances drawn on frames, the MJPEG
byte stream a web page shows them with, and the video file ``oneeye watch --annotate`` writes
them to (in a codec browsers play)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from oneeye.types import FaceBox, RGBImage

MJPEG_BOUNDARY = "oneeyeframe"
"""The multipart boundary of :func:`mjpeg_stream` (``multipart/x-mixed-replace``)."""

KNOWN = (46, 204, 113)
UNKNOWN_COLOUR = (241, 196, 15)
WATCHLIST_COLOURS = {"amber-alert": (231, 76, 60), "customers": (52, 152, 219)}


@dataclass(frozen=True, slots=True)
class Label:
    """What to draw for one face."""

    box: FaceBox
    text: str
    watchlist: str | None = None
    """``None`` for an unknown face (drawn in amber); a watchlist picks the colour."""


def colour_for(label: Label) -> tuple[int, int, int]:
    """RGB colour of a label: amber for unknown, per watchlist for known faces."""
    if label.watchlist is None:
        return UNKNOWN_COLOUR
    return WATCHLIST_COLOURS.get(label.watchlist, KNOWN)


def annotate(frame: RGBImage, labels: Sequence[Label]) -> RGBImage:
    """A copy of the frame with a box and a caption per face.

    Args:
        frame: (H, W, 3) uint8 RGB.
        labels: the faces to draw.

    Returns:
        The annotated copy; the input is not changed.
    """
    out = np.ascontiguousarray(frame.copy())
    height, width = out.shape[:2]
    thickness = max(1, round(min(height, width) / 360))
    scale = max(0.4, min(height, width) / 900)
    for label in labels:
        colour = colour_for(label)
        box = label.box.clipped(height, width)
        cv2.rectangle(out, (box.left, box.top), (box.right, box.bottom), colour, thickness)
        (text_w, text_h), base = cv2.getTextSize(
            label.text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness
        )
        top = box.top - text_h - base - 4
        if top < 0:  # no room above the box: caption inside it
            top = box.top
        cv2.rectangle(
            out, (box.left, top), (box.left + text_w + 4, top + text_h + base + 4), colour, -1
        )
        cv2.putText(
            out,
            label.text,
            (box.left + 2, top + text_h + 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (0, 0, 0),
            thickness,
            cv2.LINE_AA,
        )
    return out


def encode_jpeg(frame: RGBImage, quality: int = 80) -> bytes:
    """JPEG bytes of an RGB frame.

    Args:
        frame: (H, W, 3) uint8 RGB.
        quality: JPEG quality, 1..100.

    Returns:
        The encoded image.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    ok, data = cv2.imencode(
        ".jpg", np.ascontiguousarray(frame[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError(f"could not encode a frame of shape {frame.shape} as JPEG")
    return bytes(data.tobytes())


def mjpeg_stream(frames: Iterable[RGBImage], quality: int = 80) -> Iterator[bytes]:
    """The parts of a ``multipart/x-mixed-replace; boundary=oneeyeframe`` HTTP body.

    Args:
        frames: frames to send, in order.
        quality: JPEG quality.

    Yields:
        One part per frame: boundary, headers and the JPEG.
    """
    for frame in frames:
        jpeg = encode_jpeg(frame, quality)
        yield (
            (
                f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(jpeg)}\r\n\r\n"
            ).encode("ascii")
            + jpeg
            + b"\r\n"
        )


BROWSER_CODECS: dict[str, tuple[tuple[str, str], ...]] = {
    ".mp4": (("avc1", "H.264"),),
    ".webm": (("VP90", "VP9"), ("VP80", "VP8")),
}
"""Per file suffix, the codecs a browser plays in that container, in order of preference, as
(OpenCV fourcc, name). MPEG-4 Part 2 (``mp4v``), OpenCV's usual MP4 codec, is not among them:
browsers do not play it."""


class VideoWriteError(ValueError):
    """No codec a browser plays can be written to this path by the installed OpenCV."""


def _try_writer(path: str, fourcc: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    return cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*fourcc), fps, size)


def open_browser_video(
    path: Path, width: int, height: int, fps: float
) -> tuple[cv2.VideoWriter, str]:
    """A video writer for ``path`` in a codec browsers play: H.264 for ``.mp4``, VP9 (else
    VP8) for ``.webm``, whichever the installed OpenCV can write.

    Args:
        path: the file to write; its suffix picks the container.
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frames per second.

    Returns:
        The opened writer (frames in BGR order) and the codec's name (``"VP9"``...).

    Raises:
        VideoWriteError: an unknown suffix, or no browser codec for it in this OpenCV (the
            message says which suffix would work).
    """
    suffix = _browser_suffix(path)
    for fourcc, name in BROWSER_CODECS[suffix]:
        writer = _try_writer(str(path), fourcc, fps, (width, height))
        if writer.isOpened():
            return writer, name
        writer.release()
    raise _no_codec(suffix)


def check_browser_video(path: Path) -> str:
    """The codec :func:`open_browser_video` would write ``path`` in (``"VP9"``...), checked
    before any work is done.

    Raises:
        VideoWriteError: as :func:`open_browser_video` would.
    """
    suffix = _browser_suffix(path)
    codec = writable_codec(suffix)
    if codec is None:
        raise _no_codec(suffix)
    return codec


def _browser_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in BROWSER_CODECS:
        raise VideoWriteError(
            f"write the annotated video as .webm or .mp4 (browsers play those), not {path.name!r}"
        )
    return suffix


def _no_codec(suffix: str) -> VideoWriteError:
    usable = [s for s in BROWSER_CODECS if s != suffix and writable_codec(s) is not None]
    instead = f"; write {usable[0]} instead" if usable else ""
    names = " or ".join(name for _, name in BROWSER_CODECS[suffix])
    return VideoWriteError(f"this OpenCV cannot write {names} to {suffix}{instead}")


def writable_codec(suffix: str) -> str | None:
    """The browser codec this OpenCV writes for files ending in ``suffix`` (``".webm"``:
    ``"VP9"``...), or ``None``; probed by writing a tiny file in a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder) / f"probe{suffix}"
        for fourcc, name in BROWSER_CODECS.get(suffix, ()):
            writer = _try_writer(str(probe), fourcc, 10.0, (64, 48))
            opened = writer.isOpened()
            if opened:
                writer.write(np.zeros((48, 64, 3), dtype=np.uint8))
            writer.release()
            if opened:
                return name
    return None
