"""Which model files the engine needs: the default uses only dlib's CC0 models (5-point
landmarks, ResNet, MMOD); the 68-point model (iBUG 300-W, no commercial use) is opt-in."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from oneeye.config import EngineSettings
from oneeye.errors import ModelError
from oneeye.vision import encode
from oneeye.vision.encode import FaceAligner
from oneeye.vision.engine import FaceEngine
from oneeye.vision.models import LANDMARKS_68, ModelPaths
from tests.conftest import PhotoLoader


@pytest.fixture(scope="module")
def cc0_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder holding every installed model file except the 68-point one."""
    installed = ModelPaths.locate()
    assert installed.landmarks_68 is not None, "the models package ships the 68-point model"
    folder = tmp_path_factory.mktemp("cc0-models")
    for path in (installed.landmarks_5, installed.resnet, installed.cnn_detector):
        (folder / path.name).symlink_to(path)
    return folder


def test_default_alignment_is_the_5_point_model() -> None:
    assert EngineSettings().alignment == "5"


@pytest.mark.slow
def test_default_engine_runs_without_the_68_point_model(
    cc0_only: Path, load_photo: PhotoLoader
) -> None:
    paths = ModelPaths.locate(cc0_only)
    assert paths.landmarks_68 is None
    engine = FaceEngine(models=paths)
    obama = engine.enrolment_face(load_photo("obama.jpg"))
    obama2 = engine.enrolment_face(load_photo("obama2.jpg"))
    biden = engine.enrolment_face(load_photo("biden.jpg"))
    same = float(np.linalg.norm(obama.embedding - obama2.embedding))
    other = float(np.linalg.norm(obama.embedding - biden.embedding))
    assert same < 0.45
    assert other > 0.5


def test_68_point_alignment_without_its_model_is_a_clear_error(cc0_only: Path) -> None:
    with pytest.raises(ModelError, match="68-point"):
        FaceAligner(ModelPaths.locate(cc0_only), "5+68")


def test_68_point_alignment_states_its_licence_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encode, "_licence_noted", False)
    paths = ModelPaths.locate()
    with caplog.at_level(logging.WARNING, logger="oneeye.vision.encode"):
        FaceAligner(paths, "5+68")
        FaceAligner(paths, "5+68")
        FaceAligner(paths, "5")
    notes = [r for r in caplog.records if LANDMARKS_68 in r.getMessage()]
    assert len(notes) == 1
    assert "commercial" in notes[0].getMessage()
