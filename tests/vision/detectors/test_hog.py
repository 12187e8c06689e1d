"""dlib's HOG detector: RGB and grey images, scale plans, stage names."""

from __future__ import annotations

import cv2

from oneeye.vision.detectors import FaceDetector, ScalePlan
from oneeye.vision.detectors.hog import HogDetector
from tests.conftest import PhotoLoader


def test_finds_the_same_face_in_grey_and_rgb(load_photo: PhotoLoader) -> None:
    photo = load_photo("obama.jpg")
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    detector: FaceDetector = HogDetector()  # mypy checks it keeps the interface

    in_rgb = detector.detect(photo, 160)
    in_grey = detector.detect(grey, 160)  # type: ignore[arg-type]

    assert len(in_rgb) == len(in_grey) == 1
    assert in_rgb[0].box.iou(in_grey[0].box) > 0.9


def test_names_the_upsampled_stage_and_gives_original_pixels(load_photo: PhotoLoader) -> None:
    photo = load_photo("obama.jpg")
    detector = HogDetector()

    (whole,) = detector.detect_at(photo, ScalePlan(1.0, 0))
    (half_up,) = detector.detect_at(photo, ScalePlan(0.25, 1))

    assert whole.detector == "hog"
    assert half_up.detector == "hog-up1"
    assert whole.box.iou(half_up.box) > 0.7
