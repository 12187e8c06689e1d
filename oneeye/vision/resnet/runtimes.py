"""The two backends that run the ONNX graph: onnxruntime (fastest; optional) and OpenCV's DNN
module (always installed). Each imports its runtime in its constructor."""

from __future__ import annotations

import importlib

import numpy as np

from oneeye.vision.resnet.backend import Backend
from oneeye.vision.resnet.model import FloatArray, ResNetModel
from oneeye.vision.resnet.onnx_graph import INPUT_NAME, build_onnx


class OnnxRuntimeBackend(Backend):
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
        (out,) = self._session.run(None, {INPUT_NAME: nchw})
        return np.asarray(out, dtype=np.float32)


class OpenCVBackend(Backend):
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
