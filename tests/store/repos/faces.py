"""A made-up face for the repository tests: a random unit embedding (from ``seed``) with a
fixed box and quality, enough for a template row."""

from __future__ import annotations

import numpy as np

from oneeye.types import Face, FaceBox, FaceQuality


def random_face(seed: int) -> Face:
    """A face with a random unit embedding drawn from ``seed``."""
    vector = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return Face(
        box=FaceBox(top=10, right=60, bottom=60, left=10),
        embedding=vector / np.linalg.norm(vector),
        quality=FaceQuality(size=50, sharpness=0.5, frontalness=0.9, score=0.8),
        detector="hog",
        landmarks=np.zeros((5, 2), dtype=np.float32),
    )
