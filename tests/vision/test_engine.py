"""FaceEngine on real photos: detection, the enrolment fallback chain, embeddings, quality."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from oneeye.config import EngineSettings
from oneeye.errors import FaceError
from oneeye.types import EMBEDDING_SIZE, Detection, Face, RGBImage
from oneeye.vision.detectors import ScalePlan
from oneeye.vision.engine import (
    CNN_MAX_WORK_PIXELS,
    HOG_MAX_WORK_PIXELS,
    FaceEngine,
    bounded,
)
from tests.conftest import PhotoLoader, blurred, shrunk, side_by_side

SAME_PERSON_MAX = 0.45
DIFFERENT_PERSON_MIN = 0.5


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture(scope="module")
def enrolled(engine: FaceEngine, load_photo: PhotoLoader) -> dict[str, Face]:
    names = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]
    return {name: engine.enrolment_face(load_photo(name)) for name in names}


def distance(a: Face, b: Face) -> float:
    return float(np.linalg.norm(a.embedding - b.embedding))


def test_embeddings_are_unit_length_128_floats(enrolled: dict[str, Face]) -> None:
    for face in enrolled.values():
        assert face.embedding.shape == (EMBEDDING_SIZE,)
        assert face.embedding.dtype == np.float32
        assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("other", ["obama2.jpg", "obama3.jpg"])
def test_obama_matches_obama(enrolled: dict[str, Face], other: str) -> None:
    assert distance(enrolled["obama.jpg"], enrolled[other]) < SAME_PERSON_MAX


@pytest.mark.parametrize("obama", ["obama.jpg", "obama2.jpg", "obama3.jpg"])
def test_obama_does_not_match_biden(enrolled: dict[str, Face], obama: str) -> None:
    assert distance(enrolled[obama], enrolled["biden.jpg"]) > DIFFERENT_PERSON_MIN


def test_box_is_top_right_bottom_left_around_the_face(enrolled: dict[str, Face]) -> None:
    box = enrolled["obama.jpg"].box
    # face_recognition's own test expects (142, 617, 409, 349) for this photo at upsample 1.
    assert box.as_tuple() == pytest.approx((142, 617, 409, 349), abs=40)
    assert box.top < box.bottom
    assert box.left < box.right


def test_two_photos_side_by_side_give_two_faces(
    engine: FaceEngine, load_photo: PhotoLoader, enrolled: dict[str, Face]
) -> None:
    canvas = side_by_side(load_photo("obama.jpg"), load_photo("biden.jpg"))
    faces = sorted(engine.faces(canvas), key=lambda f: f.box.left)
    assert len(faces) == 2
    assert distance(faces[0], enrolled["obama.jpg"]) < 0.1
    assert distance(faces[1], enrolled["biden.jpg"]) < 0.1
    with pytest.raises(FaceError, match="found 2 faces"):
        engine.enrolment_face(canvas)


def test_partial_face_is_found_and_still_obama(
    engine: FaceEngine, load_photo: PhotoLoader, enrolled: dict[str, Face]
) -> None:
    face = engine.enrolment_face(load_photo("obama_partial_face.jpg"))
    assert face.box.left == 0  # the face is cut by the left edge
    assert distance(face, enrolled["obama.jpg"]) < SAME_PERSON_MAX


def test_no_face_is_a_clear_error(engine: FaceEngine) -> None:
    blank = np.full((480, 640, 3), 200, dtype=np.uint8)
    with pytest.raises(FaceError, match=r"no face found in the 640x480 photo"):
        engine.enrolment_face(blank)


def test_face_too_small_to_enrol(engine: FaceEngine, load_photo: PhotoLoader) -> None:
    photo = load_photo("obama.jpg")
    tiny = shrunk(photo, 9)
    with pytest.raises(FaceError, match=r"only \d+ pixels wide; enrolment needs at least 40"):
        engine.enrolment_face(tiny)


def test_background_face_does_not_block_enrolment(
    engine: FaceEngine, load_photo: PhotoLoader, enrolled: dict[str, Face]
) -> None:
    biden = load_photo("biden.jpg")
    small = shrunk(biden, 4)
    canvas = side_by_side(load_photo("obama.jpg"), small)
    face = engine.enrolment_face(canvas)
    assert distance(face, enrolled["obama.jpg"]) < 0.1


def test_small_faces_need_the_scale_planned_for_them(
    engine: FaceEngine, load_photo: PhotoLoader
) -> None:
    photo = load_photo("obama.jpg")  # face about 260 px
    small = shrunk(photo, 5)
    assert engine.detect(small, min_face_px=100) == []
    found = engine.detect(small, min_face_px=40)
    assert len(found) == 1
    assert found[0].detector == "hog-up1"


def turned(image: RGBImage, degrees: float) -> RGBImage:
    """The image rotated about its centre (edges repeated, so no new straight lines)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return np.asarray(
        cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE),
        dtype=np.uint8,
    )


