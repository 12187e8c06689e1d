"""dlib's face-recognition ResNet, read from its ``.dat`` file and run without dlib.

Why this exists: the ``dlib-bin`` wheel is built without BLAS, so dlib's own forward pass
(``face_recognition_model_v1.compute_face_descriptor``) spends about 120 ms on every 150x150
face chip. The network is small (about 0.4 G multiply-adds), so the same arithmetic through a
good convolution routine is several times faster. This module reads the weights from dlib's
serialized network and runs them through one of three backends that give dlib's 128-D
descriptor to within float rounding (well under 1e-4 per element):

- ``"onnxruntime"``: the network as an in-memory ONNX model run by onnxruntime (fastest; the
  package is optional);
- ``"opencv"``: the same ONNX model run by OpenCV's DNN module (always installed);
- ``"numpy"``: im2col plus BLAS ``sgemm``, a literal transcription of dlib's layers kept as
  the reference the other two are checked against.

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

What dlib computes, and so what every backend computes: the input is
``(pixel - channel_mean) / 256`` with the means stored in the file (122.782, 117.001, 104.298
for R, G, B); convolutions are cross-correlations whose padding is stored (dlib's default is
half the kernel for stride 1 and none otherwise); output sizes are
``1 + (size + 2 * padding - kernel) // stride``; ``affine`` scales and shifts each channel;
pooling windows are ``kernel`` wide starting at ``row * stride - padding`` and averaging
divides by the in-image part of the window; a pooling size of 0 means the whole image;
``add_prev`` adds two tensors of different shapes by padding each with zeros at the end of
every dimension (in this model a downsampling block that doubles the channels meets a
shortcut with half as many, and the last two downsampling blocks give 3x3 and 1x1 outputs
that meet 4x4 and 2x2 shortcuts: unpadded stride-2 convolutions lose a row); ``fc_no_bias``
multiplies the flattened (channels, rows, cols) tensor by a (inputs, outputs) matrix.
``loss_metric`` adds nothing at inference: the descriptor is the last layer's output, not
normalised.
"""

from __future__ import annotations

import importlib
import logging
import math
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from oneeye.errors import ModelError

logger = logging.getLogger(__name__)

FloatArray: TypeAlias = npt.NDArray[np.float32]

BACKENDS = ("onnxruntime", "opencv", "numpy")
"""Backend names, fastest first; ``"auto"`` takes the first that loads and checks out."""

MAX_BATCH = 32
"""Chips per backend call: bounds the memory of im2col buffers (about 3 MB per chip)."""

SELF_CHECK_TOLERANCE = 1e-4
"""Largest difference from the numpy reference a backend may show on the start-up check."""

# ----------------------------------------------------------------------------------------
# The parsed network


@dataclass(frozen=True, slots=True)
class InputLayer:
    """dlib's ``input_rgb_image_sized``: the chip size and the per-channel means (R, G, B)."""

    means: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True, slots=True)
class ConvLayer:
    """A convolution (cross-correlation) with bias.

    ``weights`` is (filters, channels, rows, cols) as dlib stores it; ``bias`` is (filters,).
    """

    weights: FloatArray
    bias: FloatArray
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, slots=True)
class AffineLayer:
    """Per-channel ``x * gamma + beta`` (dlib's ``affine_`` in convolutional mode)."""

    gamma: FloatArray
    beta: FloatArray


@dataclass(frozen=True, slots=True)
class ReluLayer:
    """``max(x, 0)``."""


@dataclass(frozen=True, slots=True)
class PoolLayer:
    """Max or average pooling; a ``size`` of (0, 0) pools the whole image (``*_everything``)."""

    kind: Literal["max", "avg"]
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, slots=True)
class TagLayer:
    """Remember the current tensor (dlib's ``tag``): pushes it on the tag stack."""


@dataclass(frozen=True, slots=True)
class SkipLayer:
    """Go back to the tensor tagged before the latest tag (dlib's ``skip``), consuming it."""


