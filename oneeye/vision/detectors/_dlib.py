"""What dlib's own detectors share: their rectangles become ``FaceBox``es here, and go no
further (the scale plans and regions are ``ScaledDetector``'s)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from oneeye.types import FaceBox, RGBImage
from oneeye.vision.detectors._scaled import ScaledDetector


class DlibDetector(ScaledDetector):
    """A ``FaceDetector`` over one of dlib's detectors, which upsample with their own pyramid."""

    @abstractmethod
    def _run_dlib(
        self, image: RGBImage, upsample: int, levels: int | None = None
    ) -> list[tuple[object, float]]:
        """Run on an already resized image; return ``(dlib.rectangle, confidence)`` pairs."""

    def _run(
        self, image: RGBImage, upsample: int, levels: int | None = None
    ) -> list[tuple[FaceBox, float]]:
        found: list[tuple[FaceBox, float]] = []
        for rect, confidence in self._run_dlib(image, upsample, levels):
            r: Any = rect
            found.append(
                (
                    FaceBox(top=r.top(), right=r.right(), bottom=r.bottom(), left=r.left()),
                    confidence,
                )
            )
        return found
