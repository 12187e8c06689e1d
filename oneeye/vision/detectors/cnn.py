"""dlib's MMOD CNN face detector run without dlib (``oneeye.vision.mmod``), chosen by the name
``"cnn"``: dlib's boxes (``"cnn-dlib"``), many times faster."""

from __future__ import annotations

from pathlib import Path

from oneeye.types import FaceBox, RGBImage
from oneeye.vision.detectors._scaled import ScaledDetector
from oneeye.vision.mmod import MmodDetector
from oneeye.vision.mmod.detector import MAX_WORK_PIXELS
from oneeye.vision.models import ModelPaths


class CnnDetector(ScaledDetector):
    """dlib's MMOD CNN face detector: finds turned and small faces HOG misses."""

    name = "cnn"
    max_pixels = MAX_WORK_PIXELS // 4
    """Its tiled pyramid is about 3.7 times the image it is given, and must stay within
    ``MAX_WORK_PIXELS``: 4 megapixels, a 1080p frame at scale 1.39 (faces from 58 pixels)."""
    region_step_px = 16
    """A camera's crops are grown to multiples of 16 pixels: OpenVINO makes its kernels for
    each new input shape (a new 250-pixel crop cost 17.7 ms, one of a shape seen before 6.1)."""

    def __init__(self, model_path: Path, num_threads: int | None = 1) -> None:
        """Load the network.

        Args:
            model_path: dlib's ``mmod_human_face_detector.dat``.
            num_threads: threads for the network (``None``: one per core).

        Raises:
            ModelError: the file cannot be loaded.
        """
        self._detector = MmodDetector(model_path, num_threads=num_threads)
        self.window_px = self._detector.window_px
        """The model file's detector window: 80 pixels for dlib's face model."""

    def _run(
        self, image: RGBImage, upsample: int, levels: int | None = None
    ) -> list[tuple[FaceBox, float]]:
        del levels  # dlib's tiled pyramid is built whole: every level is scored in one pass
        return [
            (FaceBox(top=b.top, right=b.right, bottom=b.bottom, left=b.left), b.score)
            for b in self._detector.detect(image, upsample)
        ]


def create(models: ModelPaths, num_threads: int | None = 1) -> CnnDetector:
    """A CNN detector loaded from ``models.cnn_detector``.

    Args:
        models: the model files.
        num_threads: threads for the network (``None``: one per core).

    Returns:
        A new detector.

    Raises:
        ModelError: the model file cannot be loaded.
    """
    return CnnDetector(models.cnn_detector, num_threads)
