"""A drop-in for face_recognition: ``import oneeye.compat as face_recognition``.

The seven public functions of face_recognition 1.3.0 (``oneeye.compat.api``) and its two
command-line tools (``face_recognition_cli``, ``face_detection_cli``; also ``oneeye compat
face_recognition`` and ``oneeye compat face_detection``), computed by OneEye. The functions are
looked up on first use, so importing this package (or the command-line modules) loads no model
and not even numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oneeye.compat.api import (
        batch_face_locations,
        compare_faces,
        face_distance,
        face_encodings,
        face_landmarks,
        face_locations,
        load_image_file,
    )

__all__ = [
    "batch_face_locations",
    "compare_faces",
    "face_distance",
    "face_encodings",
    "face_landmarks",
    "face_locations",
    "load_image_file",
]


def __getattr__(name: str) -> Any:
    """``oneeye.compat.face_locations`` and the others, from ``oneeye.compat.api``.

    Raises:
        AttributeError: ``name`` is not one of face_recognition's public functions.
    """
    if name in __all__:
        return getattr(importlib.import_module("oneeye.compat.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
