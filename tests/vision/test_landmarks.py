"""One landmark model on its own: its points, its chips, and a clear error for a bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oneeye.errors import ModelError
from oneeye.types import FaceBox
from oneeye.vision.landmarks import LandmarkModel
from oneeye.vision.models import ModelPaths
from tests.conftest import PhotoLoader

OBAMA = FaceBox(top=142, right=617, bottom=409, left=349)
"""HOG's box of the face in obama.jpg (upsampled once)."""


def test_five_and_sixty_eight_points(load_photo: PhotoLoader) -> None:
    photo = load_photo("obama.jpg")
    paths = ModelPaths.locate()
    assert paths.landmarks_68 is not None

    (five,) = LandmarkModel(paths.landmarks_5).points(photo, [OBAMA])
    (sixty_eight,) = LandmarkModel(paths.landmarks_68).points(photo, [OBAMA])

    assert five.shape == (5, 2)
    assert sixty_eight.shape == (68, 2)
    assert five.dtype == sixty_eight.dtype == np.int32
    inside = (sixty_eight[:, 0] >= OBAMA.left - 20) & (sixty_eight[:, 0] <= OBAMA.right + 20)
    assert inside.all()


def test_chips_one_per_box_and_none_for_none(load_photo: PhotoLoader) -> None:
    photo = load_photo("obama.jpg")
    model = LandmarkModel(ModelPaths.locate().landmarks_5)

    shaped = model.shaped(photo, [OBAMA, OBAMA])
    empty = model.shaped(photo, [])

    assert shaped.chips.shape == (2, 150, 150, 3)
    assert shaped.chips.dtype == np.uint8
    np.testing.assert_array_equal(shaped.chips[0], shaped.chips[1])
    assert len(shaped.points) == 2
    assert empty.chips.shape == (0, 150, 150, 3)
    assert empty.points == ()


def test_a_file_that_is_not_a_model_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "shape_predictor.dat"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load the landmark model"):
        LandmarkModel(bad)
