"""The MMOD detector run without dlib gives dlib's own boxes: live against
``dlib.cnn_face_detection_model_v1`` on real photos (small ones: dlib takes seconds), and the
parts that make it so (pyramid layout, box mapping, non-maximum suppression, both backends)."""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest

from oneeye.types import RGBImage
from oneeye.vision.mmod import Box, MmodDetector
from oneeye.vision.mmod import detector as detector_module
from oneeye.vision.mmod.graph import build_onnx
from oneeye.vision.mmod.loss import overlaps, suppress
from oneeye.vision.mmod.model import DetectorWindow, MmodOptions
from oneeye.vision.mmod.pyramid import lround, tiled_layout, tiled_pyramid, upsampled_size
from oneeye.vision.mmod.runtimes import (
    BF16_MARGIN,
    SHAPES_KEPT,
    OnnxRuntimeScores,
    OpenCVScores,
    OpenVinoScores,
    _split_last_convolution,
    has_bfloat16,
)
from tests.conftest import PhotoLoader, shrunk


def dlib_boxes(model_path: Path, image: RGBImage, upsample: int) -> list[Box]:
    detector = dlib.cnn_face_detection_model_v1(str(model_path))
    return [
        Box(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence)
        for d in detector(image, upsample)
    ]


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
@pytest.mark.parametrize(
    ("photo", "divisor", "upsample"),
    [("obama.jpg", 4, 1), ("biden.jpg", 5, 0), ("obama_partial_face.jpg", 6, 1)],
)
def test_gives_dlibs_boxes_on_real_photos(
    photo: str,
    divisor: int,
    upsample: int,
    backend: str,
    load_photo: PhotoLoader,
    model_path: Path,
) -> None:
    image = shrunk(load_photo(photo), divisor)

    expected = dlib_boxes(model_path, image, upsample)
    found = MmodDetector(model_path, backend, num_threads=1).detect(image, upsample)

    assert expected, "the photo should hold a face dlib finds"
    assert [(b.left, b.top, b.right, b.bottom) for b in found] == [
        (b.left, b.top, b.right, b.bottom) for b in expected
    ]
    assert [b.score for b in found] == pytest.approx([b.score for b in expected], abs=1e-3)


def test_finds_nothing_in_a_blank_or_tiny_image(detector: MmodDetector) -> None:
    assert detector.detect(np.full((120, 160, 3), 128, np.uint8), 1) == []
    assert detector.detect(np.zeros((4, 4, 3), np.uint8), 0) == []


def test_takes_grey_as_dlib_does(
    load_photo: PhotoLoader, model_path: Path, detector: MmodDetector
) -> None:
    # Camera frames are scanned in grey; dlib copies a grey image into R, G and B.
    rgb = shrunk(load_photo("obama.jpg"), 4)
    grey = np.asarray(rgb.mean(axis=2), dtype=np.uint8)

    found = detector.detect(grey, 0)

    assert found
    assert found == detector.detect(np.repeat(grey[:, :, None], 3, axis=2), 0)
    expected = dlib_boxes(model_path, grey, 0)
    assert [(b.left, b.top, b.right, b.bottom) for b in found] == [
        (b.left, b.top, b.right, b.bottom) for b in expected
    ]


def test_refuses_bad_input(detector: MmodDetector) -> None:
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ValueError, match="upsample_times"):
        detector.detect(np.zeros((10, 10, 3), np.uint8), 4)


def test_backends_give_the_same_scores(model_path: Path, detector: MmodDetector) -> None:
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    layout = tiled_layout(90, 120, 10, 11)
    tensor = tiled_pyramid(image, detector.model.input.means, layout)

    ort = OnnxRuntimeScores(detector.model, 1).run(tensor)
    ocv = OpenCVScores(detector.model, None).run(tensor)
    half = OpenVinoScores(detector.model, 1, precision="bf16" if has_bfloat16() else "f32")
    vino = half.run(tensor)  # int8's scores: tests/vision/mmod/test_quantise.py

    assert ort.shape == (1, 1, *detector.model.output_size(layout.rows, layout.cols))
    assert np.abs(ort - ocv).max() < 1e-4
    assert vino.shape == ort.shape
    assert np.abs(ort - vino).max() < BF16_MARGIN / 2


def test_tiled_layout_keeps_levels_apart() -> None:
    layout = tiled_layout(501, 502, 10, 11)
    tiles = layout.tiles

    assert (tiles[0].rows, tiles[0].cols) == (501, 502)
    assert [t.rows for t in tiles[1:4]] == [417, 347, 289]  # floor(5/6 * previous)
    for i, a in enumerate(tiles):
        assert a.left >= 11
        assert a.right < layout.cols - 11
        assert a.top >= 11
        assert a.bottom < layout.rows - 11
        for b in tiles[i + 1 :]:
            apart = a.right < b.left or b.right < a.left or a.bottom < b.top or b.bottom < a.top
            assert apart


