"""Detectors chosen by name: what the registry knows, what it makes, what it refuses."""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

import pytest

from oneeye.config import EngineSettings
from oneeye.vision.detectors import detector_names, make_detector
from oneeye.vision.detectors.cnn import CnnDetector
from oneeye.vision.detectors.cnn_dlib import DlibCnnDetector
from oneeye.vision.models import ModelPaths
from tests.conftest import PhotoLoader, shrunk


@pytest.fixture(scope="module")
def models() -> ModelPaths:
    return ModelPaths.locate()


def test_knows_the_detectors() -> None:
    assert detector_names() == ("cnn", "cnn-dlib", "hog")


def test_cnn_is_the_fast_one_and_dlibs_stays_as_cnn_dlib(models: ModelPaths) -> None:
    fast = make_detector("cnn", models)
    reference = make_detector("cnn-dlib", models)

    assert isinstance(fast, CnnDetector)
    assert isinstance(reference, DlibCnnDetector)
    assert (fast.name, reference.name) == ("cnn", "cnn-dlib")
    assert fast.window_px == reference.window_px


def test_settings_offer_every_detector() -> None:
    # A new detector module must also be a value ``ONEEYE_ENGINE__DETECTOR`` accepts.
    offered = get_args(EngineSettings.model_fields["detector"].annotation)

    assert sorted(offered) == list(detector_names())


@pytest.mark.parametrize("name", detector_names())
def test_makes_each_detector_by_its_name(
    name: str, models: ModelPaths, load_photo: PhotoLoader
) -> None:
    detector = make_detector(name, models)

    # A quarter size keeps the CNN quick (its face is about 70 pixels wide).
    found = detector.detect(shrunk(load_photo("obama.jpg"), 4), 40)

    assert detector.name == name
    assert detector.window_px > 0
    assert len(found) == 1
    assert found[0].detector.startswith(name)


def test_each_call_makes_a_new_detector(models: ModelPaths) -> None:
    assert make_detector("hog", models) is not make_detector("hog", models)


@pytest.mark.parametrize(
    ("name", "expected_error"),
    [
        ("yolo", r"unknown face detector 'yolo'; known detectors: cnn, cnn-dlib, hog"),
        ("HOG", r"unknown face detector 'HOG'; known detectors: cnn, cnn-dlib, hog"),
        ("base", r"unknown face detector 'base'"),
        ("_dlib", r"unknown face detector '_dlib'"),
        ("cnn_dlib", r"unknown face detector 'cnn_dlib'"),
        ("", r"unknown face detector ''"),
    ],
)
def test_refuses_unknown_names(name: str, expected_error: str, models: ModelPaths) -> None:
    with pytest.raises(ValueError, match=expected_error):
        make_detector(name, models)


def test_importing_the_registry_loads_no_detector() -> None:
    code = (
        "import sys, oneeye.vision.detectors as d; d.detector_names(); "
        "print(sorted({'dlib', 'cv2', 'onnxruntime'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "[]"
