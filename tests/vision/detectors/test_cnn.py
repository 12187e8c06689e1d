"""The MMOD CNN detectors (``"cnn"``, run without dlib, and dlib's own ``"cnn-dlib"``): loading
the model file, finding the face HOG finds, and giving the same detections as each other."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from oneeye.errors import ModelError
from oneeye.types import FaceBox, RGBImage
from oneeye.vision.detectors import FaceDetector, ScalePlan
from oneeye.vision.detectors._scaled import stepped_region
from oneeye.vision.detectors.cnn import CnnDetector
from oneeye.vision.detectors.cnn_dlib import DlibCnnDetector
from oneeye.vision.detectors.hog import HogDetector
from oneeye.vision.models import ModelPaths
from tests.conftest import PhotoLoader, shrunk


def test_finds_the_face_hog_finds(load_photo: PhotoLoader) -> None:
    # A quarter of the photo (the face is about 70 pixels): the CNN is slow on a CPU.
    small = shrunk(load_photo("obama.jpg"), 4)
    detector: FaceDetector = CnnDetector(ModelPaths.locate().cnn_detector)  # checked by mypy

    found = detector.detect_at(small, ScalePlan(1.0, 0))
    (hog,) = HogDetector().detect_at(small, ScalePlan(1.0, 0))

    assert len(found) == 1
    assert found[0].detector == "cnn"
    assert found[0].box.iou(hog.box) > 0.5


def test_the_window_is_the_model_files() -> None:
    path = ModelPaths.locate().cnn_detector
    # dlib's face model slides one 80x80 window over a pyramid that only shrinks the image.
    assert CnnDetector(path).window_px == 80
    assert DlibCnnDetector(path).window_px == 80


def test_a_face_smaller_than_the_window_is_found_upsampled(load_photo: PhotoLoader) -> None:
    # A fifth of the photo: the face is about 53 pixels (HOG's box). At scale 1 the MMOD
    # network boxes nothing under its 80-pixel window, so it misses the face; ``detect``
    # must plan the upsampling that brings it above the window (issue 13: with a window of
    # 40 it planned scale 1 for min_face_px=40).
    small = shrunk(load_photo("obama.jpg"), 5)
    detector = CnnDetector(ModelPaths.locate().cnn_detector)

    assert detector.detect_at(small, ScalePlan(1.0, 0)) == []
    (found,) = detector.detect(small, min_face_px=40)
    (hog,) = HogDetector().detect_at(small, ScalePlan(1.0, 1))

    assert found.detector == "cnn-up1"
    assert found.box.width < 80
    assert found.box.iou(hog.box) > 0.5


def test_a_frame_too_large_for_the_scale_is_shrunk_to_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A ``cnn`` camera at min_face_px=40 scales a 1080p frame by 2: a 3840x2160 image whose
    # pyramid (30 megapixels) is over the network's bound. It looks at the most the bound
    # allows instead of failing every scan, and says once which faces it may miss.
    frame = np.zeros((1080, 1920), dtype=np.uint8)
    whole = FaceBox(top=0, left=0, bottom=1079, right=1919)
    detector = CnnDetector(ModelPaths.locate().cnn_detector)
    assert detector.max_pixels is not None
    assert detector.max_pixels < 1920 * 1080 * 2.0**2

    with caplog.at_level(logging.WARNING, logger="oneeye.vision.detectors._scaled"):
        assert detector.detect_region(frame, whole, 2.0) == []
        assert detector.detect_at(frame, ScalePlan(1.0, 1)) == []
    (warning,) = caplog.records
    assert "faces under about 58 pixels may be missed" in warning.getMessage()


def test_plans_and_regions_match_dlibs_own(load_photo: PhotoLoader) -> None:
    image = shrunk(load_photo("obama.jpg"), 4)
    path = ModelPaths.locate().cnn_detector
    fast, reference = CnnDetector(path), DlibCnnDetector(path)
    region = FaceBox(top=20, right=200, bottom=200, left=40)

    for plan in (ScalePlan(0.8, 0), ScalePlan(1.0, 1)):
        ours, theirs = fast.detect_at(image, plan), reference.detect_at(image, plan)
        assert [d.box for d in ours] == [d.box for d in theirs]
        assert [d.detector for d in ours] == [d.detector.replace("-dlib", "") for d in theirs]
    ours, theirs = (
        fast.detect_region(image, region, 1.5),
        reference.detect_region(image, region, 1.5),
    )
    assert [d.box for d in ours] == [d.box for d in theirs]
    assert ours
    assert ours[0].detector == "cnn-region"


def test_refuses_a_file_that_is_not_its_model(tmp_path: Path) -> None:
    bad = tmp_path / "mmod.dat"
    bad.write_bytes(b"not a network")

    with pytest.raises(ModelError, match="cannot load the CNN face detector"):
        DlibCnnDetector(bad)
    with pytest.raises(ModelError, match=str(bad)):
        CnnDetector(bad)


def test_regions_grow_to_steps_inside_the_image() -> None:
    # A 100x150 region at scale 1 grows about its centre to 112x160.
    grown = stepped_region(FaceBox(top=50, left=50, bottom=149, right=199), 1.0, 16, 480, 640)
    assert (grown.height, grown.width) == (112, 160)
    assert (grown.top, grown.left) == (44, 45)
    # Halved: 100 pixels give 50, so 64 are wanted, from 128 of the image.
    half = stepped_region(FaceBox(top=0, left=0, bottom=99, right=99), 0.5, 16, 480, 640)
    assert (half.height, half.width) == (128, 128)
    assert round(half.height * 0.5) % 16 == 0
    # At the edge it moves back inside; an image too small gives its whole side.
    edge = stepped_region(FaceBox(top=470, left=600, bottom=479, right=639), 1.0, 16, 480, 640)
    assert (edge.top, edge.bottom, edge.left, edge.right) == (464, 479, 592, 639)
    tiny = stepped_region(FaceBox(top=0, left=0, bottom=9, right=9), 1.0, 16, 12, 640)
    assert (tiny.height, tiny.width) == (12, 16)


def test_the_cnn_looks_at_regions_in_few_shapes(
    load_photo: PhotoLoader, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenVINO prepares its kernels once per input shape: crops of every size would each pay
    # for that (and keep its buffers), so the CNN grows every region to a multiple of 16.
    image = shrunk(load_photo("obama.jpg"), 2)
    detector = CnnDetector(ModelPaths.locate().cnn_detector)
    seen: list[tuple[int, ...]] = []
    run = detector._run

    def spy(
        scaled: RGBImage, upsample: int, levels: int | None = None
    ) -> list[tuple[FaceBox, float]]:
        seen.append(scaled.shape)
        return run(scaled, upsample, levels)

    monkeypatch.setattr(detector, "_run", spy)
    for size in (97, 101, 110):
        region = FaceBox(top=30, left=40, bottom=30 + size, right=40 + size + 13)
        detector.detect_region(image, region, 0.9)

    assert all(h % 16 == 0 and w % 16 == 0 for h, w, _ in seen), seen
    assert len(set(seen)) < len(seen), "different regions, one shape"
    assert detector.region_step_px == DlibCnnDetector.region_step_px == 16