@dataclass(frozen=True, slots=True)
class AddPrevLayer:
    """Add the latest tagged tensor to the current one, zero-padding the smaller (``add_prev``)."""


@dataclass(frozen=True, slots=True)
class FullyConnectedLayer:
    """``flatten(x) @ weights (+ bias)``; ``weights`` is (inputs, outputs) as dlib stores it."""

    weights: FloatArray
    bias: FloatArray | None


Layer: TypeAlias = (
    ConvLayer
    | AffineLayer
    | ReluLayer
    | PoolLayer
    | TagLayer
    | SkipLayer
    | AddPrevLayer
    | FullyConnectedLayer
)


@dataclass(frozen=True, slots=True)
class ResNetModel:
    """dlib's metric network as plain numpy weights, layers in order from input to output."""

    input: InputLayer
    layers: tuple[Layer, ...]
    margin: float
    """``loss_metric``'s training margin (unused at inference)."""
    distance_threshold: float
    """``loss_metric``'s distance threshold: the same-person cut-off the model was trained for."""
    output_size: int
    """Length of the descriptor."""


# ----------------------------------------------------------------------------------------
# Reading dlib's serialization


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


# ----------------------------------------------------------------------------------------
# Shapes


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return 1 + (size + 2 * padding - kernel) // stride


def _pool_window(layer: PoolLayer, rows: int, cols: int) -> tuple[int, int]:
    """The window size, the whole image for a size of 0 (``max_pool_everything``)."""
    return (layer.size[0] or rows, layer.size[1] or cols)


Shape: TypeAlias = tuple[int, int, int]  # channels, rows, cols


def _layer_shapes(input_layer: InputLayer, layers: Sequence[Layer]) -> list[Shape]:
    """The (channels, rows, cols) after every layer; raises ValueError on a mismatch."""
    shape: Shape = (3, input_layer.rows, input_layer.cols)
    tags: list[Shape] = []
    shapes: list[Shape] = []
    for layer in layers:
        k, r, c = shape
        if isinstance(layer, ConvLayer):
            filters, channels, kr, kc = layer.weights.shape
            if channels != k:
                raise ValueError(f"a convolution expects {channels} channels, gets {k}")
            shape = (
                filters,
                _out_size(r, kr, layer.stride[0], layer.padding[0]),
                _out_size(c, kc, layer.stride[1], layer.padding[1]),
            )
        elif isinstance(layer, AffineLayer):
            if layer.gamma.size != k:
                raise ValueError(f"an affine layer expects {layer.gamma.size} channels, gets {k}")
        elif isinstance(layer, PoolLayer):
            wr, wc = _pool_window(layer, r, c)
            shape = (
                k,
                _out_size(r, wr, layer.stride[0], layer.padding[0]),
                _out_size(c, wc, layer.stride[1], layer.padding[1]),
            )
        elif isinstance(layer, TagLayer):
            tags.append(shape)
        elif isinstance(layer, SkipLayer):
            if len(tags) < 2:
                raise ValueError("a skip has no earlier tag to go back to")
            shape = tags.pop(-2)
        elif isinstance(layer, AddPrevLayer):
            if not tags:
                raise ValueError("an add_prev has no tag to add")
            other = tags.pop()
            shape = (max(k, other[0]), max(r, other[1]), max(c, other[2]))
        elif isinstance(layer, FullyConnectedLayer):
            inputs, outputs = layer.weights.shape
            if inputs != k * r * c:
                raise ValueError(f"the fc layer expects {inputs} inputs, gets {k}x{r}x{c}")
            shape = (outputs, 1, 1)
        if min(shape) < 1:
            raise ValueError(f"a layer's output would be empty: {shape}")
        shapes.append(shape)
    if tags:
        raise ValueError(f"{len(tags)} tagged tensor(s) never used")
    return shapes


