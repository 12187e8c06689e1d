"""``loss_mmod``'s detection step (``to_label``): from the network's score maps to boxes in
the image, with dlib's non-maximum suppression.

Every output cell scoring above 0 is a candidate: its centre maps to the input tensor as
``p * scale + offset`` (the convolutions' ``map_output_to_input``), the detector window is
centred there (``centered_drect``: corners at centre -/+ (size - 1) / 2), the box goes back
from its pyramid level to the image (``tensor_space_to_image_space``) and is rounded to
integer corners (``lround``). Candidates are taken best first; one is dropped when it overlaps
a kept box by dlib's ``test_box_overlap``: intersection over the area of the box *bounding
both* (not the union) above the stored threshold, or covering more than the stored share of
either box. Areas count pixels, corners included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from oneeye.vision.mmod.model import MmodOptions
from oneeye.vision.mmod.pyramid import TiledLayout, lround, nearest_tile, point_up_6

DETECTION_THRESHOLD = 0.0
"""``to_label``'s default ``adjust_threshold``: a cell is a candidate when its score is above."""


@dataclass(frozen=True, slots=True)
class Box:
    """A detection in the image the pyramid was built from: dlib's ``rectangle`` (inclusive
    corners) and its score."""

    left: int
    top: int
    right: int
    bottom: int
    score: float

    @property
    def area(self) -> int:
        """Pixels inside, corners included."""
        return max(0, self.right - self.left + 1) * max(0, self.bottom - self.top + 1)


def overlaps(a: Box, b: Box, options: MmodOptions) -> bool:
    """dlib's ``test_box_overlap`` with the detector's NMS thresholds.

    Args:
        a: one box.
        b: another.
        options: the detector's options (``nms_iou``, ``nms_covered``).

    Returns:
        Whether the two count as the same object.
    """
    width = min(a.right, b.right) - max(a.left, b.left) + 1
    height = min(a.bottom, b.bottom) - max(a.top, b.top) + 1
    if width <= 0 or height <= 0:
        return False
    inner = float(width * height)
    outer = (max(a.right, b.right) - min(a.left, b.left) + 1) * (
        max(a.bottom, b.bottom) - min(a.top, b.top) + 1
    )
    return (
        inner / outer > options.nms_iou
        or inner / a.area > options.nms_covered
        or inner / b.area > options.nms_covered
    )


def candidates(
    scores: npt.NDArray[np.float32],
    layout: TiledLayout,
    options: MmodOptions,
    mapping: tuple[tuple[int, int], tuple[int, int]],
    threshold: float = DETECTION_THRESHOLD,
) -> list[Box]:
    """Every cell scoring above the threshold as a box in the pyramid's level 0, best first.

    Args:
        scores: (windows, rows, cols) score maps of one image.
        layout: the tiled pyramid the network saw.
        options: the detector windows.
        mapping: ``MmodModel.output_to_input()``.
        threshold: the score a cell must exceed.

    Returns:
        The candidates, highest score first.
    """
    (scale_y, offset_y), (scale_x, offset_x) = mapping
    found: list[Box] = []
    for k, window in enumerate(options.windows):
        rows, cols = np.nonzero(scores[k] > threshold)
        half_w, half_h = (window.width - 1) / 2.0, (window.height - 1) / 2.0
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            x = float(c * scale_x + offset_x)
            y = float(r * scale_y + offset_y)
            level = nearest_tile(layout.tiles, lround(x), lround(y))
            tile = layout.tiles[level]
            left, top = point_up_6(x - half_w - tile.left, y - half_h - tile.top, level)
            right, bottom = point_up_6(x + half_w - tile.left, y + half_h - tile.top, level)
            found.append(
                Box(
                    lround(left), lround(top), lround(right), lround(bottom), float(scores[k, r, c])
                )
            )
    found.sort(key=lambda box: box.score, reverse=True)
    return found


def suppress(boxes: list[Box], options: MmodOptions) -> list[Box]:
    """dlib's non-maximum suppression over candidates sorted best first.

    Args:
        boxes: candidates, highest score first.
        options: the detector's NMS thresholds.

    Returns:
        The kept boxes, highest score first.
    """
    kept: list[Box] = []
    for box in boxes:
        if not any(overlaps(other, box, options) for other in kept):
            kept.append(box)
    return kept
