"""What every face detector offers (``FaceDetector``), and how a detection scale is planned.

A detector has a window: the smallest face it finds in an image as given (about 80 pixels for
HOG and for dlib's MMOD CNN, whose model file states its window). To find faces down to
``min_face_px`` the image is shrunk when ``min_face_px`` is larger than the window (cheaper: a
door camera's faces are big) and upsampled when it is smaller.

Boxes come back as the project's ``Detection`` values, in the pixels of the image passed in;
no detector's own types (dlib rectangles and the like) leave its module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from oneeye.types import Detection, FaceBox, RGBImage

MAX_UPSAMPLE = 3
"""More upsampling than 8x costs too much memory and finds mostly false faces."""


@dataclass(frozen=True, slots=True)
class ScalePlan:
    """How to present an image to a detector: resize by ``factor``, then upsample ``upsample``
    times (each doubles the image)."""

    factor: float
    upsample: int


def plan_scale(min_face_px: int, window_px: int) -> ScalePlan:
    """Choose the detection scale for the smallest face worth finding.

    Args:
        min_face_px: the smallest face (shorter box side, pixels) that must be found.
        window_px: the detector's smallest detectable face at scale 1.

    Returns:
        The plan. Faces at least ``min_face_px`` wide are found; smaller ones may be missed.
    """
    if min_face_px <= 0:
        raise ValueError(f"min_face_px must be positive, got {min_face_px}")
    ratio = window_px / float(min_face_px)
    if ratio <= 1.0:
        return ScalePlan(factor=ratio, upsample=0)
    return ScalePlan(factor=1.0, upsample=min(MAX_UPSAMPLE, math.ceil(math.log2(ratio) - 1e-9)))


class FaceDetector(Protocol):
    """Finds faces in an image. Not thread-safe: one per thread (``make_detector`` makes one).

    Every method returns ``Detection``s in the pixels of the image it was given, most
    confident first, each naming the stage that found it in ``detector``.
    """

    name: str
    """The name it is chosen by (``"hog"``, ``"cnn"``)."""
    window_px: int
    """The smallest face it finds at scale 1, in pixels."""

    def detect(self, image: RGBImage, min_face_px: int) -> list[Detection]:
        """Find every face at least ``min_face_px`` pixels wide (scale from ``plan_scale``).

        Args:
            image: (H, W, 3) uint8 RGB.
            min_face_px: smallest face worth finding.

        Returns:
            Detections in the image's pixels, most confident first.
        """
        ...

    def detect_at(self, image: RGBImage, plan: ScalePlan) -> list[Detection]:
        """Find faces with an explicit scale plan.

        Args:
            image: (H, W, 3) uint8 RGB.
            plan: resize factor and upsample count.

        Returns:
            Detections in the image's pixels, most confident first.
        """
        ...

    def detect_region(
        self, image: RGBImage, region: FaceBox, factor: float, *, levels: int | None = None
    ) -> list[Detection]:
        """Find faces inside one part of an image, resized by ``factor`` first.

        Args:
            image: (H, W, 3) RGB or, for detectors that take it (HOG, CNN), (H, W) grey uint8.
            region: the part to look in, in the image's pixels (clipped to the image).
            factor: resize factor for the part (2.0 finds faces half the detector's window).
            levels: look at only this many levels of the detector's own pyramid (faces from
                its window up to about 1.2 ** levels windows, after ``factor``); ``None``: every
                level that fits. A detector that cannot stop its pyramid early looks at all.

        Returns:
            Detections in the whole image's pixels, most confident first.

        Raises:
            ValueError: ``factor`` is not positive.
        """
        ...