def _check_shapes(input_layer: InputLayer, layers: Sequence[Layer], source: str) -> int:
    if not layers or not isinstance(layers[-1], FullyConnectedLayer):
        raise ModelError(f"{source}: expected the network to end with an fc layer")
    try:
        shapes = _layer_shapes(input_layer, layers)
    except ValueError as exc:
        raise ModelError(f"{source}: the layers do not fit together: {exc}") from exc
    return shapes[-1][0]


# ----------------------------------------------------------------------------------------
# Backends


def _normalise(chips: npt.NDArray[np.uint8], input_layer: InputLayer) -> FloatArray:
    """dlib's ``input_rgb_image_sized``: ``(pixel - mean) / 256`` in float32, NHWC."""
    means = np.asarray(input_layer.means, dtype=np.float32)
    out = chips.astype(np.float32)
    out -= means
    out *= np.float32(1 / 256)
    return out


class _Backend(ABC):
    """Runs the network on normalised NHWC float32 chips, giving (N, outputs)."""

    @abstractmethod
    def run(self, batch: FloatArray) -> FloatArray: ...


def _pad_to(x: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """Zero-pad ``x`` at the end of each dimension up to ``shape``."""
    if x.shape == shape:
        return x
    return np.pad(x, [(0, want - have) for have, want in zip(x.shape, shape, strict=True)])


class _NumpyBackend(_Backend):
    """The reference: each dlib layer transcribed literally in NHWC, convolutions as sgemm."""

    def __init__(self, model: ResNetModel) -> None:
        self._layers = model.layers
        # (kh, kw, channels, filters) so that an im2col row (kh, kw, channels) multiplies it.
        self._conv_mats = {
            id(layer): np.ascontiguousarray(
                layer.weights.transpose(2, 3, 1, 0).reshape(-1, layer.weights.shape[0])
            )
            for layer in model.layers
            if isinstance(layer, ConvLayer)
        }

    def run(self, batch: FloatArray) -> FloatArray:
        x = batch
        tags: list[FloatArray] = []
        for layer in self._layers:
            if isinstance(layer, ConvLayer):
                x = self._conv(x, layer)
            elif isinstance(layer, AffineLayer):
                x = x * layer.gamma + layer.beta
            elif isinstance(layer, ReluLayer):
                x = np.maximum(x, np.float32(0))
            elif isinstance(layer, PoolLayer):
                x = self._pool(x, layer)
            elif isinstance(layer, TagLayer):
                tags.append(x)
            elif isinstance(layer, SkipLayer):
                x = tags.pop(-2)
            elif isinstance(layer, AddPrevLayer):
                other = tags.pop()
                shape = tuple(max(a, b) for a, b in zip(x.shape, other.shape, strict=True))
                x = _pad_to(x, shape) + _pad_to(other, shape)
            elif isinstance(layer, FullyConnectedLayer):
                flat = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # dlib's (k, nr, nc)
                x = flat @ layer.weights
                if layer.bias is not None:
                    x = x + layer.bias
        return np.asarray(x, dtype=np.float32)

    def _conv(self, x: FloatArray, layer: ConvLayer) -> FloatArray:
        n, rows, cols, channels = x.shape
        filters, _, kr, kc = layer.weights.shape
        (sr, sc), (pr, pc) = layer.stride, layer.padding
        out_r, out_c = _out_size(rows, kr, sr, pr), _out_size(cols, kc, sc, pc)
        x = np.ascontiguousarray(np.pad(x, ((0, 0), (pr, pr), (pc, pc), (0, 0))))
        # im2col: in NHWC one kernel row (kc columns x all channels) is a contiguous run, so
        # a strided view of (n, out_r, out_c, kr, kc * channels) copies in long pieces.
        bn, br, bc, _ = x.strides
        windows = np.lib.stride_tricks.as_strided(
            x,
            shape=(n, out_r, out_c, kr, kc * channels),
            strides=(bn, br * sr, bc * sc, br, x.itemsize),
            writeable=False,
        )
        patches = np.ascontiguousarray(windows).reshape(n * out_r * out_c, -1)
        out = patches @ self._conv_mats[id(layer)]
        out += layer.bias
        return out.reshape(n, out_r, out_c, filters)

    @staticmethod
    def _pool(x: FloatArray, layer: PoolLayer) -> FloatArray:
        _, rows, cols, _ = x.shape
        wr, wc = _pool_window(layer, rows, cols)
        (sr, sc), (pr, pc) = layer.stride, layer.padding
        out_r, out_c = _out_size(rows, wr, sr, pr), _out_size(cols, wc, sc, pc)
        if (wr, wc) == (rows, cols) and (out_r, out_c) == (1, 1) and not (pr or pc):
            reduce = np.max if layer.kind == "max" else np.mean
            return np.asarray(reduce(x, axis=(1, 2), keepdims=True), dtype=np.float32)
        fill = -np.inf if layer.kind == "max" else 0.0
        padded = np.pad(x, ((0, 0), (pr, pr), (pc, pc), (0, 0)), constant_values=fill)
        # Averages divide by the part of each window inside the image, as dlib does.
        inside = np.pad(np.ones((rows, cols), np.float32), ((pr, pr), (pc, pc)))
        acc: FloatArray | None = None
        count = np.zeros((out_r, out_c), np.float32)
        for i in range(wr):
            for j in range(wc):
                rs = slice(i, i + sr * (out_r - 1) + 1, sr)
                cs = slice(j, j + sc * (out_c - 1) + 1, sc)
                part = padded[:, rs, cs, :]
                count += inside[rs, cs]
                if acc is None:
                    acc = part.copy()
                elif layer.kind == "max":
                    np.maximum(acc, part, out=acc)
                else:
                    acc += part
        assert acc is not None
        if layer.kind == "avg":
            acc /= count[None, :, :, None]
        return acc


# ---- ONNX, written by hand: a few protobuf messages are all the model needs.


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _pb_int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _pb_bytes(field: int, value: bytes | str) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(raw)) + raw


