"""Alignment (dlib's 5- or 68-point landmarks) and 128-D embeddings (dlib's ResNet).

An embedding is computed from a 150x150 aligned face chip. Optionally the chip's mirror image
and a few jittered copies are embedded too and the results averaged; the average is always
normalised to unit length, so distances between OneEye embeddings are in [0, 2].
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, Protocol

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from oneeye.errors import ModelError
from oneeye.types import EMBEDDING_SIZE, FaceBox, RGBImage
from oneeye.vision.dlibconv import points_from_shape, rect_from_box
from oneeye.vision.models import ModelPaths

logger = logging.getLogger(__name__)

CHIP_SIZE = 150
CHIP_PADDING = 0.25
"""The chip geometry dlib's ResNet was trained on."""

Chips = npt.NDArray[np.uint8]
"""(n, 150, 150, 3) uint8 RGB aligned face chips."""


class ChipEmbedder(Protocol):
    """Turns aligned face chips into raw (unnormalised) 128-D descriptors."""

    def embed(self, chips: Chips) -> npt.NDArray[np.float32]:
        """(n, 150, 150, 3) uint8 chips -> (n, 128) float32 descriptors."""
        ...


class DlibChipEmbedder:
    """dlib's own ResNet forward pass (``face_recognition_model_v1``), batched."""

    def __init__(self, model_path: str) -> None:
        try:
            self._model = dlib.face_recognition_model_v1(model_path)
        except RuntimeError as exc:
            raise ModelError(f"cannot load the face encoder {model_path}: {exc}") from exc

    def embed(self, chips: Chips) -> npt.NDArray[np.float32]:
        """Embed chips with dlib.

        Args:
            chips: (n, 150, 150, 3) uint8 RGB.

        Returns:
            (n, 128) float32 raw descriptors.
        """
        if len(chips) == 0:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        batch = [np.ascontiguousarray(chip) for chip in chips]
        return np.array(self._model.compute_face_descriptor(batch), dtype=np.float32)


class FaceAligner:
    """Finds landmarks in a face box and cuts the aligned chip the ResNet expects."""

    def __init__(self, paths: ModelPaths, points: Literal[5, 68] = 5) -> None:
        self.points = points
        path = paths.landmarks_5 if points == 5 else paths.landmarks_68
        try:
            self._predictor = dlib.shape_predictor(str(path))
            self._five = (
                self._predictor if points == 5 else dlib.shape_predictor(str(paths.landmarks_5))
            )
        except RuntimeError as exc:
            raise ModelError(f"cannot load the landmark model {path}: {exc}") from exc

    def align(
        self, image: RGBImage, boxes: Sequence[FaceBox]
    ) -> tuple[Chips, npt.NDArray[np.float32]]:
        """Aligned chips and 5-point landmarks for each box.

        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: face boxes in ``image``.

        Returns:
            ``(chips, landmarks)``: (n, 150, 150, 3) uint8 chips and (n, 5, 2) float32
            landmark points ``(x, y)``.
        """
        if not boxes:
            return (
                np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8),
                np.zeros((0, 5, 2), dtype=np.float32),
            )
        shapes = dlib.full_object_detections()
        landmarks = []
        for box in boxes:
            rect = rect_from_box(box)
            shape = self._predictor(image, rect)
            shapes.append(shape)
            five = shape if self.points == 5 else self._five(image, rect)
            landmarks.append(points_from_shape(five))
        chips = dlib.get_face_chips(image, shapes, size=CHIP_SIZE, padding=CHIP_PADDING)
        return np.stack(chips).astype(np.uint8, copy=False), np.stack(landmarks)


JITTER_ROTATION_DEGREES = 3.0
JITTER_SHIFT = 0.02
JITTER_ZOOM = (1.0, 1.03)
"""Jitter ranges: a few degrees of rotation, 2% shift, up to 3% zoom, as dlib's own
``jitter_image`` does for its published LFW result."""


def jittered(chip: npt.NDArray[np.uint8], count: int, seed: int = 0) -> list[npt.NDArray[np.uint8]]:
    """``count`` copies of a chip, each slightly rotated, zoomed and shifted.

    The jitter is seeded, so the same chip always gives the same embedding.

    Args:
        chip: (150, 150, 3) uint8.
        count: how many copies.
        seed: random seed.

    Returns:
        The copies.
    """
    rng = np.random.default_rng(seed)
    centre = (CHIP_SIZE / 2.0, CHIP_SIZE / 2.0)
    copies: list[npt.NDArray[np.uint8]] = []
    for _ in range(count):
        angle = float(rng.uniform(-JITTER_ROTATION_DEGREES, JITTER_ROTATION_DEGREES))
        zoom = float(rng.uniform(*JITTER_ZOOM))
        matrix = np.array(cv2.getRotationMatrix2D(centre, angle, zoom), dtype=np.float64)
        matrix[:, 2] += rng.uniform(-JITTER_SHIFT, JITTER_SHIFT, size=2) * CHIP_SIZE
        warped = cv2.warpAffine(
            chip, matrix, (CHIP_SIZE, CHIP_SIZE), borderMode=cv2.BORDER_REFLECT_101
        )
        copies.append(np.asarray(warped, dtype=np.uint8))
    return copies


def normalise(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    scaled: npt.NDArray[np.float32] = np.asarray(vectors / np.maximum(norms, 1e-12), np.float32)
    return scaled


def embed_chips(
    embedder: ChipEmbedder, chips: Chips, *, mirror: bool = True, jitter: int = 0
) -> npt.NDArray[np.float32]:
    """Unit-length embeddings of aligned chips, averaged over mirror and jittered views.

    All views of all chips go to the embedder in one batch.

    Args:
        embedder: the ResNet backend.
        chips: (n, 150, 150, 3) uint8.
        mirror: also embed each chip's mirror image.
        jitter: extra jittered views per chip (and per mirror view).

    Returns:
        (n, 128) float32, each row of unit length.
    """
    count = len(chips)
    if count == 0:
        return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
    views: list[npt.NDArray[np.uint8]] = list(chips)
    if mirror:
        views.extend(np.ascontiguousarray(chip[:, ::-1]) for chip in chips)
    base = list(views)
    copies = [jittered(view, jitter, seed=index) for index, view in enumerate(base)]
    for round_ in range(jitter):
        # Keep views in blocks of ``count`` (chip 0..n-1) so the reshape below lines them up.
        views.extend(per_view[round_] for per_view in copies)
    raw = normalise(embedder.embed(np.stack(views)))
    per_chip = raw.reshape(len(views) // count, count, EMBEDDING_SIZE)
    return normalise(per_chip.mean(axis=0))
