"""Quality numbers: frontalness from landmarks, sharpness from the chip, the combined score."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from oneeye.types import FaceBox
from oneeye.vision.quality import face_quality, frontalness, sharpness


def landmarks(nose_x: float, roll_degrees: float = 0.0) -> npt.NDArray[np.float32]:
    """Eyes at x 40..60 and 90..110 (y 50), nose base at (nose_x, 90); rotated by roll."""
    points = np.array([[40, 50], [60, 50], [110, 50], [90, 50], [nose_x, 90]], dtype=np.float32)
    angle = np.deg2rad(roll_degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([75.0, 70.0])
    rotated: npt.NDArray[np.float32] = ((points - centre) @ rotation.T + centre).astype(np.float32)
    return rotated


@pytest.mark.parametrize(
    ("nose_x", "expected"),
    [
        (75.0, 1.0),  # nose between the eyes: frontal
        (82.0, 0.65),  # nose 0.14 of the eye distance off the middle
        (55.0, 0.0),  # nose past the eye: turned away
        (105.0, 0.0),
    ],
)
def test_frontalness(nose_x: float, expected: float) -> None:
    assert frontalness(landmarks(nose_x)) == pytest.approx(expected, abs=0.01)


def test_frontalness_ignores_roll() -> None:
    assert frontalness(landmarks(82.0, roll_degrees=30.0)) == pytest.approx(
        frontalness(landmarks(82.0)), abs=1e-4
    )


def test_frontalness_of_collapsed_landmarks_is_zero() -> None:
    assert frontalness(np.zeros((5, 2), dtype=np.float32)) == 0.0


def chip(seed: int, smooth: bool) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(150, 150, 3)).astype(np.float32)
    if smooth:
        image[:] = image.mean(axis=(0, 1))
    return image.astype(np.uint8)


def test_sharpness_of_noise_exceeds_a_flat_chip() -> None:
    assert sharpness(chip(0, smooth=False)) > 1000.0
    assert sharpness(chip(0, smooth=True)) == 0.0


@pytest.mark.parametrize(
    ("size", "smooth", "nose_x", "low", "high"),
    [
        (120, False, 75.0, 0.99, 1.0),  # big, sharp, frontal
        (10, False, 75.0, 0.0, 0.0),  # too small: one bad property pulls the score to 0
        (120, True, 75.0, 0.0, 0.0),  # blurred
        (50, False, 82.0, 0.6, 0.9),  # middling size, slightly turned
    ],
)
def test_combined_score(size: int, smooth: bool, nose_x: float, low: float, high: float) -> None:
    box = FaceBox(top=0, left=0, bottom=size - 1, right=size - 1)
    quality = face_quality(box, landmarks(nose_x), chip(1, smooth))
    assert quality.size == size
    assert low <= quality.score <= high
