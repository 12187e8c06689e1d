"""Annotated frames and the MJPEG stream."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from oneeye.types import FaceBox, RGBImage
from oneeye.video.annotate import (
    MJPEG_BOUNDARY,
    UNKNOWN_COLOUR,
    WATCHLIST_COLOURS,
    Label,
    annotate,
    encode_jpeg,
    mjpeg_stream,
)


def grey(height: int = 240, width: int = 320) -> RGBImage:
    return np.full((height, width, 3), 128, dtype=np.uint8)


def test_box_is_drawn_in_the_watchlist_colour_and_input_is_untouched() -> None:
    frame = grey()
    box = FaceBox(top=100, right=200, bottom=180, left=120)
    out = annotate(frame, [Label(box, "alice 0.21", "amber-alert")])
    assert (frame == 128).all()
    assert tuple(out[180, 160]) == WATCHLIST_COLOURS["amber-alert"]  # bottom edge
    assert tuple(out[140, 120]) == WATCHLIST_COLOURS["amber-alert"]  # left edge
    assert (out[140, 160] == 128).all()  # inside the box stays clear


def test_unknown_face_is_amber_and_caption_fits_at_the_top_edge() -> None:
    out = annotate(grey(), [Label(FaceBox(top=0, right=100, bottom=60, left=10), "unknown")])
    assert tuple(out[60, 50]) == UNKNOWN_COLOUR
    assert (out[5, 12] != 128).any()  # caption drawn inside the box


def test_mjpeg_parts_decode_back_to_the_frames() -> None:
    frames: list[RGBImage] = [grey(), np.zeros((240, 320, 3), np.uint8)]
    parts = list(mjpeg_stream(frames, quality=90))
    assert len(parts) == 2
    for part, frame in zip(parts, frames, strict=True):
        head, _, rest = part.partition(b"\r\n\r\n")
        assert head.startswith(f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg".encode())
        length = int(head.split(b"Content-Length: ")[1])
        jpeg = rest[:length]
        assert rest[length:] == b"\r\n"
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None
        assert np.abs(decoded.astype(int) - frame[:, :, ::-1].astype(int)).max() <= 3


@pytest.mark.parametrize("quality", [0, 101])
def test_bad_jpeg_quality(quality: int) -> None:
    with pytest.raises(ValueError, match=r"quality must be in 1..100"):
        encode_jpeg(grey(), quality)
