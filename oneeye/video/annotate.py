"""Pictures of what the pipeline sees: boxes, names and distances drawn on frames, and the
MJPEG byte stream a web page (or ``--annotate``) shows them with."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

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
