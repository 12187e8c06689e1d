"""The int8 and bfloat16 backends' candidates re-scored in float32 (``confirm``): the boxes are
float32's (and dlib's), where the fast scores alone move a face's box by a step of the pyramid."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from oneeye.vision.mmod import MmodDetector
from oneeye.vision.mmod import detector as detector_module
from oneeye.vision.mmod.confirm import (
    CROP_STEP_CELLS,
    CropPlan,
    _merge,
    _stepped,
    confirm,
)
from oneeye.vision.mmod.pyramid import tiled_layout, tiled_pyramid, upsample
from oneeye.vision.mmod.runtimes import OnnxRuntimeScores, OpenVinoScores, has_bfloat16
from oneeye.vision.resnet.model import ConvLayer
from tests.conftest import PhotoLoader, shrunk
from tests.vision.mmod.conftest import needs_bfloat16
from tests.vision.mmod.test_detector import dlib_boxes


def corners(boxes: list) -> list[tuple[int, int, int, int]]:  # type: ignore[type-arg]
    return [(b.left, b.top, b.right, b.bottom) for b in boxes]


def test_the_crop_plan_follows_the_network(detector: MmodDetector) -> None:
    # Three 5x5 stride-2 convolutions without padding read 29 pixels per cell, 8 apart; the
    # size-keeping 5x5, 5x5, 5x5 and 9x9 layers spoil 2 + 2 + 2 + 4 cells at a cut edge.
    assert CropPlan.of(detector.model) == CropPlan(scale=8, extent=29, spoiled=10)

    layers = list(detector.model.layers)
    first = next(layer for layer in layers if isinstance(layer, ConvLayer))
    layers[layers.index(first)] = dataclasses.replace(first, padding=(1, 1))
    assert CropPlan.of(dataclasses.replace(detector.model, layers=tuple(layers))) is None


def test_crops_merge_only_where_one_costs_no_more() -> None:
    assert _merge([(0, 9, 0, 9), (2, 11, 0, 9)]) == [(0, 11, 0, 9)]
    assert _merge([(0, 9, 0, 9), (5, 14, 5, 14)]) == [(0, 9, 0, 9), (5, 14, 5, 14)]
    assert _merge([(0, 9, 0, 9), (30, 39, 30, 39)]) == [(0, 9, 0, 9), (30, 39, 30, 39)]


def test_confirmed_scores_are_float32s_wherever_a_face_may_be(
    load_photo: PhotoLoader, detector: MmodDetector
) -> None:
    image = upsample(shrunk(load_photo("obama.jpg"), 6))
    pyramid = detector.model.input
    layout = tiled_layout(image.shape[0], image.shape[1], pyramid.padding, pyramid.outer_padding)
    tensor = tiled_pyramid(image, pyramid.means, layout)
    exact = OnnxRuntimeScores(detector.model, 1)
    true = exact.run(tensor)[0]
    backend = OpenVinoScores(detector.model, 1)  # the fastest precision here
    fast = backend.run(tensor)[0]
    plan = CropPlan.of(detector.model)
    assert plan is not None

    confirmed, pixels = confirm(tensor, fast, plan, exact, 0.0, max(backend.margin, 0.2))

    near = true > -max(backend.margin, 0.2) / 2
    assert near.any()
    assert np.abs(confirmed[near] - true[near]).max() < 1e-4
    assert 0 < pixels < tensor.shape[2] * tensor.shape[3] / 2, "only crops are scored again"
    if has_bfloat16():
        assert np.abs(fast[near] - true[near]).max() > 1e-3, "the fast scores were rounded"


@needs_bfloat16
@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_the_fast_pass_finds_dlibs_box_where_its_own_scores_move_it(
    load_photo: PhotoLoader, model_path: Path, precision: str
) -> None:
    # At this size the face's best cell and its neighbour score within the fast pass's rounding.
    image = shrunk(load_photo("obama.jpg"), 6)
    fast = MmodDetector(model_path, "openvino", num_threads=1, precision=precision)
    unconfirmed = MmodDetector(model_path, "openvino", num_threads=1, precision=precision)
    unconfirmed._exact = None

    found = fast.detect(image, 1)

    expected = dlib_boxes(model_path, image, 1)
    assert corners(found) == corners(expected)
    assert [b.score for b in found] == pytest.approx([b.score for b in expected], abs=1e-3)
    assert corners(unconfirmed.detect(image, 1)) != corners(expected)
    assert fast.rescored_pixels > 0


def test_auto_takes_openvino_only_where_it_computes_in_bfloat16(
    model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = MmodDetector(model_path, num_threads=1)
    assert shipped.backend == ("openvino" if has_bfloat16() else "onnxruntime")
    assert shipped.precision == ("int8" if has_bfloat16() else "f32")
    monkeypatch.setattr(detector_module, "has_bfloat16", lambda: False)
    assert MmodDetector(model_path, num_threads=1).backend == "onnxruntime"


def test_a_float32_backend_is_not_confirmed(model_path: Path, load_photo: PhotoLoader) -> None:
    plain = MmodDetector(model_path, "onnxruntime", num_threads=1)
    assert plain.detect(shrunk(load_photo("obama.jpg"), 6), 1)
    assert plain.rescored_pixels == 0


@needs_bfloat16
def test_openvino_confirms_in_its_own_float32(model_path: Path) -> None:
    fast = MmodDetector(model_path, "openvino", num_threads=1)

    assert fast._exact is not None
    _, exact = fast._exact
    assert isinstance(exact, OpenVinoScores)
    assert exact.precision == "f32"
    assert not exact.approximate


def test_crops_come_in_steps_of_four_cells_inside_the_output() -> None:
    assert CROP_STEP_CELLS == 4
    assert _stepped((3, 9, 5, 5), 100, 100) == (3, 10, 5, 8)
    assert _stepped((95, 99, 0, 3), 100, 100) == (92, 99, 0, 3), "moved back inside"
    assert _stepped((0, 4, 0, 4), 6, 100) == (0, 5, 0, 7), "an output too small: all of it"
