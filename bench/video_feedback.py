"""Feedback that teaches, measured: named recall before and after one confirmed sighting each.

    python bench/video_feedback.py [--lfw ../shared/data/lfw/images] [--people 12]
        [--strangers 4] [--width 1280 --height 720] [--seed 0] [--smoke]

The labelled LFW clip of ``bench/video_accuracy.py`` (``bench.lib.clips``): each enrolled
person is enrolled from one LFW photo, here through OneEye's own services (a server's
``EnrolmentService`` on SQLite, the live gallery the camera pipeline reads). The clip runs
once; then, as an operator would on the dashboard, each enrolled person's first sighting is
stored with its snapshot and fed back through ``FeedbackService``: a sighting that named them
is confirmed and its face enrolled; an unknown face is named ("this is X"); a wrong name is
rejected, then named. The enrolment from a sighting is quality- and same-face-checked as in
the product. Then the clip runs again on a fresh pipeline. Reports named recall and wrong
names of both runs (target after: >= 95% named, 0 wrong names), and what became of each
feedback (enrolled, refused by the same-face check, no usable face). The second run shows the
same walks: it measures what one confirmed sighting gives a person on that camera, in that
light, not recognition from a new photo. Results go to ``bench/results/video_feedback.json``.
``--smoke``: one person and one stranger in a small clip, nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: bench.lib

from bench.lib.clips import Claim, LabelledClip, claims_from, lfw_clip, score, visit_of
from oneeye.app import OneEyeApp
from oneeye.bus.messages import SightingPayload
from oneeye.config import ServeSettings
from oneeye.errors import OneEyeError
from oneeye.services.auth import Principal
from oneeye.services.enrolment import encode_jpeg
from oneeye.services.feedback import CONFIRM, REJECT
from oneeye.services.same_face import SameFaceError
from oneeye.store.models import new_id
from oneeye.store.photos import snapshot_kind
from oneeye.video.pipeline import CameraPipeline
from oneeye.video.pipeline_io import PipelineSettings, SightingEvent
from oneeye.vision.engine import FaceEngine

CAMERA = "bench"
OPERATOR = Principal(kind="user", id=0, name="bench-operator", role="teller")


def run_clip(
    app: OneEyeApp, engine: FaceEngine, clip: LabelledClip, settings: PipelineSettings
) -> tuple[list[SightingEvent], float]:
    """Every event of one run of the clip on a fresh pipeline over the server's live gallery,
    and the seconds it took."""
    pipeline = CameraPipeline(CAMERA, engine, app.services.gallery, settings)
    events: list[SightingEvent] = []
    began = time.perf_counter()
    last = len(clip.frames) - 1
    for index, frame in enumerate(clip.frames):
        events += pipeline.process(index, index / clip.fps, frame)
        if index == last:
            events += pipeline.finish(index, index / clip.fps)
    seconds = time.perf_counter() - began
    pipeline.close()
    return events, seconds


def scored(clip: LabelledClip, events: list[SightingEvent], names: dict[str, str]) -> Any:
    """``bench.lib.clips.score`` of the events, person ids turned back into LFW names."""
    claims, sightings = claims_from(events)

    def named(claim: Claim) -> Claim:
        person = names.get(claim.person, claim.person) if claim.person else None
        return Claim(claim.frame, claim.box, person)

    return score(clip, [named(c) for c in claims], [named(s) for s in sightings])


def store_sighting(app: OneEyeApp, event: SightingEvent) -> str:
    """Store a pipeline's ``sighting`` event with its snapshot, as the server stores a
    camera's; its id."""
    key = None
    if event.snapshot is not None:
        key = app.services.photos.add(snapshot_kind(CAMERA), encode_jpeg(event.snapshot))
    payload = SightingPayload(
        id=new_id(),
        event="sighting",
        camera=CAMERA,
        track=event.track,
        person=event.person,
        watchlist=event.watchlist,
        distance=event.distance,
        quality=event.quality,
        frame=event.frame,
        t=event.t,
        box=event.box,
        seen_at=datetime.now(UTC),
        snapshot_key=key,
        embedding=None,
    )
    app.services.sightings.store(payload)
    return payload.id


