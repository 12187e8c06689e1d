"""Face quality as numbers: size, sharpness, frontalness, and a combined score in [0, 1].

A poor face is still tracked but not trusted for identity; these numbers are what that
decision (and the choice of the best snapshot) is made on.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from oneeye.types import FaceBox, FaceQuality

SIZE_POOR_PX = 20
SIZE_GOOD_PX = 80
SHARPNESS_CHIP_PX = 64
"""Sharpness is measured on the chip shrunk to this size. On the 150-pixel chip, a 60-pixel
face from a camera is three times enlarged and reads as blurred whatever its focus (street
video faces measured 6-21 there, against 26-77 for LFW photos and 4-7 for those photos
blurred); at 64 pixels every face worth identifying shows its own detail: 45-195 for the
street video, 112-700 for LFW photos, 15-80 for them blurred."""
SHARPNESS_POOR = 30.0
SHARPNESS_GOOD = 150.0
YAW_LIMIT = 0.4
"""Offset of the nose from the eyes' midpoint, as a fraction of the eye distance, at which a
face counts as fully turned away (about 60 degrees of yaw)."""


def sharpness(chip: npt.NDArray[np.uint8]) -> float:
    """Variance of the Laplacian of a face chip's grey image shrunk to
    ``SHARPNESS_CHIP_PX``: higher is sharper.

    Args:
        chip: an aligned (150, 150, 3) uint8 RGB face chip.

    Returns:
        The variance, >= 0.
    """
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    size = (SHARPNESS_CHIP_PX, SHARPNESS_CHIP_PX)
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def frontalness(landmarks: npt.NDArray[np.float32]) -> float:
    """How squarely a face looks at the camera, from dlib's 5 landmarks.

    Points 0-1 are one eye's corners, 2-3 the other's, 4 the base of the nose. Turning the head
    moves the nose towards one eye; rolling it does not change this number.

    Args:
        landmarks: (5, 2) array of ``(x, y)``.

    Returns:
        1.0 for a frontal face down to 0.0 at about 60 degrees of yaw or more.
    """
    eye_a = landmarks[0:2].mean(axis=0)
    eye_b = landmarks[2:4].mean(axis=0)
    axis = eye_b - eye_a
    length_sq = float(axis @ axis)
    if length_sq < 1e-6:
        return 0.0
    along = float((landmarks[4] - eye_a) @ axis) / length_sq
    return float(np.clip(1.0 - abs(along - 0.5) / YAW_LIMIT, 0.0, 1.0))


def _ramp(value: float, poor: float, good: float) -> float:
    return float(np.clip((value - poor) / (good - poor), 0.0, 1.0))


def face_quality(
    box: FaceBox, landmarks: npt.NDArray[np.float32], chip: npt.NDArray[np.uint8]
) -> FaceQuality:
    """All quality numbers for one face.

    Args:
        box: the face's box in the image.
        landmarks: its 5 landmarks.
        chip: its aligned 150x150 chip.

    Returns:
        The quality; ``score`` is the geometric mean of the size, sharpness and frontalness
        scores, each ramped to [0, 1], so one bad property pulls the score down.
    """
    sharp = sharpness(chip)
    front = frontalness(landmarks)
    parts = (
        _ramp(box.size, SIZE_POOR_PX, SIZE_GOOD_PX),
        _ramp(sharp, SHARPNESS_POOR, SHARPNESS_GOOD),
        front,
    )
    score = float(np.prod(parts) ** (1.0 / len(parts)))
    return FaceQuality(size=box.size, sharpness=sharp, frontalness=front, score=score)
