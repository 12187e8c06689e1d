"""face_recognition's public functions, computed by OneEye.

Same names, arguments, defaults, box convention (``(top, right, bottom, left)``, trimmed to the
image the way face_recognition trims it) and return types as face_recognition 1.3.0, written
from its documentation. The descriptors are dlib's own (raw, not unit length, no mirror
averaging), so encodings made with face_recognition and with this module compare with each
other and a tolerance of 0.6 means what it meant. What differs is in the README ("Coming from
face_recognition").

The models load on the first call that needs them, not at import, and are shared by every
thread of the process (calls are serialised: dlib's models are not re-entrant).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from oneeye.errors import ModelError
from oneeye.types import EMBEDDING_SIZE, Detection, FaceBox, RGBImage
from oneeye.vision.detectors import FaceDetector, ScalePlan, make_detector
from oneeye.vision.detectors._scaled import ScaledDetector
from oneeye.vision.encode import ChipEmbedder, jittered
from oneeye.vision.images import load_image
from oneeye.vision.landmarks import LandmarkModel
from oneeye.vision.models import LANDMARKS_68_TERMS, ModelPaths
from oneeye.vision.resnet import ResNetEmbedder

__all__ = [
    "batch_face_locations",
    "compare_faces",
    "face_distance",
    "face_encodings",
    "face_landmarks",
    "face_locations",
    "load_image_file",
]

logger = logging.getLogger(__name__)

Location = tuple[int, int, int, int]
"""A face box as face_recognition gives it: ``(top, right, bottom, left)``."""

FaceEncoding = npt.NDArray[np.float64]
"""A (128,) float64 face descriptor, dlib's raw one (not normalised)."""

Landmarks = dict[str, list[tuple[int, int]]]
"""One face's landmarks by feature (``chin``, ``left_eye``, ...), each a list of ``(x, y)``."""

DETECTION_MODELS = ("hog", "cnn")
LANDMARK_MODELS = ("large", "small")

LANDMARKS_68_NOTE = (
    LANDMARKS_68_TERMS + " oneeye.compat uses it only where face_recognition did: "
    'face_landmarks() with model="large" (its default) and face_encodings(model="large").'
)


@dataclass
class _Models:
    """The models every call shares, each loaded on its first use."""

    paths: ModelPaths
    lock: threading.RLock = field(default_factory=threading.RLock)
    detectors: dict[str, FaceDetector] = field(default_factory=dict)
    landmarks: dict[str, LandmarkModel] = field(default_factory=dict)
    embedder: ChipEmbedder | None = None
    noted_68: bool = False

    def detector(self, name: str) -> FaceDetector:
        """The registry's detector called ``name`` (``hog``, ``cnn``), made on first use."""
        found = self.detectors.get(name)
        if found is None:
            found = self.detectors[name] = make_detector(name, self.paths)
        return found

    def landmark_model(self, model: str) -> LandmarkModel:
        """The 5-point (``small``) or 68-point (``large``) model; the latter's licence note is
        logged the first time it is asked for.

        Raises:
            ModelError: the 68-point model is not installed.
        """
        found = self.landmarks.get(model)
        if found is None:
            if model == "small":
                path = self.paths.landmarks_5
            else:
                if self.paths.landmarks_68 is None:
                    raise ModelError(
                        f'model="large" needs dlib\'s 68-point landmark model, which is not '
                        f"beside the other models in {self.paths.landmarks_5.parent}"
                    )
                path = self.paths.landmarks_68
            found = self.landmarks[model] = LandmarkModel(path)
        if model == "large" and not self.noted_68:
            self.noted_68 = True
            logger.warning(LANDMARKS_68_NOTE)
        return found

    def resnet(self) -> ChipEmbedder:
        """OneEye's forward pass of dlib's ResNet (the fastest backend installed)."""
        if self.embedder is None:
            self.embedder = ResNetEmbedder(self.paths.resnet, "auto")
        return self.embedder


_models: _Models | None = None
_models_lock = threading.Lock()


def _shared() -> _Models:
    """The process's models (found on the first call; each model loads on its first use)."""
    global _models  # noqa: PLW0603 - one set of models per process, made on first need
    with _models_lock:
        if _models is None:
            _models = _Models(ModelPaths.locate())
        return _models


