"""dlib's HOG + linear SVM frontal face detector, chosen by the name ``"hog"``."""

from __future__ import annotations

import dlib

from oneeye.types import RGBImage
from oneeye.vision.detectors._dlib import DlibDetector
from oneeye.vision.models import ModelPaths


class HogDetector(DlibDetector):
    """dlib's HOG + linear SVM frontal face detector: fast on a CPU, frontal faces only.

    Takes grey images as well as RGB: on one channel it costs about a quarter less, which is
    why camera frames are scanned in grey (see ``oneeye.video.scan``)."""

    name = "hog"
    window_px = 80

    def __init__(self) -> None:
        self._detector = dlib.get_frontal_face_detector()

    def _run_dlib(self, image: RGBImage, upsample: int) -> list[tuple[object, float]]:
        rects, scores, _ = self._detector.run(image, upsample, 0.0)
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