def test_dlib_rounding_and_upsampled_size() -> None:
    assert [lround(x) for x in (2.5, -2.5, 1.49, -0.5)] == [3, -3, 1, -1]
    assert upsampled_size(250, 250) == (501, 502)  # rect_up of pyramid_down<2>


def test_suppression_uses_dlibs_bounding_box_overlap() -> None:
    options = MmodOptions((DetectorWindow(80, 80, ""),), nms_iou=0.3383, nms_covered=1.0)
    best = Box(0, 0, 99, 99, 1.0)
    # Shifted 28 px both ways: IoU over the union 0.35, which would drop it, but over the box
    # bounding both 5184 / 16384 = 0.316 < 0.3383: dlib keeps it.
    shifted = Box(28, 28, 127, 127, 0.5)
    nearer = Box(20, 20, 119, 119, 0.4)  # 6400 / 14400 = 0.44 > 0.3383: dropped

    assert not overlaps(best, shifted, options)
    assert overlaps(best, nearer, options)
    assert suppress([best, shifted, nearer], options) == [best, shifted]


def test_openvino_float32_with_its_split_last_layer_gives_float32s_scores(
    detector: MmodDetector,
) -> None:
    # The last 9x9 convolution to one channel runs as a 9x1 one to nine and a 1x9 one that
    # adds them up: the same sums in another order.
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    layout = tiled_layout(90, 120, 10, 11)
    tensor = tiled_pyramid(image, detector.model.input.means, layout)
    vino = OpenVinoScores(detector.model, 1, precision="f32")

    ort = OnnxRuntimeScores(detector.model, 1).run(tensor)
    got = vino.run(tensor)

    assert vino.precision == "f32"
    assert not vino.approximate, "float32 needs no confirmation"
    assert got.shape == ort.shape
    assert np.abs(got - ort).max() < 1e-4
    openvino = pytest.importorskip("openvino")
    network = openvino.Core().read_model(build_onnx(detector.model), b"")
    _split_last_convolution(network, pytest.importorskip("openvino.opset13"))
    kinds = [op.get_type_name() for op in network.get_ordered_ops()]
    assert kinds.count("Convolution") == 8, "seven layers, the last one split in two"


def test_the_pyramid_tensor_is_the_same_built_anew_or_filled_again(
    detector: MmodDetector,
) -> None:
    rng = np.random.default_rng(8)
    first = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    second = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    layout = tiled_layout(70, 90, 10, 11)
    means = detector.model.input.means
    reused = tiled_pyramid(first, means, layout)
    # A strided view of the image (a crop) gives the same as a contiguous copy.
    wide = np.zeros((70, 180, 3), np.uint8)
    wide[:, ::2] = second

    again = tiled_pyramid(wide[:, ::2], means, layout, out=reused)

    assert again is reused
    assert np.array_equal(again, tiled_pyramid(second, means, layout))
    level = layout.tiles[0]
    expected = (
        second.transpose(2, 0, 1).astype(np.float32) - np.asarray(means, np.float32)[:, None, None]
    ) / 256
    assert np.array_equal(
        again[0, :, level.top : level.bottom + 1, level.left : level.right + 1], expected
    )
    with pytest.raises(ValueError, match="float32 tensor"):
        tiled_pyramid(second, means, layout, out=np.zeros((1, 3, 5, 5), np.float32))


def test_a_detector_refills_its_last_tensor_and_keeps_none_too_large(
    load_photo: PhotoLoader, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = shrunk(load_photo("obama.jpg"), 4)
    fresh = MmodDetector(model_path, "onnxruntime", num_threads=1)

    first = fresh.detect(image, 0)
    kept = fresh._kept
    assert kept is not None
    assert fresh.detect(image, 0) == first
    assert fresh._kept is kept, "the same size fills the same tensor"
    assert fresh.detect(image[:-8], 0)
    assert fresh._kept is not kept

    monkeypatch.setattr(detector_module, "KEPT_PYRAMID_PIXELS", 1000)
    assert fresh.detect(image, 0) == first
    assert fresh._kept is None


def test_openvino_keeps_few_shapes_ready(detector: MmodDetector) -> None:
    # OpenVINO keeps each input shape's kernels and buffers: by default 5,000 of them, so a
    # camera's crops of every size would grow the process by gigabytes. Kept to a few, the
    # process stops growing once the allocator has settled.
    pytest.importorskip("openvino")
    scores = OpenVinoScores(detector.model, 1)
    rng = np.random.default_rng(9)

    def rss_mb() -> float:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024

    def run_shapes(first: int) -> None:
        for i in range(first, first + 150):
            shape = (1, 3, 120 + i % 15 * 5, 150 + i // 15 * 5)
            scores.run(rng.random(shape, dtype=np.float32))

    run_shapes(0)
    settled = rss_mb()
    run_shapes(150)  # 150 more shapes, none seen before

    assert SHAPES_KEPT <= 64
    assert rss_mb() - settled < 60, "kept shapes: about 1-3 MB each"
