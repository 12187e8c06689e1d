"""The database-free enrolment step on real photos: one usable face and its embedding, or an
error naming the file and what is wrong; the same face whether the photo comes as a file or as
an upload's bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oneeye.errors import FaceError, ImageError
from oneeye.services.enrolment import encode_jpeg
from oneeye.services.enrolment_photo import decode_photo, read_enrolment_face
from oneeye.vision.engine import FaceEngine
from oneeye.vision.images import load_image
from tests.conftest import PhotoLoader, side_by_side


@pytest.mark.slow
def test_a_photo_s_one_face_is_the_engine_s_enrolment_face(
    face_photos: Path, face_engine: FaceEngine
) -> None:
    path = face_photos / "obama.jpg"
    expected = face_engine.enrolment_face(load_image(path))

    from_file = read_enrolment_face(face_engine, path)
    from_bytes = read_enrolment_face(face_engine, path.read_bytes(), "obama.jpg")

    for found in (from_file, from_bytes):
        assert found.face.box == expected.box
        assert found.face.embedding.shape == (128,)
        np.testing.assert_array_equal(found.face.embedding, expected.embedding)
        assert found.image.shape == load_image(path).shape
    same_person = read_enrolment_face(face_engine, face_photos / "obama2.jpg").face
    other_person = read_enrolment_face(face_engine, face_photos / "biden.jpg").face
    assert np.linalg.norm(same_person.embedding - expected.embedding) < np.linalg.norm(
        other_person.embedding - expected.embedding
    )


@pytest.mark.slow
def test_a_shrunk_photo_searched_cheaply_still_gives_its_face(
    face_photos: Path, face_engine: FaceEngine
) -> None:
    data = (face_photos / "obama.jpg").read_bytes()
    found = read_enrolment_face(face_engine, data, "obama.jpg", max_side=300, thorough=False)
    assert max(found.image.shape[:2]) == 300
    assert 0 <= found.face.box.left < found.face.box.right <= 300
    assert found.face.embedding.shape == (128,)


@pytest.mark.slow
def test_unusable_photos_are_refused_naming_the_file_and_the_problem(
    tmp_path: Path, face_photos: Path, load_photo: PhotoLoader, face_engine: FaceEngine
) -> None:
    two = encode_jpeg(side_by_side(load_photo("obama.jpg"), load_photo("biden.jpg")))
    blank = encode_jpeg(np.full((400, 400, 3), 128, dtype=np.uint8))
    cases: list[tuple[bytes, type[Exception], str]] = [
        (b"hello, I am not a photo", ImageError, r"^x\.jpg: not an image"),
        ((face_photos / "obama.jpg").read_bytes()[:5000], ImageError, r"^x\.jpg: .*truncated"),
        (blank, FaceError, r"^x\.jpg: no face found in the 400x400 photo$"),
        (two, FaceError, r"^x\.jpg: found 2 faces; an enrolment photo must show exactly one"),
    ]
    for data, error, message in cases:
        with pytest.raises(error, match=message):
            read_enrolment_face(face_engine, data, "x.jpg")
        path = tmp_path / "x.jpg"
        path.write_bytes(data)
        with pytest.raises(error) as raised:
            read_enrolment_face(face_engine, path)
        # A file is named once, by its path.
        assert str(raised.value).startswith(f"{path}: ")
        assert str(raised.value).count(str(path)) == 1
    with pytest.raises(ImageError, match=r"^x\.jpg: .*30 bytes"):
        read_enrolment_face(face_engine, b"\xff\xd8" + bytes(40), "x.jpg", max_bytes=30)
    with pytest.raises(ImageError, match="file not found"):
        read_enrolment_face(face_engine, tmp_path / "missing.jpg")


def test_decoding_without_a_name_leaves_the_message_alone() -> None:
    with pytest.raises(ImageError, match=r"^not an image"):
        decode_photo(b"hello, I am not a photo", max_pixels=1_000_000)
