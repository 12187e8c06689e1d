"""Reading dlib's network file: the real model's layers, and refusing broken files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from oneeye.errors import ModelError
from oneeye.vision.resnet import (
    AffineLayer,
    ConvLayer,
    FullyConnectedLayer,
    SkipLayer,
    TagLayer,
    read_resnet_model,
)


@pytest.fixture(scope="module")
def model_bytes(model_path: Path) -> bytes:
    return model_path.read_bytes()


def test_reads_the_real_model(model_path: Path) -> None:
    model = read_resnet_model(model_path)

    assert (model.input.rows, model.input.cols) == (150, 150)
    assert model.input.means == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert model.output_size == 128
    assert model.distance_threshold == pytest.approx(0.6)
    counts = {
        kind: sum(isinstance(layer, kind) for layer in model.layers)
        for kind in (ConvLayer, AffineLayer, TagLayer, SkipLayer, FullyConnectedLayer)
    }
    assert counts == {
        ConvLayer: 29,
        AffineLayer: 29,
        TagLayer: 18,
        SkipLayer: 4,
        FullyConnectedLayer: 1,
    }
    first = model.layers[0]
    assert isinstance(first, ConvLayer)
    assert first.weights.shape == (32, 3, 7, 7)
    assert (first.stride, first.padding) == ((2, 2), (0, 0))
    last = model.layers[-1]
    assert isinstance(last, FullyConnectedLayer)
    assert last.weights.shape == (256, 128)
    assert last.bias is None


@pytest.mark.parametrize(
    ("mutate", "expected_error"),
    [
        (lambda data: b"", "file ends early"),
        (lambda data: data[:10], "file ends early"),
        (lambda data: data[:300], "file ends early"),
        (lambda data: data[: len(data) // 2], "file ends early"),
        (lambda data: data[:-1], "file ends early"),
        (lambda data: data + b"\x00", "unexpected bytes after the last layer"),
        (
            lambda data: data.replace(b"\x05relu_", b"\x05gelu_", 1),
            "unsupported layer type 'gelu_'",
        ),
        (lambda data: data.replace(b"loss_metric_2", b"loss_mmod_xx2", 1), "expected loss"),
        (lambda data: b"\x01\x01" + b"\x0a" * 40, "bad integer header"),
    ],
)
def test_refuses_corrupt_files(
    tmp_path: Path, model_bytes: bytes, mutate: Callable[[bytes], bytes], expected_error: str
) -> None:
    path = tmp_path / "model.dat"
    path.write_bytes(mutate(model_bytes))

    with pytest.raises(ModelError, match=expected_error):
        read_resnet_model(path)
