"""The backends that run the detector's ONNX graph on a tiled pyramid: OpenVINO in int8 or
bfloat16 (fastest, on a CPU with bfloat16 dot products), onnxruntime in float32, and OpenCV's
DNN module.
Each also offers the bilinear resize the pyramid is built with: numpy's
(``pyramid.resize_bilinear``) by default, and onnxruntime's ``Resize`` (``align_corners``,
dlib's corner mapping) for the OpenVINO and onnxruntime backends, three times faster on a 1080p
frame's pyramid."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt

from oneeye.vision.mmod.graph import INPUT_NAME, build_onnx
from oneeye.vision.mmod.model import MmodModel
from oneeye.vision.mmod.pyramid import resize_bilinear
from oneeye.vision.mmod.quantise import INT8_MARGIN, convolutions, quantise, ranges_for
from oneeye.vision.resnet.onnx_graph import IR_VERSION, OPSET, PRODUCER
from oneeye.vision.resnet.onnx_proto import ProtobufGraph

FloatArray = npt.NDArray[np.float32]


class ScoreBackend(ABC):
    """Runs the network on a (1, 3, H, W) pyramid tensor, giving (1, windows, H', W')."""

    approximate = False
    """True when scores are rounded coarser than float32 (the detector then confirms them)."""
    margin = 0.0
    """How far below the threshold an approximate score may be and still be confirmed."""
    precision = "f32"
    """What the scores are computed in: ``"f32"``, ``"bf16"`` or ``"int8"``."""

    @abstractmethod
    def run(self, tensor: FloatArray) -> FloatArray:
        """The score maps of one pyramid tensor.

        Args:
            tensor: (1, 3, H, W) float32, from ``pyramid.tiled_pyramid``.

        Returns:
            (1, windows, H', W') float32 scores.
        """

    def resize(self, image: FloatArray, rows: int, cols: int) -> FloatArray:
        """A bilinear resize as ``pyramid.resize_bilinear`` does it (that one, by default).

        Args:
            image: (C, H, W) float32.
            rows: output height.
            cols: output width.

        Returns:
            (C, rows, cols) float32.
        """
        return resize_bilinear(image, rows, cols)


class OnnxRuntimeScores(ScoreBackend):
    """The graph run by onnxruntime's CPU provider."""

    def __init__(self, model: MmodModel, num_threads: int | None) -> None:
        self._resizer = OnnxResizer(num_threads)
        self._session = self._resizer.session(build_onnx(model))

    def run(self, tensor: FloatArray) -> FloatArray:
        """See ``ScoreBackend.run``."""
        (out,) = self._session.run(None, {INPUT_NAME: tensor})
        return np.asarray(out, dtype=np.float32)

    def resize(self, image: FloatArray, rows: int, cols: int) -> FloatArray:
        """See ``ScoreBackend.resize`` and ``OnnxResizer.resize``."""
        return self._resizer.resize(image, rows, cols)


class OnnxResizer:
    """dlib's bilinear resize by onnxruntime's ``Resize``: one small session per pair of sizes
    (a camera's frames always need the same ones), the last ``RESIZE_SESSIONS`` kept."""

    def __init__(self, num_threads: int | None) -> None:
        # An optional dependency without type hints: imported by name, here only.
        onnxruntime = importlib.import_module("onnxruntime")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or 0  # 0: one per core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        # Idle pool threads sleep: the detector shares the CPU with decoding and tracking.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._onnxruntime: Any = onnxruntime
        self._options: Any = options
        self._sessions: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def session(self, graph: bytes) -> Any:
        """An onnxruntime session of ``graph`` on the CPU, with these threads and options."""
        return self._onnxruntime.InferenceSession(
            graph, self._options, providers=["CPUExecutionProvider"]
        )

    def resize(self, image: FloatArray, rows: int, cols: int) -> FloatArray:
        """As ``pyramid.resize_bilinear``: onnxruntime for large outputs; numpy's below
        ``SMALL_RESIZE`` pixels, where making a session (1-2 ms) would cost more than it saves
        (crops around tracks come in every size).
        """
        if rows * cols < SMALL_RESIZE:
            return resize_bilinear(image, rows, cols)
        key = (*image.shape, rows, cols)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = self.session(_resize_graph(image.shape, rows, cols))
            if len(self._sessions) > RESIZE_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(key)
        (out,) = session.run(None, {"image": np.ascontiguousarray(image)})
        return np.asarray(out, dtype=np.float32)


