"""The two backends that run the detector's ONNX graph on a tiled pyramid: onnxruntime
(fastest; optional) and OpenCV's DNN module (always installed)."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

from oneeye.vision.mmod.graph import INPUT_NAME, build_onnx
from oneeye.vision.mmod.model import MmodModel

FloatArray = npt.NDArray[np.float32]


class ScoreBackend(ABC):
    """Runs the network on a (1, 3, H, W) pyramid tensor, giving (1, windows, H', W')."""

    @abstractmethod
    def run(self, tensor: FloatArray) -> FloatArray:
        """The score maps of one pyramid tensor.

        Args:
            tensor: (1, 3, H, W) float32, from ``pyramid.tiled_pyramid``.

        Returns:
            (1, windows, H', W') float32 scores.
        """


class OnnxRuntimeScores(ScoreBackend):
    """The graph run by onnxruntime's CPU provider."""

    def __init__(self, model: MmodModel, num_threads: int | None) -> None:
        # An optional dependency without type hints: imported by name, here only.
        onnxruntime = importlib.import_module("onnxruntime")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or 0  # 0: one per core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        # Idle pool threads sleep: the detector shares the CPU with decoding and tracking.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            build_onnx(model), options, providers=["CPUExecutionProvider"]
        )

    def run(self, tensor: FloatArray) -> FloatArray:
        """See ``ScoreBackend.run``."""
        (out,) = self._session.run(None, {INPUT_NAME: tensor})
        return np.asarray(out, dtype=np.float32)


class OpenCVScores(ScoreBackend):
    """The graph run by OpenCV's DNN module (``cv2.dnn``)."""

    def __init__(self, model: MmodModel, num_threads: int | None) -> None:
        import cv2  # noqa: PLC0415 - keeps importing this module cheap

        if num_threads is not None:
            cv2.setNumThreads(num_threads)  # process-wide: OpenCV has one thread pool
        self._net = cv2.dnn.readNetFromONNX(np.frombuffer(build_onnx(model), dtype=np.uint8))

    def run(self, tensor: FloatArray) -> FloatArray:
        """See ``ScoreBackend.run``."""
        self._net.setInput(tensor)
        return np.asarray(self._net.forward(), dtype=np.float32)