def _check_choice(what: str, value: str, known: Sequence[str]) -> None:
    if value not in known:
        choices = ", ".join(repr(k) for k in known)
        raise ValueError(f"unknown {what} {value!r}; supported: {choices}")


def _check_image(img: npt.NDArray[np.uint8]) -> None:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"expected an image as a numpy array, got {type(img).__name__}")
    if img.dtype != np.uint8 or not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise ValueError(
            "expected an image of shape (height, width, 3) or (height, width) and dtype uint8 "
            f"(as load_image_file gives), got shape {img.shape} and dtype {img.dtype}"
        )


def _check_upsample(number_of_times_to_upsample: int) -> None:
    if isinstance(number_of_times_to_upsample, bool) or not isinstance(
        number_of_times_to_upsample, int | np.integer
    ):
        raise TypeError(
            "number_of_times_to_upsample must be an int, got "
            f"{type(number_of_times_to_upsample).__name__}"
        )
    if number_of_times_to_upsample < 0:
        raise ValueError(
            f"number_of_times_to_upsample must be >= 0, got {number_of_times_to_upsample}"
        )


def _rgb(img: npt.NDArray[np.uint8]) -> RGBImage:
    """Three channels for the landmark and chip code (a grey image is repeated)."""
    if img.ndim == 2:
        return np.ascontiguousarray(np.stack([img, img, img], axis=-1))
    return np.ascontiguousarray(img)


def _trimmed(box: FaceBox, shape: tuple[int, ...]) -> Location:
    """face_recognition's trim: top and left at least 0, right and bottom at most the width
    and the height (one past the last pixel, as face_recognition has always given them)."""
    height, width = shape[0], shape[1]
    return (max(box.top, 0), min(box.right, width), min(box.bottom, height), max(box.left, 0))


def _detect(
    models: _Models, img: npt.NDArray[np.uint8], upsample: int, model: str
) -> list[Detection]:
    """dlib's boxes as found (not clipped) where the detector can give them so."""
    detector = models.detector(model)
    plan = ScalePlan(factor=1.0, upsample=int(upsample))
    if isinstance(detector, ScaledDetector):
        return detector.detect_at(img, plan, clip=False)
    return detector.detect_at(img, plan)


def _box(location: Sequence[int]) -> FaceBox:
    if len(location) != 4:
        raise ValueError(
            f"a face location is (top, right, bottom, left), got {len(location)} values: "
            f"{tuple(location)!r}"
        )
    top, right, bottom, left = location
    return FaceBox(top=top, right=right, bottom=bottom, left=left)


def load_image_file(
    file: str | os.PathLike[str] | BinaryIO, mode: str = "RGB"
) -> npt.NDArray[np.uint8]:
    """Load an image file (.jpg, .png, etc) into a numpy array.

    Unlike face_recognition, the EXIF orientation is applied (a phone photo comes out upright),
    transparency is composited onto white, and files larger than 30 MB or 40 megapixels are
    refused (``oneeye.vision.images.load_image``).

    Args:
        file: image file name or file object to load.
        mode: ``"RGB"`` (8-bit RGB, 3 channels) or ``"L"`` (black and white), as in
            face_recognition.

    Returns:
        The image: (height, width, 3) uint8 for ``"RGB"``, (height, width) uint8 for ``"L"``.

    Raises:
        ValueError: ``mode`` is neither ``"RGB"`` nor ``"L"``.
        oneeye.errors.ImageError: the file is missing, unreadable, too large or not an image.
    """
    _check_choice("image mode", mode, ("RGB", "L"))
    rgb = load_image(file)
    if mode == "L":
        grey: npt.NDArray[np.uint8] = np.asarray(Image.fromarray(rgb).convert("L"), np.uint8)
        return grey
    return rgb


def face_locations(
    img: npt.NDArray[np.uint8],
    number_of_times_to_upsample: int = 1,
    model: Literal["hog", "cnn"] | str = "hog",
) -> list[Location]:
    """Returns an array of bounding boxes of human faces in an image.

    Args:
        img: an image (as a numpy array), as ``load_image_file`` gives it.
        number_of_times_to_upsample: how many times to upsample the image looking for faces.
            Higher numbers find smaller faces.
        model: which face detection model to use. ``"hog"`` is less accurate but faster on
            CPUs. ``"cnn"`` is a more accurate deep-learning model (OneEye's ``cnn`` detector).

    Returns:
        A list of tuples of found face locations in css (top, right, bottom, left) order.

    Raises:
        ValueError: ``model`` is neither ``"hog"`` nor ``"cnn"``, or the image or the upsample
            count is not valid.
    """
    _check_choice("face detection model", model, DETECTION_MODELS)
    _check_image(img)
    _check_upsample(number_of_times_to_upsample)
    models = _shared()
    with models.lock:
        found = _detect(models, img, number_of_times_to_upsample, model)
    return [_trimmed(detection.box, img.shape) for detection in found]


