"""Fixtures shared by the video tests."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from bench.lib.synth import Actor
from oneeye.types import Detection, FaceBox
from oneeye.vision.detectors import FaceDetector
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader


@pytest.fixture(scope="module")
def actors(face_engine: FaceEngine, load_photo: PhotoLoader) -> list[Actor]:
    """Obama and Biden, ready to walk through a synthetic clip (photos from the
    face_recognition package)."""
    found = []
    for person, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        image = load_photo(photo)
        found.append(Actor(person, image, face_engine.enrolment_face(image).box))
    return found


class ThreadsSeen:
    """Makes real HOG detectors that note, for each region they scan, the thread, its nice
    value and the region (for tests of where and how a camera's scans run)."""

    def __init__(self, engine: FaceEngine) -> None:
        self.seen: list[tuple[int, int, FaceBox]] = []
        self._engine = engine

    def make(self) -> FaceDetector:
        detector = self._engine.new_detector()
        scan_region = detector.detect_region

        def noted(
            image: np.ndarray, region: FaceBox, factor: float, *, levels: int | None = None
        ) -> list[Detection]:
            nice = os.getpriority(os.PRIO_PROCESS, 0)  # Linux: the calling thread's
            self.seen.append((threading.get_ident(), nice, region))
            return scan_region(image, region, factor, levels=levels)

        detector.detect_region = noted  # type: ignore[method-assign]
        return detector