def test_the_cnn_fallback_finds_a_face_smaller_than_its_window(
    engine: FaceEngine, load_photo: PhotoLoader
) -> None:
    # A face of about 45 pixels, tilted 45 degrees and soft: HOG misses it at every stage,
    # and the MMOD network (an 80-pixel window) finds it only upsampled once. Planned for a
    # 40-pixel window, the fallback ran it at scale 1 and refused the photo (issue 13).
    photo = blurred(turned(shrunk(load_photo("obama.jpg"), 6), 45), 2.5)
    found = engine.detect_with_fallback(photo)
    assert [d.detector for d in found] == ["cnn-up1"]
    assert 40 <= found[0].box.width < 80


def test_quality_prefers_sharp_faces(engine: FaceEngine, load_photo: PhotoLoader) -> None:
    photo = load_photo("obama.jpg")
    soft = blurred(photo, 6)
    sharp_face = engine.faces(photo)[0]
    blurred_faces = engine.faces(soft, fallback=True)
    assert blurred_faces, "the blurred face should still be found"
    assert blurred_faces[0].quality.sharpness < sharp_face.quality.sharpness / 4
    assert blurred_faces[0].quality.score < sharp_face.quality.score


def test_mirror_averaging_makes_a_face_and_its_mirror_image_agree(
    load_photo: PhotoLoader,
) -> None:
    photo = load_photo("obama.jpg")
    flipped = np.ascontiguousarray(photo[:, ::-1])
    gaps = {}
    for mirror in (False, True):
        engine = FaceEngine(EngineSettings(mirror=mirror))
        face, mirrored = engine.faces(photo)[0], engine.faces(flipped)[0]
        gaps[mirror] = float(np.linalg.norm(face.embedding - mirrored.embedding))
    # Detection and alignment differ a little between the two images, so not exactly 0.
    assert gaps[True] < 0.08
    assert gaps[True] < gaps[False]


