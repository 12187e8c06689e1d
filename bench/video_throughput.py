"""Video throughput: OneEye's camera pipeline against face_recognition's own video loop and
the original system's loop, on the same decoded frames, in one run.

    python bench/video_throughput.py [--video ../shared/data/video/street_1080p.mp4]
        [--reference-frames 12] [--min-face 40]

References (as their authors wrote them): face_recognition's example loop runs
``face_locations`` + ``face_encodings`` + ``compare_faces`` on every frame at full size; the
original system ran the same on every other frame at a quarter of the size. The references
are slow at 1080p, so they run on the first ``--reference-frames`` frames only; frames per
second are comparable because every frame costs them about the same. Reports frames/s
(wall), CPU cores used (CPU seconds / wall seconds) and the ratio to each reference. Results
go to ``bench/results/video_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from oneeye.gallery import GalleryIndex
from oneeye.types import RGBImage
from oneeye.video.pipeline import CameraPipeline, PipelineSettings
from oneeye.vision.engine import FaceEngine


def decode(path: Path) -> tuple[list[RGBImage], float]:
    """Every frame of a video, RGB, and its frame rate."""
    capture = cv2.VideoCapture(str(path))
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
    frames: list[RGBImage] = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(frame[:, :, ::-1], dtype=np.uint8))
    capture.release()
    return frames, fps


def cpu_seconds() -> float:
    """CPU seconds of this process and its threads so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run: Any, frames: list[RGBImage]) -> dict[str, float]:
    """Wall and CPU time of ``run(frames)``, as frames/s and cores used."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    faces = run(frames)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return {
        "frames": len(frames),
        "faces_found": faces,
        "seconds": wall,
        "frames_per_second": len(frames) / wall,
        "cores_used": cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=Path("../shared/data/video/street_1080p.mp4"))
    parser.add_argument("--reference-frames", type=int, default=12)
    parser.add_argument("--min-face", type=int, default=40)
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    args = parser.parse_args()

    import face_recognition  # noqa: PLC0415 - benchmark-only reference

    frames, fps = decode(args.video)
    height, width = frames[0].shape[:2]
    print(f"{args.video}: {len(frames)} frames, {width}x{height} at {fps:g} fps")
    known = [np.zeros(128)]  # compare_faces needs someone to compare with

    def reference_every_frame(batch: list[RGBImage]) -> int:
        found = 0
        for frame in batch:
            locations = face_recognition.face_locations(frame)
            encodings = face_recognition.face_encodings(frame, locations)
            for encoding in encodings:
                face_recognition.compare_faces(known, encoding)
            found += len(locations)
        return found

    def reference_original(batch: list[RGBImage]) -> int:
        found = 0
        for number, frame in enumerate(batch):
            if number % 2:
                continue
            small = cv2.resize(frame, (0, 0), fx=0.25, fy=0.25)
            locations = face_recognition.face_locations(small)
            encodings = face_recognition.face_encodings(small, locations)
            for encoding in encodings:
                face_recognition.compare_faces(known, encoding)
            found += len(locations)
        return found

    engine = FaceEngine()
    gallery = GalleryIndex()

    def oneeye(batch: list[RGBImage]) -> int:
        pipeline = CameraPipeline(
            "street", engine, gallery, PipelineSettings(min_face_px=args.min_face)
        )
        events = 0
        for index, frame in enumerate(batch):
            events += len(pipeline.process(index, index / fps, frame))
        events += len(pipeline.finish(len(batch) - 1, (len(batch) - 1) / fps))
        return events

    sample = frames[: args.reference_frames]
    results: dict[str, Any] = {
        "video": str(args.video),
        "size": [width, height],
        "fps": fps,
        "cpu": os.cpu_count(),
        "min_face_px": args.min_face,
    }
    results["oneeye_all_frames"] = timed(oneeye, frames)
    results["oneeye_sample"] = timed(oneeye, sample)
    results["reference_every_frame_sample"] = timed(reference_every_frame, sample)
    results["reference_original_sample"] = timed(reference_original, sample)
    ours = results["oneeye_sample"]["frames_per_second"]
    results["ratio_vs_every_frame"] = (
        ours / results["reference_every_frame_sample"]["frames_per_second"]
    )
    results["ratio_vs_original"] = ours / results["reference_original_sample"]["frames_per_second"]
    for name in (
        "oneeye_all_frames",
        "oneeye_sample",
        "reference_every_frame_sample",
        "reference_original_sample",
    ):
        r = results[name]
        print(
            f"{name:30s} {r['frames']:4d} frames {r['frames_per_second']:7.2f} frames/s "
            f"{r['cores_used']:.2f} cores"
        )
    print(
        f"OneEye vs face_recognition's loop: {results['ratio_vs_every_frame']:.1f}x; "
        f"vs the original's loop: {results['ratio_vs_original']:.1f}x (same frames)"
    )
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "video_throughput.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
