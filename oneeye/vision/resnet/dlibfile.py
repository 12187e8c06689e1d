"""dlib's serialization (``dlib/serialize.h``, ``dlib/dnn/core.h``, ``layers.h``), as far as
dlib's networks need it: the primitive encodings, the loss layer's header, the wrapper that
every ``add_layer`` saves around its parameters (``read_layer`` reads one layer in it), and the
two layers every dlib model here holds (``con_``, ``affine_``). Shared by the ResNet reader
(``oneeye.vision.resnet.reader``) and the MMOD detector's (``oneeye.vision.mmod.reader``).

- integers are a byte holding the byte count (high bit: negative) then little-endian bytes;
  floats and doubles are such an integer mantissa and exponent (value = m * 2**e); strings are
  a length then bytes; ``bool`` is the character ``'0'`` or ``'1'``; a tensor is version 2,
  its four dimensions (samples, k = channels, rows, cols) and raw little-endian float32.
- ``add_loss_layer`` writes its version, the loss, then the network below it. Every wrapper
  writes its version *before* the network below it and its own parameters *after*, so the
  file opens with one version number per layer from the output down to the input (2 for a
  layer, 1 for a ``tag``/``skip`` marker, 3 for the layer on top of the input), then holds
  the input layer and every layer's parameters from the input up to the output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np

from oneeye.errors import ModelError
from oneeye.vision.resnet.model import AffineLayer, ConvLayer, FloatArray

LayerT = TypeVar("LayerT")


class ByteReader:
    """A cursor over the file's bytes that reads dlib's primitive encodings."""

    def __init__(self, data: bytes, source: str) -> None:
        self._data = data
        self._pos = 0
        self._source = source

    @property
    def at_end(self) -> bool:
        """Whether every byte has been read."""
        return self._pos == len(self._data)

    def fail(self, what: str) -> ModelError:
        """A ``ModelError`` naming the file, ``what`` went wrong and the byte reached."""
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
        """A signed integer (``what`` names it in errors); raises ModelError if malformed."""
        head = self._take(1, what)[0]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise self.fail(f"{what}: bad integer header byte 0x{head:02x}")
        value = int.from_bytes(self._take(size, what), "little")
        return -value if head & 0x80 else value

    def count(self, what: str, limit: int = 1 << 31) -> int:
        """An integer in ``[0, limit]``; raises ModelError otherwise."""
        value = self.integer(what)
        if not 0 <= value <= limit:
            raise self.fail(f"{what}: expected a count in [0, {limit}], got {value}")
        return value

    def real(self, what: str) -> float:
        """A float or double (mantissa and exponent); raises ModelError if out of range."""
        mantissa = self.integer(what)
        exponent = self.integer(what)
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError as exc:
            raise self.fail(f"{what}: float out of range ({mantissa} * 2**{exponent})") from exc

    def text(self, what: str) -> str:
        """An ASCII string of at most 4096 bytes; raises ModelError otherwise."""
        length = self.count(what, limit=4096)
        raw = self._take(length, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what}: expected an ASCII name, got {raw[:40]!r}") from exc

    def flag(self, what: str) -> bool:
        """A ``bool`` (``'0'`` or ``'1'``); raises ModelError otherwise."""
        raw = self._take(1, what)
        if raw not in (b"0", b"1"):
            raise self.fail(f"{what}: expected a bool '0' or '1', got {raw!r}")
        return raw == b"1"

    def tensor(self, what: str) -> FloatArray:
        """A version-2 tensor as a float32 (samples, k, rows, cols) array."""
        version = self.integer(what)
        if version != 2:
            raise self.fail(f"{what}: expected tensor version 2, got {version}")
        shape = tuple(self.count(what) for _ in range(4))
        size = math.prod(shape)
        raw = self._take(4 * size, what)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        """An ``alias_tensor``'s shape (it holds no values)."""
        version = self.integer(what)
        if version != 1:
            raise self.fail(f"{what}: expected alias_tensor version 1, got {version}")
        n, k, nr, nc = (self.count(what) for _ in range(4))
        return n, k, nr, nc


LAYER_VERSION = 2  # add_layer over another layer
INPUT_LAYER_VERSION = 3  # add_layer directly over the input layer
MARKER_VERSION = 1  # add_tag_layer / add_skip_layer


