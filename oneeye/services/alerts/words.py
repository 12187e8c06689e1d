"""What the report page and a case's page say to a parent: why a photo cannot be used, and how
alike a sighting is, in plain words rather than the engine's ("found 2 faces; an enrolment
photo must show exactly one person", "distance 0.296"). The engine's own sentence stays in
the API's ``reason`` and in the logs, for those who need it.
"""

from __future__ import annotations

from oneeye.errors import FaceError, ImageError, OneEyeError, TimeLimitError, TooLarge

FACE_ADVICE = {
    "no_face": (
        "We could not find a face in this photo. Please choose a photo where your child's "
        "face is clearly visible, looking at the camera."
    ),
    "several_faces": (
        "This photo shows more than one person. Please choose a photo where only your "
        "child's face is visible."
    ),
    "small_face": (
        "The face is too small in this photo. Please choose a closer photo, where your "
        "child's face fills more of the picture."
    ),
}
"""What to do about each ``FaceError.problem``."""
OTHER_FACE = "We could not use the face in this photo. Please choose another clear photo."
TOO_LARGE = "This photo file is too large. Please choose a smaller photo, or take a new one."
NOT_A_PHOTO = "This file is not a photo we can open. Please choose a photo (JPEG or PNG)."
TOO_SLOW = "Checking the photo took too long; the server is busy. Please try again in a minute."

VERY_CLOSE, CLOSE = 0.75, 0.95
"""A match's distance as a share of its watchlist's threshold (every match is within it): at
most ``VERY_CLOSE`` of it reads "a very close likeness", at most ``CLOSE`` "a close
likeness", the rest "a possible likeness"."""


def photo_advice(error: OneEyeError) -> str:
    """Why a photo cannot be filed, and what to do, for a parent.

    Args:
        error: what checking the photo raised (``FaceError``, ``ImageError``, a ``TooLarge``
            upload, a ``TimeLimitError``).

    Returns:
        One or two plain sentences.
    """
    if isinstance(error, FaceError):
        return FACE_ADVICE.get(error.problem, OTHER_FACE)
    if isinstance(error, TooLarge):
        return TOO_LARGE
    if isinstance(error, ImageError):
        return NOT_A_PHOTO
    if isinstance(error, TimeLimitError):
        return TOO_SLOW
    return OTHER_FACE


def likeness(distance: float, threshold: float) -> str:
    """How alike a match's face is to the case's photos, in words: ``"a very close
    likeness"``, ``"a close likeness"`` or ``"a possible likeness"``.

    Args:
        distance: the match's face distance (smaller is more alike).
        threshold: the largest distance its watchlist calls a match.
    """
    share = distance / threshold if threshold > 0 else 1.0
    if share <= VERY_CLOSE:
        return "a very close likeness"
    if share <= CLOSE:
        return "a close likeness"
    return "a possible likeness"
