"""Sighting accuracy on labelled clips made from LFW people.

    python bench/video_accuracy.py [--lfw ../shared/data/lfw/images] [--people 12]
        [--strangers 4] [--width 1280 --height 720] [--seed 0] [--smoke]

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

    python bench/video_accuracy.py --conditions normal,turned,dim,dark,blur,jpeg
        [--light off,lift,clahe,lift+encode,clahe+encode] [--seeds 0,1,2] [--name NAME]

``--conditions``: the same clips (one per seed) under realistic conditions
(``bench.lib.conditions``: faces turned, dim and dark light, motion blur, JPEG at quality
25), each run through the pipeline once per light normalisation of ``--light``
(``oneeye.vision.light``; ``+encode`` brightens the frames the faces are encoded from, too),
so every figure is paired with the plain clip and with ``off`` in the same run. ``--play
file,live,live-inline`` plays each as a file read as fast as it decodes, as a live camera (a
frame every 1/fps s, late frames dropped as the camera worker drops them; scans behind the
frames) and as a live camera scanning on its frames, all paired too. Reports found
and named recall and wrong names per condition and light setting, summed over the seeds;
results go to
``bench/results/video_accuracy_conditions.json`` and a bar chart
``video_accuracy_conditions.png`` (``--name`` another file name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.lib.clips import Claim, LabelledClip, claims_from, lfw_clip, score
from bench.lib.conditions import CONDITIONS
from oneeye.gallery import GalleryIndex
from oneeye.video.pipeline import CameraPipeline
from oneeye.video.pipeline_io import PipelineSettings
from oneeye.video.source import LATE_FRAMES
from oneeye.vision.engine import FaceEngine
from oneeye.vision.light import LIGHT_MODES, LightMode

PLAYS = ("file", "live", "live-inline")
"""``--play``: a clip read as fast as it decodes; or played as a live camera
(``PipelineSettings.real_time``), its scans behind its frames or on them (``scan_behind``)."""

COUNTS = ("visits", "visits_enrolled", "found", "named", "wrong_names", "frames", "dropped")
"""The counts summed over the seeds of one condition and light setting."""


def run_clip(
    engine: FaceEngine, clip: LabelledClip, settings: PipelineSettings, live: bool = False
) -> dict[str, Any]:
    """Play a clip through a fresh pipeline and score its sightings.

    Args:
        engine: the face engine.
        clip: the clip (its templates are enrolled in a gallery of their own).
        settings: the pipeline's settings.
        live: play it as a live camera: a frame every 1/fps s, a frame reached more than
            ``LATE_FRAMES`` frame times late dropped (as the camera worker drops them); give
            ``settings`` with ``real_time``.

    Returns:
        ``score``'s figures, plus frames, seconds, frames per second, unknown sightings, the
        frames dropped and the pipeline's work counters.
    """
    gallery = GalleryIndex()
    for template in clip.templates:
        gallery.add(template)
    pipeline = CameraPipeline("bench", engine, gallery, settings)
    claims: list[Claim] = []
    sightings: list[Claim] = []
    began = time.perf_counter()
    last = len(clip.frames) - 1
    processed = dropped = 0
    source: list[int] = []  # the clip's frame index of each frame the pipeline processed
    for index, frame in enumerate(clip.frames):
        if live:
            wait = began + index / clip.fps - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            elif -wait > LATE_FRAMES / clip.fps and index != last:
                dropped += 1
                continue
        # The pipeline counts the frames it processed, as the camera worker has it do: its
        # events are mapped back to the clip's frames to be scored.
        source.append(index)
        events = pipeline.process(processed, index / clip.fps, frame)
        processed += 1
        if index == last:
            events += pipeline.finish(processed - 1, index / clip.fps)
        events = [replace(event, frame=source[event.frame]) for event in events]
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
        "dropped": dropped,
        "pipeline_counts": pipeline.counts(),
        "scans": pipeline.scans,
        "detection_rounds": pipeline.detections,
        "encodings": pipeline.encodings,
    }


def light_variant(name: str) -> tuple[LightMode, bool]:
    """``off``, ``lift``, ``clahe``, each optionally with ``+encode``, as pipeline settings.

    Args:
        name: the variant's name.

    Returns:
        ``(light, light_encode)``.

    Raises:
        SystemExit: an unknown variant (the CLI's only exit).
    """
    mode, _, encode = name.partition("+")
    if mode not in LIGHT_MODES or encode not in ("", "encode") or (mode == "off" and encode):
        raise SystemExit(f"unknown light setting {name!r}: off, lift, clahe, lift+encode...")
    return cast(LightMode, mode), encode == "encode"


def run_conditions(args: argparse.Namespace, engine: FaceEngine) -> None:
    """``--conditions``: every condition of every seed, under every light setting."""
    conditions = args.conditions.split(",")
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise SystemExit(f"unknown conditions {unknown}; expected some of {CONDITIONS}")
    plays = args.play.split(",")
    if any(play not in PLAYS for play in plays):
        raise SystemExit(f"unknown --play {args.play!r}; expected some of {','.join(PLAYS)}")
    # One variant per light setting and way of playing: "off", "off live", ...
    variants = {
        light if play == "file" else f"{light} {play}": (*light_variant(light), play)
        for light in args.light.split(",")
        for play in plays
    }
    lights = list(variants)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs: list[dict[str, Any]] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task("clips", total=len(conditions) * len(seeds) * len(lights))
        for seed in seeds:
            for condition in conditions:
                progress.update(task, description=f"seed {seed} {condition}: rendering")
                clip = None  # a 720p clip is 1.6 GB: let the previous one go first
                clip = lfw_clip(
                    engine,
                    args.lfw,
                    people=args.people,
                    strangers=args.strangers,
                    width=args.width,
                    height=args.height,
                    fps=args.fps,
                    face_px=(args.face, args.face),
                    seed=seed,
                    condition=condition,
                )
                for name, (light, encode, play) in variants.items():
                    progress.update(task, description=f"seed {seed} {condition} light {name}")
                    settings = PipelineSettings(
                        cooldown=5.0,
                        min_face_px=args.min_face,
                        detect_every=args.detect_every,
                        scan_every=args.scan_every,
                        light=light,
                        light_encode=encode,
                        real_time=play != "file",
                        scan_behind=play == "live",
                    )
                    result = run_clip(engine, clip, settings, live=play != "file")
                    runs.append({"seed": seed, "condition": condition, "light": name, **result})
                    progress.console.log(
                        f"seed {seed} {condition} light {name}: found {result['found']}/"
                        f"{result['visits']}, named {result['named']}/{result['visits_enrolled']}"
                        f", wrong names {result['wrong_names']}, dropped {result['dropped']}"
                    )
                    progress.advance(task)
    table = summarise(runs, conditions, lights)
    print(
        f"{'condition':10s} {'light':18s} {'found':>9s} {'named':>9s} {'wrong':>6s} "
        f"{'dropped':>8s} {'fps':>7s}"
    )
    for row in table:
        print(
            f"{row['condition']:10s} {row['light']:18s} "
            f"{row['found']:>3d}/{row['visits']:<3d}   "
            f"{row['named']:>3d}/{row['visits_enrolled']:<3d}"
            f"   {row['wrong_names']:>4d} {row['dropped']:>8d} {row['frames_per_second']:7.1f}"
        )
    if args.smoke:
        return
    args.results.mkdir(parents=True, exist_ok=True)
    doc = {
        "command": " ".join(sys.argv),
        "load_average": os.getloadavg(),
        "settings": {
            "people": args.people,
            "strangers": args.strangers,
            "size": [args.width, args.height],
            "fps": args.fps,
            "face_px": args.face,
            "min_face_px": args.min_face,
            "detect_every": args.detect_every,
            "scan_every": args.scan_every,
            "seeds": seeds,
        },
        "summary": table,
        "runs": runs,
    }
    (args.results / f"{args.name}.json").write_text(json.dumps(doc, indent=2))
    plot(table, conditions, lights, args.results / f"{args.name}.png")


def summarise(
    runs: list[dict[str, Any]], conditions: list[str], lights: list[str]
) -> list[dict[str, Any]]:
    """Sum the runs of each condition and light setting over the seeds.

    Args:
        runs: one dict per (seed, condition, light) run.
        conditions: the conditions, in order.
        lights: the light settings, in order.

    Returns:
        One row per (condition, light): the summed counts, the recalls they give and the
        frames per second over all the seeds' frames.
    """
    table = []
    for condition in conditions:
        for light in lights:
            mine = [r for r in runs if r["condition"] == condition and r["light"] == light]
            row: dict[str, Any] = {"condition": condition, "light": light}
            for key in COUNTS:
                row[key] = sum(int(r[key]) for r in mine)
            row["recall_found"] = row["found"] / max(1, row["visits"])
            row["recall_named"] = row["named"] / max(1, row["visits_enrolled"])
            row["frames_per_second"] = row["frames"] / max(1e-9, sum(r["seconds"] for r in mine))
            table.append(row)
    return table


def plot(table: list[dict[str, Any]], conditions: list[str], lights: list[str], path: Path) -> None:
    """Bars of found and named recall per condition, one bar per light setting."""
    import matplotlib  # noqa: PLC0415 - benchmark-only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    width = 0.8 / len(lights)
    for side, (key, title) in enumerate(
        (("recall_found", "found (any sighting on the face)"), ("recall_named", "named"))
    ):
        for number, light in enumerate(lights):
            values = [
                next(r[key] for r in table if r["condition"] == c and r["light"] == light)
                for c in conditions
            ]
            xs = [i + (number - (len(lights) - 1) / 2) * width for i in range(len(conditions))]
            axes[side].bar(xs, values, width, label=f"light {light}")
        axes[side].set_xticks(range(len(conditions)), conditions)
        axes[side].set_title(title)
        axes[side].set_ylim(0, 1.05)
    axes[0].set_ylabel("share of visits >= 1 s")
    axes[1].legend(loc="lower left", fontsize=8)
    figure.suptitle("OneEye (HOG) on labelled clips in conditions")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
    parser.add_argument("--conditions", help=f"comma-separated, some of {','.join(CONDITIONS)}")
    parser.add_argument(
        "--light", default="off", help="with --conditions: comma-separated light settings"
    )
    parser.add_argument("--seeds", default="0", help="with --conditions: comma-separated")
    parser.add_argument(
        "--play",
        default="file",
        help="with --conditions: comma-separated, some of file (as fast as it decodes), live "
        "(paced as a live camera, scans behind the frames), live-inline (paced, scans on them)",
    )
    parser.add_argument(
        "--name",
        default="video_accuracy_conditions",
        help="with --conditions: the results' file name (.json, .png)",
    )
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument("--smoke", action="store_true", help="a tiny clip; writes nothing")
    args = parser.parse_args()
    if args.smoke:
        args.people, args.strangers, args.width, args.height = 1, 1, 480, 360
        args.fps, args.face, args.min_face = 10.0, 100, 60

    engine = FaceEngine()
    if args.conditions:
        run_conditions(args, engine)
        return
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
        by_fusion[name] = run_clip(engine, clip, chosen)
        print(f"-- {name} (fuse_after {chosen.fuse_after})")
        for key, value in by_fusion[name].items():
            print(f"{key:28s} {value}")
    results = dict(by_fusion[name])  # the last run: with fusion, when it ran
    results["by_fusion"] = by_fusion
    if args.smoke:
        return
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "video_accuracy.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