def _pb_float(field: int, value: float) -> bytes:
    return _varint(field << 3 | 5) + struct.pack("<f", value)


_ONNX_FLOAT, _ONNX_INT64 = 1, 7
_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_INTS = 1, 2, 3, 7


def _onnx_tensor(name: str, array: npt.NDArray[Any]) -> bytes:
    dtype = _ONNX_INT64 if array.dtype == np.int64 else _ONNX_FLOAT
    raw = np.ascontiguousarray(array, dtype="<i8" if dtype == _ONNX_INT64 else "<f4").tobytes()
    dims = b"".join(_pb_int(1, d) for d in array.shape)
    return dims + _pb_int(2, dtype) + _pb_bytes(8, name) + _pb_bytes(9, raw)


def _onnx_attribute(name: str, value: int | float | str | Sequence[int]) -> bytes:
    if isinstance(value, str):
        body = _pb_bytes(4, value) + _pb_int(20, _ATTR_STRING)
    elif isinstance(value, int):
        body = _pb_int(3, value) + _pb_int(20, _ATTR_INT)
    elif isinstance(value, float):
        body = _pb_float(2, value) + _pb_int(20, _ATTR_FLOAT)
    else:
        body = b"".join(_pb_int(8, v) for v in value) + _pb_int(20, _ATTR_INTS)
    return _pb_bytes(1, name) + body


def _onnx_value_info(name: str, dims: Sequence[int | str]) -> bytes:
    shape = b"".join(
        _pb_bytes(1, _pb_bytes(2, d) if isinstance(d, str) else _pb_int(1, d)) for d in dims
    )
    tensor_type = _pb_int(1, _ONNX_FLOAT) + _pb_bytes(2, shape)
    return _pb_bytes(1, name) + _pb_bytes(2, _pb_bytes(1, tensor_type))


