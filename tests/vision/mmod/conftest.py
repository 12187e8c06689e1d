"""Fixtures for the MMOD detector tests: dlib's model file, parsed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from oneeye.vision.mmod import MmodDetector
from oneeye.vision.mmod.runtimes import has_bfloat16
from oneeye.vision.models import ModelPaths

needs_bfloat16 = pytest.mark.skipif(
    not has_bfloat16(), reason="this CPU has no bfloat16 dot products (AVX-512 BF16 or AMX)"
)
"""For the tests of the fast passes (int8, bfloat16), which run only on such a CPU."""


@pytest.fixture(scope="session")
def model_path() -> Path:
    return ModelPaths.locate().cnn_detector


@pytest.fixture(scope="session")
def detector(model_path: Path) -> MmodDetector:
    return MmodDetector(model_path, num_threads=1)
