"""Light normalisation: dark frames are brightened, lit ones left alone, and on a real photo
taken down to a dark room's level HOG finds the face only after the lift."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from oneeye.types import RGBImage
from oneeye.video.scan import FaceFinder
from oneeye.vision.engine import FaceEngine
from oneeye.vision.light import (
    DARK_LEVEL,
    TARGET_LEVEL,
    LightNormaliser,
    lift_table,
    mean_level,
)
from tests.conftest import PhotoLoader


def darkened(image: RGBImage, exposure: float, seed: int = 0) -> RGBImage:
    """The photo as a cheap sensor in a dark room gives it: ``exposure`` of the light, a bent
    tone curve, shot and read noise."""
    rng = np.random.default_rng(seed)
    light = 255.0 * exposure * (image.astype(np.float64) / 255.0) ** 1.4
    noisy = light + np.sqrt(0.6 * light + 6.25) * rng.standard_normal(image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def grey_of(image: RGBImage) -> npt.NDArray[np.uint8]:
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


def test_lift_table_is_a_rising_curve_that_reaches_the_target() -> None:
    table = lift_table(20.0)
    assert table.shape == (256,)
    assert table.dtype == np.uint8
    assert np.all(np.diff(table.astype(int)) >= 0)
    assert table[0] == 0
    assert table[255] == 255
    assert abs(int(table[20]) - TARGET_LEVEL) <= 2
    assert np.array_equal(lift_table(TARGET_LEVEL + 1), np.arange(256))


def test_a_lit_frame_is_passed_on_untouched(load_photo: PhotoLoader) -> None:
    image = load_photo("obama.jpg")
    grey = grey_of(image)
    assert mean_level(grey) > DARK_LEVEL
    for mode in ("lift", "clahe"):
        light = LightNormaliser(mode)
        assert light.grey(grey) is grey
        assert light.image(image, grey) is image


@pytest.mark.parametrize("mode", ["lift", "clahe"])
def test_a_dark_frame_is_brightened_and_off_leaves_it(load_photo: PhotoLoader, mode: str) -> None:
    image = darkened(load_photo("obama.jpg"), 0.12)
    grey = grey_of(image)
    assert mean_level(grey) < 15
    assert LightNormaliser("off").grey(grey) is grey
    light = LightNormaliser(mode)  # type: ignore[arg-type]
    assert light.is_dark(grey)
    brighter, colour = light.grey(grey), light.image(image, grey)
    assert brighter.shape == grey.shape
    assert colour.shape == image.shape
    assert mean_level(brighter) > 3 * mean_level(grey)
    assert mean_level(grey_of(colour)) > 3 * mean_level(grey)
    if mode == "lift":
        assert abs(mean_level(brighter) - TARGET_LEVEL) < 30


@pytest.mark.parametrize(
    ("mode", "dark_level", "error"),
    [("gamma", DARK_LEVEL, "light mode must be one of off, lift, clahe"), ("lift", 300.0, "0-255")],
)
def test_the_normaliser_refuses_what_it_does_not_know(
    mode: str, dark_level: float, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        LightNormaliser(mode, dark_level)  # type: ignore[arg-type]


@pytest.mark.parametrize("photo", ["biden.jpg", "obama3.jpg"])
def test_hog_misses_a_face_in_a_dark_photo_and_finds_it_after_the_lift(
    engine: FaceEngine, load_photo: PhotoLoader, photo: str
) -> None:
    image = load_photo(photo)
    finder = FaceFinder(engine.new_detector, 40, 1)
    (lit,) = finder.scan(grey_of(image))
    dark = grey_of(darkened(image, 0.12))
    assert finder.scan(dark) == []  # the face is there, at 7-12 grey levels, under the noise
    (found,) = finder.scan(LightNormaliser("lift").grey(dark))
    assert found.box.iou(lit.box) > 0.7
    finder.close()
