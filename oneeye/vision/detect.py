"""Face detectors (dlib HOG and MMOD CNN) behind one interface, run at a planned scale.

Each detector has a window: the smallest face it finds in an image as given (about 80 pixels
for HOG, 40 for the CNN). To find faces down to ``min_face_px`` we shrink the image when
``min_face_px`` is larger than the window (cheaper: a door camera's faces are big) and let dlib
upsample it when smaller.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np

from oneeye.errors import ModelError
from oneeye.types import Detection, FaceBox, RGBImage
from oneeye.vision.dlibconv import box_from_rect

logger = logging.getLogger(__name__)

MAX_UPSAMPLE = 3
"""More upsampling than 8x costs too much memory and finds mostly false faces."""


@dataclass(frozen=True, slots=True)
class ScalePlan:
    """How to present an image to a detector: resize by ``factor``, then upsample ``upsample``
    times with dlib's pyramid (each doubles the image)."""

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


def resize_for(image: RGBImage, factor: float) -> RGBImage:
    """The image resized by ``factor`` (area interpolation when shrinking), or itself at 1.0."""
    if factor == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=interpolation))


class FaceDetector(ABC):
    """Finds faces in an RGB image."""

    name: str
    window_px: int

    @abstractmethod
    def _run(self, image: RGBImage, upsample: int) -> list[tuple[object, float]]:
        """Run on an already resized image; return ``(dlib.rectangle, confidence)`` pairs."""

    def detect(self, image: RGBImage, min_face_px: int) -> list[Detection]:
        """Find every face at least ``min_face_px`` pixels wide.

        Args:
            image: (H, W, 3) uint8 RGB.
            min_face_px: smallest face worth finding; sets the scale (see module docstring).

        Returns:
            Detections in the original image's pixels, most confident first.
        """
        plan = plan_scale(min_face_px, self.window_px)
        return self.detect_at(image, plan)

    def detect_at(self, image: RGBImage, plan: ScalePlan) -> list[Detection]:
        """Find faces with an explicit scale plan.

        Args:
            image: (H, W, 3) uint8 RGB.
            plan: resize factor and upsample count.

        Returns:
            Detections in the original image's pixels, most confident first.
        """
        height, width = image.shape[:2]
        scaled = resize_for(image, plan.factor)
        stage = self.name if plan.upsample == 0 else f"{self.name}-up{plan.upsample}"
        found = [
            Detection(
                box=box_from_rect(rect, height, width, plan.factor),
                confidence=float(confidence),
                detector=stage,
            )
            for rect, confidence in self._run(scaled, plan.upsample)
        ]
        found.sort(key=lambda d: d.confidence, reverse=True)
        return found

    def detect_region(self, image: RGBImage, region: FaceBox, factor: float) -> list[Detection]:
        """Find faces inside one part of an image, resized by ``factor`` first.

        Args:
            image: (H, W, 3) RGB or, for HOG, (H, W) grey uint8.
            region: the part to look in, in the image's pixels (clipped to the image).
            factor: resize factor for the part (2.0 finds faces half the detector's window).

        Returns:
            Detections in the whole image's pixels, most confident first.
        """
        if factor <= 0.0:
            raise ValueError(f"factor must be positive, got {factor}")
        height, width = image.shape[:2]
        part = region.clipped(height, width)
        crop = np.ascontiguousarray(image[part.top : part.bottom + 1, part.left : part.right + 1])
        scaled = resize_for(crop, factor)
        found = []
        for rect, confidence in self._run(scaled, 0):
            box = box_from_rect(rect, part.height, part.width, factor)
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


class HogDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal face detector: fast on a CPU, frontal faces only.

    Takes grey images as well as RGB: on one channel it costs about a quarter less, which is
    why camera frames are scanned in grey (see ``oneeye.video.scan``)."""

    name = "hog"
    window_px = 80

    def __init__(self) -> None:
        self._detector = dlib.get_frontal_face_detector()

    def _run(self, image: RGBImage, upsample: int) -> list[tuple[object, float]]:
        rects, scores, _ = self._detector.run(image, upsample, 0.0)
        return list(zip(rects, scores, strict=True))


class CnnDetector(FaceDetector):
    """dlib's MMOD CNN face detector: finds turned and small faces HOG misses; slow on a CPU."""

    name = "cnn"
    window_px = 40

    def __init__(self, model_path: Path) -> None:
        try:
            self._detector = dlib.cnn_face_detection_model_v1(str(model_path))
        except RuntimeError as exc:
            raise ModelError(f"cannot load the CNN face detector {model_path}: {exc}") from exc

    def _run(self, image: RGBImage, upsample: int) -> list[tuple[object, float]]:
        return [(d.rect, d.confidence) for d in self._detector(image, upsample)]