def batch_face_locations(
    images: Sequence[npt.NDArray[np.uint8]],
    number_of_times_to_upsample: int = 1,
    batch_size: int = 128,
) -> list[list[Location]]:
    """Returns a 2-D array of bounding boxes of human faces in images using the cnn detector.

    face_recognition sent the images to a GPU in batches of ``batch_size``; OneEye runs the
    ``cnn`` detector on a CPU, one image after another, so ``batch_size`` only has to be
    positive, and the images need not be the same size.

    Args:
        images: a list of images (each as a numpy array).
        number_of_times_to_upsample: how many times to upsample the images looking for faces.
        batch_size: how many images face_recognition included in each GPU batch.

    Returns:
        For each image, a list of tuples of found face locations in css (top, right, bottom,
        left) order.

    Raises:
        ValueError: an image or an argument is not valid.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return [face_locations(image, number_of_times_to_upsample, "cnn") for image in images]


def _shaped_boxes(
    models: _Models, img: npt.NDArray[np.uint8], locations: Sequence[Sequence[int]] | None
) -> list[FaceBox]:
    """The boxes face_recognition would shape: its locations, or HOG's untrimmed boxes."""
    if locations is None:
        return [detection.box for detection in _detect(models, img, 1, "hog")]
    return [_box(location) for location in locations]


def face_landmarks(
    face_image: npt.NDArray[np.uint8],
    face_locations: Sequence[Sequence[int]] | None = None,
    model: Literal["large", "small"] | str = "large",
) -> list[Landmarks]:
    """Given an image, returns a dict of face feature locations (eyes, nose, etc) for each face.

    ``"large"`` uses dlib's 68-point model, whose training data's licence excludes commercial
    use: a note saying so is logged once per process when it is first used.

    Args:
        face_image: image to search.
        face_locations: optionally, the faces' locations (top, right, bottom, left) to check;
            else every face HOG finds (upsampled once).
        model: ``"large"`` (68 points: chin, eyebrows, nose bridge and tip, eyes, lips) or
            ``"small"`` (5 points: nose tip and eye corners; faster).

    Returns:
        A list of dicts of face feature locations, one per face, each a list of ``(x, y)``.

    Raises:
        ValueError: ``model`` is neither ``"large"`` nor ``"small"``, or a location or the image
            is not valid.
        oneeye.errors.ModelError: the 68-point model is not installed.
    """
    _check_choice("landmarks model", model, LANDMARK_MODELS)
    _check_image(face_image)
    models = _shared()
    with models.lock:
        boxes = _shaped_boxes(models, face_image, face_locations)
        found = models.landmark_model(model).points(_rgb(face_image), boxes)
    return [_features(points, model) for points in found]


def _features(points: npt.NDArray[np.int32], model: str) -> Landmarks:
    """Name the points: the 68-point model's (iBUG 300-W numbering) or the 5-point model's."""
    p = [(int(x), int(y)) for x, y in points]
    if model == "small":
        # The 5-point model: right eye's two corners, left eye's two, then under the nose.
        return {"nose_tip": [p[4]], "left_eye": p[2:4], "right_eye": p[0:2]}
    # Each lip's outline runs along the outer edge, then back along the inner edge.
    return {
        "chin": p[0:17],
        "left_eyebrow": p[17:22],
        "right_eyebrow": p[22:27],
        "nose_bridge": p[27:31],
        "nose_tip": p[31:36],
        "left_eye": p[36:42],
        "right_eye": p[42:48],
        "top_lip": [*p[48:55], p[64], p[63], p[62], p[61], p[60]],
        "bottom_lip": [*p[54:60], p[48], p[60], p[67], p[66], p[65], p[64]],
    }


