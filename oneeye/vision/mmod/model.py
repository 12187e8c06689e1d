"""dlib's MMOD face detector as plain data: its input pyramid's settings, its layers with their
numpy weights, and ``loss_mmod``'s options, as ``mmod_human_face_detector.dat`` stores them.

The network (``tools/python/src/cnn_face_detector.cpp`` in dlib) is ``loss_mmod<con<1,9,9,1,1,
rcon5<rcon5<rcon5<downsampler<input_rgb_image_pyramid<pyramid_down<6>>>>>>>>``:
three unpadded 5x5 stride-2 convolutions (16, 32, 32 filters, each with ``affine`` and
``relu``), three padded 5x5 convolutions of 45 filters, and one padded 9x9 convolution giving
one score per detector window for each position of an eighth-resolution map. The layers are
the ResNet's (``oneeye.vision.resnet.model``): convolution, affine, relu.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from oneeye.vision.resnet.model import AffineLayer, ConvLayer, ReluLayer, out_size

MmodLayer: TypeAlias = ConvLayer | AffineLayer | ReluLayer


@dataclass(frozen=True, slots=True)
class PyramidInput:
    """dlib's ``input_rgb_image_pyramid``: channel means (R, G, B) subtracted before the
    division by 256, and the tiled pyramid's padding between levels and around them."""

    means: tuple[float, float, float]
    padding: int
    outer_padding: int


@dataclass(frozen=True, slots=True)
class DetectorWindow:
    """One sliding window of ``loss_mmod``: its size in the pyramid's pixels, and its label."""

    width: int
    height: int
    label: str


@dataclass(frozen=True, slots=True)
class MmodOptions:
    """What ``loss_mmod`` uses at detection time.

    Two boxes overlap (and the weaker is suppressed) when their intersection over the area of
    the box bounding both exceeds ``nms_iou``, or covers more than ``nms_covered`` of either.
    """

    windows: tuple[DetectorWindow, ...]
    nms_iou: float
    nms_covered: float

    @property
    def window_px(self) -> int:
        """The smallest face found at scale 1, in pixels: the shorter side of the smallest
        window. The pyramid only shrinks the image, so no box is smaller than this without
        upsampling (80 for ``mmod_human_face_detector.dat``)."""
        return min(min(w.width, w.height) for w in self.windows)


@dataclass(frozen=True, slots=True)
class MmodModel:
    """The detector: input pyramid, layers from input to output, and loss options."""

    input: PyramidInput
    layers: tuple[MmodLayer, ...]
    options: MmodOptions

    def output_to_input(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """How an output cell maps to the input tensor (``output_tensor_to_input_tensor``).

        Each convolution maps ``p`` to ``p * stride - padding + kernel // 2``; composed over
        the layers that is ``p * scale + offset`` along each axis.

        Returns:
            ``((scale_y, offset_y), (scale_x, offset_x))``: row ``r`` of the output is row
            ``r * scale_y + offset_y`` of the input.
        """
        axes = []
        for axis in (0, 1):
            scale, offset = 1, 0
            for layer in self.layers:  # input to output: p_in = s * p_out + o, composed
                if isinstance(layer, ConvLayer):
                    kernel = layer.weights.shape[2 + axis]
                    step = layer.stride[axis]
                    offset += scale * (kernel // 2 - layer.padding[axis])
                    scale *= step
            axes.append((scale, offset))
        return axes[0], axes[1]

    def output_size(self, rows: int, cols: int) -> tuple[int, int]:
        """The score maps' size for an input tensor of ``rows`` x ``cols`` (0 when too small).

        Args:
            rows: input tensor height.
            cols: input tensor width.

        Returns:
            (rows, cols) of the output, each at least 0.
        """
        for layer in self.layers:
            if isinstance(layer, ConvLayer):
                kr, kc = layer.weights.shape[2:]
                rows = out_size(rows, kr, layer.stride[0], layer.padding[0])
                cols = out_size(cols, kc, layer.stride[1], layer.padding[1])
                if rows < 1 or cols < 1:
                    return 0, 0
        return rows, cols
