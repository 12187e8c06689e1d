"""dlib's image pyramids as the MMOD detector uses them, in numpy: the upsampling that
``cnn_face_detection_model_v1(image, n)`` applies first, the tiled pyramid its input layer
builds (``input_rgb_image_pyramid<pyramid_down<6>>``), and the maps between their coordinates.

Upsampling (``pyramid_up`` with ``pyramid_down<2>``): an H x W image becomes
(2H + 1) x (2W + 2), the size of ``rect_up`` of the image's rectangle, by bilinear resizing
that maps the corners onto each other (``x_in = x_out * (W - 1) / (W_out - 1)``), each
channel truncated to an integer. Boxes come back with ``rect_down``: ``p / 2 - (1.25, 0.75)``
per level.

The tiled pyramid (``compute_tiled_image_pyramid_details``, ``create_tiled_pyramid``): level
0 is the image as ``(pixel - channel_mean) / 256`` and each next level is 5/6 of the previous
one (``floor(5/6 * size)``) down to 5 rows, resized from the previous level with the same
corner-mapping bilinear filter, in float. The levels are tiled into one zero-filled tensor:
a first column down the left, ``padding`` rows apart, until the rest fits in a second column
laid from the bottom right upwards beside the smaller levels; ``outer_padding`` all around.
A box found in the tensor belongs to the level nearest its centre and maps back to the image
with ``point_up``: ``p * 6/5 + 0.3`` per level.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from oneeye.types import RGBImage

FloatArray = npt.NDArray[np.float32]

PYRAMID_RATE = 5.0 / 6.0
"""``pyramid_down<6>``: each level is 5/6 of the one before (the network's type fixes 6)."""
MIN_LEVEL_ROWS = 5
"""dlib stops the pyramid before a level would be shorter than this."""


@dataclass(frozen=True, slots=True)
class Tile:
    """Where one pyramid level lies in the tiled tensor (dlib's ``rectangle``, inclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def rows(self) -> int:
        """Its height in pixels."""
        return self.bottom - self.top + 1

    @property
    def cols(self) -> int:
        """Its width in pixels."""
        return self.right - self.left + 1


@dataclass(frozen=True, slots=True)
class TiledLayout:
    """The tiled tensor's size and the place of each level, level 0 (the image) first."""

    rows: int
    cols: int
    tiles: tuple[Tile, ...]


def lround(value: float) -> int:
    """C's ``lround``: to the nearest integer, halves away from zero (dlib's rounding)."""
    return math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)


@functools.lru_cache(maxsize=1024)
def _bilinear_axis(
    size_in: int, size_out: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray]:
    """Sample positions of dlib's corner-mapping bilinear resize along one axis: the lower
    and upper neighbours and the weight of the upper one (read-only: they are shared)."""
    scale = (size_in - 1) / max(size_out - 1, 1)
    position = np.arange(size_out, dtype=np.float64) * scale
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, size_in - 1)
    weight = (position - low).astype(np.float32)
    for array in (low, high, weight):
        array.flags.writeable = False
    return low, high, weight


def resize_bilinear(image: FloatArray, rows: int, cols: int) -> FloatArray:
    """dlib's ``resize_image`` with bilinear interpolation, in float32, channels first.

    Args:
        image: (C, H, W) float32.
        rows: output height.
        cols: output width.

    Returns:
        The resized image, (C, rows, cols) float32.
    """
    top, bottom, ty = _bilinear_axis(image.shape[1], rows)
    left, right, tx = _bilinear_axis(image.shape[2], cols)
    upper = image[:, top]
    vertical = image[:, bottom]
    vertical -= upper
    vertical *= ty[None, :, None]
    vertical += upper
    out = vertical[:, :, left]
    step = vertical[:, :, right]
    step -= out
    step *= tx
    out += step
    return out


Resize = Callable[[FloatArray, int, int], FloatArray]
"""A bilinear resize as ``resize_bilinear`` does it: ``(C, H, W) -> (C, rows, cols)``. The
onnxruntime backend offers a faster one (``runtimes.OnnxRuntimeScores.resize``)."""


def upsampled_size(rows: int, cols: int) -> tuple[int, int]:
    """The size ``pyramid_up`` gives an image: ``rect_up`` of its rectangle, ``pyramid_down<2>``.

    Args:
        rows: image height.
        cols: image width.

    Returns:
        (rows, cols) of the upsampled image.
    """
    bottom = lround((rows - 1 + 0.75) * 2)
    right = lround((cols - 1 + 1.25) * 2)
    return bottom + 1, right + 1


def upsample(image: RGBImage, resize: Resize = resize_bilinear) -> RGBImage:
    """dlib's ``pyramid_up(image)`` (see the module docstring).

    Args:
        image: (H, W, 3) uint8 RGB.
        resize: the bilinear resize to use.

    Returns:
        The upsampled image, (2H + 1, 2W + 2, 3) uint8.
    """
    rows, cols = upsampled_size(image.shape[0], image.shape[1])
    planes = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    resized = resize(planes, rows, cols)
    # Truncated, as dlib's SIMD path converts its float sums; cv2.merge interleaves the
    # planes several times faster than a numpy transpose.
    return np.asarray(cv2.merge(list(resized.astype(np.uint8))), dtype=np.uint8)


