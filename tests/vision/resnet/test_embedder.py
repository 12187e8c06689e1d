"""The dlib ResNet re-implementation: equality with dlib's own descriptors, backend by backend.

The chips here are synthetic (noise, gradients, blobs): equality with dlib is a check of the
arithmetic, which does not care what the pixels show. Real-photo checks live with the face
pipeline tests.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import dlib
import numpy as np
import numpy.typing as npt
import pytest

from oneeye.errors import ModelError
from oneeye.vision.resnet import ResNetEmbedder
from oneeye.vision.resnet import embedder as embedder_module

TOLERANCE = 1e-4
BACKENDS = [
    pytest.param(
        "onnxruntime",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed"
        ),
    ),
    "opencv",
    "numpy",
]


@pytest.fixture(scope="module")
def embedders(model_path: Path) -> Callable[[str], ResNetEmbedder]:
    """One embedder per backend for the whole module: each costs a parse and a check."""
    cache: dict[str, ResNetEmbedder] = {}

    def get(backend: str) -> ResNetEmbedder:
        if backend not in cache:
            cache[backend] = ResNetEmbedder(model_path, backend)
        return cache[backend]

    return get


@pytest.fixture(scope="module")
def chips() -> npt.NDArray[np.uint8]:
    """Noise, and smooth images with face-like brightness: the arithmetic is what's checked."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:150, 0:150].astype(np.float32)
    # A bright oval on a darker ground with a colour gradient: face-like statistics, smooth.
    oval = np.exp(-(((yy - 75) / 45) ** 2 + ((xx - 75) / 35) ** 2))
    smooth = np.stack([60 + 170 * oval, 40 + 120 * oval + 0.3 * yy, 30 + 90 * oval + 0.3 * xx], -1)
    stripes = 128 + 100 * np.sin(xx[..., None] / 7 + np.array([0.0, 1.0, 2.0]))
    dark = np.full((150, 150, 3), 3.0) + rng.normal(0, 2, (150, 150, 3))
    synthetic = np.stack([smooth, stripes, dark]).clip(0, 255).astype(np.uint8)
    return np.concatenate([noise, synthetic])


@pytest.fixture(scope="module")
def dlib_descriptors(model_path: Path, chips: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    recognizer = dlib.face_recognition_model_v1(str(model_path))
    return np.array(
        [np.array(recognizer.compute_face_descriptor(chip)) for chip in chips], dtype=np.float32
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_dlib(
    embedders: Callable[[str], ResNetEmbedder],
    backend: str,
    chips: npt.NDArray[np.uint8],
    dlib_descriptors: npt.NDArray[np.float32],
) -> None:
    embedder = embedders(backend)

    ours = embedder.embed(chips)

    assert embedder.backend == backend
    assert ours.shape == (len(chips), 128)
    assert ours.dtype == np.float32
    assert float(np.abs(ours - dlib_descriptors).max()) < TOLERANCE
    alone = embedder.embed(chips[:1])
    assert float(np.abs(alone - ours[:1]).max()) < TOLERANCE


def test_long_batches_are_split(
    embedders: Callable[[str], ResNetEmbedder],
    chips: npt.NDArray[np.uint8],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedder = embedders("opencv")
    whole = embedder.embed(chips)
    monkeypatch.setattr(embedder_module, "MAX_BATCH", 2)

    split = embedder.embed(chips)

    assert split.shape == whole.shape
    assert float(np.abs(split - whole).max()) < TOLERANCE


def test_auto_picks_a_backend(embedders: Callable[[str], ResNetEmbedder]) -> None:
    embedder = embedders("auto")

    assert embedder.backend in ("onnxruntime", "opencv", "numpy")
    assert embedder.embed(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)


@pytest.mark.parametrize(
    ("chips", "expected_error"),
    [
        (np.zeros((150, 150, 3), np.uint8), r"shape \(N, 150, 150, 3\), got uint8 \(150, 150, 3\)"),
        (np.zeros((1, 150, 150, 3), np.float32), "got float32"),
        (np.zeros((1, 112, 112, 3), np.uint8), r"got uint8 \(1, 112, 112, 3\)"),
        (np.zeros((1, 150, 150, 4), np.uint8), r"got uint8 \(1, 150, 150, 4\)"),
    ],
)
def test_refuses_bad_chips(
    embedders: Callable[[str], ResNetEmbedder], chips: npt.NDArray[np.generic], expected_error: str
) -> None:
    embedder = embedders("opencv")

    with pytest.raises(ValueError, match=expected_error):
        embedder.embed(chips)  # type: ignore[arg-type]


def test_refuses_unknown_backend(model_path: Path) -> None:
    with pytest.raises(ValueError, match="backend must be"):
        ResNetEmbedder(model_path, "tensorflow")


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read the face model"):
        ResNetEmbedder(tmp_path / "nope.dat")