SMALL_RESIZE = 100_000
"""Outputs smaller than this many pixels are resized by numpy."""
RESIZE_SESSIONS = 256
"""Resize sessions kept: a 1080p pyramid needs 27, an upsampled photo about 25 more."""


def _resize_graph(shape: tuple[int, ...], rows: int, cols: int) -> bytes:
    """An ONNX graph resizing a (C, H, W) image to (C, rows, cols) as dlib does."""
    writer = ProtobufGraph()
    writer.add_initializer("sizes", np.array([shape[0], rows, cols], dtype=np.int64))
    writer.add_node(
        "Resize",
        ["image", "", "", "sizes"],
        "resized",
        "resize",
        {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
    )
    return writer.serialize(
        "dlib_resize_bilinear",
        ("image", shape),
        ("resized", (shape[0], rows, cols)),
        producer=PRODUCER,
        opset=OPSET,
        ir_version=IR_VERSION,
    )


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


class OpenVinoScores(ScoreBackend):
    """The graph run by OpenVINO's CPU plugin, on the calling thread: where the CPU has
    bfloat16 dot products (AVX-512 BF16 or AMX), in int8 for a network whose ranges are known
    (``quantise``), else in bfloat16; elsewhere, or when asked, in float32.

    bfloat16 is 1.8 (AVX-512 BF16) to 4 (AMX) times onnxruntime's float32 speed, and int8's
    network about 1.8 times bfloat16's on an AVX-512 BF16 CPU. Scores move by up to about 0.08
    in bfloat16, and in int8 by 0.14 near the threshold and 0.44 anywhere (of a range of -3 to
    3), so the detector confirms the cells
    within ``margin`` of its threshold in float32 (``approximate``). In float32 it gives
    onnxruntime's scores to within 1e-4, and on crops ran 1.4 times onnxruntime's speed on an
    AMX machine (0.88 times on a whole frame of an AVX-512 BF16 one). One model compiled for
    any image size: a camera's crops come in every size.
    """

    def __init__(
        self, model: MmodModel, num_threads: int | None, *, precision: str = "fastest"
    ) -> None:
        """Compile the network.

        Args:
            model: the detector.
            num_threads: threads for OpenVINO's pool (``None``: one per core).
            precision: ``"f32"``, ``"bf16"``, ``"int8"``, or ``"fastest"`` (int8 where it can
                be, else bfloat16, on a CPU with bfloat16 dot products; float32 elsewhere).

        Raises:
            ValueError: ``precision`` is unknown, or this CPU or network cannot run it.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        openvino = importlib.import_module("openvino")
        opset = importlib.import_module("openvino.opset13")
        core = openvino.Core()
        network = read_network(core, model)
        ranges = ranges_for(model)
        fast = has_bfloat16(core)
        if precision == "fastest":
            precision = "f32" if not fast else "int8" if ranges is not None else "bf16"
        if precision != "f32" and not fast:
            raise ValueError(f"{precision} needs bfloat16 dot products, which this CPU lacks")
        if precision == "int8":
            if ranges is None:
                raise ValueError("this network's int8 ranges were never measured")
            quantise(network, opset, ranges)
        _split_last_convolution(network, opset)
        self.precision = precision
        self.approximate = precision != "f32"
        self.margin = {"f32": 0.0, "bf16": BF16_MARGIN, "int8": INT8_MARGIN}[precision]
        compiled = core.compile_model(
            network,
            "CPU",
            {
                "INFERENCE_NUM_THREADS": num_threads or 0,  # 0: one per core
                # int8 runs the quantised convolutions in int8 and the rest in bfloat16.
                "INFERENCE_PRECISION_HINT": "f32" if precision == "f32" else "bf16",
                "PERFORMANCE_HINT": "LATENCY",
                "NUM_STREAMS": 1,
                "CPU_RUNTIME_CACHE_CAPACITY": SHAPES_KEPT,
            },
        )
        self._request: Any = compiled.create_infer_request()
        self._resizer = OnnxResizer(num_threads)

    def run(self, tensor: FloatArray) -> FloatArray:
        """See ``ScoreBackend.run``."""
        # The tensor is read in place (no copy into OpenVINO's own buffer) and not kept.
        self._request.infer({0: np.ascontiguousarray(tensor)}, share_inputs=True)
        return np.array(self._request.get_output_tensor(0).data, dtype=np.float32)

    def resize(self, image: FloatArray, rows: int, cols: int) -> FloatArray:
        """See ``ScoreBackend.resize`` and ``OnnxResizer.resize``."""
        return self._resizer.resize(image, rows, cols)


def read_network(core: Any, model: MmodModel) -> Any:
    """The detector's graph as an OpenVINO model taking pyramid tensors of any size.

    Args:
        core: an ``openvino.Core``.
        model: the detector.

    Returns:
        The ``openvino.Model``, not compiled.
    """
    network = core.read_model(build_onnx(model), b"")
    network.reshape({INPUT_NAME: [1, 3, -1, -1]})
    return network


PRECISIONS = ("fastest", "int8", "bf16", "f32")

BF16_MARGIN = 0.2
"""How far below the threshold a bfloat16 score may be and still be confirmed in float32.
bfloat16 moved scores by at most 0.0165 within this margin of the threshold, and 0.079
anywhere, on every cell of 100 LFW photos and 10 street frames (``BENCHMARKS.md``,
``--rounding``)."""

SHAPES_KEPT = 32
"""Input shapes whose kernels and buffers OpenVINO keeps ready (its default is 5,000): the first
run of a shape costs several runs of it (11 ms against 0.8 ms for a 200x200 crop in bfloat16)
and keeps about 3 MB, so 5,000 shapes of a camera's crops would grow a process by gigabytes.
Callers keep their shapes few (``CROP_STEP_CELLS``, ``CnnDetector.region_step_px``)."""


def _split_last_convolution(network: Any, ops: Any) -> None:
    """Replace the network's last convolution, k x k to a few channels, by a k x 1 one to k
    times as many and a 1 x k one that adds each column's share at its offset.

    The same sums in another order (float32 gives the same scores to within 1e-5), but the
    CPU plugin runs a convolution to one channel several times slower per multiply-add than
    one to k: on a 1080p pyramid in bfloat16 the network takes 7% less time. A last
    convolution of another shape (strided, not square, not padded to keep the size) is left.
    """
    found = convolutions(network)
    if not found:
        return
    last = found[-1]
    attributes = last.get_attributes()
    weights_node = last.input_value(1).get_node()
    if weights_node.get_type_name() != "Constant":
        return
    weights = np.asarray(weights_node.get_data(), dtype=np.float32)  # (out, in, k, k)
    outputs, _, size, width = weights.shape
    pad = size // 2
    if (
        size != width
        or size % 2 == 0
        or list(attributes["strides"]) != [1, 1]
        or list(attributes["dilations"]) != [1, 1]
        or list(attributes["pads_begin"]) != [pad, pad]
        or list(attributes["pads_end"]) != [pad, pad]
    ):
        return
    # Columns: channel o * k + dx sums weights[o, :, :, dx] over the rows of each column.
    columns = np.ascontiguousarray(
        weights.transpose(0, 3, 1, 2).reshape(outputs * size, -1, size)[..., None]
    )
    gather = np.zeros((outputs, outputs * size, 1, size), dtype=np.float32)
    for out in range(outputs):
        for dx in range(size):
            gather[out, out * size + dx, 0, dx] = 1.0
    by_column = ops.convolution(
        last.input_value(0), ops.constant(columns), [1, 1], [pad, 0], [pad, 0], [1, 1]
    )
    summed = ops.convolution(by_column, ops.constant(gather), [1, 1], [0, pad], [0, pad], [1, 1])
    for target in last.output(0).get_target_inputs():
        target.replace_source_output(summed.output(0))


def has_bfloat16(core: Any = None) -> bool:
    """Whether OpenVINO is installed and this CPU computes in bfloat16 natively.

    Args:
        core: an ``openvino.Core`` to ask (a new one by default).

    Returns:
        False when OpenVINO cannot be imported.
    """
    try:
        openvino = importlib.import_module("openvino")
    except ImportError:
        return False
    core = core or openvino.Core()
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
