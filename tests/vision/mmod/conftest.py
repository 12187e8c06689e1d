"""Fixtures for the MMOD detector tests: dlib's model file, parsed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from oneeye.vision.mmod import MmodDetector
from oneeye.vision.models import ModelPaths


@pytest.fixture(scope="session")
def model_path() -> Path:
    return ModelPaths.locate().cnn_detector


@pytest.fixture(scope="session")
def detector(model_path: Path) -> MmodDetector:
    return MmodDetector(model_path, num_threads=1)
