"""Fast scores, exact boxes: an int8 or bfloat16 pass finds where faces may be, float32
re-scores there.

A face's peak is a plateau: neighbouring cells and pyramid levels score within a few
thousandths of each other, so the fast pass's rounding (up to 0.08 in bfloat16, more in int8)
often moves the best cell by one step and the box by 8 pixels. Every cell the fast pass scores
above the threshold minus the backend's ``margin`` is therefore scored again in float32, on the
smallest crops of the pyramid tensor that give those cells exactly the scores the whole tensor
would (a little larger: whole steps of ``CROP_STEP_CELLS``). Any cell whose exact score passes
the threshold is among them (each margin is three times or more the largest rounding seen near
the threshold: ``runtimes.BF16_MARGIN``, ``quantise.INT8_MARGIN``), so the boxes after
non-maximum suppression are the float32 backend's.

Which crop is exact follows from the network's shape (``CropPlan``): strided convolutions
without padding first (dlib's downsampler, 8x over 29 pixels), then convolutions that keep the
size with zero padding, each of which spoils ``padding`` cells at a crop's edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from oneeye.vision.mmod.model import MmodModel
from oneeye.vision.mmod.runtimes import ScoreBackend
from oneeye.vision.resnet.model import ConvLayer

FloatArray = npt.NDArray[np.float32]

CROP_STEP_CELLS = 4
"""Crops are whole multiples of this many output cells (32 pixels) each way: a few more cells
scored exactly, and crops of few shapes."""


@dataclass(frozen=True, slots=True)
class CropPlan:
    """Which input rows and columns give which output cells exactly.

    Output cell ``i`` (after the downsampler) reads input ``[i * scale, i * scale + extent)``;
    the size-keeping layers after it spoil ``spoiled`` cells at each cut edge of a crop.
    """

    scale: int
    extent: int
    spoiled: int

    @classmethod
    def of(cls, model: MmodModel) -> CropPlan | None:
        """The plan for ``model``, or None when its layers are not in that shape."""
        scale, extent, spoiled = 1, 1, 0
        downsampling = True
        for layer in model.layers:
            if not isinstance(layer, ConvLayer):
                continue
            kernel = layer.weights.shape[2:]
            if kernel[0] != kernel[1] or layer.stride[0] != layer.stride[1]:
                return None
            if layer.padding != (0, 0) and layer.stride == (1, 1):
                downsampling = False
            if downsampling and layer.padding == (0, 0):
                extent += (kernel[0] - 1) * scale
                scale *= layer.stride[0]
            elif layer.stride == (1, 1) and layer.padding == (kernel[0] // 2,) * 2:
                spoiled += layer.padding[0]
            else:
                return None
        return cls(scale, extent, spoiled)


Crop = tuple[int, int, int, int]
"""Output cells ``(top, bottom, left, right)``, inclusive."""


def confirm(
    tensor: FloatArray,
    fast: FloatArray,
    plan: CropPlan,
    exact: ScoreBackend,
    threshold: float,
    margin: float,
) -> tuple[FloatArray, int]:
    """``fast`` with exact scores wherever a face may be.

    Args:
        tensor: the (1, 3, H, W) pyramid tensor both passes saw.
        fast: the fast pass's (windows, H', W') scores.
        plan: ``CropPlan.of(model)``.
        exact: a ``ScoreBackend`` computing float32 scores.
        threshold: the score a box must exceed.
        margin: how far below it a fast score is confirmed too (the fast backend's).

    Returns:
        The scores with every cell near a possible face exact, and how many input pixels were
        scored again.
    """
    mask = np.asarray((fast > threshold - margin).any(axis=0), dtype=np.uint8)
    if not mask.any():
        return fast, 0
    rows, cols = mask.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    crops = [
        _widen((int(y), int(y + h - 1), int(x), int(x + w - 1)), plan.spoiled, rows, cols)
        for x, y, w, h, _ in stats[1:count]
    ]
    out = fast.copy()
    pixels = 0
    for top, bottom, left, right in (_stepped(c, rows, cols) for c in _merge(crops)):
        y0, y1 = top * plan.scale, bottom * plan.scale + plan.extent
        x0, x1 = left * plan.scale, right * plan.scale + plan.extent
        part = np.ascontiguousarray(tensor[:, :, y0:y1, x0:x1])
        pixels += part.shape[2] * part.shape[3]
        scores = exact.run(part)[0]
        # Cells spoiled by the crop's cut edges keep their fast scores (the edges of the
        # whole tensor are not cuts: there the crop pads as the whole tensor does).
        cut_top = plan.spoiled if top > 0 else 0
        cut_left = plan.spoiled if left > 0 else 0
        cut_bottom = plan.spoiled if bottom < rows - 1 else 0
        cut_right = plan.spoiled if right < cols - 1 else 0
        out[:, top + cut_top : bottom + 1 - cut_bottom, left + cut_left : right + 1 - cut_right] = (
            scores[
                :,
                cut_top : scores.shape[1] - cut_bottom,
                cut_left : scores.shape[2] - cut_right,
            ]
        )
    return out, pixels


def _widen(cells: Crop, by: int, rows: int, cols: int) -> Crop:
    top, bottom, left, right = cells
    return (
        max(0, top - by),
        min(rows - 1, bottom + by),
        max(0, left - by),
        min(cols - 1, right + by),
    )


def _stepped(cells: Crop, rows: int, cols: int) -> Crop:
    """``cells`` grown to a multiple of ``CROP_STEP_CELLS`` each way (moved back inside the
    output where it would leave it), so crops come in few shapes and OpenVINO's kernels for
    each are made once (``runtimes.SHAPES_KEPT``)."""
    top, bottom = _axis_stepped(cells[0], cells[1], rows)
    left, right = _axis_stepped(cells[2], cells[3], cols)
    return top, bottom, left, right


def _axis_stepped(first: int, last: int, size: int) -> tuple[int, int]:
    length = min(size, -(-(last - first + 1) // CROP_STEP_CELLS) * CROP_STEP_CELLS)
    start = max(0, min(first, size - length))
    return start, start + length - 1


def _area(crop: Crop) -> int:
    return (crop[1] - crop[0] + 1) * (crop[3] - crop[2] + 1)


def _merge(crops: list[Crop]) -> list[Crop]:
    """Crops joined wherever one crop around both costs no more than the two."""
    merged = list(crops)
    joined = True
    while joined:
        joined = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                union = (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))
                if _area(union) <= _area(a) + _area(b):
                    merged[i] = union
                    del merged[j]
                    joined = True
                    break
            if joined:
                break
    return merged
