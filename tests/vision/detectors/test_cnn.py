"""dlib's MMOD CNN detector: loading its model file, and finding the face HOG finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from oneeye.errors import ModelError
from oneeye.vision.detectors import FaceDetector, ScalePlan
from oneeye.vision.detectors.cnn import CnnDetector
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


def test_refuses_a_file_that_is_not_its_model(tmp_path: Path) -> None:
    bad = tmp_path / "mmod.dat"
    bad.write_bytes(b"not a network")

    with pytest.raises(ModelError, match="cannot load the CNN face detector"):
        CnnDetector(bad)
