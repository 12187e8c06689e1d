"""Fixtures for the ResNet tests: dlib's model file."""

from __future__ import annotations

from pathlib import Path

import pytest

from oneeye.vision.models import ModelPaths


@pytest.fixture(scope="session")
def model_path() -> Path:
    return ModelPaths.locate().resnet
