"""``ResNetEmbedder``: dlib's 128-D face descriptor from aligned chips, through the fastest
backend that loads and agrees with the numpy reference on a start-up check."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from oneeye.errors import ModelError
from oneeye.vision.resnet.backend import Backend, normalise
from oneeye.vision.resnet.model import InputLayer, ResNetModel
from oneeye.vision.resnet.reader import read_resnet_model
from oneeye.vision.resnet.reference import NumpyBackend
from oneeye.vision.resnet.runtimes import OnnxRuntimeBackend, OpenCVBackend

logger = logging.getLogger(__name__)


MAX_BATCH = 32
"""Chips per backend call: bounds the memory of im2col buffers (about 3 MB per chip)."""

SELF_CHECK_TOLERANCE = 1e-4
"""Largest difference from the numpy reference a backend may show on the start-up check."""

_MAKERS: dict[str, Callable[[ResNetModel, int | None], Backend]] = {
    "onnxruntime": OnnxRuntimeBackend,
    "opencv": OpenCVBackend,
    "numpy": lambda model, num_threads: NumpyBackend(model),
}

BACKENDS = tuple(_MAKERS)
"""Backend names, fastest first; ``"auto"`` takes the first that loads and checks out."""


def make_backend(name: str, model: ResNetModel, num_threads: int | None) -> Backend:
    """The backend called ``name`` (one of ``BACKENDS``) for ``model``.

    Args:
        name: the backend's name.
        model: the parsed network.
        num_threads: threads for the backend's pool (``None``: the library's default).

    Returns:
        The backend, not yet checked against the reference.

    Raises:
        ValueError: ``name`` is not one of ``BACKENDS``.
    """
    make = _MAKERS.get(name)
    if make is None:
        raise ValueError(f"unknown resnet backend {name!r}; known: {', '.join(BACKENDS)}")
    return make(model, num_threads)


def _probe_chips(input_layer: InputLayer) -> npt.NDArray[np.uint8]:
    """Two fixed chips for the start-up check: noise, and a smooth gradient."""
    rng = np.random.default_rng(20170212)
    noise = rng.integers(0, 256, (input_layer.rows, input_layer.cols, 3), dtype=np.uint8)
    rows = np.linspace(0, 255, input_layer.rows, dtype=np.float32)[:, None, None]
    cols = np.linspace(255, 0, input_layer.cols, dtype=np.float32)[None, :, None]
    smooth = (0.5 * rows + 0.5 * cols + np.zeros(3, np.float32)).astype(np.uint8)
    return np.stack([noise, smooth])


class ResNetEmbedder:
    """dlib's 128-D face descriptor, computed without dlib.

    Gives what ``dlib.face_recognition_model_v1(model_path).compute_face_descriptor(chip)``
    gives for the same 150x150 chip, within float rounding, several times faster.

    Example:
        >>> embedder = ResNetEmbedder(paths.resnet)            # doctest: +SKIP
        >>> embedder.embed(chips).shape                        # doctest: +SKIP
        (4, 128)
    """

    def __init__(
        self,
        model_path: str | Path,
        backend: str = "auto",
        *,
        num_threads: int | None = None,
    ) -> None:
        """Load the network and prepare a backend.

        Args:
            model_path: dlib's ``dlib_face_recognition_resnet_model_v1.dat``.
            backend: ``"onnxruntime"``, ``"opencv"``, ``"numpy"``, or ``"auto"`` for the first
                of these (in that order) that loads and passes the start-up check.
            num_threads: threads for the backend's thread pool; ``None`` keeps the library's
                default (one per core). ``"opencv"`` sets OpenCV's process-wide pool; the
                ``"numpy"`` backend uses BLAS's pool, set by ``OPENBLAS_NUM_THREADS``.

        Raises:
            ModelError: the model file is missing, corrupt or unsupported, the backend named
                cannot be loaded, or it disagrees with the numpy reference on the check.
            ValueError: ``backend`` is not one of the names above, or ``num_threads`` < 1.
        """
        if backend != "auto" and backend not in BACKENDS:
            raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {backend!r}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be None or >= 1, got {num_threads}")
        self.model = read_resnet_model(model_path)
        reference = NumpyBackend(self.model)
        probe = normalise(_probe_chips(self.model.input), self.model.input)
        expected = reference.run(probe)

        candidates = BACKENDS if backend == "auto" else (backend,)
        failures: list[str] = []
        for name in candidates:
            try:
                chosen = (
                    reference if name == "numpy" else make_backend(name, self.model, num_threads)
                )
                error = float(np.abs(chosen.run(probe) - expected).max())
            except Exception as exc:  # any failure to load or run means "try the next one"
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                # A missing optional package is expected; anything else deserves attention.
                level = logging.INFO if isinstance(exc, ImportError) else logging.WARNING
                logger.log(level, "resnet backend unusable: %s", failures[-1])
                continue
            if error <= SELF_CHECK_TOLERANCE:
                self._backend = chosen
                self.backend = name
                logger.info("resnet embedder ready: backend=%s model=%s", name, model_path)
                return
            failures.append(f"{name}: differs from the numpy reference by {error:.3g}")
            logger.warning("resnet backend unusable: %s", failures[-1])
        if backend == "auto":  # unreachable in practice: the numpy reference always passes
            raise ModelError("no backend could run the face model: " + "; ".join(failures))
        raise ModelError(f"the {backend!r} backend cannot run the face model: {failures[0]}")

    @property
    def input_size(self) -> tuple[int, int]:
        """The chip size the network takes, (rows, cols): (150, 150) for dlib's model."""
        return self.model.input.rows, self.model.input.cols

    def embed(self, chips: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Compute the descriptors of aligned face chips.

        Args:
            chips: (N, 150, 150, 3) uint8 RGB chips, aligned as
                ``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` aligns them.

        Returns:
            (N, 128) float32 descriptors, exactly as dlib's ``compute_face_descriptor`` would
            give them (within float rounding) and, like those, not normalised.

        Raises:
            ValueError: ``chips`` is not a uint8 array of shape (N, 150, 150, 3).
        """
        rows, cols = self.input_size
        if (
            not isinstance(chips, np.ndarray)
            or chips.dtype != np.uint8
            or chips.ndim != 4
            or chips.shape[1:] != (rows, cols, 3)
        ):
            got = f"{chips.dtype} {chips.shape}" if isinstance(chips, np.ndarray) else type(chips)
            raise ValueError(f"expected uint8 chips of shape (N, {rows}, {cols}, 3), got {got}")
        parts = [
            self._backend.run(normalise(chips[i : i + MAX_BATCH], self.model.input))
            for i in range(0, len(chips), MAX_BATCH)
        ]
        if not parts:
            return np.zeros((0, self.model.output_size), dtype=np.float32)
        return np.concatenate(parts)
