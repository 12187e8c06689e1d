"""``oneeye.compat``'s own promises, beyond face_recognition's suite: its encodings are dlib's
(so encodings stored by face_recognition users still compare), photos come out upright, a
wrong model name is an error, and the 68-point model's licence note is given once."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image

from oneeye import compat
from oneeye.compat import api
from oneeye.vision.models import ModelPaths

pytestmark = pytest.mark.slow


def dlib_s_own_encoding(image: np.ndarray, location: tuple[int, int, int, int]) -> np.ndarray:
    """What face_recognition computes for a face: dlib's 5-point shape, dlib's descriptor."""
    paths = ModelPaths.locate()
    top, right, bottom, left = location
    shape = dlib.shape_predictor(str(paths.landmarks_5))(
        image, dlib.rectangle(left, top, right, bottom)
    )
    model = dlib.face_recognition_model_v1(str(paths.resnet))
    return np.array(model.compute_face_descriptor(image, shape, 1))


def test_the_package_gives_the_api_s_functions() -> None:
    assert compat.face_encodings is api.face_encodings
    assert set(compat.__all__) == set(api.__all__)
    with pytest.raises(AttributeError, match="_raw_face_locations"):
        _ = compat._raw_face_locations


def test_encodings_are_dlib_s_descriptor(face_photos: Path) -> None:
    image = compat.load_image_file(face_photos / "obama.jpg")
    (location,) = compat.face_locations(image)
    (encoding,) = compat.face_encodings(image, [location])
    assert encoding.dtype == np.float64
    assert encoding.shape == (128,)
    reference = dlib_s_own_encoding(image, location)
    assert np.max(np.abs(encoding - reference)) < 1e-4
    assert compat.face_distance([reference], encoding)[0] < 1e-3
    # Not unit length: dlib's raw descriptor, the scale tolerance 0.6 was set for.
    assert abs(float(np.linalg.norm(encoding)) - float(np.linalg.norm(reference))) < 1e-4


def test_jittered_encodings_stay_close_and_repeat(face_photos: Path) -> None:
    image = compat.load_image_file(face_photos / "obama.jpg")
    plain = compat.face_encodings(image)[0]
    jittered = compat.face_encodings(image, num_jitters=3)[0]
    assert 0.0 < compat.face_distance([plain], jittered)[0] < 0.2
    np.testing.assert_array_equal(jittered, compat.face_encodings(image, num_jitters=3)[0])


def test_a_phone_photo_comes_out_upright(face_photos: Path) -> None:
    """EXIF orientation 6 (turned a quarter): face_recognition gave it lying on its side."""
    upright = compat.load_image_file(face_photos / "obama.jpg")
    turned = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = io.BytesIO()
    turned.save(data, "JPEG", quality=95, exif=exif.tobytes())
    data.seek(0)
    image = compat.load_image_file(data)
    assert image.shape == upright.shape
    assert len(compat.face_locations(image)) == 1


def test_grey_mode(face_photos: Path) -> None:
    grey = compat.load_image_file(face_photos / "obama.jpg", mode="L")
    assert grey.shape == (1137, 910)
    assert compat.face_locations(grey) == [(142, 617, 409, 349)]
    assert len(compat.face_encodings(grey)) == 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda img: compat.face_locations(img, model="CNN"), "unknown face detection model"),
        (lambda img: compat.face_landmarks(img, model="medium"), "unknown landmarks model"),
        (lambda img: compat.face_encodings(img, model="big"), "unknown landmarks model"),
        (lambda img: compat.face_locations(img, number_of_times_to_upsample=-1), ">= 0"),
        (lambda img: compat.face_locations(img.astype(np.float32)), "dtype uint8"),
        (lambda img: compat.face_encodings(img, [(1, 2, 3)]), "got 3 values"),
        (lambda img: compat.batch_face_locations([img], batch_size=0), "batch_size"),
    ],
)
def test_a_wrong_argument_is_an_error_not_a_default(
    face_photos: Path, call: object, error: str
) -> None:
    image = compat.load_image_file(face_photos / "obama.jpg")
    assert callable(call)
    with pytest.raises(ValueError, match=error):
        call(image)


def test_a_wrong_image_mode_is_an_error(face_photos: Path) -> None:
    with pytest.raises(ValueError, match="unknown image mode 'RGBA'"):
        compat.load_image_file(face_photos / "obama.jpg", mode="RGBA")


def test_distances_of_encodings_of_different_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match=r"shapes \(2, 128\) and \(64,\)"):
        compat.face_distance(np.zeros((2, 128)), np.zeros(64))


def test_the_68_point_licence_note_is_given_once(
    face_photos: Path, caplog: pytest.LogCaptureFixture
) -> None:
    image = compat.load_image_file(face_photos / "obama.jpg")
    models = api._shared()
    models.noted_68 = False
    with caplog.at_level(logging.WARNING, logger="oneeye.compat.api"):
        compat.face_landmarks(image, model="small")
        compat.face_encodings(image)
        assert not caplog.records
        compat.face_landmarks(image)
        compat.face_encodings(image, model="large")
    notes = [r for r in caplog.records if "iBUG 300-W" in r.getMessage()]
    assert len(notes) == 1
    assert "excludes commercial use" in notes[0].getMessage()
