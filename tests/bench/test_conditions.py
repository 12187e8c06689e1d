"""The clip conditions: each keeps the frame's shape, repeats itself for a seed, and changes
the frame the way its name says; a clip under any condition has the plain clip's people."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.lib.clips import LabelledClip, lfw_clip
from bench.lib.conditions import (
    CONDITIONS,
    DARK_EXPOSURE,
    DIM_EXPOSURE,
    dim,
    frame_condition,
    jpeg,
    motion_blur,
    turn_face,
)
from oneeye.types import RGBImage
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture(scope="module")
def photo(load_photo: PhotoLoader) -> RGBImage:
    return load_photo("obama.jpg")


def grey_of(image: RGBImage) -> np.ndarray:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), dtype=np.float64)


@pytest.mark.parametrize("name", CONDITIONS)
def test_every_frame_condition_keeps_the_shape_and_repeats_for_a_seed(
    name: str, photo: RGBImage
) -> None:
    change = frame_condition(name, face_px=110, seed=3)
    first, again = change(7, photo.copy()), change(7, photo.copy())
    assert first.shape == photo.shape
    assert first.dtype == np.uint8
    assert np.array_equal(first, again)


def test_dim_is_dim_and_noisy_and_dark_is_darker(photo: RGBImage) -> None:
    level = grey_of(photo).mean()
    dimmed, darker = grey_of(dim(photo, 0)), grey_of(dim(photo, 0, DARK_EXPOSURE))
    assert dimmed.mean() < 0.3 * level  # about DIM_EXPOSURE of the light, bent further down
    assert darker.mean() < 0.6 * dimmed.mean()
    # Sensor noise: a flat patch of the photo gets a spread it did not have, and two frames
    # (two seeds) of the same scene differ.
    assert not np.array_equal(dim(photo, 0), dim(photo, 1))
    assert DARK_EXPOSURE < DIM_EXPOSURE


def test_dim_refuses_an_exposure_outside_zero_to_one(photo: RGBImage) -> None:
    with pytest.raises(ValueError, match="exposure"):
        dim(photo, 0, 0.0)


def test_motion_blur_smears_sideways_only() -> None:
    bars = np.zeros((40, 40, 3), np.uint8)
    bars[:, ::8] = 255  # vertical bars: horizontal detail only
    bars[::8, :] = 255  # and horizontal bars: vertical detail only
    blurred = motion_blur(bars, 8).astype(np.float64)
    # Across the columns the vertical bars are smeared flat; down the rows the horizontal bars
    # stay as sharp as they were.
    assert np.abs(np.diff(blurred[4, 8:-8], axis=0)).max() < 5  # away from the edges
    assert np.abs(np.diff(blurred[:, 4], axis=0)).max() > 200
    assert np.array_equal(motion_blur(bars, 1), bars)
    with pytest.raises(ValueError, match="length_px"):
        motion_blur(bars, 0)


def test_jpeg_at_low_quality_loses_detail_but_keeps_the_picture(photo: RGBImage) -> None:
    low, high = jpeg(photo, 25).astype(np.float64), jpeg(photo, 95).astype(np.float64)
    error_low = np.abs(low - photo).mean()
    error_high = np.abs(high - photo).mean()
    assert error_high < error_low < 12
    with pytest.raises(ValueError, match="quality"):
        jpeg(photo, 0)


def test_turn_face_narrows_the_face_about_the_nose(engine: FaceEngine, photo: RGBImage) -> None:
    face = engine.enrolment_face(photo)
    turned = turn_face(photo, face.box, face.landmarks, 40.0)
    assert turned.photo.shape == photo.shape
    assert turned.box.width < 0.9 * face.box.width
    assert abs(turned.box.height - face.box.height) < 0.25 * face.box.height
    nose_x = face.landmarks[4, 0]
    assert turned.box.left <= nose_x <= turned.box.right
    # Turned the other way, the face narrows about as much (the nose is not quite central).
    other = turn_face(photo, face.box, face.landmarks, -40.0)
    assert abs(other.box.width - turned.box.width) <= 0.05 * face.box.width
    # The warped photo still has a face where the box says, narrower than before.
    found = engine.enrolment_face(turned.photo)
    assert found.box.iou(turned.box) > 0.4
    with pytest.raises(ValueError, match="landmarks"):
        turn_face(photo, face.box, face.landmarks[:4], 40.0)
    with pytest.raises(ValueError, match="degrees"):
        turn_face(photo, face.box, face.landmarks, 85.0)


def test_frame_condition_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown condition 'fog'"):
        frame_condition("fog", 100, 0)


@pytest.mark.parametrize("condition", ["turned", "dim"])
def test_a_clip_under_a_condition_has_the_plain_clips_people_and_paths(
    engine: FaceEngine, tiny_lfw: Path, condition: str
) -> None:
    def make(name: str) -> LabelledClip:
        return lfw_clip(
            engine,
            tiny_lfw / "images",
            people=2,
            strangers=1,
            width=480,
            height=360,
            fps=8.0,
            face_px=(100, 100),
            seed=1,
            condition=name,
        )

    plain, changed = make("normal"), make(condition)
    assert changed.people == plain.people
    assert [v.person for v in changed.visits] == [v.person for v in plain.visits]
    assert len(changed.frames) == len(plain.frames)
    middle = len(plain.frames) // 3
    if condition == "dim":
        assert changed.truth == plain.truth
        assert grey_of(changed.frames[middle]).mean() < 0.3 * grey_of(plain.frames[middle]).mean()
    else:
        widths = [
            (a.box[1] - a.box[3], b.box[1] - b.box[3])
            for fa, fb in zip(plain.truth, changed.truth, strict=True)
            for a, b in zip(fa, fb, strict=False)
            if a.person == b.person
        ]
        assert widths
        assert all(turned < straight for straight, turned in widths)


def test_lfw_clip_refuses_an_unknown_condition(engine: FaceEngine, tiny_lfw: Path) -> None:
    with pytest.raises(ValueError, match="unknown condition"):
        lfw_clip(
            engine,
            tiny_lfw / "images",
            people=1,
            strangers=0,
            width=320,
            height=240,
            condition="fog",
        )
