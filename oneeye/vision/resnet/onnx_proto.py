"""ONNX protobuf written by hand: the few messages the ResNet graph needs, and no more.

Why not the ``onnx`` package's helpers: they give the very same bytes (the tests build the
graph both ways and compare), but importing ``onnx`` takes 0.9-1.4 s on a quiet machine and
2-3 s on a loaded one (most of it its ``ml_dtypes`` dependency), against 30-70 ms to build
the graph here; every process that starts an embedder (the server, an edge, each CLI
command) would pay that (measured December 2026, onnx 1.23). Fields are written in
field-number order and attributes sorted by name, as protobuf's and ``onnx.helper``'s own
serializers do, so the output is byte-for-byte theirs.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

AttributeValue: TypeAlias = int | float | str | Sequence[int]
"""What a node attribute may hold here: INT, FLOAT, STRING or INTS."""

_ONNX_FLOAT, _ONNX_INT64 = 1, 7  # TensorProto.DataType
_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_INTS = 1, 2, 3, 7  # AttributeProto.AttributeType


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


def _onnx_tensor(name: str, array: npt.NDArray[Any]) -> bytes:
    dtype = _ONNX_INT64 if array.dtype == np.int64 else _ONNX_FLOAT
    raw = np.ascontiguousarray(array, dtype="<i8" if dtype == _ONNX_INT64 else "<f4").tobytes()
    dims = b"".join(_pb_int(1, d) for d in array.shape)
    return dims + _pb_int(2, dtype) + _pb_bytes(8, name) + _pb_bytes(9, raw)


def _onnx_attribute(name: str, value: AttributeValue) -> bytes:
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


class ProtobufGraph:
    """An ``onnx_graph.GraphWriter`` that encodes each message as it is added."""

    def __init__(self) -> None:
        self._nodes: list[bytes] = []
        self._initializers: list[bytes] = []

    def add_initializer(self, name: str, array: npt.NDArray[Any]) -> None:
        """Add a constant tensor (float32, or int64 for an int64 array)."""
        self._initializers.append(_onnx_tensor(name, array))

    def add_node(
        self,
        op: str,
        inputs: Sequence[str],
        output: str,
        name: str,
        attributes: Mapping[str, AttributeValue],
    ) -> None:
        """Add an operator node of the default domain."""
        body = b"".join(_pb_bytes(1, i) for i in inputs) + _pb_bytes(2, output)
        body += _pb_bytes(3, name) + _pb_bytes(4, op)
        body += b"".join(
            _pb_bytes(5, _onnx_attribute(k, attributes[k])) for k in sorted(attributes)
        )
        self._nodes.append(body)

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
        """The ``ModelProto`` bytes of the graph: one float input and one float output."""
        graph = b"".join(_pb_bytes(1, n) for n in self._nodes)
        graph += _pb_bytes(2, graph_name)
        graph += b"".join(_pb_bytes(5, t) for t in self._initializers)
        graph += _pb_bytes(11, _onnx_value_info(*inputs))
        graph += _pb_bytes(12, _onnx_value_info(*outputs))
        return (
            _pb_int(1, ir_version)
            + _pb_bytes(2, producer)
            + _pb_bytes(7, graph)
            + _pb_bytes(8, _pb_bytes(1, "") + _pb_int(2, opset))
        )
