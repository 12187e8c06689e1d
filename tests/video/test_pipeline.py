"""The camera pipeline on labelled clips: one sighting per visit, the right names, unknowns,
cooldown, and people enrolled while it runs."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from bench.lib.synth import (
    Actor,
    Movement,
    VisibleFace,
    compose,
    standard_scenario,
    visible_spans,
)
from oneeye.gallery import GalleryIndex
from oneeye.types import RGBImage, Template
from oneeye.video.pipeline import CameraPipeline
from oneeye.video.pipeline_io import PipelineSettings, SightingEvent
from oneeye.video.scan import BEHIND_NICE
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader
from tests.video.conftest import ThreadsSeen

FPS = 10.0
WIDTH, HEIGHT = 640, 480
SETTINGS: dict[str, Any] = {"min_face_px": 80}  # the clip's faces are about 96 pixels


@dataclass(frozen=True)
class Clip:
    frames: list[RGBImage]
    truth: list[tuple[VisibleFace, ...]]
    visits: list[tuple[str, int, int]]
    """(person, first, last frame visible) per scripted appearance."""


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture(scope="module")
def clip(actors: list[Actor]) -> Clip:
    movements, count = standard_scenario(actors, WIDTH, HEIGHT, fps=FPS)
    rendered = list(compose(actors, movements, width=WIDTH, height=HEIGHT, frames=count, fps=FPS))
    truth = [v for _, v in rendered]
    return Clip([f for f, _ in rendered], truth, visible_spans(actors, movements, truth))


@pytest.fixture(scope="module")
def templates(engine: FaceEngine, load_photo: PhotoLoader) -> dict[str, list[Template]]:
    # Obama is enrolled from two other photos than the one in the clip, as a customer with a
    # couple of profile photos would be. From obama2.jpg alone, the 5-point chip (the CC0-only
    # default) puts one visit of the clip at 0.3216, just past the 0.32 threshold: naming a
    # face from one photo is issue 13's subject; this file tests the pipeline's sightings.
    photos = {"obama": ["obama2.jpg", "obama3.jpg"], "biden": ["biden.jpg"]}
    return {
        person: [
            Template(
                f"{person}-{i}",
                person,
                "customers",
                engine.enrolment_face(load_photo(photo)).embedding,
            )
            for i, photo in enumerate(names, start=1)
        ]
        for person, names in photos.items()
    }


def run(
    pipeline: CameraPipeline, clip: Clip, stop: int | None = None, start: int = 0
) -> list[SightingEvent]:
    events: list[SightingEvent] = []
    end = len(clip.frames) if stop is None else stop
    for index in range(start, end):
        events.extend(pipeline.process(index, index / FPS, clip.frames[index]))
    if stop is None:
        events.extend(pipeline.finish(end - 1, (end - 1) / FPS))
    return events


def sightings(events: Sequence[SightingEvent]) -> list[SightingEvent]:
    return [e for e in events if e.event == "sighting"]


def test_every_visit_gives_one_sighting_with_the_right_name(
    engine: FaceEngine, clip: Clip, templates: dict[str, list[Template]]
) -> None:
    gallery = GalleryIndex()
    gallery.add_many(t for each in templates.values() for t in each)
    pipeline = CameraPipeline("door", engine, gallery, PipelineSettings(cooldown=0.5, **SETTINGS))
    events = run(pipeline, clip)
    seen = sightings(events)
    assert all(e.person in {"obama", "biden"} for e in seen), seen  # no wrong or unknown names
    assert len(seen) == len(clip.visits)
    for person, first, last in clip.visits:
        if last - first < FPS:  # visits shorter than a second need not be sighted
            continue
        mine = [e for e in seen if e.person == person and first <= e.frame <= last]
        assert len(mine) >= 1, (person, first, last, seen)
        assert mine[0].frame - first <= 0.5 * FPS, "sighted within half a second"
        assert mine[0].camera == "door"
        assert mine[0].watchlist == "customers"
        assert mine[0].snapshot is not None
    left = [e for e in events if e.event == "left"]
    assert sorted(e.track for e in left) == sorted(e.track for e in seen)
    # Encoding is for new tracks and re-checks, not every frame.
    assert pipeline.encodings < len(clip.frames) / 2


def test_cooldown_makes_returning_visits_one_sighting(
    engine: FaceEngine, clip: Clip, templates: dict[str, list[Template]]
) -> None:
    gallery = GalleryIndex()
    gallery.add_many(t for each in templates.values() for t in each)
    pipeline = CameraPipeline("door", engine, gallery, PipelineSettings(cooldown=30.0, **SETTINGS))
    seen = sightings(run(pipeline, clip))
    assert [e.person for e in seen].count("obama") == 1
    assert [e.person for e in seen].count("biden") == 1


def test_a_stranger_is_an_unknown_sighting(
    engine: FaceEngine, clip: Clip, templates: dict[str, list[Template]]
) -> None:
    gallery = GalleryIndex()
    gallery.add_many(templates["obama"])
    pipeline = CameraPipeline("door", engine, gallery, PipelineSettings(cooldown=0.5, **SETTINGS))
    seen = sightings(run(pipeline, clip))
    assert "biden" not in {e.person for e in seen}
    assert any(e.person is None for e in seen)
    assert any(e.person == "obama" for e in seen)


def test_someone_enrolled_while_running_is_recognised_from_then_on(
    engine: FaceEngine, clip: Clip, templates: dict[str, list[Template]]
) -> None:
    gallery = GalleryIndex()
    pipeline = CameraPipeline("door", engine, gallery, PipelineSettings(cooldown=0.5, **SETTINGS))
    split = int(3.5 * FPS)  # after obama's first visit, before the second
    before = sightings(run(pipeline, clip, stop=split))
    assert before
    assert all(e.person is None for e in before)
    gallery.add_many(templates["obama"])
    after = sightings(run(pipeline, clip, start=split))
    assert any(e.person == "obama" for e in after)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="detect_every must be an int >= 1, got 0"):
        PipelineSettings(detect_every=0)


def test_a_still_empty_scene_is_scanned_only_every_nth_frame(
    engine: FaceEngine, clip: Clip
) -> None:
    settings = PipelineSettings(detect_every=2, scan_every=5)
    pipeline = CameraPipeline("door", engine, GalleryIndex(), settings)
    empty = next(i for i, faces in enumerate(clip.truth) if not faces)
    for index in range(30):
        pipeline.process(index, index / FPS, clip.frames[empty])
    # Frames 0, 5, ..., 25: nothing moved in between and nobody is tracked, so the detection
    # frames between whole scans have nothing to look at and run no detector.
    assert pipeline.scans == 6
    assert pipeline.detections == 6


def test_motion_in_an_empty_scene_is_looked_at_at_once(engine: FaceEngine, clip: Clip) -> None:
    pipeline = CameraPipeline("door", engine, GalleryIndex(), PipelineSettings(detect_every=5))
    still = next(i for i, faces in enumerate(clip.truth) if not faces)
    moving = clip.frames[still].copy()
    moving[100:200, 100:200] = 255 - moving[100:200, 100:200]  # something changes
    for index in range(10):
        pipeline.process(index, index / FPS, moving if index % 2 else clip.frames[still])
    assert pipeline.detections == 10


def test_a_stranger_in_view_is_named_right_after_being_enrolled(
    engine: FaceEngine, clip: Clip, templates: dict[str, list[Template]]
) -> None:
    # The Amber Alert case: the person is already on screen, judged a stranger, when their
    # photo is enrolled. The track must not wait for the next visit to be named.
    gallery = GalleryIndex()
    pipeline = CameraPipeline("door", engine, gallery, PipelineSettings(cooldown=0.5, **SETTINGS))
    _, first, last = next(v for v in clip.visits if v[0] == "obama" and v[2] - v[1] > FPS)
    middle = (first + last) // 2
    before = sightings(run(pipeline, clip, stop=middle))
    assert any(e.person is None and first <= e.frame for e in before)  # judged a stranger
    gallery.add_many(templates["obama"])
    after = sightings(run(pipeline, clip, start=middle, stop=last + 1))
    named = [e for e in after if e.person == "obama"]
    assert named, after
    assert named[0].frame - middle <= pipeline.settings.detect_every + 1


def test_labels_draw_the_name_the_server_gives_a_person_key(
    engine: FaceEngine, clip: Clip, templates: dict[str, list[Template]]
) -> None:
    gallery = GalleryIndex()
    gallery.add_many(templates["obama"])
    pipeline = CameraPipeline("door", engine, gallery, PipelineSettings(cooldown=0.5, **SETTINGS))
    _, first, last = next(v for v in clip.visits if v[0] == "obama" and v[2] - v[1] > FPS)
    run(pipeline, clip, stop=(first + last) // 2)
    keys = [label.text for label in pipeline.labels()]
    named = [label.text for label in pipeline.labels(lambda key: f"Mr {key.title()}")]
    assert any(text.startswith("obama ") for text in keys), keys
    assert any(text.startswith("Mr Obama ") for text in named), named


# Where the pipeline looks: fast faces, newcomers found by motion, undecided faces, threads ---


def render(
    actors: Sequence[Actor], movements: Sequence[Movement], frames: int
) -> tuple[list[RGBImage], list[tuple[VisibleFace, ...]]]:
    rendered = list(compose(actors, movements, width=WIDTH, height=HEIGHT, frames=frames, fps=FPS))
    return [f for f, _ in rendered], [v for _, v in rendered]


def first_visible(truth: Sequence[tuple[VisibleFace, ...]], person: str) -> int:
    return next(i for i, faces in enumerate(truth) if any(f.person == person for f in faces))


@pytest.fixture
def gallery(templates: dict[str, list[Template]]) -> GalleryIndex:
    index = GalleryIndex()
    index.add_many(t for each in templates.values() for t in each)
    return index


def test_a_face_moving_a_face_size_per_detection_round_stays_one_track(
    engine: FaceEngine, actors: list[Actor], gallery: GalleryIndex
) -> None:
    # 96 pixels every 3 frames (one detection round): a cyclist crossing the street.
    frames, truth = render(actors, [Movement(0, 0, 17, (60, 240), (604, 240), 96)], 20)
    assert sum(1 for faces in truth if faces) >= 15  # in view, whole, for 1.5 s
    pipeline = CameraPipeline("door", engine, gallery, PipelineSettings(**SETTINGS))
    events: list[SightingEvent] = []
    for index, frame in enumerate(frames):
        events.extend(pipeline.process(index, index / FPS, frame))
        assert len(pipeline.labels()) <= 1, (index, pipeline.labels())
    events.extend(pipeline.finish(len(frames) - 1, (len(frames) - 1) / FPS))
    seen = sightings(events)
    assert [e.person for e in seen] == ["obama"], events
    assert {e.track for e in events} == {seen[0].track}, events


def test_a_newcomer_beside_a_tracked_face_is_found_by_motion_before_the_next_scan(
    engine: FaceEngine, actors: list[Actor], gallery: GalleryIndex
) -> None:
    # Obama stands at the left from the start; Biden walks in on the right at frame 10. With
    # whole scans 1000 frames apart only the changed part of the frame can show him. (Faces of
    # 64 pixels: with the clip's 96-pixel faces a head grown by the motion pad covers more than
    # MOTION_MAX_AREA of a 640x480 frame, and is left to the whole scan.)
    movements = [
        Movement(0, 0, 29, (170, 230), (170, 230), 64),
        Movement(1, 10, 29, (560, 250), (460, 250), 64),
    ]
    frames, truth = render(actors, movements, 30)
    arrival = first_visible(truth, "biden")
    settings = PipelineSettings(scan_every=1000, cooldown=0.5, min_face_px=40)
    pipeline = CameraPipeline("door", engine, gallery, settings)
    events: list[SightingEvent] = []
    for index, frame in enumerate(frames):
        events.extend(pipeline.process(index, index / FPS, frame))
    seen = sightings(events)
    assert [e.person for e in seen] == ["obama", "biden"], seen
    assert seen[1].frame - arrival <= 2 * pipeline.settings.detect_every, (arrival, seen)
    assert pipeline.scans == 1


@pytest.fixture(scope="module")
def standing(actors: list[Actor]) -> Clip:
    """Obama standing in the middle of the frame for three seconds."""
    frames, truth = render(actors, [Movement(0, 0, 29, (320, 240), (320, 240), 96)], 30)
    return Clip(frames, truth, [("obama", 0, 29)])


def test_a_face_never_trusted_is_an_unknown_sighting_after_decide_within(
    engine: FaceEngine, standing: Clip, gallery: GalleryIndex
) -> None:
    settings = PipelineSettings(min_quality=1.0, cooldown=0.5, **SETTINGS)  # nothing trusted
    pipeline = CameraPipeline("door", engine, gallery, settings)
    seen = sightings(run(pipeline, standing))
    assert len(seen) == 1, seen
    assert seen[0].person is None
    assert seen[0].watchlist is None
    # The track starts on frame 0 (the first whole scan) and is encoded on every detection
    # round: the first encoding at or after decide_within gives up.
    rounds = settings.detect_every / FPS
    assert settings.decide_within <= seen[0].t < settings.decide_within + rounds + 1e-9


def test_without_decide_within_an_untrusted_face_waits_for_max_samples(
    engine: FaceEngine, standing: Clip, gallery: GalleryIndex
) -> None:
    settings = PipelineSettings(min_quality=1.0, decide_within=100.0, max_samples=6, **SETTINGS)
    pipeline = CameraPipeline("door", engine, gallery, settings)
    for index, frame in enumerate(standing.frames):
        events = sightings(pipeline.process(index, index / FPS, frame))
        if events:
            break
        assert pipeline.encodings < settings.max_samples, index
    assert [e.person for e in events] == [None]
    assert pipeline.encodings == settings.max_samples
    assert index == (settings.max_samples - 1) * settings.detect_every


def test_detector_threads_give_the_same_sightings(
    engine: FaceEngine, clip: Clip, gallery: GalleryIndex
) -> None:
    # 40-pixel faces in 480 lines: the threaded whole scan is cut into strips plus a coarse
    # whole-frame part (with 80 it would be one whole scan, as cheap as the strips).
    found = {}
    for threads in (1, 2):
        settings = PipelineSettings(cooldown=0.5, min_face_px=40, detect_threads=threads)
        pipeline = CameraPipeline("door", engine, gallery, settings)
        found[threads] = [(e.person, e.frame) for e in sightings(run(pipeline, clip))]
        pipeline.close()
    one, two = found[1], found[2]
    assert [person for person, _ in two] == [person for person, _ in one], found
    assert len(one) == len(clip.visits), found
    every = PipelineSettings().detect_every
    for (_, a), (_, b) in zip(one, two, strict=True):
        assert abs(a - b) <= every, found


@pytest.mark.slow
def test_a_live_camera_scans_behind_its_frames_and_still_names_every_visit(
    engine: FaceEngine, clip: Clip, templates: dict[str, list[Template]]
) -> None:
    """Paced as a live camera (at twice the clip's 10 frames/s, to keep the test short; a
    frame every 50 ms is still far more than this clip's frames need), the pipeline never
    scans a whole frame on the camera's thread: its scans run behind, on a thread at the
    lowest priority, and what they find is looked for again on the frame the camera has
    reached. Every visit is still sighted, with the right name, within half a second of clip
    time plus the scans' lag."""
    gallery = GalleryIndex()
    gallery.add_many(t for each in templates.values() for t in each)
    threads = ThreadsSeen(engine)
    settings = PipelineSettings(cooldown=0.5, real_time=True, **SETTINGS)
    pipeline = CameraPipeline("door", engine, gallery, settings, lambda _: threads.make())
    events: list[SightingEvent] = []
    start = time.perf_counter()
    for index, frame in enumerate(clip.frames):
        time.sleep(max(0.0, start + index / (2 * FPS) - time.perf_counter()))
        events.extend(pipeline.process(index, index / FPS, frame))
    events.extend(pipeline.finish(len(clip.frames) - 1, (len(clip.frames) - 1) / FPS))
    pipeline.close()
    counts = pipeline.counts()
    assert counts["scans_behind"] >= counts["scans"] - 1 > 0, counts
    lag = counts["scan_lag_frames"] / counts["scans_behind"]
    camera = threading.get_ident()
    whole = [
        (thread, nice) for thread, nice, region in threads.seen if region.area == WIDTH * HEIGHT
    ]
    assert whole
    assert all(thread != camera for thread, _ in whole)
    if sys.platform.startswith("linux"):
        assert {nice for _, nice in whole} == {BEHIND_NICE}
    seen = sightings(events)
    assert all(e.person in {"obama", "biden"} for e in seen), seen
    assert len(seen) == len(clip.visits)
    for person, first, last in clip.visits:
        mine = [e for e in seen if e.person == person and first <= e.frame <= last]
        assert len(mine) >= 1, (person, first, last, seen)
        assert mine[0].frame - first <= 0.5 * FPS + lag, (mine[0].frame, first, lag)


def test_a_face_on_two_watchlists_gives_a_sighting_on_each(
    engine: FaceEngine, clip: Clip, templates: dict[str, list[Template]]
) -> None:
    # Issue 12, bug 1: obama is a customer ("obama") and, from the same photos, a missing
    # person ("case"): each watchlist decides on its own, so each of his tracks is sighted
    # as both (the companion on amber-alert), and each leaves on both.
    gallery = GalleryIndex()
    gallery.add_many(templates["obama"] + templates["biden"])
    gallery.add_many(
        Template(f"case-{t.id}", "case", "amber-alert", t.embedding) for t in templates["obama"]
    )
    pipeline = CameraPipeline("door", engine, gallery, PipelineSettings(cooldown=30.0, **SETTINGS))
    events = run(pipeline, clip)
    seen = sightings(events)
    primary = [e for e in seen if not e.companion]
    companions = [e for e in seen if e.companion]
    assert sorted((e.person, e.watchlist) for e in primary) == [
        ("biden", "customers"),
        ("obama", "customers"),
    ] or sorted((e.person, e.watchlist) for e in primary) == [
        ("biden", "customers"),
        ("case", "amber-alert"),
    ]
    assert {(e.person, e.watchlist) for e in seen} == {
        ("obama", "customers"),
        ("case", "amber-alert"),
        ("biden", "customers"),
    }
    [companion] = companions
    [twin] = [e for e in primary if e.track == companion.track]
    assert companion.frame == twin.frame  # sighted together
    assert companion.snapshot is not None
    left = [(e.track, e.watchlist) for e in events if e.event == "left"]
    assert sorted(left) == sorted((e.track, e.watchlist) for e in seen)


def test_a_case_filed_since_the_last_visit_is_sighted_within_the_customers_cooldown(
    engine: FaceEngine, clip: Clip, templates: dict[str, list[Template]]
) -> None:
    # The customer's second visit is within the cooldown (no new arrival card), but the case
    # filed with his photos since the first is news: its sighting comes, and leaves.
    gallery = GalleryIndex()
    gallery.add_many(templates["obama"] + templates["biden"])
    pipeline = CameraPipeline("door", engine, gallery, PipelineSettings(cooldown=30.0, **SETTINGS))
    obama = [(first, last) for person, first, last in clip.visits if person == "obama"]
    assert len(obama) >= 2
    split = obama[0][1] + 1
    before = run(pipeline, clip, stop=split)
    assert [(e.person, e.watchlist) for e in sightings(before) if e.person == "obama"] == [
        ("obama", "customers")
    ]
    gallery.add_many(
        Template(f"case-{t.id}", "case", "amber-alert", t.embedding) for t in templates["obama"]
    )
    after = run(pipeline, clip, start=split)
    assert [(e.person, e.watchlist) for e in sightings(after) if e.person != "biden"] == [
        ("case", "amber-alert")
    ]
    [case] = [e for e in sightings(after) if e.person == "case"]
    assert obama[1][0] <= case.frame <= obama[1][1]
    left = [e for e in after if e.event == "left" and e.person == "case"]
    assert [(e.track, e.watchlist) for e in left] == [(case.track, "amber-alert")]


# Track fusion (issue 13) -------------------------------------------------------------------


def test_fusion_names_a_half_covered_face_its_single_frames_leave_unknown(
    engine: FaceEngine, clip: Clip, load_photo: PhotoLoader
) -> None:
    # Obama enrolled from obama.jpg alone, on a watchlist as strict as 0.22: the clip's
    # half-covered visit (the last) lies just past that from it in its frames, so the per-frame
    # votes leave it unknown; the fused embedding of its frames is within it, and names it.
    # (Until the looks near tracked faces changed, 2026-12-05, this case was obama2.jpg at the
    # default 0.32: the frames were 0.322 away, the fused embedding 0.319. Since, the frames
    # are 0.319: a case on the threshold's edge, as any case of this kind is.)
    gallery = GalleryIndex(default_threshold=0.22)
    for person, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        embedding = engine.enrolment_face(load_photo(photo)).embedding
        gallery.add(Template(f"{person}-1", person, "customers", embedding))
    person, first, last = clip.visits[-1]
    assert person == "obama"
    during: dict[int | None, list[str | None]] = {}
    before: dict[int | None, list[str | None]] = {}
    for fuse_after in (None, 3):
        settings = PipelineSettings(cooldown=0.5, fuse_after=fuse_after, **SETTINGS)
        seen = sightings(run(CameraPipeline("door", engine, gallery, settings), clip))
        assert all(e.person in {"obama", "biden", None} for e in seen), seen  # no wrong names
        during[fuse_after] = [e.person for e in seen if first <= e.frame <= last]
        before[fuse_after] = [e.person for e in seen if e.frame < first]
    assert during[None] == [None], during
    # Named by fusion: its first sighting waits for the votes, and by then fuse_after frames
    # are fused.
    assert during[3] == ["obama"], during
    # The other visits come out the same with or without fusion.
    assert before[3] == before[None], before


def test_fuse_after_is_checked() -> None:
    with pytest.raises(ValueError, match="fuse_after must be an int >= 1 or None, got 0"):
        PipelineSettings(fuse_after=0)


def test_settings_refuse_an_unknown_light_mode() -> None:
    with pytest.raises(ValueError, match="light must be one of off, lift, clahe"):
        PipelineSettings(light="gamma")  # type: ignore[arg-type]


def dark_room(image: RGBImage, seed: int) -> RGBImage:
    """The frame as a cheap sensor in a dark room gives it: a tenth of the light, a bent tone
    curve, shot and read noise."""
    rng = np.random.default_rng(seed)
    light = 255.0 * 0.1 * (image.astype(np.float64) / 255.0) ** 1.4
    noisy = light + np.sqrt(0.6 * light + 6.25) * rng.standard_normal(image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def test_in_a_dark_room_the_lift_finds_the_faces_the_plain_frames_hide(
    engine: FaceEngine, clip: Clip, templates: dict[str, list[Template]]
) -> None:
    dark = Clip(
        [dark_room(frame, i) for i, frame in enumerate(clip.frames)], clip.truth, clip.visits
    )
    gallery = GalleryIndex()
    gallery.add_many(t for each in templates.values() for t in each)
    found: dict[str, list[SightingEvent]] = {}
    rounds: dict[str, int] = {}
    for light in ("off", "lift"):
        settings = PipelineSettings(cooldown=0.5, light=light, light_encode=True, **SETTINGS)
        pipeline = CameraPipeline("door", engine, gallery, settings)
        found[light] = sightings(run(pipeline, dark))
        rounds[light] = pipeline.detections
        assert all(e.person in {"obama", "biden", None} for e in found[light])  # no wrong names
    # Unlifted, a face crossing the dark room changes the frame by fewer grey levels than the
    # motion map counts, and HOG's gradients drown in the noise: one of five visits is
    # sighted. Lifted, the motion is seen and the faces found (naming them at 0.33-0.35 from
    # such noisy frames is another matter: bench/video_accuracy.py --conditions measures it).
    assert len(found["off"]) <= 1
    assert len(found["lift"]) >= 3
    assert rounds["lift"] > 2 * rounds["off"]
