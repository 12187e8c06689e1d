"""``MmodDetector``: dlib's MMOD CNN face detector without dlib, box for box.

What ``dlib.cnn_face_detection_model_v1(path)(image, upsample)`` does, in order: upsample the
image ``upsample`` times (``pyramid.upsample``), build the tiled pyramid (``pyramid``), run
the network (``runtimes``), turn positive cells into boxes and suppress overlaps (``loss``),
and map the boxes back to the original image (``rect_down``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from oneeye.errors import ModelError
from oneeye.types import RGBImage
from oneeye.vision.mmod.confirm import CropPlan, confirm
from oneeye.vision.mmod.loss import Box, candidates, suppress
from oneeye.vision.mmod.model import MmodModel
from oneeye.vision.mmod.pyramid import (
    FloatArray,
    TiledLayout,
    lround,
    point_down_2,
    tiled_layout,
    tiled_pyramid,
    upsample,
)
from oneeye.vision.mmod.reader import read_mmod_model
from oneeye.vision.mmod.runtimes import (
    OnnxRuntimeScores,
    OpenCVScores,
    OpenVinoScores,
    ScoreBackend,
    has_bfloat16,
)

logger = logging.getLogger(__name__)

MAX_UPSAMPLE = 3
"""Each upsampling quadruples the work; more than 8x is never worth it."""
MAX_WORK_PIXELS = 16_000_000
"""The most pixels the tiled pyramid may hold. Peak memory is about 80 bytes per pyramid pixel
(onnxruntime's activations): a 1080p frame's pyramid is 7.6 million pixels and +600 MB, so this
bounds one detection to about 1.3 GB (a 1440p frame fits; a 4K frame must be shrunk first)."""

KEPT_PYRAMID_PIXELS = 4_000_000
"""The largest pyramid tensor a detector keeps between calls (48 MB, a 720p frame's): filling
the same zeroed tensor again saves the page faults of a new one, 2 ms on a 360p frame."""

_MAKERS: dict[str, Callable[[MmodModel, int | None, str], ScoreBackend]] = {
    "openvino": lambda model, threads, precision: OpenVinoScores(
        model, threads, precision=precision
    ),
    # float32 only: the precision asked for is OpenVINO's
    "onnxruntime": lambda model, threads, _: OnnxRuntimeScores(model, threads),
    "opencv": lambda model, threads, _: OpenCVScores(model, threads),
}
BACKENDS = tuple(_MAKERS)
"""Backend names, fastest first; ``"auto"`` takes the first that loads, and OpenVINO only where
the CPU has bfloat16 dot products (there it runs in int8 or bfloat16; elsewhere onnxruntime's
float32 is faster)."""


class MmodDetector:
    """dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``), run without dlib.

    Not thread-safe: one per thread.
    """

    def __init__(
        self,
        model_path: str | Path,
        backend: str = "auto",
        *,
        num_threads: int | None = None,
        precision: str = "fastest",
    ) -> None:
        """Load the network and a backend to run it.

        Args:
            model_path: dlib's ``mmod_human_face_detector.dat``.
            backend: ``"openvino"``, ``"onnxruntime"``, ``"opencv"``, or ``"auto"`` (the
                first that loads; OpenVINO only where it computes in bfloat16).
            num_threads: threads for the backend's pool; ``None`` keeps the library's default
                (one per core). ``"opencv"`` sets OpenCV's process-wide pool.
            precision: OpenVINO's (``OpenVinoScores``): ``"fastest"`` (int8 where it can be,
                else bfloat16), ``"int8"``, ``"bf16"`` or ``"f32"``; the other backends compute
                in float32 whatever this says.

        Raises:
            ModelError: the model file is missing, truncated, corrupt or unsupported, or no
                backend can run it.
            ValueError: ``backend`` is unknown or ``num_threads`` < 1.
        """
        if backend != "auto" and backend not in BACKENDS:
            raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {backend!r}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be None or >= 1, got {num_threads}")
        self.model = read_mmod_model(model_path)
        self.rescored_pixels = 0
        """Pyramid pixels the float32 backend scored again, over all ``detect`` calls."""
        self.window_px = self.model.options.window_px
        """The smallest face found without upsampling (the model file's detector window)."""
        self._mapping = self.model.output_to_input()
        self._kept: tuple[TiledLayout, FloatArray] | None = None
        failures: list[str] = []
        names = BACKENDS if backend == "auto" else (backend,)
        if backend == "auto" and not has_bfloat16():
            names = tuple(name for name in names if name != "openvino")
        for name in names:
            try:
                self._backend = _MAKERS[name](self.model, num_threads, precision)
            except Exception as exc:  # any failure to load means "try the next one"
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                level = logging.INFO if isinstance(exc, ImportError) else logging.WARNING
                logger.log(level, "mmod backend unusable: %s", failures[-1])
                continue
            self.backend = name
            self.precision = self._backend.precision
            """What the first pass computes in (``"int8"``, ``"bf16"``, ``"f32"``)."""
            self._exact = self._confirmer(num_threads)
            return
        raise ModelError("no backend can run the MMOD face detector: " + "; ".join(failures))

    def _confirmer(self, num_threads: int | None) -> tuple[CropPlan, ScoreBackend] | None:
        """What re-scores an approximate backend's candidates in float32 (``confirm``): the
        same OpenVINO graph in float32, else onnxruntime, else OpenCV."""
        if not self._backend.approximate:
            return None
        plan = CropPlan.of(self.model)
        if plan is None:
            raise ModelError("this MMOD network's shape cannot be confirmed by crops")
        makers: tuple[Callable[[], ScoreBackend], ...] = (
            lambda: OpenVinoScores(self.model, num_threads, precision="f32"),
            lambda: OnnxRuntimeScores(self.model, num_threads),
            lambda: OpenCVScores(self.model, num_threads),
        )
        for make in makers:
            try:
                return plan, make()
            except ImportError:
                continue
        raise ModelError("no float32 backend can confirm the MMOD detector's scores")

    def detect(
        self, image: RGBImage, upsample_times: int = 0, adjust_threshold: float = 0.0
    ) -> list[Box]:
        """The faces dlib's ``cnn_face_detection_model_v1(image, upsample_times)`` finds.

        Args:
            image: (H, W, 3) uint8 RGB, or (H, W) grey (as dlib, the same in R, G and B).
            upsample_times: how many times to double the image first (0-3).
            adjust_threshold: the score a box must exceed (dlib's ``adjust_threshold``, 0 in
                ``cnn_face_detection_model_v1``); lower finds more, and more false faces.

        Returns:
            Boxes in ``image``'s pixels (inclusive corners, not clipped to the image), with
            their scores, highest first.

        Raises:
            ValueError: the image is not (H, W, 3) or (H, W) uint8, ``upsample_times`` is out
                of range, or the work would exceed ``MAX_WORK_PIXELS``.
        """
        if image.dtype == np.uint8 and image.ndim == 2:  # grey: dlib copies it to R, G and B
            image = np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"expected an (H, W, 3) or (H, W) uint8 image, got {image.dtype} {image.shape}"
            )
        if not 0 <= upsample_times <= MAX_UPSAMPLE:
            raise ValueError(f"upsample_times must be in [0, {MAX_UPSAMPLE}], got {upsample_times}")
        work = image
        for _ in range(upsample_times):
            work = upsample(work, self._backend.resize)
        pyramid = self.model.input
        layout = tiled_layout(work.shape[0], work.shape[1], pyramid.padding, pyramid.outer_padding)
        if layout.rows * layout.cols > MAX_WORK_PIXELS:
            raise ValueError(
                f"a {image.shape[1]}x{image.shape[0]} image upsampled {upsample_times} times "
                f"needs a {layout.cols}x{layout.rows} pyramid, over {MAX_WORK_PIXELS} pixels"
            )
        if not layout.tiles or 0 in self.model.output_size(layout.rows, layout.cols):
            return []
        tensor = self._pyramid(work, layout)
        scores = self._backend.run(tensor)[0]
        if self._exact is not None:
            plan, exact = self._exact
            margin = self._backend.margin
            scores, rescored = confirm(tensor, scores, plan, exact, adjust_threshold, margin)
            self.rescored_pixels += rescored
        kept = suppress(
            candidates(scores, layout, self.model.options, self._mapping, adjust_threshold),
            self.model.options,
        )
        if upsample_times == 0:
            return kept
        return [_down(box, upsample_times) for box in kept]

    def _pyramid(self, image: RGBImage, layout: TiledLayout) -> FloatArray:
        """``tiled_pyramid`` of ``image``, filling the last tensor again when it has this layout
        (a camera's frames all do); a tensor of up to ``KEPT_PYRAMID_PIXELS`` is kept for the
        next call."""
        kept = self._kept[1] if self._kept is not None and self._kept[0] == layout else None
        tensor = tiled_pyramid(image, self.model.input.means, layout, self._backend.resize, kept)
        if kept is None:
            small = layout.rows * layout.cols <= KEPT_PYRAMID_PIXELS
            self._kept = (layout, tensor) if small else None
        return tensor


def _down(box: Box, levels: int) -> Box:
    left, top = point_down_2(box.left, box.top, levels)
    right, bottom = point_down_2(box.right, box.bottom, levels)
    return Box(lround(left), lround(top), lround(right), lround(bottom), box.score)