def test_jitter_is_deterministic(load_photo: PhotoLoader) -> None:
    engine = FaceEngine(EngineSettings(mirror=False, jitter=2))
    photo = load_photo("obama2.jpg")
    first = engine.faces(photo, fallback=True)[0].embedding
    second = engine.faces(photo, fallback=True)[0].embedding
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("side", [250, 2048, 6300])
def test_no_enrolment_stage_looks_at_more_pixels_than_its_bound(
    engine: FaceEngine, side: int
) -> None:
    # A blank 6300x6300 PNG enrolled by an admin took 1.6 GB and minutes: the upsampled HOG
    # and the CNN grew with the photo. Each stage now has a bound on what it looks at.
    image = np.zeros((side, side, 3), dtype=np.uint8)
    stages = engine.enrolment_stages(image)
    assert [s.detector for s in stages][-1] == "cnn"
    for stage in stages:
        scale = stage.plan.factor * 2**stage.plan.upsample
        limit = CNN_MAX_WORK_PIXELS if stage.detector == "cnn" else HOG_MAX_WORK_PIXELS
        assert side * side * scale * scale <= limit * 1.0001


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (ScalePlan(1.0, 1), ScalePlan(0.5477, 0)),  # the CNN's stage on a 1000x1000 photo
        (ScalePlan(0.5, 2), ScalePlan(0.5477, 0)),
        (ScalePlan(1.0, 2), ScalePlan(0.5477, 0)),
        (ScalePlan(1.0, 3), ScalePlan(0.5477, 0)),
        (ScalePlan(0.4, 0), ScalePlan(0.4, 0)),  # within the bound: as it was
    ],
)
def test_a_bound_never_shrinks_a_photo_only_to_upsample_it(
    plan: ScalePlan, expected: ScalePlan
) -> None:
    # Shrunk to 0.27 and doubled, a photo loses the detail that scale 0.55 keeps, for the
    # same pixels: the bound drops the doublings it leaves no room for.
    image = np.zeros((1000, 1000, 3), dtype=np.uint8)
    fitted = bounded(plan, image, 300_000)
    assert fitted.upsample == expected.upsample
    assert fitted.factor == pytest.approx(expected.factor, abs=1e-4)


def test_a_large_photos_stages_are_not_repeated(engine: FaceEngine) -> None:
    # At 12 megapixels the bound leaves HOG's two finest stages the same scale: one runs.
    stages = engine.enrolment_stages(np.zeros((3000, 4000, 3), dtype=np.uint8))
    assert len(set(stages)) == len(stages)
    assert [s.plan.upsample for s in stages] == [0, 0, 0]


def test_a_small_photos_stages_are_not_shrunk(engine: FaceEngine) -> None:
    image = np.zeros((250, 250, 3), dtype=np.uint8)
    for stage in engine.enrolment_stages(image):
        assert bounded(stage.plan, image, 10**12) == stage.plan
    cnn = engine.enrolment_stages(image)[-1].plan
    assert cnn.factor == 1.0  # LFW-sized photos keep the scale they were measured at


def test_enrolment_photos_get_enrol_jitter_more_views_than_camera_frames(
    load_photo: PhotoLoader,
) -> None:
    # Issue 13: the template of an enrolment photo averages enrol_jitter jittered copies of
    # the chip and of its mirror; a camera frame (encode) is encoded with `jitter` alone.
    photo = load_photo("obama.jpg")
    plain = FaceEngine(EngineSettings(enrol_jitter=0))
    jittery = FaceEngine(EngineSettings(enrol_jitter=4))
    template = jittery.enrolment_face(photo)
    same_box = jittery.encode(photo, [same_box_detection(jittery, photo)])[0]
    assert same_box.box == template.box
    # Camera frames: no extra views, the same embedding as an engine without enrol_jitter.
    np.testing.assert_allclose(same_box.embedding, plain.enrolment_face(photo).embedding, atol=1e-6)
    # Enrolment: the 4 + 4 jittered views move the template, a little, and deterministically.
    moved = float(np.linalg.norm(template.embedding - same_box.embedding))
    assert 1e-4 < moved < 0.1, moved
    again = jittery.enrolment_face(photo)
    np.testing.assert_array_equal(again.embedding, template.embedding)
    assert abs(float(np.linalg.norm(template.embedding)) - 1.0) < 1e-5
    with_extra = jittery.encode(photo, [same_box_detection(jittery, photo)], extra_jitter=4)[0]
    np.testing.assert_allclose(with_extra.embedding, template.embedding, atol=1e-6)
    with pytest.raises(ValueError, match="extra_jitter must be >= 0, got -1"):
        jittery.encode(photo, [same_box_detection(jittery, photo)], extra_jitter=-1)


def same_box_detection(engine: FaceEngine, photo: RGBImage) -> Detection:
    """The detection an enrolment of ``photo`` encodes (one face)."""
    return engine.detect_with_fallback(photo)[0]
