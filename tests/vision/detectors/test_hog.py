"""dlib's HOG detector: RGB and grey images, scale plans, stage names, a pyramid cut short."""

from __future__ import annotations

import logging

import cv2
import dlib
import pytest

from oneeye.types import FaceBox
from oneeye.vision.detectors import FaceDetector, ScalePlan, hog
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


def test_a_region_searched_in_few_levels_finds_faces_up_to_their_size(
    load_photo: PhotoLoader,
) -> None:
    """The pyramid stops after ``levels`` levels: a face about one window wide at the region's
    scale is found, one three windows wide only by the whole pyramid."""
    photo = load_photo("obama.jpg")
    detector = HogDetector()
    (face,) = detector.detect(photo, 160)
    height, width = photo.shape[:2]
    whole = FaceBox(top=0, left=0, bottom=height - 1, right=width - 1)

    at_one_window = 80 / face.box.size
    at_three_windows = 3 * at_one_window
    (found,) = detector.detect_region(photo, whole, at_one_window, levels=4)
    assert found.box.iou(face.box) > 0.5
    (big,) = detector.detect_region(photo, whole, at_three_windows)
    assert big.box.iou(face.box) > 0.5
    assert detector.detect_region(photo, whole, at_three_windows, levels=4) == []


def test_levels_must_be_positive(load_photo: PhotoLoader) -> None:
    photo = load_photo("obama.jpg")
    whole = FaceBox(top=0, left=0, bottom=99, right=99)
    with pytest.raises(ValueError, match="levels must be None or >= 1"):
        HogDetector().detect_region(photo, whole, 1.0, levels=0)


def test_a_detector_saved_another_way_searches_every_level(
    load_photo: PhotoLoader, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    photo = load_photo("obama.jpg")
    detector = HogDetector()
    (face,) = detector.detect(photo, 160)
    whole = FaceBox(top=0, left=0, bottom=photo.shape[0] - 1, right=photo.shape[1] - 1)
    monkeypatch.setattr(hog, "_LEVELS_MARK", b"\x01\x51\x01\x51\x02\xe8\x03")  # not in the file

    with caplog.at_level(logging.WARNING, logger="oneeye.vision.detectors.hog"):
        (found,) = detector.detect_region(photo, whole, 240 / face.box.size, levels=4)

    assert found.box.iou(face.box) > 0.5, "the whole pyramid: the big face is found"
    assert "not serialised as expected" in caplog.text


def test_the_capped_copy_is_made_from_the_detector_not_built_again(
    load_photo: PhotoLoader, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Building dlib's frontal face detector takes about 0.24 s: made again at a camera's first
    # look near a face, it stalled eight cameras at once by that much. A save and load of the
    # detector already built takes about 2 ms.
    photo = load_photo("obama.jpg")
    detector = HogDetector()
    (face,) = detector.detect(photo, 160)

    def built_again() -> None:
        raise AssertionError("the frontal face detector was built again")

    monkeypatch.setattr(dlib, "get_frontal_face_detector", built_again)
    whole = FaceBox(top=0, left=0, bottom=photo.shape[0] - 1, right=photo.shape[1] - 1)
    (found,) = detector.detect_region(photo, whole, 80 / face.box.size, levels=4)
    assert found.box.iou(face.box) > 0.5
