"""The numpy reference backend: each dlib layer transcribed literally, convolutions as im2col
plus BLAS ``sgemm``. Slower than the ONNX backends; kept as the arithmetic they are checked
against at start-up (see ``oneeye.vision.resnet.model`` for what each layer computes)."""

from __future__ import annotations

import numpy as np

from oneeye.vision.resnet.backend import Backend
from oneeye.vision.resnet.model import (
    AddPrevLayer,
    AffineLayer,
    ConvLayer,
    FloatArray,
    FullyConnectedLayer,
    PoolLayer,
    ReluLayer,
    ResNetModel,
    SkipLayer,
    TagLayer,
    out_size,
    pool_window,
)


def _pad_to(x: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """Zero-pad ``x`` at the end of each dimension up to ``shape``."""
    if x.shape == shape:
        return x
    return np.pad(x, [(0, want - have) for have, want in zip(x.shape, shape, strict=True)])


class NumpyBackend(Backend):
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
        out_r, out_c = out_size(rows, kr, sr, pr), out_size(cols, kc, sc, pc)
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
        wr, wc = pool_window(layer, rows, cols)
        (sr, sc), (pr, pc) = layer.stride, layer.padding
        out_r, out_c = out_size(rows, wr, sr, pr), out_size(cols, wc, sc, pc)
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
