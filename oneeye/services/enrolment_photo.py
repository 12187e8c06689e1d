"""The database-free checks on an enrolment photo: decode it safely, find its exactly one
usable face, encode that face.

``EnrolmentService`` runs them before it stores anything; ``oneeye enroll`` runs them to enrol
into a gallery folder. They live apart from ``enrolment`` so that the command does not import
the database, the photo store and the live gallery (seconds of start-up) to use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oneeye.errors import FaceError, ImageError
from oneeye.types import Face, RGBImage
from oneeye.vision.engine import Deadline, FaceEngine
from oneeye.vision.images import DEFAULT_MAX_BYTES, load_image

__all__ = ["PhotoFace", "decode_photo", "read_enrolment_face"]


@dataclass(frozen=True, slots=True)
class PhotoFace:
    """The one usable face of an enrolment photo, and the photo as it was decoded."""

    face: Face
    """The face, with its box (in ``image``'s pixels), quality and embedding."""
    image: RGBImage
    """The photo upright, as RGB (shrunk if ``max_side`` was given)."""


def decode_photo(
    photo: bytes | Path,
    name: str = "",
    *,
    max_pixels: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_side: int | None = None,
) -> RGBImage:
    """A photo as an upright RGB image, decoded safely (sizes checked before any pixel is).

    Args:
        photo: the encoded photo, or the path of its file.
        name: how messages name the photo given as bytes (an upload's file name); a path
            names itself.
        max_pixels: refuse photos with more pixels than this.
        max_bytes: refuse photos longer than this many bytes.
        max_side: shrink the photo to this many pixels on its longer side; ``None``: full size.

    Raises:
        ImageError: the photo is missing, too large or not a usable image (naming the file).
    """
    if isinstance(photo, Path):
        # A path's errors name the file already.
        return load_image(photo, max_pixels=max_pixels, max_bytes=max_bytes, max_side=max_side)
    try:
        return load_image(photo, max_pixels=max_pixels, max_bytes=max_bytes, max_side=max_side)
    except ImageError as exc:
        if not name:
            raise
        raise ImageError(f"{name}: {exc}") from None


def read_enrolment_face(
    engine: FaceEngine,
    photo: bytes | Path,
    name: str = "",
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_side: int | None = None,
    thorough: bool = True,
    deadline: Deadline | None = None,
) -> PhotoFace:
    """Decode a photo safely, find its exactly one usable face and encode it; nothing is
    stored, and no database is needed.

    Args:
        engine: the face engine (its ``settings.max_pixels`` bounds the photo).
        photo: the encoded photo, or the path of its file.
        name: how messages name the photo given as bytes (an upload's file name); a path
            names itself.
        max_bytes: refuse photos longer than this many bytes.
        max_side: shrink the photo to this many pixels on its longer side first; ``None``:
            full size.
        thorough: the engine's whole detection fallback chain; ``False``: the cheap stages
            only (photos anyone may send).
        deadline: when to give up (checked between the engine's steps).

    Returns:
        The face and the decoded photo.

    Raises:
        ImageError: the photo is missing, too large or not a usable image (naming the file).
        FaceError: no face, several faces, or a face too small (naming the file).
        TimeLimitError: the deadline passed or was cancelled.
    """
    image = decode_photo(
        photo,
        name,
        max_pixels=engine.settings.max_pixels,
        max_bytes=max_bytes,
        max_side=max_side,
    )
    try:
        face = engine.enrolment_face(image, thorough=thorough, deadline=deadline)
    except FaceError as exc:
        where = str(photo) if isinstance(photo, Path) else name
        if not where:
            raise
        raise FaceError(f"{where}: {exc}", problem=exc.problem) from None
    return PhotoFace(face, image)
