"""dlib's HOG + linear SVM frontal face detector, chosen by the name ``"hog"``."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import dlib

from oneeye.types import RGBImage
from oneeye.vision.detectors._dlib import DlibDetector
from oneeye.vision.models import ModelPaths

logger = logging.getLogger(__name__)

_LEVELS_MARK = b"\x01\x50\x01\x50\x02\xe8\x03"
"""Where dlib's serialised frontal face detector says how many pyramid levels it may use: its
80x80 window (two integers, 80 each) then ``max_pyramid_levels``, 1000 (dlib writes an
integer as its byte count, then its bytes, lowest first)."""


def _capped(detector: Any, levels: int) -> Any:
    """A copy of dlib's frontal face ``detector`` stopping its pyramid after ``levels`` levels,
    or None when its serialised form is not the one known here (another dlib). About 2 ms: a
    save and a load (``get_frontal_face_detector`` itself takes 0.24 s)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frontal_face_detector.svm"
        detector.save(str(path))
        data = path.read_bytes()
        if data.count(_LEVELS_MARK) != 1:
            logger.warning(
                "dlib's frontal face detector is not serialised as expected: looks near "
                "tracked faces search every pyramid level"
            )
            return None
        path.write_bytes(data.replace(_LEVELS_MARK, _LEVELS_MARK[:4] + bytes((1, levels))))
        return dlib.fhog_object_detector(str(path))


class HogDetector(DlibDetector):
    """dlib's HOG + linear SVM frontal face detector: fast on a CPU, frontal faces only.

    Takes grey images as well as RGB: on one channel it costs about a quarter less, which is
    why camera frames are scanned in grey (see ``oneeye.video.scan``). Told how many pyramid
    levels a region needs (``detect_region(levels=...)``), it stops there: a look near a
    tracked face, whose size is known, skips the levels for faces far larger."""

    name = "hog"
    window_px = 80
    MAX_LEVELS = 255
    """The most levels a capped pyramid may be asked for (one byte in dlib's file)."""

    def __init__(self) -> None:
        self._detector = dlib.get_frontal_face_detector()
        self._capped: dict[int, Any] = {}

    def _run_dlib(
        self, image: RGBImage, upsample: int, levels: int | None = None
    ) -> list[tuple[object, float]]:
        detector = self._detector
        if levels is not None and levels <= self.MAX_LEVELS:
            if levels not in self._capped:
                self._capped[levels] = _capped(self._detector, levels)
            detector = self._capped[levels] or detector
        rects, scores, _ = detector.run(image, upsample, 0.0)
        return list(zip(rects, scores, strict=True))


def create(models: ModelPaths, num_threads: int | None = 1) -> HogDetector:
    """A HOG detector (built into dlib: it needs no model file).

    Args:
        models: the model files (unused).
        num_threads: unused (dlib's HOG runs on one thread).

    Returns:
        A new detector.
    """
    del models, num_threads
    return HogDetector()
