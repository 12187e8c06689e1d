"""The one place where dlib's objects become project types and back (boxes, landmarks).

Nothing outside ``oneeye.vision`` ever sees a dlib object.
"""

from __future__ import annotations

from typing import Any

import dlib
import numpy as np
import numpy.typing as npt

from oneeye.types import FaceBox


def rect_from_box(box: FaceBox) -> Any:
    """A ``dlib.rectangle`` for a project box.

    Args:
        box: the face box.

    Returns:
        The dlib rectangle with the same corners.
    """
    return dlib.rectangle(box.left, box.top, box.right, box.bottom)


def box_from_rect(
    rect: Any, height: int, width: int, factor: float = 1.0, *, clip: bool = True
) -> FaceBox:
    """A project box for a dlib rectangle found in an image resized by ``factor``.

    Args:
        rect: a ``dlib.rectangle``.
        height: height of the original image (the box is clipped to it).
        width: width of the original image.
        factor: the resize factor the detector's image had relative to the original.
        clip: clip the box to the image; ``False`` keeps dlib's corners even where they lie
            outside it (``oneeye.compat`` trims them face_recognition's way).

    Returns:
        The box in the original image's pixels.
    """
    box = FaceBox(top=rect.top(), right=rect.right(), bottom=rect.bottom(), left=rect.left())
    if factor != 1.0:
        box = box.scaled(1.0 / factor)
    return box.clipped(height, width) if clip else box


def points_from_shape(shape: Any) -> npt.NDArray[np.float32]:
    """The landmarks of a ``dlib.full_object_detection`` as an (n, 2) array of ``(x, y)``.

    Args:
        shape: the landmark detection.

    Returns:
        The points, float32.
    """
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
