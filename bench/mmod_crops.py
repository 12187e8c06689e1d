"""A camera's CNN crops, recorded and replayed: what each look costs, and what the process
keeps, with the crops grown to steps and OpenVINO's kept shapes bounded, and without.

    python bench/mmod_crops.py --lfw ../shared/data/lfw/images [--frames 1500]
    python bench/mmod_crops.py --smoke

One ``auto`` camera (the labelled 720p clip of ``bench/video_cameras.py``, played as fast as it
goes with a CNN budget of 200 ms a second) is run once while every crop the CNN is handed
(``detect_region``: frame, region, scale) is recorded. The same crops of the same frames are
then replayed through ``CnnDetector.detect_region`` in a fresh process per way of running it,
which reports the CPU per look and the process's resident memory before and after: OpenVINO
as shipped (regions in steps of 16 pixels, 32 shapes kept), OpenVINO as before (regions as
they come, OpenVINO's default of 5,000 shapes kept) and onnxruntime (float32, no per-shape
work). Whole-frame looks (the first round's) are left out: they are the same in every way.
Results: ``bench/results/mmod_crops.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.*

from bench.video_cameras import clip
from oneeye.config import EngineSettings
from oneeye.gallery import GalleryIndex
from oneeye.types import FaceBox, RGBImage
from oneeye.video.pipeline import CameraPipeline
from oneeye.video.pipeline_io import PipelineSettings
from oneeye.vision.detectors import _scaled
from oneeye.vision.engine import FaceEngine
from oneeye.vision.mmod.runtimes import has_bfloat16

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FPS = 25.0


class Crop(NamedTuple):
    """One look of the CNN: which frame, where, at what scale."""

    frame: int
    region: tuple[int, int, int, int]
    """top, left, bottom, right in frame pixels."""
    factor: float


class Way(NamedTuple):
    """One way of running the replay."""

    name: str
    backend: str
    region_step_px: int
    shapes_kept: int
    precision: str = "fastest"


WAYS = (
    Way(
        "openvino, its fastest precision, steps of 16 px, 32 shapes kept (shipped)",
        "openvino",
        16,
        32,
    ),
    Way("openvino bfloat16, steps of 16 px, 32 shapes kept", "openvino", 16, 32, "bf16"),
    Way(
        "openvino bfloat16, crops as they come, 5,000 shapes kept (before)",
        "openvino",
        0,
        5000,
        "bf16",
    ),
    Way("onnxruntime float32, steps of 16 px", "onnxruntime", 16, 32),
)


def record(frames: list[RGBImage], count: int) -> list[Crop]:
    """Every crop one ``auto`` camera hands the CNN over ``count`` frames of the clip."""
    cv2.setNumThreads(1)
    crops: list[Crop] = []
    current = [0]
    original = _scaled.ScaledDetector.detect_region

    def recording(
        self: _scaled.ScaledDetector,
        image: RGBImage,
        region: FaceBox,
        factor: float,
        *,
        levels: int | None = None,
    ) -> Any:
        box = (region.top, region.left, region.bottom, region.right)
        crops.append(Crop(current[0], box, factor))
        return original(self, image, region, factor, levels=levels)

    settings = PipelineSettings(min_face_px=80, detector="auto", cnn_ms_per_s=200.0)
    pipeline = CameraPipeline(
        "cam", FaceEngine(EngineSettings(threads=1)), GalleryIndex(), settings
    )
    _scaled.ScaledDetector.detect_region = recording  # type: ignore[method-assign]
    try:
        for index in range(count):
            current[0] = index % len(frames)
            pipeline.process(index, index / FPS, frames[current[0]])
            if index % 250 == 249:
                print(f"  recorded {index + 1}/{count} frames, {len(crops)} crops", flush=True)
    finally:
        _scaled.ScaledDetector.detect_region = original  # type: ignore[method-assign]
    height = frames[0].shape[0]
    return [c for c in crops if c.region[2] - c.region[0] + 1 < height]


def rss_mb() -> float:
    """This process's resident memory."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def replay(args: tuple[Way, Path, list[Crop]]) -> dict[str, Any]:
    """The crops through ``CnnDetector.detect_region`` one way, in this (fresh) process."""
    way, lfw, crops = args
    cv2.setNumThreads(1)
    from oneeye.vision.detectors.cnn import CnnDetector  # noqa: PLC0415
    from oneeye.vision.mmod import MmodDetector, runtimes  # noqa: PLC0415
    from oneeye.vision.models import ModelPaths  # noqa: PLC0415

    runtimes.SHAPES_KEPT = way.shapes_kept
    frames = clip(lfw)
    path = ModelPaths.locate().cnn_detector
    detector = CnnDetector(path, 1)
    network = MmodDetector(path, way.backend, num_threads=1, precision=way.precision)
    detector._detector = network
    detector.window_px = network.window_px
    detector.region_step_px = way.region_step_px
    # The shapes the network is really handed (after clipping, steps and scaling).
    shapes: set[tuple[int, ...]] = set()
    detect = network.detect

    def recording(image: RGBImage, upsample_times: int = 0) -> list[Any]:
        shapes.add(image.shape[:2])
        return detect(image, upsample_times)

    setattr(network, "detect", recording)  # noqa: B010 - one instance, this process only
    before = rss_mb()
    start = time.process_time()
    for crop in crops:
        top, left, bottom, right = crop.region
        region = FaceBox(top=top, left=left, bottom=bottom, right=right)
        detector.detect_region(frames[crop.frame], region, crop.factor)
    seconds = time.process_time() - start
    row = {
        "way": way.name,
        "precision": network.precision,
        "looks": len(crops),
        "shapes": len(shapes),
        "cpu_ms_per_look": round(1000 * seconds / max(1, len(crops)), 2),
        "rss_mb_before": round(before),
        "rss_mb_after": round(rss_mb()),
    }
    print(
        f"  {way.name} [{network.precision}]: {row['looks']} looks of {row['shapes']} shapes, "
        f"{row['cpu_ms_per_look']} ms CPU a look, memory {row['rss_mb_before']} -> "
        f"{row['rss_mb_after']} MB",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    """Record one camera's crops, replay them each way; print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw" / "images"
    )
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--smoke", action="store_true", help="a few frames, written nowhere")
    parser.add_argument("--out", type=Path, default=RESULTS / "mmod_crops.json")
    args = parser.parse_args(argv)
    count = 30 if args.smoke else args.frames
    print(f"recording the crops of one auto camera over {count} frames", flush=True)
    crops = record(clip(args.lfw), count)
    context = multiprocessing.get_context("spawn")
    rows = []
    for way in WAYS:
        if way.precision == "bf16" and not has_bfloat16():
            print(f"  {way.name}: skipped, this CPU has no bfloat16 dot products", flush=True)
            continue
        with context.Pool(1) as pool:  # a fresh process: its memory is this way's alone
            rows.append(pool.apply(replay, ((way, args.lfw, crops),)))
    if args.smoke:
        return 0
    args.out.write_text(json.dumps({"frames": count, "crops": len(crops), "ways": rows}, indent=2))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
