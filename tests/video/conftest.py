"""Fixtures shared by the video tests."""

from __future__ import annotations

import pytest

from bench.lib.synth import Actor
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader


@pytest.fixture(scope="module")
def actors(face_engine: FaceEngine, load_photo: PhotoLoader) -> list[Actor]:
    """Obama and Biden, ready to walk through a synthetic clip (photos from the
    face_recognition package)."""
    found = []
    for person, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        image = load_photo(photo)
        found.append(Actor(person, image, face_engine.enrolment_face(image).box))
    return found