def open_network(path: str | Path, description: str, loss: str) -> ByteReader:
    """Read a serialized network's bytes and its loss layer's version and name.

    Args:
        path: the ``.dat`` file.
        description: what the file holds, for the error when it cannot be read
            (``"face model"``).
        loss: the loss layer's name the network must have (``"loss_metric_2"``).

    Returns:
        A reader positioned after the loss name (on the loss's own parameters, if any).

    Raises:
        ModelError: the file cannot be read, or its loss is not version 1 of ``loss``.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the {description} {source}: {exc}") from exc
    reader = ByteReader(data, source)
    version = reader.integer("loss layer version")
    if version != 1:
        raise reader.fail(f"expected a loss layer of version 1, got {version}")
    name = reader.text("loss name")
    if name != loss:
        raise reader.fail(f"expected loss {loss!r}, got {name!r}")
    return reader


def read_layer(
    reader: ByteReader, readers: Mapping[str, Callable[[ByteReader], LayerT]], version: int
) -> LayerT:
    """One layer's name, its parameters (read by ``readers[name]``) and its wrapper's trailer.

    Args:
        reader: positioned on the layer's name.
        readers: the layer names this network may hold, each with what reads its parameters.
        version: the wrapper version the layer was saved with (``INPUT_LAYER_VERSION`` for
            the layer right over the input, ``LAYER_VERSION`` otherwise).

    Returns:
        The layer.

    Raises:
        ModelError: the name is not one of ``readers``, or its parameters are malformed.
    """
    name = reader.text("layer name")
    read = readers.get(name)
    if read is None:
        raise reader.fail(f"unsupported layer type {name!r}; supported: {sorted(readers)}")
    layer = read(reader)
    read_trailer(reader, version)
    return layer


def read_trailer(reader: ByteReader, version: int) -> None:
    """Skip what ``add_layer`` saves after its parameters: training state, not weights."""
    for name in ("this_layer_setup_called", "gradient_input_is_stale", "output_disabled"):
        reader.flag(name)
    for name in ("x_grad", "cached_output", "params_grad"):
        reader.tensor(name)
    if version == INPUT_LAYER_VERSION:
        factor = reader.integer("sample_expansion_factor")
        if factor != 1:
            raise reader.fail(f"expected a sample expansion factor of 1, got {factor}")


def read_multipliers(reader: ByteReader) -> None:
    """Skip a layer's four learning-rate and weight-decay multipliers (training only)."""
    for name in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        reader.real(f"{name} multiplier")


def read_conv(reader: ByteReader) -> ConvLayer:
    """A ``con_`` layer (version ``con_4``) after its name: weights, bias, stride, padding.

    Raises:
        ModelError: the sizes disagree or the file is truncated.
    """
    params = reader.tensor("con_ params").ravel()
    filters, rows, cols = (reader.count("con_ size") for _ in range(3))
    stride = (reader.count("con_ stride"), reader.count("con_ stride"))
    padding = (reader.count("con_ padding"), reader.count("con_ padding"))
    w_shape = reader.alias("con_ filters")
    b_shape = reader.alias("con_ biases")
    read_multipliers(reader)
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


def read_affine(reader: ByteReader) -> AffineLayer:
    """An ``affine_`` layer in convolutional mode after its name: per-channel gamma and beta.

    Raises:
        ModelError: the sizes disagree, the mode is not convolutional, or the file ends.
    """
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


def read_batch_norm(reader: ByteReader) -> AffineLayer:
    """A ``bn_con2`` (batch normalisation, convolutional mode) read as the ``affine_`` dlib
    turns it into when it loads one for inference: ``gamma / sqrt(running_variance + eps)``
    and ``beta - running_mean * that``.

    Args:
        reader: positioned after the layer's name.

    Returns:
        The equivalent affine layer.

    Raises:
        ModelError: the sizes disagree, or the file is truncated.
    """
    params = reader.tensor("bn_ params").ravel()
    g_shape = reader.alias("bn_ gamma")
    reader.alias("bn_ beta")
    for name in ("means", "invstds"):
        reader.tensor(f"bn_ {name}")
    running_means = reader.tensor("bn_ running means").ravel()
    running_variances = reader.tensor("bn_ running variances").ravel()
    reader.integer("bn_ num_updates")
    reader.integer("bn_ running_stats_window_size")
    read_multipliers(reader)
    eps = reader.real("bn_ eps")
    channels = math.prod(g_shape)
    if params.size != 2 * channels or running_means.size != channels:
        raise reader.fail(f"bn_: expected {2 * channels} parameters and {channels} means")
    if running_variances.size != channels or not eps > 0:
        raise reader.fail(f"bn_: expected {channels} variances and a positive eps")
    if float(running_variances.min()) + eps <= 0:
        raise reader.fail("bn_: a running variance is negative")
    gamma = params[:channels] / np.sqrt(running_variances + np.float32(eps))
    beta = params[channels:] - running_means * gamma
    return AffineLayer(gamma.astype(np.float32), beta.astype(np.float32))
