"""The MMOD detector's network as an ONNX graph, written as the ResNet's is
(``oneeye.vision.resnet.onnx_graph``: opset 13, hand-written protobuf).

The input ``pyramid`` is the tiled pyramid tensor (N, 3, H, W) with any H and W; the output
``scores`` is (N, windows, H', W'), one score map per detector window. Each ``affine`` is
folded into the convolution before it, which changes scores only by float rounding.
"""

from __future__ import annotations

from oneeye.vision.mmod.model import MmodModel
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
        chained = graph.chain_layer(current, layers, i)
        if chained is None:  # MmodLayer holds only the layers chain_layer adds
            raise TypeError(f"not an MMOD layer: {type(layers[i]).__name__}")
        current, i = chained
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
