"""Face features for many benchmark images, in parallel worker processes, cached on disk.

Two extractors: ``reference`` is face_recognition 1.3.0 called as its README shows
(``face_locations`` then ``face_encodings`` of the face nearest the centre); ``oneeye`` is our
engine, keeping the raw descriptor of several views of the face (5- and 68-point aligned chips
and their mirror images) so that combinations can be compared without encoding again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from oneeye.types import EMBEDDING_SIZE, Detection, RGBImage

logger = logging.getLogger(__name__)

VIEWS = ("5pt", "5pt-mirror", "68pt", "68pt-mirror")
"""The raw descriptors the oneeye extractor keeps per face, in this order."""


@dataclass(frozen=True, slots=True)
class ImageFeatures:
    """What one extractor found in one image."""

    views: npt.NDArray[np.float32]
    """(v, 128) raw descriptors; all NaN when no face was found."""
    stage: str
    """Which detector stage found the face (``none`` when nothing did)."""
    box: tuple[int, int, int, int]
    detect_seconds: float
    encode_seconds: float
    """CPU seconds of this process spent detecting / aligning and encoding."""


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """Features of many images, as parallel arrays."""

    images: tuple[str, ...]
    views: npt.NDArray[np.float32]
    """(n, v, 128)."""
    stages: tuple[str, ...]
    boxes: npt.NDArray[np.int64]
    detect_seconds: npt.NDArray[np.float64]
    encode_seconds: npt.NDArray[np.float64]
    wall_seconds: float
    workers: int

    def found(self) -> npt.NDArray[np.bool_]:
        """Which images have a face."""
        found: npt.NDArray[np.bool_] = ~np.isnan(self.views[:, 0, 0])
        return found


def nearest_centre(detections: Sequence[Detection], height: int, width: int) -> Detection:
    """The detection whose box centre is nearest the image centre."""

    def distance(d: Detection) -> float:
        x, y = d.box.center
        return (x - width / 2.0) ** 2 + (y - height / 2.0) ** 2

    return min(detections, key=distance)


class ReferenceExtractor:
    """face_recognition 1.3.0 as its README shows; imported only here, as a reference."""

    views = 1

    def __init__(self) -> None:
        import face_recognition  # noqa: PLC0415 - benchmark-only reference, optional

        self._fr: Any = face_recognition

    def __call__(self, path: Path) -> ImageFeatures:
        fr = self._fr
        start = time.process_time()
        image = fr.load_image_file(str(path))
        locations = fr.face_locations(image)
        detected = time.process_time()
        if not locations:
            return _nothing(1, detected - start)
        height, width = image.shape[:2]

        def distance(loc: tuple[int, int, int, int]) -> float:
            top, right, bottom, left = loc
            return float(
                ((left + right) / 2 - width / 2) ** 2 + ((top + bottom) / 2 - height / 2) ** 2
            )

        location = min(locations, key=distance)
        encoding = fr.face_encodings(image, [location])[0]
        encoded = time.process_time()
        return ImageFeatures(
            views=np.asarray(encoding, dtype=np.float32)[None, :],
            stage="hog-up1",
            box=tuple(int(v) for v in location),  # type: ignore[arg-type]
            detect_seconds=detected - start,
            encode_seconds=encoded - detected,
        )


class OneEyeExtractor:
    """Our engine: fallback detection, then raw descriptors of every view in ``VIEWS``."""

    views = len(VIEWS)

    def __init__(self) -> None:
        from oneeye.config import EngineSettings  # noqa: PLC0415 - loaded per worker
        from oneeye.vision.encode import FaceAligner  # noqa: PLC0415
        from oneeye.vision.engine import FaceEngine  # noqa: PLC0415
        from oneeye.vision.images import load_image  # noqa: PLC0415

        # One thread per worker process: the workers already fill the cores.
        self._engine = FaceEngine(EngineSettings(threads=1))
        self._aligner = FaceAligner(self._engine.models, "5+68")
        self._load: Callable[[Path], RGBImage] = load_image

    def __call__(self, path: Path) -> ImageFeatures:
        start = time.process_time()
        image = self._load(path)
        found = self._engine.detect_with_fallback(image)
        if not found:
            return _nothing(len(VIEWS), time.process_time() - start)
        height, width = image.shape[:2]
        face = nearest_centre(found, height, width)
        five, sixty_eight = self._aligner.align(image, [face.box]).chip_sets
        views = np.stack([five[0], five[0][:, ::-1], sixty_eight[0], sixty_eight[0][:, ::-1]])
        detected = time.process_time()
        descriptors = self._engine.embedder.embed(views)
        encoded = time.process_time()
        return ImageFeatures(
            views=descriptors.astype(np.float32),
            stage=face.detector,
            box=face.box.as_tuple(),
            detect_seconds=detected - start,
            encode_seconds=encoded - detected,
        )


def _nothing(views: int, seconds: float) -> ImageFeatures:
    return ImageFeatures(
        views=np.full((views, EMBEDDING_SIZE), np.nan, dtype=np.float32),
        stage="none",
        box=(0, 0, 0, 0),
        detect_seconds=seconds,
        encode_seconds=0.0,
    )


class JitterExtractor(OneEyeExtractor):
    """Our engine with ``JITTERS`` jittered copies of the 5-point chip and of its mirror."""

    views = 2 * 8

    def __call__(self, path: Path) -> ImageFeatures:
        from oneeye.vision.encode import jittered  # noqa: PLC0415

        start = time.process_time()
        image = self._load(path)
        found = self._engine.detect_with_fallback(image)
        if not found:
            return _nothing(self.views, time.process_time() - start)
        height, width = image.shape[:2]
        face = nearest_centre(found, height, width)
        chip = self._aligner.align(image, [face.box]).chip_sets[0][0]
        half = self.views // 2
        views = np.stack(
            jittered(chip, half, seed=0) + jittered(np.ascontiguousarray(chip[:, ::-1]), half, 1)
        )
        detected = time.process_time()
        descriptors = self._engine.embedder.embed(views)
        return ImageFeatures(
            views=descriptors.astype(np.float32),
            stage=face.detector,
            box=face.box.as_tuple(),
            detect_seconds=detected - start,
            encode_seconds=time.process_time() - detected,
        )


ENROL_JITTERS = 8
"""Jittered copies of the chip, and of its mirror, the enrolment extractor keeps."""


class EnrolmentJitterExtractor(OneEyeExtractor):
    """The views ``embed_chips`` averages for an enrolment photo with up to ``ENROL_JITTERS``
    jitters: the 5-point chip, its mirror, then ``ENROL_JITTERS`` jittered copies of each
    (the same seeds as ``embed_chips``, so the first ``n`` copies are what ``jitter=n``
    gives). Raw descriptors, in that order: (2 + 2 * ENROL_JITTERS, 128)."""

    views = 2 + 2 * ENROL_JITTERS

    def __call__(self, path: Path) -> ImageFeatures:
        from oneeye.vision.encode import jittered  # noqa: PLC0415

        start = time.process_time()
        image = self._load(path)
        found = self._engine.detect_with_fallback(image)
        if not found:
            return _nothing(self.views, time.process_time() - start)
        height, width = image.shape[:2]
        face = nearest_centre(found, height, width)
        chip = self._aligner.align(image, [face.box]).chip_sets[0][0]
        mirror = np.ascontiguousarray(chip[:, ::-1])
        # embed_chips seeds block b, face i with b * 7919 + i: blocks 0 and 1 here, face 0.
        views = np.stack(
            [
                chip,
                mirror,
                *jittered(chip, ENROL_JITTERS, seed=0),
                *jittered(mirror, ENROL_JITTERS, seed=7919),
            ]
        )
        detected = time.process_time()
        descriptors = self._engine.embedder.embed(views)
        return ImageFeatures(
            views=descriptors.astype(np.float32),
            stage=face.detector,
            box=face.box.as_tuple(),
            detect_seconds=detected - start,
            encode_seconds=time.process_time() - detected,
        )


EXTRACTORS: dict[str, Callable[[], Callable[[Path], ImageFeatures]]] = {
    "reference": ReferenceExtractor,
    "oneeye": OneEyeExtractor,
    "oneeye-jitter": JitterExtractor,
    "oneeye-enrol-jitter": EnrolmentJitterExtractor,
}

_worker: Callable[[Path], ImageFeatures] | None = None


def _init_worker(name: str) -> None:
    global _worker  # noqa: PLW0603 - one extractor per worker process
    _worker = EXTRACTORS[name]()


def _run_one(path: Path) -> ImageFeatures:
    assert _worker is not None
    return _worker(path)


def extract(
    name: str,
    images_dir: Path,
    images: Sequence[str],
    cache_dir: Path,
    workers: int = 2,
) -> FeatureSet:
    """Features of ``images`` by extractor ``name``, from the cache when it has them.

    Args:
        name: ``reference`` or ``oneeye``.
        images_dir: the folder the image paths are relative to.
        images: relative image paths.
        cache_dir: where results are kept between runs.
        workers: worker processes.

    Returns:
        The features, in the order of ``images``.
    """
    key = hashlib.sha256(json.dumps([name, list(images)]).encode()).hexdigest()[:16]
    cache = cache_dir / f"{name}-{key}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return FeatureSet(
                images=tuple(images),
                views=data["views"],
                stages=tuple(meta["stages"]),
                boxes=data["boxes"],
                detect_seconds=data["detect_seconds"],
                encode_seconds=data["encode_seconds"],
                wall_seconds=float(meta["wall_seconds"]),
                workers=int(meta["workers"]),
            )
    results: list[ImageFeatures] = []
    start = time.perf_counter()
    columns = (
        TextColumn(f"{name:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    paths = [images_dir / image for image in images]
    with (
        Progress(*columns) as progress,
        multiprocessing.get_context("spawn").Pool(
            workers, initializer=_init_worker, initargs=(name,)
        ) as pool,
    ):
        task = progress.add_task(name, total=len(paths))
        step = max(1, len(paths) // 20)
        for result in pool.imap(_run_one, paths, chunksize=8):
            results.append(result)
            progress.advance(task)
            if not progress.console.is_terminal and len(results) % step == 0:
                # Without a terminal the bar is not drawn: say how far we are in plain lines.
                elapsed = time.perf_counter() - start
                progress.console.print(
                    f"{name}: {len(results)}/{len(paths)} images, {elapsed:.0f} s", highlight=False
                )
    wall = time.perf_counter() - start
    features = FeatureSet(
        images=tuple(images),
        views=np.stack([r.views for r in results]),
        stages=tuple(r.stage for r in results),
        boxes=np.array([r.box for r in results], dtype=np.int64),
        detect_seconds=np.array([r.detect_seconds for r in results]),
        encode_seconds=np.array([r.encode_seconds for r in results]),
        wall_seconds=wall,
        workers=workers,
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta = {"stages": list(features.stages), "wall_seconds": wall, "workers": workers}
    np.savez(
        cache,
        views=features.views,
        boxes=features.boxes,
        detect_seconds=features.detect_seconds,
        encode_seconds=features.encode_seconds,
        meta=json.dumps(meta),
    )
    return features
