"""The MMOD detector's network as an ONNX graph, written as the ResNet's is
(``oneeye.vision.resnet.onnx_graph``: opset 13, hand-written protobuf).

The input ``pyramid`` is the tiled pyramid tensor (N, 3, H, W) with any H and W; the output
``scores`` is (N, windows, H', W'), one score map per detector window. Each ``affine`` is
folded into the convolution before it, which changes scores only by float rounding.
"""

from __future__ import annotations

from oneeye.vision.mmod.model import MmodModel
from oneeye.vision.resnet.model import AffineLayer, ConvLayer, ReluLayer
from oneeye.vision.resnet.onnx_graph import IR_VERSION, OPSET, PRODUCER, GraphWriter, Namer
from oneeye.vision.resnet.onnx_proto import ProtobufGraph

INPUT_NAME = "pyramid"
GRAPH_NAME = "dlib_mmod_detector"


def write_graph(model: MmodModel, writer: GraphWriter) -> bytes:
    """The network as an ONNX model through ``writer`` (see the module docstring).

    Args:
        model: the parsed detector.
        writer: the serializer (a fresh one: it collects the graph).

    Returns:
        The ``ModelProto`` bytes.
    """
    graph = Namer(writer)
    current = INPUT_NAME
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
            current = graph.node(
                "Conv",
                [current, graph.constant(weights), graph.constant(bias)],
                kernel_shape=list(weights.shape[2:]),
                strides=list(layer.stride),
                pads=[*layer.padding, *layer.padding],
            )
        elif isinstance(layer, AffineLayer):
            gamma = graph.constant(layer.gamma.reshape(-1, 1, 1))
            beta = graph.constant(layer.beta.reshape(-1, 1, 1))
            current = graph.node("Add", [graph.node("Mul", [current, gamma]), beta])
        elif isinstance(layer, ReluLayer):
            current = graph.node("Relu", [current])
        i += 1
    windows = len(model.options.windows)
    return writer.serialize(
        GRAPH_NAME,
        (INPUT_NAME, ("N", 3, "H", "W")),
        (current, ("N", windows, "Hout", "Wout")),
        producer=PRODUCER,
        opset=OPSET,
        ir_version=IR_VERSION,
    )


def build_onnx(model: MmodModel) -> bytes:
    """The network as a serialized ONNX model (see the module docstring).

    Args:
        model: the parsed detector.

    Returns:
        The ONNX ``ModelProto`` bytes, ready for onnxruntime or ``cv2.dnn.readNetFromONNX``.
    """
    return write_graph(model, ProtobufGraph())
