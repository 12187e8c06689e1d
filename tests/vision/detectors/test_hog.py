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


def test_clip_false_keeps_a_box_that_reaches_past_the_edge(load_photo: PhotoLoader) -> None:
    """The partial face is cut by the photo's right edge (551 pixels wide): dlib's box goes
    on past it; clipped, it ends at the last column."""
    photo = load_photo("obama_partial_face2.jpg")
    detector = HogDetector()

    (clipped,) = detector.detect_at(photo, ScalePlan(1.0, 1))
    (kept,) = detector.detect_at(photo, ScalePlan(1.0, 1), clip=False)

    assert clipped.box.right == photo.shape[1] - 1
    assert kept.box.right > photo.shape[1]
    assert (kept.box.top, kept.box.bottom, kept.box.left) == (
        clipped.box.top,
        clipped.box.bottom,
        clipped.box.left,
    )
