"""Face detectors, chosen by name: one module per detector in this package.

A detector's module is named after it (``hog.py`` is ``"hog"``, an underscore in the module's
name is a hyphen in the detector's: ``cnn_dlib.py`` is ``"cnn-dlib"``) and defines
``create(models: ModelPaths, num_threads: int | None) -> FaceDetector``; ``make_detector``
finds it by that name, so
adding a detector is adding its module and its test, and nothing else lists detectors.
Modules whose names start with ``_`` (shared helpers) and ``base`` are not detectors.

Importing this package loads no detector (and so neither dlib nor OpenCV): a detector's
module is imported when one is made.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from oneeye.vision.detectors.base import FaceDetector, ScalePlan, plan_scale

if TYPE_CHECKING:
    from oneeye.vision.models import ModelPaths

__all__ = ["FaceDetector", "ScalePlan", "detector_names", "make_detector", "plan_scale"]

_NOT_DETECTORS = frozenset({"base"})


def detector_names() -> tuple[str, ...]:
    """The names ``make_detector`` knows, sorted.

    Returns:
        One name per detector module in this package.
    """
    return tuple(
        sorted(
            module.name.replace("_", "-")
            for module in pkgutil.iter_modules(__path__)
            if not module.name.startswith("_") and module.name not in _NOT_DETECTORS
        )
    )


def make_detector(name: str, models: ModelPaths, *, num_threads: int | None = 1) -> FaceDetector:
    """A new detector of the kind ``name`` names, the caller's own (detectors are not shared
    between threads).

    Args:
        name: a detector's name (one of ``detector_names()``).
        models: where the model files are (a detector loads the ones it needs).
        num_threads: threads the detector may use (``None``: its library's default, one per
            core); one by default, as camera workers run one detector per thread.

    Returns:
        The detector.

    Raises:
        ValueError: no detector has that name; the message lists the known ones.
        ModelError: the detector's model file cannot be loaded.
    """
    known = detector_names()
    if name not in known:
        raise ValueError(f"unknown face detector {name!r}; known detectors: {', '.join(known)}")
    module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
    detector: FaceDetector = module.create(models, num_threads=num_threads)
    return detector
