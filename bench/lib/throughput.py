"""Encoding throughput, OneEye against face_recognition, measured in one process on one core.

Both encode the same faces (boxes found once beforehand), in alternating blocks (A B A B ...)
so that drift in the machine's speed hits both alike. Figures are faces per CPU second of this
process, i.e. per core.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oneeye.config import EngineSettings
from oneeye.types import Detection, RGBImage
from oneeye.vision.engine import FaceEngine
from oneeye.vision.images import load_image

BLOCK = 10


@dataclass(frozen=True, slots=True)
class Throughput:
    """Faces per CPU second for OneEye and the reference, and their ratio."""

    faces: int
    oneeye_faces_per_cpu_second: float
    reference_faces_per_cpu_second: float
    backend: str
    views_per_face: int

    @property
    def ratio(self) -> float:
        """OneEye's throughput divided by the reference's (> 1 means OneEye is faster)."""
        return self.oneeye_faces_per_cpu_second / self.reference_faces_per_cpu_second


def measure(images_dir: Path, images: Sequence[str]) -> Throughput:
    """Encode the face of each image with both, alternating blocks, on one thread.

    Args:
        images_dir: folder the image paths are relative to.
        images: images with one findable face each (others are skipped: this measures speed).

    Returns:
        The throughputs.
    """
    import face_recognition  # noqa: PLC0415 - benchmark-only reference

    fr: Any = face_recognition
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    settings = EngineSettings(threads=1)
    engine = FaceEngine(settings)
    work: list[tuple[RGBImage, Detection]] = []
    for name in images:
        image = load_image(images_dir / name)
        found = engine.detect(image)
        if found:
            work.append((image, found[0]))

    def ours(image: RGBImage, detection: Detection) -> None:
        engine.encode(image, [detection])

    def reference(image: RGBImage, detection: Detection) -> None:
        fr.face_encodings(image, [detection.box.as_tuple()])

    seconds = {"oneeye": 0.0, "reference": 0.0}
    runners: dict[str, Callable[[RGBImage, Detection], None]] = {
        "oneeye": ours,
        "reference": reference,
    }
    ours(*work[0])  # warm both up
    reference(*work[0])
    for start in range(0, len(work), BLOCK):
        block = work[start : start + BLOCK]
        for name, run in runners.items():
            began = time.process_time()
            for image, detection in block:
                run(image, detection)
            seconds[name] += time.process_time() - began
    return Throughput(
        faces=len(work),
        oneeye_faces_per_cpu_second=len(work) / seconds["oneeye"],
        reference_faces_per_cpu_second=len(work) / seconds["reference"],
        backend=str(getattr(engine.embedder, "backend", type(engine.embedder).__name__)),
        views_per_face=(2 if settings.alignment == "5+68" else 1) * (2 if settings.mirror else 1),
    )