def face_encodings(
    face_image: npt.NDArray[np.uint8],
    known_face_locations: Sequence[Sequence[int]] | None = None,
    num_jitters: int = 1,
    model: Literal["small", "large"] | str = "small",
) -> list[FaceEncoding]:
    """Given an image, return the 128-dimension face encoding for each face in the image.

    The descriptor is dlib's ResNet's, computed by OneEye's faster forward pass (the same
    numbers within float rounding). With ``num_jitters`` above 1, that many slightly rotated,
    zoomed and shifted copies of the face are encoded and averaged, as dlib does; OneEye's
    copies are its own (seeded, so the same face always gives the same encoding), not dlib's.

    Args:
        face_image: the image that contains one or more faces.
        known_face_locations: optionally, the bounding boxes of each face if you already know
            them; else every face HOG finds (upsampled once).
        num_jitters: how many times to re-sample the face when calculating the encoding.
            Higher is more accurate, but slower (100 is about 100x slower).
        model: which landmark model aligns the face: ``"small"`` (5 points, the default) or
            ``"large"`` (68 points; its licence note is logged once).

    Returns:
        A list of 128-dimensional face encodings (one for each face in the image).

    Raises:
        ValueError: ``model`` is neither ``"small"`` nor ``"large"``, ``num_jitters`` is
            above 1000, or a location or the image is not valid.
        oneeye.errors.ModelError: the 68-point model is not installed.
    """
    _check_choice("landmarks model", model, LANDMARK_MODELS)
    _check_image(face_image)
    if num_jitters > 1000:
        raise ValueError(f"num_jitters must be at most 1000, got {num_jitters}")
    models = _shared()
    with models.lock:
        boxes = _shaped_boxes(models, face_image, known_face_locations)
        if not boxes:
            return []
        shaped = models.landmark_model(model).shaped(_rgb(face_image), boxes)
        embedder = models.resnet()
        if num_jitters <= 1:
            raw = embedder.embed(shaped.chips)
        else:
            raw = np.stack(
                [
                    embedder.embed(np.stack(jittered(chip, num_jitters))).mean(axis=0)
                    for chip in shaped.chips
                ]
            )
    return [np.asarray(row, dtype=np.float64) for row in raw]


def face_distance(
    face_encodings: Sequence[npt.ArrayLike] | npt.ArrayLike, face_to_compare: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Given a list of face encodings, compare them to a known face encoding and get a
    euclidean distance for each comparison face. The distance tells you how similar the faces
    are.

    Args:
        face_encodings: list of face encodings to compare.
        face_to_compare: a face encoding to compare against.

    Returns:
        A numpy ndarray with the distance for each face in the same order as
        ``face_encodings`` (empty when it is empty).

    Raises:
        ValueError: the encodings' lengths differ.
    """
    known = np.asarray(face_encodings, dtype=np.float64)
    if known.size == 0:
        return np.empty(0, dtype=np.float64)
    candidate = np.asarray(face_to_compare, dtype=np.float64)
    if known.ndim != 2 or candidate.ndim != 1 or known.shape[1] != candidate.shape[0]:
        raise ValueError(
            f"expected a list of encodings of length n (shape (k, n)) and one encoding of "
            f"length n, got shapes {known.shape} and {candidate.shape} "
            f"(face_encodings gives n = {EMBEDDING_SIZE})"
        )
    distances: npt.NDArray[np.float64] = np.linalg.norm(known - candidate, axis=1)
    return distances


def compare_faces(
    known_face_encodings: Sequence[npt.ArrayLike] | npt.ArrayLike,
    face_encoding_to_check: npt.ArrayLike,
    tolerance: float = 0.6,
) -> list[bool]:
    """Compare a list of face encodings against a candidate encoding to see if they match.

    Args:
        known_face_encodings: a list of known face encodings.
        face_encoding_to_check: a single face encoding to compare against the list.
        tolerance: how much distance between faces to consider it a match. Lower is more
            strict. 0.6 is face_recognition's default; it names about half of the strangers
            who are not enrolled as someone who is (README, "Coming from face_recognition").

    Returns:
        A list of True/False values indicating which known_face_encodings match the face
        encoding to check.

    Raises:
        ValueError: the encodings' lengths differ.
    """
    distances = face_distance(known_face_encodings, face_encoding_to_check)
    return [bool(distance <= tolerance) for distance in distances]
