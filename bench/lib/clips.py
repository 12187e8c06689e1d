"""Labelled clips made from LFW people, and one way to score anyone's sightings on them.

The video benchmarks need clips where the truth is known: who is in view, where, in which
frames. :func:`lfw_clip` composes them with ``bench.lib.synth``: enrolled people walk
through as another photo of theirs than the one they were enrolled from; strangers (people
with a single LFW photo) walk through too. :func:`score` judges a list of claims ("on frame f,
the face in box b is person p, or someone unknown") against that truth, so OneEye's sightings
and a reference loop's per-frame answers are scored by the same rules.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.lib.conditions import CONDITIONS, TURN_DEGREES, frame_condition, turn_face
from bench.lib.synth import Actor, Movement, VisibleFace, compose, visible_spans
from oneeye.errors import OneEyeError
from oneeye.types import FaceBox, RGBImage, Template
from oneeye.video.pipeline_io import SightingEvent
from oneeye.vision.engine import FaceEngine
from oneeye.vision.images import load_image

VISIT_SECONDS = 2.5
"""How long each walk through the frame lasts."""
VISIT_EVERY_SECONDS = 1.25
"""A new walk starts this often, so two people are often in view at once."""
MIN_VISIT_SECONDS = 1.0
"""Visits at least this long count for recall (the issue's "appears for at least 1 s")."""
SAME_FACE_IOU = 0.3
"""A claimed box and a true face box overlapping this much are the same face."""


@dataclass(frozen=True, slots=True)
class Visit:
    """One walk through the clip, as visible frames."""

    person: str
    enrolled: bool
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class LabelledClip:
    """A rendered clip with its truth, and what is needed to enrol its people."""

    frames: list[RGBImage]
    truth: list[tuple[VisibleFace, ...]]
    fps: float
    visits: list[Visit]
    templates: list[Template]
    """OneEye's templates of the enrolled people (one photo each)."""
    enrolment_photos: dict[str, RGBImage]
    """The photo each enrolled person was enrolled from (for a reference to encode itself)."""
    movements: list[Movement]
    people: list[str]
    """``movements[i]`` is ``people[i]`` walking."""

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        height, width = self.frames[0].shape[:2]
        return int(width), int(height)


def lfw_clip(
    engine: FaceEngine,
    lfw: Path,
    *,
    people: int,
    strangers: int,
    width: int,
    height: int,
    fps: float = 25.0,
    face_px: tuple[int, int] = (110, 110),
    seed: int = 0,
    condition: str = "normal",
) -> LabelledClip:
    """Compose a labelled clip from LFW.

    Every condition (``bench.lib.conditions``) of one seed has the same people on the same
    paths, so conditions compare in pairs.

    Args:
        engine: finds the faces in the photos (and makes OneEye's templates).
        lfw: LFW's image folder (a folder per person).
        people: enrolled people walking through.
        strangers: people with one photo walking through, enrolled nowhere.
        width: frame width.
        height: frame height.
        fps: frame rate.
        face_px: smallest and largest face height; each walk draws one in between.
        seed: picks the people, the order, the sizes.
        condition: one of ``bench.lib.conditions.CONDITIONS``: ``turned`` warps the walkers'
            photos (not the enrolment photos) to look away, alternately left and right;
            ``dim``, ``dark``, ``blur`` and ``jpeg`` change the rendered frames.

    Returns:
        The clip, rendered in memory.

    Raises:
        ValueError: an unknown condition.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; expected one of {CONDITIONS}")
    rng = random.Random(seed)
    folders = sorted(p for p in lfw.iterdir() if p.is_dir())
    several = [p for p in folders if len(list(p.iterdir())) >= 2]
    single = [p for p in folders if len(list(p.iterdir())) == 1]
    actors: list[Actor] = []
    templates: list[Template] = []
    photos: dict[str, RGBImage] = {}
    for folder in rng.sample(several, len(several)):
        if len(photos) == people:
            break
        files = sorted(folder.iterdir())
        try:
            enrolment = load_image(files[0])
            template = Template(
                folder.name,
                folder.name,
                "customers",
                engine.enrolment_face(enrolment).embedding,
            )
            walker = load_image(files[1])
            actor = _actor(folder.name, walker, engine, condition, len(actors))
        except OneEyeError:
            continue  # a photo with no face or two: pick someone else
        templates.append(template)
        photos[folder.name] = enrolment
        actors.append(actor)
    for folder in rng.sample(single, len(single)):
        if len(actors) == len(photos) + strangers:
            break
        photo = load_image(next(folder.iterdir()))
        try:
            actors.append(_actor(folder.name, photo, engine, condition, len(actors)))
        except OneEyeError:
            continue
    rng.shuffle(actors)
    length, step = round(VISIT_SECONDS * fps), round(VISIT_EVERY_SECONDS * fps)
    movements = []
    for number in range(len(actors)):
        start = number * step
        y = height * (0.4 + 0.2 * (number % 2))
        a, b = (width * 0.1, width * 0.9) if number % 2 == 0 else (width * 0.9, width * 0.1)
        size = rng.randint(face_px[0], face_px[1])
        movements.append(Movement(number, start, start + length, (a, y), (b, y), size))
    count = len(actors) * step + length + round(fps)
    change = frame_condition(condition, (face_px[0] + face_px[1]) // 2, seed)
    rendered = [
        (change(index, frame), faces)
        for index, (frame, faces) in enumerate(
            compose(actors, movements, width=width, height=height, frames=count, fps=fps)
        )
    ]
    truth = [faces for _, faces in rendered]
    visits = [
        Visit(person, person in photos, first, last)
        for person, first, last in visible_spans(actors, movements, truth)
    ]
    return LabelledClip(
        frames=[frame for frame, _ in rendered],
        truth=truth,
        fps=fps,
        visits=visits,
        templates=templates,
        enrolment_photos=photos,
        movements=movements,
        people=[actors[m.actor].person for m in movements],
    )


def _actor(person: str, photo: RGBImage, engine: FaceEngine, condition: str, number: int) -> Actor:
    """An actor walking as ``photo``; under ``turned``, its face looks away (even-numbered
    actors to one side, odd-numbered to the other).

    Raises:
        OneEyeError: the photo has no face, or two.
    """
    face = engine.enrolment_face(photo)
    if condition != "turned":
        return Actor(person, photo, face.box)
    degrees = TURN_DEGREES if number % 2 == 0 else -TURN_DEGREES
    turned = turn_face(photo, face.box, face.landmarks, degrees)
    return Actor(person, turned.photo, turned.box)


@dataclass(frozen=True, slots=True)
class Claim:
    """Someone's answer about one face on one frame: a person, or ``None`` for unknown."""

    frame: int
    box: FaceBox
    person: str | None


def claims_from(events: Sequence[SightingEvent]) -> tuple[list[Claim], list[Claim]]:
    """OneEye's events as claims: every ``sighting`` and ``sighting_update``, and the
    ``sighting`` events alone (``left`` says nothing about who).

    Args:
        events: a pipeline's events.

    Returns:
        ``(claims, sightings)``.
    """
    claims: list[Claim] = []
    sightings: list[Claim] = []
    for event in events:
        if event.event == "left":
            continue
        top, right, bottom, left = event.box
        claim = Claim(
            event.frame, FaceBox(top=top, right=right, bottom=bottom, left=left), event.person
        )
        claims.append(claim)
        if event.event == "sighting":
            sightings.append(claim)
    return claims, sightings


def visit_of(clip: LabelledClip, claim: Claim) -> int | None:
    """The visit whose face the claim's box is (its index in ``clip.visits``), or ``None``."""
    best, best_iou = None, SAME_FACE_IOU
    for face in clip.truth[claim.frame]:
        top, right, bottom, left = face.box
        iou = claim.box.iou(FaceBox(top=top, right=right, bottom=bottom, left=left))
        if iou >= best_iou:
            best, best_iou = face.person, iou
    if best is None:
        return None
    for number, visit in enumerate(clip.visits):
        if visit.person == best and visit.first <= claim.frame <= visit.last:
            return number
    return None


def score(
    clip: LabelledClip, claims: Sequence[Claim], sightings: Sequence[Claim] | None = None
) -> dict[str, float | int | None]:
    """Score answers against the clip's truth, over the visits at least 1 s long.

    Args:
        clip: the clip.
        claims: every answer given (a reference's per-frame answers, or OneEye's sightings).
        sightings: OneEye's ``sighting`` events only, for sightings per visit (``None`` for a
            loop without sightings).

    Returns:
        ``visits`` and ``visits_enrolled`` counted; ``found`` (visits with any answer on their
        face, named or unknown); ``named`` (enrolled visits with an answer naming them);
        ``recall_found`` and ``recall_named`` as fractions; ``wrong_names`` (visits, or faces
        that are no visit, given another person's name at least once; target 0);
        ``first_named_p50/p95`` seconds from a visit's first visible frame to its first naming;
        ``sightings_per_named_visit``.
    """
    long_enough = {
        number
        for number, visit in enumerate(clip.visits)
        if visit.last - visit.first + 1 >= MIN_VISIT_SECONDS * clip.fps
    }
    found: set[int] = set()
    named: dict[int, int] = {}
    wrong: set[tuple[int, str]] = set()
    for claim in claims:
        number = visit_of(clip, claim)
        if number is not None:
            found.add(number)
        if claim.person is None:
            continue
        if number is not None and clip.visits[number].person == claim.person:
            named[number] = min(named.get(number, claim.frame), claim.frame)
            continue
        in_view = {
            clip.people[i]
            for i, m in enumerate(clip.movements)
            if m.first_frame <= claim.frame <= m.last_frame
        }
        if number is None and claim.person in in_view:
            continue  # the person is there, turned away or half hidden: not a wrong name
        # One wrong name per (face, person): a loop answering on every frame is not counted
        # once per frame. A box that is no visit's face counts once per second.
        where = number if number is not None else -1 - claim.frame // max(1, round(clip.fps))
        wrong.add((where, claim.person))
    enrolled = [n for n in long_enough if clip.visits[n].enrolled]
    delays = [(named[n] - clip.visits[n].first) / clip.fps for n in enrolled if n in named]
    per_visit: list[int] = []
    if sightings is not None:
        for n in enrolled:
            person = clip.visits[n].person
            per_visit.append(
                sum(1 for s in sightings if s.person == person and visit_of(clip, s) == n)
            )
    return {
        "visits": len(long_enough),
        "visits_enrolled": len(enrolled),
        "found": len(found & long_enough),
        "named": sum(1 for n in enrolled if n in named),
        "recall_found": len(found & long_enough) / max(1, len(long_enough)),
        "recall_named": sum(1 for n in enrolled if n in named) / max(1, len(enrolled)),
        "wrong_names": len(wrong),
        "first_named_p50": float(np.percentile(delays, 50)) if delays else None,
        "first_named_p95": float(np.percentile(delays, 95)) if delays else None,
        "sightings_per_named_visit": (
            float(np.mean([c for c in per_visit if c > 0])) if any(per_visit) else None
        ),
    }
