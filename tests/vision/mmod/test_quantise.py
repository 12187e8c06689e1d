"""The detector's int8 first pass (``oneeye.vision.mmod.quantise``): its ranges come out of the
calibration photos again, it runs in int8, it names the network it was measured on, and its
scores stay well inside the margin ``confirm`` re-scores."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from oneeye.vision.mmod import MmodDetector, MmodModel, read_mmod_model
from oneeye.vision.mmod.graph import build_onnx
from oneeye.vision.mmod.pyramid import tiled_layout, tiled_pyramid, upsample
from oneeye.vision.mmod.quantise import (
    INT8_MARGIN,
    INT8_RANGES,
    input_range,
    network_digest,
    quantise,
    ranges_for,
)
from oneeye.vision.mmod.runtimes import OnnxRuntimeScores, OpenVinoScores, has_bfloat16
from oneeye.vision.resnet.model import ConvLayer
from tests.conftest import PhotoLoader, shrunk
from tests.vision.mmod.conftest import needs_bfloat16


def a_changed_copy(detector: MmodDetector) -> MmodModel:
    """The shipped network with one weight moved."""
    layers = list(detector.model.layers)
    first = next(layer for layer in layers if isinstance(layer, ConvLayer))
    weights = first.weights.copy()
    weights.flat[0] += 0.01
    layers[layers.index(first)] = dataclasses.replace(first, weights=weights)
    return dataclasses.replace(detector.model, layers=tuple(layers))


def test_the_shipped_ranges_come_out_of_the_calibration_photos(
    face_photos: Path, detector: MmodDetector
) -> None:
    pytest.importorskip("openvino")
    script = Path(__file__).resolve().parents[3] / "scripts" / "mmod_int8_ranges.py"
    done = subprocess.run(
        [sys.executable, str(script), str(face_photos)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    printed = done.stdout
    assert "# 16 pyramid tensors" in printed
    assert f'"{network_digest(detector.model)}": (' in printed
    measured = [
        tuple(float(v) for v in line.strip(" (),").split(", "))
        for line in printed.splitlines()
        if line.startswith("        (")
    ]
    shipped = INT8_RANGES[network_digest(detector.model)]
    assert np.allclose(measured, shipped, rtol=1e-3, atol=1e-3), (
        "the ranges moved: put the script's new ones in INT8_RANGES",
        printed,
    )


def test_the_first_range_is_the_pyramids(detector: MmodDetector) -> None:
    low, high = input_range(detector.model)
    means = detector.model.input.means
    assert low == pytest.approx(-max(means) / 256)
    assert high == pytest.approx((255 - min(means)) / 256)
    ranges = ranges_for(detector.model)
    assert ranges is not None
    assert ranges[0] == (low, high)
    assert len(ranges) == 6, "every convolution but the score map's"


def test_the_ranges_belong_to_one_network(detector: MmodDetector, model_path: Path) -> None:
    changed = a_changed_copy(detector)

    assert network_digest(detector.model) == network_digest(read_mmod_model(model_path))
    assert network_digest(changed) != network_digest(detector.model)
    assert ranges_for(changed) is None
    with pytest.raises(ValueError, match="never measured"):
        OpenVinoScores(changed, 1, precision="int8")


@needs_bfloat16
def test_another_network_runs_in_bfloat16(detector: MmodDetector) -> None:
    assert OpenVinoScores(a_changed_copy(detector), 1).precision == "bf16"
    assert OpenVinoScores(detector.model, 1).precision == "int8"


def test_precision_is_checked(detector: MmodDetector) -> None:
    pytest.importorskip("openvino")
    with pytest.raises(ValueError, match="precision must be one of"):
        OpenVinoScores(detector.model, 1, precision="int4")
    if not has_bfloat16():
        with pytest.raises(ValueError, match="bfloat16 dot products"):
            OpenVinoScores(detector.model, 1, precision="int8")


def test_quantise_wants_one_range_per_convolution(detector: MmodDetector) -> None:
    openvino = pytest.importorskip("openvino")
    network = openvino.Core().read_model(build_onnx(detector.model), b"")
    with pytest.raises(ValueError, match="5 ranges for 6 convolutions"):
        quantise(network, importlib.import_module("openvino.opset13"), [(0.0, 1.0)] * 5)


@needs_bfloat16
def test_int8_runs_the_convolutions_in_int8(detector: MmodDetector) -> None:
    fast = OpenVinoScores(detector.model, 1, precision="int8")
    fast.run(np.zeros((1, 3, 120, 160), np.float32))
    runtime = fast._request.get_compiled_model().get_runtime_model()
    precisions = [
        op.get_rt_info()["runtimePrecision"].astype(str)
        for op in runtime.get_ordered_ops()
        if op.get_rt_info()["layerType"].astype(str) == "Convolution"
    ]
    assert sum(p in ("i8", "u8") for p in precisions) == 6, precisions


@needs_bfloat16
def test_int8_scores_stay_well_inside_the_margin_near_the_threshold(
    load_photo: PhotoLoader, detector: MmodDetector
) -> None:
    fast = OpenVinoScores(detector.model, 1, precision="int8")
    exact = OnnxRuntimeScores(detector.model, 1)
    pyramid = detector.model.input
    worst, moved = 0.0, 0.0
    for name, shrink, times in (("obama2.jpg", 4, 1), ("biden.jpg", 3, 1), ("obama.jpg", 6, 1)):
        image = shrunk(load_photo(name), shrink)
        for _ in range(times):
            image = upsample(image)
        layout = tiled_layout(
            image.shape[0], image.shape[1], pyramid.padding, pyramid.outer_padding
        )
        tensor = tiled_pyramid(image, pyramid.means, layout)
        true = exact.run(tensor)
        got = fast.run(tensor)
        near = true > -INT8_MARGIN
        assert near.any()
        worst = max(worst, float(np.abs(got - true)[near].max()))
        moved = max(moved, float(np.abs(got - true).max()))

    assert worst < INT8_MARGIN / 3, "measured up to 0.10 on LFW photos and street frames"
    assert moved > 1e-3, "the scores were rounded: this was int8"
