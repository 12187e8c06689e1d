"""Reading dlib's serialized MMOD detector (``mmod_human_face_detector.dat``) into an
``MmodModel``, with the primitives of ``oneeye.vision.resnet.dlibfile``.

After the loss layer's version and name (``loss_mmod_``) come its options (``mmod_options``,
versions 1-4: the detector windows, the training losses, the non-maximum suppression test,
and from version 4 whether boxes are regressed, which this reader refuses), then one wrapper
version per layer from the output down (no tags or skips: the network is a chain), the input
layer (``input_rgb_image_pyramid``: channel means, and from its second version the pyramid's
paddings, 10 and 11 before that) and the layers' parameters from the input up.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from oneeye.errors import ModelError
from oneeye.vision.mmod.model import (
    DetectorWindow,
    MmodLayer,
    MmodModel,
    MmodOptions,
    PyramidInput,
)
from oneeye.vision.resnet.dlibfile import (
    INPUT_LAYER_VERSION,
    LAYER_VERSION,
    ByteReader,
    open_network,
    read_affine,
    read_batch_norm,
    read_conv,
    read_layer,
)
from oneeye.vision.resnet.model import ConvLayer, ReluLayer

MAX_LAYERS = 1000
MAX_WINDOWS = 100
_LEGACY_PADDING = (10, 11)
"""``input_rgb_image_pyramid`` (version 1) stored no paddings: dlib uses these."""

_LAYER_READERS: dict[str, Callable[[ByteReader], MmodLayer]] = {
    "con_4": read_conv,
    "affine_": read_affine,
    "bn_con2": read_batch_norm,
    "relu_": lambda reader: ReluLayer(),
}


def _read_window(reader: ByteReader) -> DetectorWindow:
    version = reader.integer("detector window version")
    if version not in (1, 2):
        raise reader.fail(f"unknown detector window version {version}")
    width = reader.count("detector window width", limit=10_000)
    height = reader.count("detector window height", limit=10_000)
    label = reader.text("detector window label") if version == 2 else ""
    return DetectorWindow(width, height, label)


def _read_overlap(reader: ByteReader, what: str) -> tuple[float, float]:
    iou = reader.real(f"{what} iou threshold")
    covered = reader.real(f"{what} percent covered threshold")
    if not (0.0 <= iou <= 1.0 and 0.0 <= covered <= 1.0):
        raise reader.fail(f"{what}: thresholds {iou}, {covered} are not in [0, 1]")
    return iou, covered


def _read_options(reader: ByteReader) -> MmodOptions:
    version = reader.integer("mmod_options version")
    if not 1 <= version <= 4:
        raise reader.fail(f"unknown mmod_options version {version}")
    if version == 1:
        width = reader.count("detector window width", limit=10_000)
        height = reader.count("detector window height", limit=10_000)
        windows: tuple[DetectorWindow, ...] = (DetectorWindow(width, height, ""),)
    else:
        count = reader.count("detector window count", limit=MAX_WINDOWS)
        windows = tuple(_read_window(reader) for _ in range(count))
    if not windows or any(w.width < 1 or w.height < 1 for w in windows):
        raise reader.fail(f"bad detector windows {windows}")
    for name in ("loss per false alarm", "loss per missed target", "truth match iou"):
        reader.real(name)
    nms_iou, nms_covered = _read_overlap(reader, "overlaps_nms")
    _read_overlap(reader, "overlaps_ignore")
    if version >= 3:
        reader.integer("assume_image_pyramid")
    if version >= 4:
        if reader.flag("use_bounding_box_regression"):
            raise reader.fail("bounding box regression is not supported")
        reader.real("bbr_lambda")
    return MmodOptions(windows, nms_iou, nms_covered)


def _read_input(reader: ByteReader) -> PyramidInput:
    name = reader.text("input layer name")
    if name not in ("input_rgb_image_pyramid", "input_rgb_image_pyramid2"):
        raise reader.fail(f"expected input layer 'input_rgb_image_pyramid', got {name!r}")
    red, green, blue = (reader.real("input channel mean") for _ in range(3))
    if name.endswith("2"):
        padding = reader.count("pyramid padding", limit=1000)
        outer = reader.count("pyramid outer padding", limit=1000)
    else:
        padding, outer = _LEGACY_PADDING
    return PyramidInput((red, green, blue), padding, outer)


def read_mmod_model(path: str | Path) -> MmodModel:
    """Read dlib's serialized MMOD detector into plain numpy weights.

    Args:
        path: ``mmod_human_face_detector.dat`` or a network of the same family
            (``loss_mmod`` over convolution, affine or batch norm, and relu layers on
            ``input_rgb_image_pyramid``).

    Returns:
        The parsed detector, its layers' channel counts checked.

    Raises:
        ModelError: the file cannot be read, is truncated or corrupt, or holds a layer type
            or an option this reader does not support.
    """
    reader = open_network(path, "face detector model", "loss_mmod_")
    options = _read_options(reader)

    count = 0
    while True:
        version = reader.integer("layer version")
        count += 1
        if version == INPUT_LAYER_VERSION:
            break
        if version != LAYER_VERSION:
            raise reader.fail(f"unsupported layer wrapper version {version} (tags or skips?)")
        if count > MAX_LAYERS:
            raise reader.fail(f"more than {MAX_LAYERS} layers: not a network this reader knows")
    input_layer = _read_input(reader)

    layers = [
        read_layer(reader, _LAYER_READERS, INPUT_LAYER_VERSION if index == 0 else LAYER_VERSION)
        for index in range(count)
    ]
    if not reader.at_end:
        raise reader.fail("unexpected bytes after the last layer")
    _check_channels(layers, options, str(path))
    return MmodModel(input_layer, tuple(layers), options)


def _check_channels(layers: list[MmodLayer], options: MmodOptions, source: str) -> None:
    channels = 3
    for layer in layers:
        if isinstance(layer, ConvLayer):
            filters, inputs = layer.weights.shape[:2]
            if inputs != channels:
                raise ModelError(
                    f"{source}: a convolution expects {inputs} channels, gets {channels}"
                )
            channels = filters
        elif not isinstance(layer, ReluLayer) and layer.gamma.size != channels:
            raise ModelError(f"{source}: an affine layer expects {layer.gamma.size} channels")
    if channels != len(options.windows):
        raise ModelError(
            f"{source}: the network gives {channels} score maps for {len(options.windows)} "
            "detector windows"
        )
