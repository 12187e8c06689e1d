"""One of dlib's landmark models on its own: the points of each face, and the aligned chip cut
from them. ``FaceAligner`` (``encode.py``) is what OneEye's engine uses; this is for callers
that need a chosen model's points themselves (``oneeye.compat``: face_recognition's
``face_landmarks`` and its ``face_encodings(model=...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlib
import numpy as np
import numpy.typing as npt

from oneeye.errors import ModelError
from oneeye.types import FaceBox, RGBImage
from oneeye.vision.dlibconv import points_from_shape, rect_from_box
from oneeye.vision.encode import CHIP_PADDING, CHIP_SIZE, Chips

Points = npt.NDArray[np.int32]
"""(k, 2) integer ``(x, y)`` landmarks of one face, in the image's pixels."""


@dataclass(frozen=True, slots=True)
class ShapedFaces:
    """Each face's landmarks and its aligned chip (in the order of the boxes asked for)."""

    points: tuple[Points, ...]
    chips: Chips
    """(n, 150, 150, 3) uint8 RGB, the chip dlib's ResNet expects."""


class LandmarkModel:
    """One of dlib's shape predictors (5 or 68 points). Not thread-safe: use it under a lock."""

    def __init__(self, path: Path) -> None:
        """Load the model.

        Args:
            path: a dlib ``shape_predictor_*.dat`` file.

        Raises:
            ModelError: the file is missing or not a shape predictor.
        """
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as exc:
            raise ModelError(f"cannot load the landmark model {path}: {exc}") from exc
        self.path = path

    def _shapes(self, image: RGBImage, boxes: Sequence[FaceBox]) -> Any:
        shapes = dlib.full_object_detections()
        for box in boxes:
            shapes.append(self._predictor(image, rect_from_box(box)))
        return shapes

    def points(self, image: RGBImage, boxes: Sequence[FaceBox]) -> list[Points]:
        """The landmarks of each box.

        Args:
            image: (H, W, 3) uint8 RGB (or (H, W) grey).
            boxes: face boxes in ``image``.

        Returns:
            One (k, 2) int32 array of ``(x, y)`` per box (k is the model's number of points).
        """
        shapes = self._shapes(image, boxes)
        return [points_from_shape(shape).astype(np.int32) for shape in shapes]

    def shaped(self, image: RGBImage, boxes: Sequence[FaceBox]) -> ShapedFaces:
        """The landmarks of each box and the aligned chips cut from them.

        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: face boxes in ``image``.

        Returns:
            The points and chips, in the order of ``boxes``.
        """
        if not boxes:
            return ShapedFaces((), np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8))
        shapes = self._shapes(image, boxes)
        chips = dlib.get_face_chips(image, shapes, size=CHIP_SIZE, padding=CHIP_PADDING)
        return ShapedFaces(
            tuple(points_from_shape(shape).astype(np.int32) for shape in shapes),
            np.stack(chips).astype(np.uint8, copy=False),
        )