class _OnnxGraph:
    """Collects nodes and initializers and names their outputs."""

    def __init__(self) -> None:
        self.nodes: list[bytes] = []
        self.initializers: list[bytes] = []
        self._count = 0

    def constant(self, array: npt.NDArray[Any]) -> str:
        self._count += 1
        name = f"w{self._count}"
        self.initializers.append(_onnx_tensor(name, array))
        return name

    def node(
        self, op: str, inputs: Sequence[str], **attributes: int | float | str | Sequence[int]
    ) -> str:
        self._count += 1
        output = f"t{self._count}"
        body = b"".join(_pb_bytes(1, i) for i in inputs) + _pb_bytes(2, output)
        body += _pb_bytes(3, f"{op.lower()}{self._count}") + _pb_bytes(4, op)
        body += b"".join(_pb_bytes(5, _onnx_attribute(k, v)) for k, v in attributes.items())
        self.nodes.append(body)
        return output

    def model(
        self,
        input_name: str,
        input_dims: Sequence[int | str],
        output: str,
        output_dims: Sequence[int | str],
    ) -> bytes:
        graph = b"".join(_pb_bytes(1, n) for n in self.nodes)
        graph += _pb_bytes(2, "dlib_metric_resnet")
        graph += b"".join(_pb_bytes(5, t) for t in self.initializers)
        graph += _pb_bytes(11, _onnx_value_info(input_name, input_dims))
        graph += _pb_bytes(12, _onnx_value_info(output, output_dims))
        opset = _pb_bytes(1, "") + _pb_int(2, 13)
        return (
            _pb_int(1, 7)  # ir_version 7 goes with opset 13
            + _pb_bytes(2, "oneeye")
            + _pb_bytes(7, graph)
            + _pb_bytes(8, opset)
        )


def build_onnx(model: ResNetModel) -> bytes:
    """The network as a serialized ONNX model (opset 13), NCHW, batch size free.

    The input ``chips`` is the normalised chip batch (N, 3, rows, cols); the output is the
    (N, outputs) descriptor. Each ``affine`` is folded into the convolution before it, which
    changes results only by float rounding.

    Args:
        model: the parsed network.

    Returns:
        The ONNX ``ModelProto`` bytes, ready for ``cv2.dnn.readNetFromONNX`` or onnxruntime.
    """
    shapes = _layer_shapes(model.input, model.layers)
    graph = _OnnxGraph()
    current, shape = "chips", (3, model.input.rows, model.input.cols)
    tags: list[tuple[str, Shape]] = []
    layers = model.layers
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, ConvLayer):
            weights, bias = layer.weights, layer.bias
            following = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(following, AffineLayer):
                weights = weights * following.gamma[:, None, None, None]
                bias = bias * following.gamma + following.beta
                i += 1
            kernel = weights.shape[2:]
            current = graph.node(
                "Conv",
                [current, graph.constant(weights), graph.constant(bias)],
                kernel_shape=list(kernel),
                strides=list(layer.stride),
                pads=[*layer.padding, *layer.padding],
            )
        elif isinstance(layer, AffineLayer):
            gamma = graph.constant(layer.gamma.reshape(-1, 1, 1))
            beta = graph.constant(layer.beta.reshape(-1, 1, 1))
            current = graph.node("Add", [graph.node("Mul", [current, gamma]), beta])
        elif isinstance(layer, ReluLayer):
            current = graph.node("Relu", [current])
        elif isinstance(layer, PoolLayer):
            window = _pool_window(layer, shape[1], shape[2])
            if window == shape[1:] and not any(layer.padding):
                op = "GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool"
                current = graph.node(op, [current])
            else:
                op = "MaxPool" if layer.kind == "max" else "AveragePool"
                current = graph.node(
                    op,
                    [current],
                    kernel_shape=list(window),
                    strides=list(layer.stride),
                    pads=[*layer.padding, *layer.padding],
                )
        elif isinstance(layer, TagLayer):
            tags.append((current, shape))
        elif isinstance(layer, SkipLayer):
            current, _ = tags.pop(-2)
        elif isinstance(layer, AddPrevLayer):
            other, other_shape = tags.pop()
            target = shapes[i]
            current = graph.node(
                "Add",
                [
                    _onnx_pad(graph, current, shape, target),
                    _onnx_pad(graph, other, other_shape, target),
                ],
            )
        elif isinstance(layer, FullyConnectedLayer):
            current = graph.node(
                "MatMul", [graph.node("Flatten", [current], axis=1), graph.constant(layer.weights)]
            )
            if layer.bias is not None:
                current = graph.node("Add", [current, graph.constant(layer.bias)])
        shape = shapes[i]
        i += 1
    return graph.model(
        "chips", ("N", 3, model.input.rows, model.input.cols), current, ("N", model.output_size)
    )


