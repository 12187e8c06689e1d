"""dlib's metric ResNet as plain data: its layers with their numpy weights, and the shape
arithmetic every backend shares (output sizes, pooling windows, the shape after each layer).

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float32]

Shape: TypeAlias = tuple[int, int, int]
"""A tensor's (channels, rows, cols), the batch left out."""


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


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """The length of a convolution's or pooling's output along one axis, as dlib sizes it."""
    return 1 + (size + 2 * padding - kernel) // stride


def pool_window(layer: PoolLayer, rows: int, cols: int) -> tuple[int, int]:
    """The window size, the whole image for a size of 0 (``max_pool_everything``)."""
    return (layer.size[0] or rows, layer.size[1] or cols)


def layer_shapes(input_layer: InputLayer, layers: Sequence[Layer]) -> list[Shape]:
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
                out_size(r, kr, layer.stride[0], layer.padding[0]),
                out_size(c, kc, layer.stride[1], layer.padding[1]),
            )
        elif isinstance(layer, AffineLayer):
            if layer.gamma.size != k:
                raise ValueError(f"an affine layer expects {layer.gamma.size} channels, gets {k}")
        elif isinstance(layer, PoolLayer):
            wr, wc = pool_window(layer, r, c)
            shape = (
                k,
                out_size(r, wr, layer.stride[0], layer.padding[0]),
                out_size(c, wc, layer.stride[1], layer.padding[1]),
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
