"""What every detector here shares: running at a planned scale, on a region, and turning the
boxes found in the resized image into ``Detection``s in the pixels of the image given.
Subclasses only say how to run on an already resized image (``_run``)."""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod

import cv2
import numpy as np

from oneeye.types import Detection, FaceBox, RGBImage
from oneeye.vision.detectors.base import ScalePlan, plan_scale

logger = logging.getLogger(__name__)


def resize_for(image: RGBImage, factor: float) -> RGBImage:
    """The image resized by ``factor`` (area interpolation when shrinking), or itself at 1.0."""
    if factor == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=interpolation))


def _back(box: FaceBox, height: int, width: int, factor: float, clip: bool = True) -> FaceBox:
    if factor != 1.0:
        box = box.scaled(1.0 / factor)
    return box.clipped(height, width) if clip else box


class ScaledDetector(ABC):
    """A ``FaceDetector`` over a detector that upsamples with its own pyramid."""

    name: str
    window_px: int
    max_pixels: int | None = None
    """The most pixels it may be given, after its own upsampling (``None``: no bound). A plan
    or region that would give it more is shrunk to fit, and the first time that happens it is
    logged: faces just above ``min_face_px`` may then be missed."""
    region_step_px = 0
    """``detect_region`` grows a region so the image it hands the detector is a multiple of this
    many pixels each way (0: the region as it is). A network that prepares its work per input
    shape (OpenVINO's) then sees few shapes: a camera's crops come in every size."""
    _warned = False

    def _fitted(self, factor: float, upsample: int, height: int, width: int) -> float:
        """``factor``, made smaller where the working image would exceed ``max_pixels``."""
        scale = factor * 2**upsample
        work = height * width * scale * scale
        if self.max_pixels is None or work <= self.max_pixels:
            return factor
        fitted = factor * math.sqrt(self.max_pixels / work)
        if not self._warned:
            self._warned = True
            logger.warning(
                "%s detector: a %dx%d image at scale %.2f would be %.1f megapixels, over its "
                "bound of %.1f; looking at scale %.2f instead, so faces under about %d pixels "
                "may be missed (raise min_face_px, or use a smaller frame)",
                self.name,
                width,
                height,
                scale,
                work / 1e6,
                self.max_pixels / 1e6,
                fitted * 2**upsample,
                math.ceil(self.window_px / (fitted * 2**upsample)),
            )
        return fitted

    @abstractmethod
    def _run(
        self, image: RGBImage, upsample: int, levels: int | None = None
    ) -> list[tuple[FaceBox, float]]:
        """Run on an already resized image; boxes (unclipped) in its pixels, and scores.
        ``levels``: see ``FaceDetector.detect_region`` (a detector may ignore it)."""

    def detect(self, image: RGBImage, min_face_px: int) -> list[Detection]:
        """Find every face at least ``min_face_px`` pixels wide (see ``FaceDetector.detect``)."""
        return self.detect_at(image, plan_scale(min_face_px, self.window_px))

    def detect_at(self, image: RGBImage, plan: ScalePlan, *, clip: bool = True) -> list[Detection]:
        """Find faces with an explicit scale plan (see ``FaceDetector.detect_at``).

        ``clip=False`` keeps boxes that reach past the image's edges as the detector found them
        (what ``oneeye.compat`` needs to trim them the way face_recognition does)."""
        height, width = image.shape[:2]
        factor = self._fitted(plan.factor, plan.upsample, height, width)
        scaled = resize_for(image, factor)
        stage = self.name if plan.upsample == 0 else f"{self.name}-up{plan.upsample}"
        found = [
            Detection(
                box=_back(box, height, width, factor, clip),
                confidence=float(confidence),
                detector=stage,
            )
            for box, confidence in self._run(scaled, plan.upsample)
        ]
        found.sort(key=lambda d: d.confidence, reverse=True)
        return found

    def detect_region(
        self, image: RGBImage, region: FaceBox, factor: float, *, levels: int | None = None
    ) -> list[Detection]:
        """Find faces inside one part of an image (see ``FaceDetector.detect_region``)."""
        if levels is not None and levels < 1:
            raise ValueError(f"levels must be None or >= 1, got {levels}")
        if factor <= 0.0:
            raise ValueError(f"factor must be positive, got {factor}")
        height, width = image.shape[:2]
        part = region.clipped(height, width)
        factor = self._fitted(factor, 0, part.height, part.width)
        if self.region_step_px:
            part = stepped_region(part, factor, self.region_step_px, height, width)
        crop = np.ascontiguousarray(image[part.top : part.bottom + 1, part.left : part.right + 1])
        scaled = resize_for(crop, factor)
        found = []
        for found_box, confidence in self._run(scaled, 0, levels):
            box = _back(found_box, part.height, part.width, factor)
            found.append(
                Detection(
                    box=FaceBox(
                        top=box.top + part.top,
                        right=box.right + part.left,
                        bottom=box.bottom + part.top,
                        left=box.left + part.left,
                    ),
                    confidence=float(confidence),
                    detector=f"{self.name}-region",
                )
            )
        found.sort(key=lambda d: d.confidence, reverse=True)
        return found


def stepped_region(part: FaceBox, factor: float, step: int, height: int, width: int) -> FaceBox:
    """``part`` grown about its centre until resizing it by ``factor`` gives a multiple of
    ``step`` pixels each way (give or take one where ``factor`` > 1), moved back inside the
    image where it would leave it; an image too small for that gives its whole side.

    Args:
        part: a region inside the image.
        factor: the scale the region will be resized by.
        step: the multiple, in pixels at that scale.
        height: the image's height.
        width: the image's width.

    Returns:
        The grown region, inside the image.
    """
    top, bottom = _stepped_axis(part.top, part.height, factor, step, height)
    left, right = _stepped_axis(part.left, part.width, factor, step, width)
    return FaceBox(top=top, right=right, bottom=bottom, left=left)


def _stepped_axis(start: int, length: int, factor: float, step: int, size: int) -> tuple[int, int]:
    scaled = max(1, round(length * factor))
    target = -(-scaled // step) * step
    need = min(size, max(length, round(target / factor)))
    first = min(max(0, start - (need - length) // 2), size - need)
    return first, first + need - 1