def _onnx_pad(graph: _OnnxGraph, name: str, shape: Shape, target: Shape) -> str:
    if shape == target:
        return name
    pads = np.array([0, 0, 0, 0, 0, *(t - s for s, t in zip(shape, target, strict=True))])
    return graph.node("Pad", [name, graph.constant(pads.astype(np.int64))], mode="constant")


class _OnnxRuntimeBackend(_Backend):
    """The ONNX graph run by onnxruntime's CPU provider."""

    def __init__(self, model: ResNetModel, num_threads: int | None) -> None:
        # An optional dependency without type hints: imported by name, here only.
        onnxruntime = importlib.import_module("onnxruntime")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or 0  # 0: one per core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        # Idle pool threads sleep instead of spinning: the embedder shares the CPU with video
        # decoding and detection, and spinning made two threads slower than one under load.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            build_onnx(model), options, providers=["CPUExecutionProvider"]
        )

    def run(self, batch: FloatArray) -> FloatArray:
        nchw = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        (out,) = self._session.run(None, {"chips": nchw})
        return np.asarray(out, dtype=np.float32)


class _OpenCVBackend(_Backend):
    """The ONNX graph run by OpenCV's DNN module (``cv2.dnn``)."""

    def __init__(self, model: ResNetModel, num_threads: int | None) -> None:
        import cv2  # noqa: PLC0415 - keeps importing this module cheap

        if num_threads is not None:
            cv2.setNumThreads(num_threads)  # process-wide: OpenCV has one thread pool
        blob = np.frombuffer(build_onnx(model), dtype=np.uint8)
        self._net = cv2.dnn.readNetFromONNX(blob)
        self._outputs = model.output_size

    def run(self, batch: FloatArray) -> FloatArray:
        self._net.setInput(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
        out = self._net.forward()
        return np.asarray(out, dtype=np.float32).reshape(len(batch), self._outputs)


def _make_backend(name: str, model: ResNetModel, num_threads: int | None) -> _Backend:
    if name == "numpy":
        return _NumpyBackend(model)
    if name == "onnxruntime":
        return _OnnxRuntimeBackend(model, num_threads)
    return _OpenCVBackend(model, num_threads)


def _probe_chips(input_layer: InputLayer) -> npt.NDArray[np.uint8]:
    """Two fixed chips for the start-up check: noise, and a smooth gradient."""
    rng = np.random.default_rng(20170212)
    noise = rng.integers(0, 256, (input_layer.rows, input_layer.cols, 3), dtype=np.uint8)
    rows = np.linspace(0, 255, input_layer.rows, dtype=np.float32)[:, None, None]
    cols = np.linspace(255, 0, input_layer.cols, dtype=np.float32)[None, :, None]
    smooth = (0.5 * rows + 0.5 * cols + np.zeros(3, np.float32)).astype(np.uint8)
    return np.stack([noise, smooth])


class ResNetEmbedder:
    """dlib's 128-D face descriptor, computed without dlib.

    Gives what ``dlib.face_recognition_model_v1(model_path).compute_face_descriptor(chip)``
    gives for the same 150x150 chip, within float rounding, several times faster.

    Example:
        >>> embedder = ResNetEmbedder(paths.resnet)            # doctest: +SKIP
        >>> embedder.embed(chips).shape                        # doctest: +SKIP
        (4, 128)
    """

    def __init__(
        self,
        model_path: str | Path,
        backend: str = "auto",
        *,
        num_threads: int | None = None,
    ) -> None:
        """Load the network and prepare a backend.

        Args:
            model_path: dlib's ``dlib_face_recognition_resnet_model_v1.dat``.
            backend: ``"onnxruntime"``, ``"opencv"``, ``"numpy"``, or ``"auto"`` for the first
                of these (in that order) that loads and passes the start-up check.
            num_threads: threads for the backend's thread pool; ``None`` keeps the library's
                default (one per core). ``"opencv"`` sets OpenCV's process-wide pool; the
                ``"numpy"`` backend uses BLAS's pool, set by ``OPENBLAS_NUM_THREADS``.

        Raises:
            ModelError: the model file is missing, corrupt or unsupported, the backend named
                cannot be loaded, or it disagrees with the numpy reference on the check.
            ValueError: ``backend`` is not one of the names above, or ``num_threads`` < 1.
        """
        if backend != "auto" and backend not in BACKENDS:
            raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {backend!r}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be None or >= 1, got {num_threads}")
        self.model = read_resnet_model(model_path)
        reference = _NumpyBackend(self.model)
        probe = _normalise(_probe_chips(self.model.input), self.model.input)
        expected = reference.run(probe)

        candidates = BACKENDS if backend == "auto" else (backend,)
        failures: list[str] = []
        for name in candidates:
            try:
                chosen = (
                    reference if name == "numpy" else _make_backend(name, self.model, num_threads)
                )
                error = float(np.abs(chosen.run(probe) - expected).max())
            except Exception as exc:  # any failure to load or run means "try the next one"
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                # A missing optional package is expected; anything else deserves attention.
                level = logging.INFO if isinstance(exc, ImportError) else logging.WARNING
                logger.log(level, "resnet backend unusable: %s", failures[-1])
                continue
            if error <= SELF_CHECK_TOLERANCE:
                self._backend = chosen
                self.backend = name
                logger.info("resnet embedder ready: backend=%s model=%s", name, model_path)
                return
            failures.append(f"{name}: differs from the numpy reference by {error:.3g}")
            logger.warning("resnet backend unusable: %s", failures[-1])
        if backend == "auto":  # unreachable in practice: the numpy reference always passes
            raise ModelError("no backend could run the face model: " + "; ".join(failures))
        raise ModelError(f"the {backend!r} backend cannot run the face model: {failures[0]}")

    @property
    def input_size(self) -> tuple[int, int]:
        """The chip size the network takes, (rows, cols): (150, 150) for dlib's model."""
        return self.model.input.rows, self.model.input.cols

    def embed(self, chips: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Compute the descriptors of aligned face chips.

        Args:
            chips: (N, 150, 150, 3) uint8 RGB chips, aligned as
                ``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` aligns them.

        Returns:
            (N, 128) float32 descriptors, exactly as dlib's ``compute_face_descriptor`` would
            give them (within float rounding) and, like those, not normalised.

        Raises:
            ValueError: ``chips`` is not a uint8 array of shape (N, 150, 150, 3).
        """
        rows, cols = self.input_size
        if (
            not isinstance(chips, np.ndarray)
            or chips.dtype != np.uint8
            or chips.ndim != 4
            or chips.shape[1:] != (rows, cols, 3)
        ):
            got = f"{chips.dtype} {chips.shape}" if isinstance(chips, np.ndarray) else type(chips)
            raise ValueError(f"expected uint8 chips of shape (N, {rows}, {cols}, 3), got {got}")
        parts = [
            self._backend.run(_normalise(chips[i : i + MAX_BATCH], self.model.input))
            for i in range(0, len(chips), MAX_BATCH)
        ]
        if not parts:
            return np.zeros((0, self.model.output_size), dtype=np.float32)
        return np.concatenate(parts)