def point_down_2(x: float, y: float, levels: int) -> tuple[float, float]:
    """``pyramid_down<2>::point_down`` applied ``levels`` times (upsampled to original)."""
    for _ in range(levels):
        x, y = x / 2.0 - 1.25, y / 2.0 - 0.75
    return x, y


def point_up_6(x: float, y: float, levels: int) -> tuple[float, float]:
    """``pyramid_down<6>::point_up`` applied ``levels`` times (pyramid level to level 0)."""
    ratio = 6.0 / 5.0
    for _ in range(levels):
        x, y = x * ratio + 0.3, y * ratio + 0.3
    return x, y


def tiled_layout(rows: int, cols: int, padding: int, outer_padding: int) -> TiledLayout:
    """dlib's ``compute_tiled_image_pyramid_details`` for ``pyramid_down<6>``.

    Args:
        rows: image height.
        cols: image width.
        padding: pixels between levels.
        outer_padding: pixels around the whole.

    Returns:
        The tensor's size and where each level goes.
    """
    if rows * cols == 0:
        return TiledLayout(0, 0, ())
    sizes = [(rows, cols)]
    nr, nc = rows, cols
    while True:
        nr, nc = math.floor(PYRAMID_RATE * nr), math.floor(PYRAMID_RATE * nc)
        if nr * nc == 0 or nr < MIN_LEVEL_ROWS:
            break
        sizes.append((nr, nc))

    total_height = sum(r + padding for r, _ in sizes) - 2 * padding
    height = 0
    prev_width = 0
    for r, c in sizes:
        if c <= cols - prev_width - padding and (height - rows) * 2 >= total_height - rows:
            break
        height += r + padding
        prev_width = c
    height -= padding
    width = cols

    tiles: list[Tile] = []
    y = outer_padding
    i = 0
    while y < height + outer_padding and i < len(sizes):
        r, c = sizes[i]
        tiles.append(Tile(outer_padding, y, outer_padding + c - 1, y + r - 1))
        y += r + padding
        i += 1
    y -= padding
    first = tiles[0]
    while i < len(sizes):
        r, c = sizes[i]
        tile = Tile(outer_padding + width - c, y - r, outer_padding + width - 1, y - 1)
        overlaps = max(tile.left, first.left) <= min(tile.right, first.right) and max(
            tile.top, first.top
        ) <= min(tile.bottom, first.bottom)
        if overlaps:
            break
        tiles.append(tile)
        y -= r + padding
        i += 1
    return TiledLayout(height + 2 * outer_padding, width + 2 * outer_padding, tuple(tiles))


def tiled_pyramid(
    image: RGBImage,
    means: Sequence[float],
    layout: TiledLayout,
    resize: Resize = resize_bilinear,
    out: FloatArray | None = None,
) -> FloatArray:
    """The input tensor dlib's ``input_rgb_image_pyramid::to_tensor`` builds.

    Each level is resized from the previous level's own contiguous array, not from its place
    in the tensor, so no level is copied twice; the values are the same.

    Args:
        image: (H, W, 3) uint8 RGB, the size ``layout`` was computed for.
        means: the R, G, B means to subtract.
        layout: from ``tiled_layout``.
        resize: the bilinear resize to use.
        out: a tensor this function returned for the same ``layout``, to fill again: its
            levels are overwritten and the zeros between them stay. None: a new one.

    Returns:
        (1, 3, rows, cols) float32, zero between the levels.

    Raises:
        ValueError: ``out`` is not a float32 tensor of ``layout``'s size.
    """
    shape = (1, 3, layout.rows, layout.cols)
    if out is None:
        tensor = np.zeros(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"out must be a float32 tensor of {shape}, got {out.dtype} {out.shape}")
    else:
        tensor = out
    first = layout.tiles[0]
    # One channel at a time from contiguous planes: a strided read of the interleaved image
    # costs several times more. (p - mean) / 256 == p / 256 - mean / 256 exactly: powers of 2.
    level = np.empty((3, first.rows, first.cols), dtype=np.float32)
    for channel, plane in enumerate(cv2.split(np.ascontiguousarray(image))):
        np.multiply(plane, np.float32(1 / 256), out=level[channel], dtype=np.float32)
        level[channel] -= np.float32(means[channel] / 256)
    tensor[0, :, first.top : first.bottom + 1, first.left : first.right + 1] = level
    for tile in layout.tiles[1:]:
        level = np.ascontiguousarray(resize(level, tile.rows, tile.cols), dtype=np.float32)
        tensor[0, :, tile.top : tile.bottom + 1, tile.left : tile.right + 1] = level
    return tensor


def nearest_tile(tiles: Sequence[Tile], x: int, y: int) -> int:
    """dlib's ``nearest_rect``: the first tile holding the point, else the closest one."""
    best, best_distance = 0, math.inf
    for index, tile in enumerate(tiles):
        if tile.left <= x <= tile.right and tile.top <= y <= tile.bottom:
            return index
        dx = x - min(max(x, tile.left), tile.right)
        dy = y - min(max(y, tile.top), tile.bottom)
        distance = math.hypot(dx, dy)
        if distance < best_distance:
            best, best_distance = index, distance
    return best