def feed_back(
    app: OneEyeApp, clip: LabelledClip, events: list[SightingEvent], ids: dict[str, str]
) -> Counter[str]:
    """Each enrolled person's first sighting, confirmed (or named) and enrolled through the
    feedback service; what became of each."""
    feedback = app.services.feedback
    outcomes: Counter[str] = Counter()
    done: set[str] = set()
    for event in events:
        if event.event != "sighting":
            continue
        [claim], _ = claims_from([event])
        number = visit_of(clip, claim)
        if number is None:
            continue
        truth = clip.visits[number].person
        if truth not in ids or truth in done:
            continue
        done.add(truth)
        sighting_id = store_sighting(app, event)
        person_id = ids[truth]
        try:
            if event.person == person_id:
                feedback.judge(sighting_id, CONFIRM, OPERATOR)
                feedback.enrol(sighting_id, OPERATOR)
                outcomes["confirmed and enrolled"] += 1
            elif event.person is None:
                feedback.enrol(sighting_id, OPERATOR, person_id=person_id)
                outcomes["unknown face named and enrolled"] += 1
            else:
                feedback.judge(sighting_id, REJECT, OPERATOR, actual_person_id=person_id)
                feedback.enrol(sighting_id, OPERATOR, person_id=person_id)
                outcomes["wrong name rejected, named and enrolled"] += 1
        except SameFaceError:
            outcomes["refused by the same-face check"] += 1
        except OneEyeError as exc:
            outcomes[f"not enrolled: {type(exc).__name__}"] += 1
    outcomes["people never sighted"] = len(ids) - len(done)
    return outcomes


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
    settings = PipelineSettings(cooldown=5.0, min_face_px=args.min_face)
    with tempfile.TemporaryDirectory(prefix="oneeye-feedback-") as folder:
        data = Path(folder)
        app = OneEyeApp(
            ServeSettings(data_dir=data, database_url=f"sqlite:///{data / 'oneeye.db'}"),
            engine=engine,
            photo_engine=engine,
        )
        app.start()
        try:
            ids: dict[str, str] = {}
            for name, photo in clip.enrolment_photos.items():
                person = app.services.enrolment.create_person(name, ["customers"], actor="bench")
                app.services.enrolment.enrol_photo(
                    person.id, encode_jpeg(photo), f"{name}.jpg", actor="bench"
                )
                ids[name] = person.id
            names = {person_id: name for name, person_id in ids.items()}
            before_events, before_seconds = run_clip(app, engine, clip, settings)
            before = scored(clip, before_events, names)
            outcomes = feed_back(app, clip, before_events, ids)
            after_events, after_seconds = run_clip(app, engine, clip, settings)
            after = scored(clip, after_events, names)
            from_sightings = sum(
                1
                for person_id in ids.values()
                for t in app.services.enrolment.templates(person_id)
                if t.source_sighting_id
            )
        finally:
            app.stop()
    results: dict[str, Any] = {
        "frames": len(clip.frames),
        "size": [args.width, args.height],
        "people": len(ids),
        "strangers": args.strangers,
        "before": {**before, "seconds": before_seconds},
        "feedback": dict(outcomes),
        "templates_from_sightings": from_sightings,
        "after": {**after, "seconds": after_seconds},
    }
    print(f"{'':28s} {'one photo':>12s} {'after feedback':>15s}")
    for key in ("visits_enrolled", "named", "recall_named", "wrong_names", "first_named_p95"):
        print(f"{key:28s} {before.get(key)!s:>12s} {after.get(key)!s:>15s}")
    for outcome, count in sorted(outcomes.items()):
        print(f"feedback: {outcome:40s} {count}")
    print(f"templates from sightings     {from_sightings}")
    if args.smoke:
        return
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "video_feedback.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
