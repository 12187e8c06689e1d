"""Sighting accuracy on labelled clips made from LFW people.

    python bench/video_accuracy.py [--lfw ../shared/data/lfw/images] [--people 12]
        [--strangers 4] [--width 1280 --height 720] [--seed 0]

Enrolled people are enrolled from one LFW photo and walk through the clip as another photo of
theirs; strangers (people with one photo) walk through too and must stay unknown. Each visit
lasts 2.5 s, a new one starts every 1.25 s, so two people are often in view at once. Reports,
over the visits at least 1 s long: recall (the right person sighted during the visit),
wrong names (a sighting naming anyone else; target 0), sightings per visit (target 1.0) and
time from the first visible frame to the sighting (p50, p95; target p95 <= 0.5 s). Results go
to ``bench/results/video_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from oneeye.errors import OneEyeError
from oneeye.gallery import GalleryIndex
from oneeye.types import Template
from oneeye.video.pipeline import CameraPipeline, PipelineSettings
from oneeye.video.synth import Actor, Movement, compose
from oneeye.vision.engine import FaceEngine
from oneeye.vision.images import load_image


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
    parser.add_argument("--detect-every", type=int, default=PipelineSettings().detect_every)
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    args = parser.parse_args()

    rng = random.Random(args.seed)
    folders = sorted(p for p in args.lfw.iterdir() if p.is_dir())
    several = [p for p in folders if len(list(p.iterdir())) >= 2]
    single = [p for p in folders if len(list(p.iterdir())) == 1]
    engine = FaceEngine()
    gallery = GalleryIndex()
    actors: list[Actor] = []
    enrolled: set[str] = set()
    for folder in rng.sample(several, len(several)):
        if len(enrolled) == args.people:
            break
        photos = sorted(folder.iterdir())
        try:
            gallery.add(
                Template(
                    folder.name,
                    folder.name,
                    "customers",
                    engine.enrolment_face(load_image(photos[0])).embedding,
                )
            )
            walker = load_image(photos[1])
            actors.append(Actor(folder.name, walker, engine.enrolment_face(walker).box))
        except OneEyeError as exc:
            print(f"skipped {folder.name}: {exc}")
            continue
        enrolled.add(folder.name)
    for folder in rng.sample(single, args.strangers):
        photo = load_image(next(folder.iterdir()))
        try:
            actors.append(Actor(folder.name, photo, engine.enrolment_face(photo).box))
        except OneEyeError as exc:
            print(f"skipped stranger {folder.name}: {exc}")
    rng.shuffle(actors)
    fps, width, height = args.fps, args.width, args.height
    length, step = round(2.5 * fps), round(1.25 * fps)
    movements = []
    for number in range(len(actors)):
        start = number * step
        y = height * (0.4 + 0.2 * (number % 2))
        left_to_right = number % 2 == 0
        a, b = (width * 0.1, width * 0.9) if left_to_right else (width * 0.9, width * 0.1)
        movements.append(Movement(number, start, start + length, (a, y), (b, y), args.face))
    frames = len(actors) * step + length + round(fps)
    print(
        f"clip: {len(actors)} people ({len(enrolled)} enrolled), {frames} frames "
        f"{width}x{height} at {fps:g} fps"
    )
    pipeline = CameraPipeline(
        "bench",
        engine,
        gallery,
        PipelineSettings(cooldown=5.0, min_face_px=args.min_face, detect_every=args.detect_every),
    )
    events = []
    visible_from: dict[int, int] = {}
    visible_to: dict[int, int] = {}
    began = time.perf_counter()
    for index, (frame, faces) in enumerate(
        compose(actors, movements, width=width, height=height, frames=frames, fps=fps)
    ):
        for face in faces:
            number = next(
                i for i, m in enumerate(movements) if actors[m.actor].person == face.person
            )
            visible_from.setdefault(number, index)
            visible_to[number] = index
        events.extend(pipeline.process(index, index / fps, frame))
    events.extend(pipeline.finish(frames - 1, (frames - 1) / fps))
    seconds = time.perf_counter() - began
    sightings = [e for e in events if e.event == "sighting"]
    results: dict[str, Any] = {
        "frames": frames,
        "seconds": seconds,
        "frames_per_second": frames / seconds,
    }
    delays, recalled, counted, per_visit = [], 0, 0, []
    for number, movement in enumerate(movements):
        person = actors[movement.actor].person
        if number not in visible_from or visible_to[number] - visible_from[number] < fps:
            continue
        first = visible_from[number]
        if person not in enrolled:
            continue
        counted += 1
        mine = [e for e in sightings if e.person == person]
        per_visit.append(len(mine))
        if mine:
            recalled += 1
            delays.append((min(e.frame for e in mine) - first) / fps)
    misnamed = 0  # a sighting naming someone who is not in view at that frame
    for event in sightings:
        if event.person is None:
            continue
        present = {
            f
            for f in range(len(movements))
            if visible_from.get(f, 10**9) <= event.frame <= visible_to.get(f, -1)
        }
        if event.person not in {actors[movements[f].actor].person for f in present}:
            misnamed += 1
    results.update(
        {
            "visits_enrolled": counted,
            "recall": recalled / max(1, counted),
            "wrong_names": misnamed,
            "sightings_per_visit": float(np.mean(per_visit)) if per_visit else None,
            "time_to_first_sighting_p50": float(np.percentile(delays, 50)) if delays else None,
            "time_to_first_sighting_p95": float(np.percentile(delays, 95)) if delays else None,
            "unknown_sightings": sum(1 for e in sightings if e.person is None),
        }
    )
    for key, value in results.items():
        print(f"{key:28s} {value}")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "video_accuracy.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
