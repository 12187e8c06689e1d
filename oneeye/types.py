"""Pure value types shared by every layer: boxes, faces, quality, matches. No I/O here.

Box convention, stated once for the whole project: a face box is ``(top, right, bottom, left)``
in integer pixels of the image as decoded (after EXIF rotation), the order face_recognition
uses. ``top``/``left`` are the first row/column inside the box; ``bottom``/``right`` are the
last, as dlib's rectangles give them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

EMBEDDING_SIZE = 128
"""Length of a face embedding (dlib's ResNet metric model)."""

Embedding = npt.NDArray[np.float32]
"""A unit-length float32 vector of shape (EMBEDDING_SIZE,)."""

RGBImage = npt.NDArray[np.uint8]
"""An image as an (height, width, 3) uint8 array in RGB order."""

UNKNOWN = "unknown"
"""What identification answers when no enrolled person is close enough."""

CameraDetector = Literal["hog", "cnn", "auto"]
"""How a camera looks for faces: dlib's HOG (fast, frontal faces), the MMOD CNN (finds turned,
small and dim faces; many times HOG's cost), or ``auto``: HOG, plus CNN time within a budget
where HOG misses (see ``oneeye.video.assist``)."""

CAMERA_DETECTORS: tuple[CameraDetector, ...] = ("hog", "cnn", "auto")


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face's bounding box, ``(top, right, bottom, left)`` in pixels (see module docstring)."""

    top: int
    right: int
    bottom: int
    left: int

    def __post_init__(self) -> None:
        for name in ("top", "right", "bottom", "left"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool):
                raise TypeError(f"FaceBox.{name} must be an int, got {type(value).__name__}")
            object.__setattr__(self, name, int(value))
        if self.bottom < self.top or self.right < self.left:
            raise ValueError(
                "FaceBox needs bottom >= top and right >= left, got "
                f"top={self.top} right={self.right} bottom={self.bottom} left={self.left}"
            )

    @property
    def width(self) -> int:
        """Width in pixels (right and left both inside the box)."""
        return self.right - self.left + 1

    @property
    def height(self) -> int:
        """Height in pixels (top and bottom both inside the box)."""
        return self.bottom - self.top + 1

    @property
    def size(self) -> int:
        """The shorter side in pixels: what "a face of N pixels" means everywhere."""
        return min(self.width, self.height)

    @property
    def area(self) -> int:
        """Area in pixels."""
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        """Centre as ``(x, y)``."""
        return ((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)

    def iou(self, other: FaceBox) -> float:
        """Intersection over union with another box, in [0, 1]."""
        top, left = max(self.top, other.top), max(self.left, other.left)
        bottom, right = min(self.bottom, other.bottom), min(self.right, other.right)
        if bottom < top or right < left:
            return 0.0
        inter = (bottom - top + 1) * (right - left + 1)
        return inter / float(self.area + other.area - inter)

    def scaled(self, factor: float) -> FaceBox:
        """This box in an image resized by ``factor`` (e.g. 0.5 for half size)."""
        return FaceBox(
            top=round(self.top * factor),
            right=round(self.right * factor),
            bottom=round(self.bottom * factor),
            left=round(self.left * factor),
        )

    def clipped(self, height: int, width: int) -> FaceBox:
        """This box clipped to an image of ``height`` x ``width`` pixels."""
        return FaceBox(
            top=min(max(self.top, 0), height - 1),
            right=min(max(self.right, 0), width - 1),
            bottom=min(max(self.bottom, 0), height - 1),
            left=min(max(self.left, 0), width - 1),
        )

    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(top, right, bottom, left)``, as face_recognition returns locations."""
        return (self.top, self.right, self.bottom, self.left)


@dataclass(frozen=True, slots=True)
class Detection:
    """A face found by a detector, before landmarks and encoding."""

    box: FaceBox
    confidence: float
    detector: str
    """Which detector stage found it: ``hog``, ``hog-up2``, ``cnn``, ..."""


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """How much a face can be trusted for identity, as numbers.

    ``size`` is the shorter side of the box in pixels; ``sharpness`` the variance of the
    Laplacian of the aligned grey face chip shrunk to 64x64 (higher is sharper); ``frontalness`` in
    [0, 1] from the 5 landmarks (1 = looking straight at the camera); ``score`` in [0, 1]
    combines the three.
    """

    size: int
    sharpness: float
    frontalness: float
    score: float

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"FaceQuality.size must be >= 0, got {self.size}")
        if not 0.0 <= self.frontalness <= 1.0:
            raise ValueError(f"FaceQuality.frontalness must be in [0, 1], got {self.frontalness}")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"FaceQuality.score must be in [0, 1], got {self.score}")


def check_embedding(vector: npt.ArrayLike, what: str = "embedding") -> Embedding:
    """Return ``vector`` as a float32 array of shape (128,), or raise ``ValueError``.

    Args:
        vector: anything numpy can read as 128 numbers.
        what: a name for the error message.

    Returns:
        A contiguous float32 copy or view.
    """
    array = np.ascontiguousarray(vector, dtype=np.float32)
    if array.shape != (EMBEDDING_SIZE,):
        raise ValueError(f"{what} must have shape ({EMBEDDING_SIZE},), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return array


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """A detected, aligned and encoded face."""

    box: FaceBox
    embedding: Embedding
    quality: FaceQuality
    detector: str
    landmarks: npt.NDArray[np.float32] = field(repr=False)
    """The 5 alignment points as an (5, 2) array of ``(x, y)``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "embedding", check_embedding(self.embedding, "Face.embedding"))
        points = np.asarray(self.landmarks, dtype=np.float32)
        if points.shape != (5, 2):
            raise ValueError(f"Face.landmarks must have shape (5, 2), got {points.shape}")
        object.__setattr__(self, "landmarks", points)


@dataclass(frozen=True, slots=True)
class Match:
    """One gallery template close to a probe face."""

    person: str
    watchlist: str
    template: str
    distance: float


@dataclass(frozen=True, slots=True)
class Identification:
    """The answer to "who is this?": the nearest candidates and the decision.

    Each watchlist decides on its own persons (its own threshold, and a margin over the nearest
    other person on the same watchlist), so one face can be accepted on several watchlists: a
    customer who is also the subject of a missing-person case. ``matches`` holds the accepted
    candidates, at most one per watchlist, nearest first; ``match`` is the nearest of them (the
    primary answer), or ``None`` when the face is unknown on every watchlist. ``candidates``
    holds the top k, nearest first, one per (person, watchlist).
    """

    match: Match | None
    candidates: tuple[Match, ...]
    matches: tuple[Match, ...] = ()

    def __post_init__(self) -> None:
        if self.match is not None and not self.matches:
            object.__setattr__(self, "matches", (self.match,))
        if self.matches and self.match != self.matches[0]:
            raise ValueError(
                f"Identification.match must be the nearest of matches, got {self.match!r} "
                f"and {self.matches[0]!r}"
            )
        watchlists = [m.watchlist for m in self.matches]
        if len(set(watchlists)) != len(watchlists):
            raise ValueError(
                f"Identification.matches must hold one match per watchlist, got {watchlists}"
            )

    @property
    def person(self) -> str:
        """The primary accepted person's id, or ``UNKNOWN``."""
        return self.match.person if self.match is not None else UNKNOWN

    @property
    def is_known(self) -> bool:
        """True when an enrolled person was accepted (on any watchlist)."""
        return self.match is not None

    def match_on(self, watchlist: str) -> Match | None:
        """The match accepted on ``watchlist``, or ``None``."""
        return next((m for m in self.matches if m.watchlist == watchlist), None)


@dataclass(frozen=True, slots=True, eq=False)
class Template:
    """One enrolled face of a person: what the gallery searches.

    A person on several watchlists has its templates once per watchlist.
    """

    id: str
    person: str
    watchlist: str
    embedding: Embedding
    quality: float = 1.0

    def __post_init__(self) -> None:
        for name in ("id", "person", "watchlist"):
            if not getattr(self, name):
                raise ValueError(f"Template.{name} must be a non-empty string")
        object.__setattr__(
            self, "embedding", check_embedding(self.embedding, f"Template {self.id!r} embedding")
        )
