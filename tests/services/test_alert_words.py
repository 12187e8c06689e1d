"""What the report and case pages say to a parent (``oneeye.services.alerts.words``): a photo's
problem from the engine's real answer on real photos, and a match's likeness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oneeye.errors import FaceError, ImageError, OneEyeError, TimeLimitError
from oneeye.services.alerts import likeness, photo_advice
from oneeye.services.enrolment import UploadTooLargeError, encode_jpeg
from oneeye.services.enrolment_photo import read_enrolment_face
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader, side_by_side


def refusal(engine: FaceEngine, data: bytes) -> OneEyeError:
    with pytest.raises((FaceError, ImageError)) as caught:
        read_enrolment_face(engine, data, "photo.jpg", thorough=False)
    assert isinstance(caught.value, OneEyeError)
    return caught.value


def test_a_photo_refusal_is_told_in_plain_words(
    face_engine: FaceEngine, load_photo: PhotoLoader, face_photos: Path
) -> None:
    two = encode_jpeg(side_by_side(load_photo("obama.jpg"), load_photo("biden.jpg")))
    several = refusal(face_engine, two)
    assert isinstance(several, FaceError)
    assert several.problem == "several_faces"
    assert "exactly one person" in str(several)  # the engine's words stay in the API's reason
    assert photo_advice(several) == (
        "This photo shows more than one person. Please choose a photo where only your "
        "child's face is visible."
    )
    wall = refusal(face_engine, encode_jpeg(np.full((400, 400, 3), 190, np.uint8)))
    assert isinstance(wall, FaceError)
    assert wall.problem == "no_face"
    assert photo_advice(wall).startswith("We could not find a face in this photo.")
    text = refusal(face_engine, b"hello")
    assert (
        photo_advice(text)
        == "This file is not a photo we can open. Please choose a photo (JPEG or PNG)."
    )
    assert "too large" in photo_advice(UploadTooLargeError("photo.jpg is 9 MB"))
    assert "try again" in photo_advice(TimeLimitError("late"))
    for advice in (photo_advice(several), photo_advice(wall), photo_advice(text)):
        assert "enrolment" not in advice
        assert "distance" not in advice


@pytest.mark.parametrize(
    ("distance", "words"),
    [
        (0.10, "a very close likeness"),
        (0.24, "a very close likeness"),
        (0.27, "a close likeness"),
        (0.296, "a close likeness"),
        (0.31, "a possible likeness"),
    ],
)
def test_a_match_reads_as_a_likeness(distance: float, words: str) -> None:
    assert likeness(distance, 0.32) == words
