"""Reading dlib's MMOD detector file: the real model's layers and options, and refusing
truncated or corrupt files with a clear ``ModelError``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from oneeye.errors import ModelError
from oneeye.vision.mmod import read_mmod_model
from oneeye.vision.resnet import AffineLayer, ConvLayer, ReluLayer


def test_reads_the_real_model(model_path: Path) -> None:
    model = read_mmod_model(model_path)

    assert model.input.means == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert (model.input.padding, model.input.outer_padding) == (10, 11)
    assert [(w.width, w.height) for w in model.options.windows] == [(80, 80)]
    assert model.options.nms_iou == pytest.approx(0.3383, abs=1e-4)
    assert model.options.nms_covered == 1.0
    convs = [layer for layer in model.layers if isinstance(layer, ConvLayer)]
    assert [c.weights.shape for c in convs] == [
        (16, 3, 5, 5),
        (32, 16, 5, 5),
        (32, 32, 5, 5),
        (45, 32, 5, 5),
        (45, 45, 5, 5),
        (45, 45, 5, 5),
        (1, 45, 9, 9),
    ]
    assert [c.stride for c in convs] == [(2, 2)] * 3 + [(1, 1)] * 4
    assert sum(isinstance(layer, AffineLayer) for layer in model.layers) == 6  # from bn_con
    assert sum(isinstance(layer, ReluLayer) for layer in model.layers) == 6
    # Three stride-2 unpadded 5x5 convolutions: output cell p is input pixel 8p + 14.
    assert model.output_to_input() == ((8, 14), (8, 14))


@pytest.mark.parametrize(
    ("mutate", "expected_error"),
    [
        (lambda data: b"", "file ends early"),
        (lambda data: data[:50], "file ends early"),
        (lambda data: data[: len(data) // 2], "file ends early"),
        (lambda data: data[:-1], "file ends early"),
        (lambda data: data + b"\x00", "unexpected bytes after the last layer"),
        (lambda data: b"not a network at all", "bad integer header"),
        (lambda data: data.replace(b"loss_mmod_", b"loss_xxxx_", 1), "expected loss 'loss_mmod_'"),
        (lambda data: data.replace(b"bn_con2", b"bn_zzz2", 1), "unsupported layer type 'bn_zzz2'"),
        (
            lambda data: data.replace(b"input_rgb_image_pyramid", b"input_rgb_image_pyramix", 1),
            "expected input layer",
        ),
    ],
)
def test_refuses_broken_files(
    mutate: Callable[[bytes], bytes], expected_error: str, model_path: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "mmod.dat"
    broken.write_bytes(mutate(model_path.read_bytes()))

    with pytest.raises(ModelError, match=expected_error) as caught:
        read_mmod_model(broken)

    assert str(broken) in str(caught.value)


def test_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read the face detector model"):
        read_mmod_model(tmp_path / "nothing.dat")
