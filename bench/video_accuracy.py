"""Sighting accuracy on labelled clips made from LFW people.

    python bench/video_accuracy.py [--lfw ../shared/data/lfw/images] [--people 12]
        [--strangers 4] [--width 1280 --height 720] [--seed 0] [--fusion both|on|off]
        [--smoke]

Enrolled people are enrolled from one LFW photo and walk through the clip as another photo of
theirs; strangers (people with one photo) walk through too and must stay unknown
(``bench.lib.clips``). Each visit lasts 2.5 s, a new one starts every 1.25 s, so two people
are often in view at once. Reports, over the visits at least 1 s long: visits found (a
sighting on the face, named or unknown), enrolled visits named, wrong names (target 0),
sightings per named visit (target 1.0) and time from the first visible frame to the naming
(p50, p95; target p95 <= 0.5 s), and frames processed per second on one core (the clip is
rendered beforehand, not timed). ``--fusion both`` (the default) runs the same clip twice, in
turn, without and with track fusion (``PipelineSettings.fuse_after``), so the two are paired
in one run; the top-level figures are the shipped setting's (with fusion), and
``by_fusion`` holds both. Results go to ``bench/results/video_accuracy.json``.
``--smoke``: one person and one stranger in a small clip, nothing written (the test suite
runs it on a tiny LFW-shaped folder so the script keeps working).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib

from bench.lib.clips import Claim, LabelledClip, claims_from, lfw_clip, score
from oneeye.gallery import GalleryIndex
from oneeye.video.pipeline import CameraPipeline, PipelineSettings
from oneeye.vision.engine import FaceEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw/images"))
    parser.add_argument("--people", type=int, default=12)
    parser.add_argument("--strangers", type=int, default=4)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--face", type=int, default=110, help="face height in the clip, px")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-face", type=int, default=80)
    defaults = PipelineSettings()
    parser.add_argument("--detect-every", type=int, default=defaults.detect_every)
    parser.add_argument("--scan-every", type=int, default=defaults.scan_every)
    parser.add_argument(
        "--fusion",
        choices=("both", "on", "off"),
        default="both",
        help="track fusion: without and with, paired (both), or one of them",
    )
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument("--smoke", action="store_true", help="a tiny clip; writes nothing")
    args = parser.parse_args()
    if args.smoke:
        args.people, args.strangers, args.width, args.height = 1, 1, 480, 360
        args.fps, args.face, args.min_face = 10.0, 100, 60

    engine = FaceEngine()
    clip = lfw_clip(
        engine,
        args.lfw,
        people=args.people,
        strangers=args.strangers,
        width=args.width,
        height=args.height,
        fps=args.fps,
        face_px=(args.face, args.face),
        seed=args.seed,
    )
    print(
        f"clip: {len(clip.visits)} visits ({len(clip.templates)} enrolled people), "
        f"{len(clip.frames)} frames {args.width}x{args.height} at {args.fps:g} fps"
    )
    gallery = GalleryIndex()
    for template in clip.templates:
        gallery.add(template)
    settings = PipelineSettings(
        cooldown=5.0,
        min_face_px=args.min_face,
        detect_every=args.detect_every,
        scan_every=args.scan_every,
    )
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.fusion]
    by_fusion: dict[str, dict[str, Any]] = {}
    for fused in modes:
        chosen = settings if fused else replace(settings, fuse_after=None)
        name = "with_fusion" if fused else "without_fusion"
        by_fusion[name] = run(engine, gallery, clip, chosen)
        print(f"-- {name} (fuse_after {chosen.fuse_after})")
        for key, value in by_fusion[name].items():
            print(f"{key:28s} {value}")
    results = dict(by_fusion[name])  # the last run: with fusion, when it ran
    results["by_fusion"] = by_fusion
    if args.smoke:
        return
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "video_accuracy.json").write_text(json.dumps(results, indent=2))


def run(
    engine: FaceEngine, gallery: GalleryIndex, clip: LabelledClip, settings: PipelineSettings
) -> dict[str, Any]:
    """One play of the clip on a fresh pipeline, scored.

    Args:
        engine: the face engine.
        gallery: the enrolled people.
        clip: the labelled clip.
        settings: the pipeline's settings.

    Returns:
        The figures of ``bench.lib.clips.score`` and the pipeline's counters.
    """
    pipeline = CameraPipeline("bench", engine, gallery, settings)
    claims: list[Claim] = []
    sightings: list[Claim] = []
    began = time.perf_counter()
    last = len(clip.frames) - 1
    for index, frame in enumerate(clip.frames):
        events = pipeline.process(index, index / clip.fps, frame)
        if index == last:
            events += pipeline.finish(index, index / clip.fps)
        said, sighted = claims_from(events)
        claims += said
        sightings += sighted
    seconds = time.perf_counter() - began
    pipeline.close()
    return {
        "frames": len(clip.frames),
        "seconds": seconds,
        "frames_per_second": len(clip.frames) / seconds,
        "settings": {
            "min_face_px": settings.min_face_px,
            "detect_every": settings.detect_every,
            "scan_every": settings.scan_every,
            "fuse_after": settings.fuse_after,
        },
        **score(clip, claims, sightings),
        "unknown_sightings": sum(1 for s in sightings if s.person is None),
        "scans": pipeline.scans,
        "detection_rounds": pipeline.detections,
        "encodings": pipeline.encodings,
    }


if __name__ == "__main__":
    main()
