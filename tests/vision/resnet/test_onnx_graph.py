"""The ONNX graph: the hand-written protobuf gives byte for byte what the ``onnx`` package's
helpers give for the same graph, and the ``onnx`` checker accepts it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from oneeye.vision.resnet import ResNetModel, build_onnx, read_resnet_model
from oneeye.vision.resnet.onnx_graph import write_graph
from oneeye.vision.resnet.onnx_proto import AttributeValue

onnx = pytest.importorskip("onnx")


class HelperGraph:
    """A ``GraphWriter`` built on ``onnx.helper``: the reference for the hand-written one."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def add_initializer(self, name: str, array: npt.NDArray[Any]) -> None:
        dtype = np.int64 if array.dtype == np.int64 else np.float32
        self.initializers.append(onnx.numpy_helper.from_array(array.astype(dtype), name))

    def add_node(
        self,
        op: str,
        inputs: Sequence[str],
        output: str,
        name: str,
        attributes: Mapping[str, AttributeValue],
    ) -> None:
        self.nodes.append(
            onnx.helper.make_node(op, list(inputs), [output], name=name, **attributes)
        )

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
        helper, float32 = onnx.helper, onnx.TensorProto.FLOAT
        graph = helper.make_graph(
            self.nodes,
            graph_name,
            [helper.make_tensor_value_info(inputs[0], float32, list(inputs[1]))],
            [helper.make_tensor_value_info(outputs[0], float32, list(outputs[1]))],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph,
            producer_name=producer,
            opset_imports=[helper.make_opsetid("", opset)],
            ir_version=ir_version,
        )
        serialized: bytes = model.SerializeToString()
        return serialized


@pytest.fixture(scope="module")
def model(model_path: Path) -> ResNetModel:
    return read_resnet_model(model_path)


def test_hand_written_bytes_equal_the_onnx_helpers(model: ResNetModel) -> None:
    assert build_onnx(model) == write_graph(model, HelperGraph())


def test_the_onnx_checker_accepts_the_model(model: ResNetModel) -> None:
    proto = onnx.load_from_string(build_onnx(model))

    onnx.checker.check_model(proto, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    (output,) = inferred.graph.output
    dims = [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim]
    assert dims == ["N", 128]
    assert {node.op_type for node in proto.graph.node} == {
        "Conv", "Relu", "Add", "Pad", "MaxPool", "AveragePool", "GlobalAveragePool",
        "Flatten", "MatMul",
    }  # fmt: skip
