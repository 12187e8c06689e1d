"""Reading dlib's serialized face-recognition network (``.dat``) into a ``ResNetModel``.

The file format (dlib's primitive encodings, and the order in which a network is saved) is
described in ``oneeye.vision.resnet.dlibfile``, which reads it. What is particular to this model:

- Tags and skips store no id, and ``add_prev_`` stores no tag id either: the wiring is not
  in the file. It is rebuilt from dlib's residual idiom, the only one this model uses:
  ``add_prev1<block<tag1<x>>>`` and ``add_prev2<avg_pool<skip1<tag2<block<tag1<x>>>>>>``.
  A marker right after another marker is the ``skip``, which goes back to the tag before the
  latest one; ``add_prev`` adds the latest tag. A network whose sizes do not work out under
  that reading is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from oneeye.errors import ModelError
from oneeye.vision.resnet.dlibfile import (
    INPUT_LAYER_VERSION,
    LAYER_VERSION,
    MARKER_VERSION,
    ByteReader,
    open_network,
    read_affine,
    read_conv,
    read_layer,
    read_multipliers,
)
from oneeye.vision.resnet.model import (
    AddPrevLayer,
    FullyConnectedLayer,
    InputLayer,
    Layer,
    PoolLayer,
    ReluLayer,
    ResNetModel,
    SkipLayer,
    TagLayer,
    layer_shapes,
)


def _read_pool(reader: ByteReader, kind: Literal["max", "avg"]) -> PoolLayer:
    rows, cols = reader.count("pool size"), reader.count("pool size")
    stride = (reader.count("pool stride"), reader.count("pool stride"))
    padding = (reader.count("pool padding"), reader.count("pool padding"))
    if min(stride) < 1:
        raise reader.fail(f"pooling: bad stride {stride}")
    return PoolLayer(kind, (rows, cols), stride, padding)


def _read_fc(reader: ByteReader) -> FullyConnectedLayer:
    outputs = reader.count("fc_ outputs")
    inputs = reader.count("fc_ inputs")
    params = reader.tensor("fc_ params").ravel()
    reader.alias("fc_ weights")
    reader.alias("fc_ biases")
    bias_mode = reader.integer("fc_ bias mode")
    read_multipliers(reader)
    has_bias = bias_mode == 0
    if bias_mode not in (0, 1):
        raise reader.fail(f"fc_: unknown bias mode {bias_mode}")
    expected = (inputs + has_bias) * outputs
    if params.size != expected:
        raise reader.fail(f"fc_: expected {expected} values, got {params.size}")
    weights = params[: inputs * outputs].reshape(inputs, outputs)
    bias = params[inputs * outputs :].copy() if has_bias else None
    return FullyConnectedLayer(weights, bias)


_LAYER_READERS: dict[str, Callable[[ByteReader], Layer]] = {
    "con_4": read_conv,
    "affine_": read_affine,
    "relu_": lambda reader: ReluLayer(),
    "max_pool_2": lambda reader: _read_pool(reader, "max"),
    "avg_pool_2": lambda reader: _read_pool(reader, "avg"),
    "add_prev_": lambda reader: AddPrevLayer(),
    "fc_2": _read_fc,
}


def _read_input(reader: ByteReader) -> InputLayer:
    name = reader.text("input layer name")
    if name != "input_rgb_image_sized":
        raise reader.fail(f"expected input layer 'input_rgb_image_sized', got {name!r}")
    red, green, blue = (reader.real("input channel mean") for _ in range(3))
    rows, cols = reader.count("input rows"), reader.count("input cols")
    if not 0 < rows <= 4096 or not 0 < cols <= 4096:
        raise reader.fail(f"input size {rows}x{cols} is not plausible")
    return InputLayer((red, green, blue), rows, cols)


def _wire_markers(kinds: Sequence[str], source: str) -> list[str]:
    """Tell ``tag`` from ``skip`` markers (see the module docstring): input-to-output order."""
    wired: list[str] = []
    for i, kind in enumerate(kinds):
        if kind != "marker":
            wired.append(kind)
        elif i > 0 and kinds[i - 1] == "marker":
            if i > 1 and kinds[i - 2] == "marker":
                raise ModelError(f"{source}: three tag/skip markers in a row: unknown wiring")
            wired.append("skip")
        else:
            wired.append("tag")
    return wired


def read_resnet_model(path: str | Path) -> ResNetModel:
    """Read dlib's serialized face-recognition network into plain numpy weights.

    Args:
        path: ``dlib_face_recognition_resnet_model_v1.dat`` or a network of the same family
            (``loss_metric`` over con/affine/relu/pooling/residual/fc layers).

    Returns:
        The parsed network, its sizes checked by a dry run of the shapes.

    Raises:
        ModelError: the file cannot be read, is truncated or corrupt, or holds a layer type
            or wiring this reader does not support.
    """
    source = str(path)
    reader = open_network(path, "face model", "loss_metric_2")
    margin = reader.real("loss margin")
    distance_threshold = reader.real("loss distance threshold")

    # Versions from the output down to the input, one per layer or marker.
    kinds: list[str] = []
    while True:
        version = reader.integer("layer version")
        if version == LAYER_VERSION:
            kinds.append("layer")
        elif version == MARKER_VERSION:
            kinds.append("marker")
        elif version == INPUT_LAYER_VERSION:
            kinds.append("input layer")
            break
        else:
            raise reader.fail(f"unknown layer wrapper version {version}")
        if len(kinds) > 10_000:
            raise reader.fail("more than 10000 layers: not a network this reader knows")
    kinds.reverse()
    input_layer = _read_input(reader)

    layers: list[Layer] = []
    for kind in _wire_markers(kinds, source):
        if kind == "tag":
            layers.append(TagLayer())
        elif kind == "skip":
            layers.append(SkipLayer())
        else:
            version = INPUT_LAYER_VERSION if kind == "input layer" else LAYER_VERSION
            layers.append(read_layer(reader, _LAYER_READERS, version))
    if not reader.at_end:
        raise reader.fail("unexpected bytes after the last layer")
    output_size = _check_shapes(input_layer, layers, source)
    return ResNetModel(input_layer, tuple(layers), margin, distance_threshold, output_size)


def _check_shapes(input_layer: InputLayer, layers: Sequence[Layer], source: str) -> int:
    if not layers or not isinstance(layers[-1], FullyConnectedLayer):
        raise ModelError(f"{source}: expected the network to end with an fc layer")
    try:
        shapes = layer_shapes(input_layer, layers)
    except ValueError as exc:
        raise ModelError(f"{source}: the layers do not fit together: {exc}") from exc
    return shapes[-1][0]
