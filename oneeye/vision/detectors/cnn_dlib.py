"""dlib's own MMOD CNN face detector, chosen by the name ``"cnn-dlib"``: the reference the
faster ``"cnn"`` (the same network run without dlib, ``oneeye.vision.mmod``) is checked against."""

from __future__ import annotations

from pathlib import Path

import dlib

from oneeye.errors import ModelError
from oneeye.types import RGBImage
from oneeye.vision.detectors._dlib import DlibDetector
from oneeye.vision.mmod import read_mmod_model
from oneeye.vision.models import ModelPaths


class DlibCnnDetector(DlibDetector):
    """dlib's MMOD CNN face detector run by dlib: about 17 times slower than ``"cnn"``."""

    name = "cnn-dlib"
    region_step_px = 16
    """The same grown regions as ``"cnn"`` (``CnnDetector.region_step_px``), so the two look
    at the same crops and can be compared."""

    def __init__(self, model_path: Path) -> None:
        """Load the network.

        Args:
            model_path: dlib's ``mmod_human_face_detector.dat``.

        Raises:
            ModelError: the file cannot be loaded.
        """
        try:
            self._detector = dlib.cnn_face_detection_model_v1(str(model_path))
        except RuntimeError as exc:
            raise ModelError(f"cannot load the CNN face detector {model_path}: {exc}") from exc
        # dlib does not tell its window; the file does (80 pixels for dlib's face model).
        self.window_px = read_mmod_model(model_path).options.window_px

    def _run_dlib(
        self, image: RGBImage, upsample: int, levels: int | None = None
    ) -> list[tuple[object, float]]:
        del levels  # dlib's network takes no level count
        return [(d.rect, d.confidence) for d in self._detector(image, upsample)]


def create(models: ModelPaths, num_threads: int | None = 1) -> DlibCnnDetector:
    """dlib's CNN detector loaded from ``models.cnn_detector``.

    Args:
        models: the model files.
        num_threads: unused (dlib-bin runs it on one thread).

    Returns:
        A new detector.

    Raises:
        ModelError: the model file cannot be loaded.
    """
    del num_threads
    return DlibCnnDetector(models.cnn_detector)
