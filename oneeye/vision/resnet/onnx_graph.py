"""The network as an ONNX graph: which nodes and constants dlib's layers become.

Both ONNX backends (onnxruntime and OpenCV's DNN module) run this one graph: NCHW, opset 13,
batch size free, each ``affine`` folded into the convolution before it. The walk over the
layers is written against ``GraphWriter``; ``build_onnx`` serializes with
``onnx_proto.ProtobufGraph`` (see there why not the ``onnx`` package, which the tests use to
check that both give the same bytes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from oneeye.vision.resnet.model import (
    AddPrevLayer,
    AffineLayer,
    ConvLayer,
    FullyConnectedLayer,
    Layer,
    PoolLayer,
    ReluLayer,
    ResNetModel,
    Shape,
    SkipLayer,
    TagLayer,
    layer_shapes,
    pool_window,
)
from oneeye.vision.resnet.onnx_proto import AttributeValue, ProtobufGraph

OPSET = 13
IR_VERSION = 7
"""The IR version that goes with opset 13 (OpenCV's importer reads it)."""
INPUT_NAME = "chips"
GRAPH_NAME = "dlib_metric_resnet"
PRODUCER = "oneeye"


class GraphWriter(Protocol):
    """Turns a graph, given node by node, into ``ModelProto`` bytes."""

    def add_initializer(self, name: str, array: npt.NDArray[Any]) -> None:
        """Add a constant tensor (float32, or int64 for an int64 array)."""
        ...

    def add_node(
        self,
        op: str,
        inputs: Sequence[str],
        output: str,
        name: str,
        attributes: Mapping[str, AttributeValue],
    ) -> None:
        """Add an operator node of the default domain."""
        ...

    def serialize(
        self,
        graph_name: str,
        inputs: tuple[str, Sequence[int | str]],
        outputs: tuple[str, Sequence[int | str]],
        *,
        producer: str,
        opset: int,
        ir_version: int,
    ) -> bytes:
        """The model's bytes: one float input and one float output, ``str`` dims symbolic."""
        ...


class Namer:
    """Names every constant and node output in order (``w1``, ``t2``...) as it adds it."""

    def __init__(self, writer: GraphWriter) -> None:
        self.writer = writer
        self._count = 0

    def constant(self, array: npt.NDArray[Any]) -> str:
        """Add ``array`` as a constant; its name."""
        self._count += 1
        name = f"w{self._count}"
        self.writer.add_initializer(name, array)
        return name

    def node(self, op: str, inputs: Sequence[str], **attributes: AttributeValue) -> str:
        """Add an ``op`` node over ``inputs``; the name of its output."""
        self._count += 1
        output = f"t{self._count}"
        self.writer.add_node(op, inputs, output, f"{op.lower()}{self._count}", attributes)
        return output

    def pad_to(self, name: str, shape: Shape, target: Shape) -> str:
        """``name`` zero-padded at the end of each dimension up to ``target`` (``add_prev``)."""
        if shape == target:
            return name
        pads = np.array([0, 0, 0, 0, 0, *(t - s for s, t in zip(shape, target, strict=True))])
        return self.node("Pad", [name, self.constant(pads.astype(np.int64))], mode="constant")

    def chain_layer(self, current: str, layers: Sequence[Layer], i: int) -> tuple[str, int] | None:
        """Add ``layers[i]`` over ``current`` if it is one of the layers both dlib networks
        chain: a convolution (with an ``affine`` right after it folded into its weights and
        bias, which changes results only by float rounding), an ``affine`` or a ``relu``.

        Args:
            current: the name of the layer's input.
            layers: the network's layers, input to output.
            i: the index of the layer to add.

        Returns:
            The name of the output and the index of the last layer it took (``i + 1`` when
            an affine was folded in), or None for another kind of layer, left to the caller.
        """
        layer = layers[i]
        if isinstance(layer, ConvLayer):
            weights, bias = layer.weights, layer.bias
            following = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(following, AffineLayer):
                weights = weights * following.gamma[:, None, None, None]
                bias = bias * following.gamma + following.beta
                i += 1
            output = self.node(
                "Conv",
                [current, self.constant(weights), self.constant(bias)],
                kernel_shape=list(weights.shape[2:]),
                strides=list(layer.stride),
                pads=[*layer.padding, *layer.padding],
            )
        elif isinstance(layer, AffineLayer):
            gamma = self.constant(layer.gamma.reshape(-1, 1, 1))
            beta = self.constant(layer.beta.reshape(-1, 1, 1))
            output = self.node("Add", [self.node("Mul", [current, gamma]), beta])
        elif isinstance(layer, ReluLayer):
            output = self.node("Relu", [current])
        else:
            return None
        return output, i


def write_graph(model: ResNetModel, writer: GraphWriter) -> bytes:
    """The network as an ONNX model (opset 13), NCHW, batch size free, through ``writer``.

    The input ``chips`` is the normalised chip batch (N, 3, rows, cols); the output is the
    (N, outputs) descriptor. Each ``affine`` is folded into the convolution before it, which
    changes results only by float rounding.

    Args:
        model: the parsed network.
        writer: the serializer (a fresh one: it collects the graph).

    Returns:
        The ``ModelProto`` bytes.
    """
    shapes = layer_shapes(model.input, model.layers)
    graph = Namer(writer)
    current, shape = INPUT_NAME, (3, model.input.rows, model.input.cols)
    tags: list[tuple[str, Shape]] = []
    layers = model.layers
    i = 0
    while i < len(layers):
        layer = layers[i]
        chained = graph.chain_layer(current, layers, i)
        if chained is not None:
            current, i = chained
        elif isinstance(layer, PoolLayer):
            window = pool_window(layer, shape[1], shape[2])
            if window == shape[1:] and not any(layer.padding):
                op = "GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool"
                current = graph.node(op, [current])
            else:
                current = graph.node(
                    "MaxPool" if layer.kind == "max" else "AveragePool",
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
                [graph.pad_to(current, shape, target), graph.pad_to(other, other_shape, target)],
            )
        elif isinstance(layer, FullyConnectedLayer):
            current = graph.node(
                "MatMul", [graph.node("Flatten", [current], axis=1), graph.constant(layer.weights)]
            )
            if layer.bias is not None:
                current = graph.node("Add", [current, graph.constant(layer.bias)])
        shape = shapes[i]
        i += 1
    rows, cols = model.input.rows, model.input.cols
    return writer.serialize(
        GRAPH_NAME,
        (INPUT_NAME, ("N", 3, rows, cols)),
        (current, ("N", model.output_size)),
        producer=PRODUCER,
        opset=OPSET,
        ir_version=IR_VERSION,
    )


def build_onnx(model: ResNetModel) -> bytes:
    """The network as a serialized ONNX model (opset 13), NCHW, batch size free.

    The input ``chips`` is the normalised chip batch (N, 3, rows, cols); the output is the
    (N, outputs) descriptor (see ``write_graph``).

    Args:
        model: the parsed network.

    Returns:
        The ONNX ``ModelProto`` bytes, ready for ``cv2.dnn.readNetFromONNX`` or onnxruntime.
    """
    return write_graph(model, ProtobufGraph())
