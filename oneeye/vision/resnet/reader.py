"""Reading dlib's serialized face-recognition network (``.dat``) into a ``ResNetModel``.

The reader follows dlib's serialization (``dlib/serialize.h``, ``dlib/dnn/core.h``,
``layers.h``, ``input.h``, ``loss.h``, ``tensor.h``), as the model file of 2017 has it:

- integers are a byte holding the byte count (high bit: negative) then little-endian bytes;
  floats and doubles are such an integer mantissa and exponent (value = m * 2**e); strings are
  a length then bytes; ``bool`` is the character ``'0'`` or ``'1'``; a tensor is version 2,
  its four dimensions (samples, k = channels, rows, cols) and raw little-endian float32.
- ``add_loss_layer`` writes its version, the loss, then the network below it. Every wrapper
  writes its version *before* the network below it and its own parameters *after*, so the
  file opens with one version number per layer from the output down to the input (2 for a
  layer, 1 for a ``tag``/``skip`` marker, 3 for the layer on top of the input), then holds
  the input layer and every layer's parameters from the input up to the output.
- Tags and skips store no id, and ``add_prev_`` stores no tag id either: the wiring is not
  in the file. It is rebuilt from dlib's residual idiom, the only one this model uses:
  ``add_prev1<block<tag1<x>>>`` and ``add_prev2<avg_pool<skip1<tag2<block<tag1<x>>>>>>``.
  A marker right after another marker is the ``skip``, which goes back to the tag before the
  latest one; ``add_prev`` adds the latest tag. A network whose sizes do not work out under
  that reading is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from oneeye.errors import ModelError
from oneeye.vision.resnet.model import (
    AddPrevLayer,
    AffineLayer,
    ConvLayer,
    FloatArray,
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


class _ByteReader:
    """A cursor over the file's bytes that reads dlib's primitive encodings."""

    def __init__(self, data: bytes, source: str) -> None:
        self._data = data
        self._pos = 0
        self._source = source

    @property
    def at_end(self) -> bool:
        return self._pos == len(self._data)

    def fail(self, what: str) -> ModelError:
        return ModelError(f"{self._source}: {what} (near byte {self._pos} of {len(self._data)})")

    def _take(self, count: int, what: str) -> bytes:
        end = self._pos + count
        if end > len(self._data):
            raise self.fail(
                f"file ends early: {what} needs {count} bytes, "
                f"{len(self._data) - self._pos} are left (truncated or not a dlib network)"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def integer(self, what: str) -> int:
        head = self._take(1, what)[0]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise self.fail(f"{what}: bad integer header byte 0x{head:02x}")
        value = int.from_bytes(self._take(size, what), "little")
        return -value if head & 0x80 else value

    def count(self, what: str, limit: int = 1 << 31) -> int:
        value = self.integer(what)
        if not 0 <= value <= limit:
            raise self.fail(f"{what}: expected a count in [0, {limit}], got {value}")
        return value

    def real(self, what: str) -> float:
        mantissa = self.integer(what)
        exponent = self.integer(what)
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError as exc:
            raise self.fail(f"{what}: float out of range ({mantissa} * 2**{exponent})") from exc

    def text(self, what: str) -> str:
        length = self.count(what, limit=4096)
        raw = self._take(length, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what}: expected an ASCII name, got {raw[:40]!r}") from exc

    def flag(self, what: str) -> bool:
        raw = self._take(1, what)
        if raw not in (b"0", b"1"):
            raise self.fail(f"{what}: expected a bool '0' or '1', got {raw!r}")
        return raw == b"1"

    def tensor(self, what: str) -> FloatArray:
        version = self.integer(what)
        if version != 2:
            raise self.fail(f"{what}: expected tensor version 2, got {version}")
        shape = tuple(self.count(what) for _ in range(4))
        size = math.prod(shape)
        raw = self._take(4 * size, what)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        version = self.integer(what)
        if version != 1:
            raise self.fail(f"{what}: expected alias_tensor version 1, got {version}")
        n, k, nr, nc = (self.count(what) for _ in range(4))
        return n, k, nr, nc


_LAYER_VERSION = 2  # add_layer over another layer
_INPUT_LAYER_VERSION = 3  # add_layer directly over the input layer
_MARKER_VERSION = 1  # add_tag_layer / add_skip_layer


def _read_trailer(reader: _ByteReader, version: int) -> None:
    """Skip what ``add_layer`` saves after its parameters: training state, not weights."""
    for name in ("this_layer_setup_called", "gradient_input_is_stale", "output_disabled"):
        reader.flag(name)
    for name in ("x_grad", "cached_output", "params_grad"):
        reader.tensor(name)
    if version == _INPUT_LAYER_VERSION:
        factor = reader.integer("sample_expansion_factor")
        if factor != 1:
            raise reader.fail(f"expected a sample expansion factor of 1, got {factor}")


def _read_multipliers(reader: _ByteReader) -> None:
    for name in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        reader.real(f"{name} multiplier")


def _read_conv(reader: _ByteReader) -> ConvLayer:
    params = reader.tensor("con_ params").ravel()
    filters, rows, cols = (reader.count("con_ size") for _ in range(3))
    stride = (reader.count("con_ stride"), reader.count("con_ stride"))
    padding = (reader.count("con_ padding"), reader.count("con_ padding"))
    w_shape = reader.alias("con_ filters")
    b_shape = reader.alias("con_ biases")
    _read_multipliers(reader)
    if w_shape[0] != filters or w_shape[2:] != (rows, cols):
        raise reader.fail(f"con_: filters {w_shape} disagree with {filters}x{rows}x{cols}")
    w_size, b_size = math.prod(w_shape), math.prod(b_shape)
    if b_size != filters or params.size != w_size + b_size:
        raise reader.fail(
            f"con_: expected {w_size} weights + {filters} biases, got {params.size} values"
        )
    if min(stride) < 1 or min(rows, cols) < 1:
        raise reader.fail(f"con_: bad kernel {rows}x{cols} or stride {stride}")
    weights = params[:w_size].reshape(w_shape)
    return ConvLayer(weights, params[w_size:].copy(), stride, padding)


def _read_affine(reader: _ByteReader) -> AffineLayer:
    params = reader.tensor("affine_ params").ravel()
    g_shape = reader.alias("affine_ gamma")
    reader.alias("affine_ beta")
    mode = reader.integer("affine_ mode")
    if mode != 0:
        raise reader.fail(f"affine_: only convolutional mode (0) is supported, got mode {mode}")
    channels = math.prod(g_shape)
    if params.size != 2 * channels:
        raise reader.fail(f"affine_: expected {2 * channels} values, got {params.size}")
    return AffineLayer(params[:channels].copy(), params[channels:].copy())


def _read_pool(reader: _ByteReader, kind: Literal["max", "avg"]) -> PoolLayer:
    rows, cols = reader.count("pool size"), reader.count("pool size")
    stride = (reader.count("pool stride"), reader.count("pool stride"))
    padding = (reader.count("pool padding"), reader.count("pool padding"))
    if min(stride) < 1:
        raise reader.fail(f"pooling: bad stride {stride}")
    return PoolLayer(kind, (rows, cols), stride, padding)


def _read_fc(reader: _ByteReader) -> FullyConnectedLayer:
    outputs = reader.count("fc_ outputs")
    inputs = reader.count("fc_ inputs")
    params = reader.tensor("fc_ params").ravel()
    reader.alias("fc_ weights")
    reader.alias("fc_ biases")
    bias_mode = reader.integer("fc_ bias mode")
    _read_multipliers(reader)
    has_bias = bias_mode == 0
    if bias_mode not in (0, 1):
        raise reader.fail(f"fc_: unknown bias mode {bias_mode}")
    expected = (inputs + has_bias) * outputs
    if params.size != expected:
        raise reader.fail(f"fc_: expected {expected} values, got {params.size}")
    weights = params[: inputs * outputs].reshape(inputs, outputs)
    bias = params[inputs * outputs :].copy() if has_bias else None
    return FullyConnectedLayer(weights, bias)


_LAYER_READERS: dict[str, Callable[[_ByteReader], Layer]] = {
    "con_4": _read_conv,
    "affine_": _read_affine,
    "relu_": lambda reader: ReluLayer(),
    "max_pool_2": lambda reader: _read_pool(reader, "max"),
    "avg_pool_2": lambda reader: _read_pool(reader, "avg"),
    "add_prev_": lambda reader: AddPrevLayer(),
    "fc_2": _read_fc,
}


def _read_input(reader: _ByteReader) -> InputLayer:
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
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the face model {source}: {exc}") from exc
    reader = _ByteReader(data, source)

    version = reader.integer("loss layer version")
    if version != 1:
        raise reader.fail(f"expected a loss layer of version 1, got {version}")
    loss = reader.text("loss name")
    if loss != "loss_metric_2":
        raise reader.fail(f"expected loss 'loss_metric_2', got {loss!r}")
    margin = reader.real("loss margin")
    distance_threshold = reader.real("loss distance threshold")

    # Versions from the output down to the input, one per layer or marker.
    kinds: list[str] = []
    while True:
        version = reader.integer("layer version")
        if version == _LAYER_VERSION:
            kinds.append("layer")
        elif version == _MARKER_VERSION:
            kinds.append("marker")
        elif version == _INPUT_LAYER_VERSION:
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
            name = reader.text("layer name")
            read = _LAYER_READERS.get(name)
            if read is None:
                raise reader.fail(
                    f"unsupported layer type {name!r}; supported: {sorted(_LAYER_READERS)}"
                )
            layers.append(read(reader))
            _read_trailer(reader, _INPUT_LAYER_VERSION if kind == "input layer" else 2)
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
