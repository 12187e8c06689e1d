"""Alignment (dlib's 5- or 68-point landmarks) and 128-D embeddings (dlib's ResNet).

An embedding is computed from a 150x150 aligned face chip. Optionally the chip's mirror image
and a few jittered copies are embedded too and the results averaged; the average is always
normalised to unit length, so distances between OneEye embeddings are in [0, 2].
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from oneeye.errors import ModelError
from oneeye.types import EMBEDDING_SIZE, FaceBox, RGBImage
from oneeye.vision.dlibconv import points_from_shape, rect_from_box
from oneeye.vision.models import LANDMARKS_68_LICENCE, ModelPaths

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


Alignment = Literal["5", "5+68"]
"""Which landmark models cut chips: dlib's 5-point model alone (CC0, the default), or also its
68-point model (a second, slightly different chip of the same face; +0.1 points on LFW, but the
model's training data excludes commercial use: opt-in only, with the licence printed once)."""

_licence_noted = False


def _note_68_point_licence() -> None:
    """Say once per process that the 68-point model's licence is not for commercial use."""
    global _licence_noted  # noqa: PLW0603 - once per process, on purpose
    if not _licence_noted:
        _licence_noted = True
        logger.warning(LANDMARKS_68_LICENCE)


@dataclass(frozen=True, slots=True)
class AlignedFaces:
    """Aligned chips of n faces: one set per alignment, and each face's 5 landmarks."""

    chip_sets: tuple[Chips, ...]
    """Each (n, 150, 150, 3) uint8; the first is always the 5-point alignment."""
    landmarks: npt.NDArray[np.float32]
    """(n, 5, 2) float32 points ``(x, y)`` from the 5-point model."""


class FaceAligner:
    """Finds landmarks in a face box and cuts the aligned chips the ResNet expects."""

    def __init__(self, paths: ModelPaths, alignment: Alignment = "5") -> None:
        """Load the landmark models the alignment needs.

        Args:
            paths: model files.
            alignment: ``"5"`` or ``"5+68"``.
        """
        self.alignment = alignment
        self._sixty_eight = None
        try:
            self._five = dlib.shape_predictor(str(paths.landmarks_5))
            if alignment == "5+68":
                if paths.landmarks_68 is None:
                    raise ModelError(
                        'alignment "5+68" needs dlib\'s 68-point model, which is not installed'
                    )
                _note_68_point_licence()
                self._sixty_eight = dlib.shape_predictor(str(paths.landmarks_68))
        except RuntimeError as exc:
            raise ModelError(f"cannot load a landmark model from {paths}: {exc}") from exc

    def align(self, image: RGBImage, boxes: Sequence[FaceBox]) -> AlignedFaces:
        """Aligned chips and 5-point landmarks for each box.

        Args:
            image: (H, W, 3) uint8 RGB.
            boxes: face boxes in ``image``.

        Returns:
            The chips (one set per alignment) and landmarks, in the order of ``boxes``.
        """
        predictors = [self._five] if self._sixty_eight is None else [self._five, self._sixty_eight]
        if not boxes:
            empty = np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8)
            return AlignedFaces(
                tuple(empty for _ in predictors), np.zeros((0, 5, 2), dtype=np.float32)
            )
        rects = [rect_from_box(box) for box in boxes]
        chip_sets = []
        landmarks = np.zeros((0, 5, 2), dtype=np.float32)
        for predictor in predictors:
            shapes = dlib.full_object_detections()
            for rect in rects:
                shapes.append(predictor(image, rect))
            if predictor is self._five:
                landmarks = np.stack([points_from_shape(shape) for shape in shapes])
            chips = dlib.get_face_chips(image, shapes, size=CHIP_SIZE, padding=CHIP_PADDING)
            chip_sets.append(np.stack(chips).astype(np.uint8, copy=False))
        return AlignedFaces(tuple(chip_sets), landmarks)


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
    embedder: ChipEmbedder, chip_sets: Sequence[Chips], *, mirror: bool = True, jitter: int = 0
) -> npt.NDArray[np.float32]:
    """Unit-length embeddings of aligned faces, averaged over all their views.

    The views of a face: its chip in every set (alignment), each chip's mirror image, and
    ``jitter`` jittered copies of each of those. All views of all faces go to the embedder in
    one batch; each view's descriptor is normalised before averaging.

    Args:
        embedder: the ResNet backend.
        chip_sets: one or more (n, 150, 150, 3) uint8 arrays, the same n faces in each.
        mirror: also embed each chip's mirror image.
        jitter: extra jittered views per chip (and per mirror view).

    Returns:
        (n, 128) float32, each row of unit length.
    """
    count = len(chip_sets[0]) if chip_sets else 0
    if count == 0:
        return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
    # Views go in blocks of ``count`` (face 0..n-1) so that one reshape lines them up by face.
    blocks: list[list[npt.NDArray[np.uint8]]] = []
    for chips in chip_sets:
        if len(chips) != count:
            raise ValueError(f"every chip set must hold {count} faces, got {len(chips)}")
        blocks.append(list(chips))
        if mirror:
            blocks.append([np.ascontiguousarray(chip[:, ::-1]) for chip in chips])
    for number, block in enumerate(list(blocks)):
        copies = [jittered(chip, jitter, seed=number * 7919 + i) for i, chip in enumerate(block)]
        blocks.extend([per_chip[r] for per_chip in copies] for r in range(jitter))
    views = np.stack([chip for block in blocks for chip in block])
    raw = normalise(embedder.embed(views))
    return normalise(raw.reshape(len(blocks), count, EMBEDDING_SIZE).mean(axis=0))
