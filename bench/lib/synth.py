"""Labelled test videos: real face photos moving over a background, with the truth of who is
visible where in every frame.

Nobody has to label a video by hand to test tracking, voting and sighting latency: each clip
is composed from actors (a photo and the face box in it) following scripted movements
(entering, crossing, leaving, two at once, turning away, partly covered), and written as an mp4
beside a JSON file with, per frame, every visible face's person and box.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from oneeye.errors import OneEyeError
from oneeye.types import FaceBox, RGBImage

logger = logging.getLogger(__name__)

CROP_MARGIN = 0.6
"""How much of the photo around the face box travels with the face, as a fraction of the box."""


@dataclass(frozen=True, slots=True)
class Actor:
    """A person to put in a clip: a photo and where the face is in it."""

    person: str
    photo: RGBImage
    face: FaceBox


@dataclass(frozen=True, slots=True)
class Movement:
    """One appearance of an actor: from ``start`` to ``end`` (face centre, pixels) between two
    frames, the face ``face_px`` tall.

    ``turn_away`` is the fraction of the appearance, at its end, during which the face turns
    away from the camera (squeezed, then hidden: not visible in the truth). ``covered`` is the
    fraction of the face hidden from below by an obstacle (the face stays visible).
    """

    actor: int
    first_frame: int
    last_frame: int
    start: tuple[float, float]
    end: tuple[float, float]
    face_px: int
    turn_away: float = 0.0
    covered: float = 0.0

    def __post_init__(self) -> None:
        if self.last_frame < self.first_frame:
            raise ValueError(
                "Movement needs last_frame >= first_frame, got "
                f"{self.first_frame}..{self.last_frame}"
            )
        if self.face_px < 8:
            raise ValueError(f"Movement.face_px must be >= 8, got {self.face_px}")
        for name in ("turn_away", "covered"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"Movement.{name} must be in [0, 1), got {getattr(self, name)}")


@dataclass(frozen=True, slots=True)
class VisibleFace:
    """Ground truth for one face in one frame."""

    person: str
    box: tuple[int, int, int, int]
    """(top, right, bottom, left) in the frame."""
    covered: float


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """Everything a test needs to score a pipeline on the clip."""

    width: int
    height: int
    fps: float
    frames: int
    faces: tuple[tuple[VisibleFace, ...], ...]
    """Per frame, the faces a person would see."""
    visits: tuple[dict[str, int | str], ...] = field(default=())
    """One per movement: person, first and last frame in which the face is visible."""

    def save(self, path: Path) -> None:
        """Write as JSON."""
        data = asdict(self)
        path.write_text(json.dumps(data))

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        """Read the JSON written by :meth:`save`."""
        data = json.loads(path.read_text())
        faces = tuple(
            tuple(
                VisibleFace(person=f["person"], box=tuple(f["box"]), covered=f["covered"])
                for f in frame
            )
            for frame in data["faces"]
        )
        return cls(
            width=data["width"],
            height=data["height"],
            fps=data["fps"],
            frames=data["frames"],
            faces=faces,
            visits=tuple(data["visits"]),
        )


def background(width: int, height: int, seed: int = 0) -> RGBImage:
    """A plain street-like backdrop: a vertical gradient with some texture and blocks."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(170, 90, height, dtype=np.float32)[:, None, None]
    image = np.repeat(np.repeat(rows, width, axis=1), 3, axis=2)
    image = image + rng.normal(0.0, 6.0, size=image.shape).astype(np.float32)
    for _ in range(6):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height // 2))
        w, h = (
            int(rng.integers(width // 12, width // 5)),
            int(rng.integers(height // 6, height // 2)),
        )
        image[y : y + h, x : x + w] = rng.integers(60, 200, size=3)
    return np.clip(image, 0, 255).astype(np.uint8)


def _cutout(actor: Actor) -> tuple[RGBImage, FaceBox]:
    """The photo around the face, and the face box inside that cut-out."""
    height, width = actor.photo.shape[:2]
    pad = round(CROP_MARGIN * actor.face.size)
    top, left = max(0, actor.face.top - pad), max(0, actor.face.left - pad)
    bottom, right = min(height - 1, actor.face.bottom + pad), min(width - 1, actor.face.right + pad)
    crop = actor.photo[top : bottom + 1, left : right + 1]
    inner = FaceBox(
        top=actor.face.top - top,
        right=actor.face.right - left,
        bottom=actor.face.bottom - top,
        left=actor.face.left - left,
    )
    return np.ascontiguousarray(crop), inner


def _paste(frame: RGBImage, sprite: RGBImage, top: int, left: int) -> None:
    height, width = frame.shape[:2]
    t, l_ = max(0, top), max(0, left)
    b, r = min(height, top + sprite.shape[0]), min(width, left + sprite.shape[1])
    if b > t and r > l_:
        frame[t:b, l_:r] = sprite[t - top : b - top, l_ - left : r - left]


def _not_hidden(
    faces: list[VisibleFace], order: list[int], pasted: list[tuple[int, FaceBox]]
) -> list[VisibleFace]:
    """Faces not more than half covered by a person drawn after (in front of) them."""
    kept = []
    for face, drawn in zip(faces, order, strict=True):
        box = FaceBox(*face.box)
        hidden = 0
        for later, rect in pasted:
            if later <= drawn:
                continue
            top, left = max(box.top, rect.top), max(box.left, rect.left)
            bottom, right = min(box.bottom, rect.bottom), min(box.right, rect.right)
            if bottom >= top and right >= left:
                hidden = max(hidden, (bottom - top + 1) * (right - left + 1))
        if hidden <= box.area // 2:
            kept.append(face)
    return kept


def compose(
    actors: Sequence[Actor],
    movements: Sequence[Movement],
    *,
    width: int,
    height: int,
    frames: int,
    fps: float = 25.0,
    seed: int = 0,
) -> Iterator[tuple[RGBImage, tuple[VisibleFace, ...]]]:
    """Render a clip frame by frame.

    Args:
        actors: the people.
        movements: their appearances (``Movement.actor`` indexes ``actors``).
        width: frame width.
        height: frame height.
        frames: number of frames.
        fps: frame rate (only recorded; movements are in frames).
        seed: background seed.

    Yields:
        ``(frame, visible faces)`` for each frame. A face is visible while it is whole inside
        the frame, turned to the camera and not more than half hidden by someone in front.
    """
    del fps
    for movement in movements:
        if not 0 <= movement.actor < len(actors):
            raise ValueError(f"Movement.actor must index one of {len(actors)} actors")
    cutouts = [_cutout(actor) for actor in actors]
    backdrop = background(width, height, seed)
    for index in range(frames):
        frame = backdrop.copy()
        visible: list[VisibleFace] = []
        pasted: list[tuple[int, FaceBox]] = []  # (draw order, sprite rectangle)
        visible_order: list[int] = []
        for movement in movements:
            if not movement.first_frame <= index <= movement.last_frame:
                continue
            span = max(1, movement.last_frame - movement.first_frame)
            progress = (index - movement.first_frame) / span
            crop, inner = cutouts[movement.actor]
            scale = movement.face_px / inner.height
            squeeze = 1.0
            turning_from = 1.0 - movement.turn_away
            if movement.turn_away > 0 and progress > turning_from:
                squeeze = max(0.0, 1.0 - (progress - turning_from) / movement.turn_away * 1.6)
            sprite_w = max(1, round(crop.shape[1] * scale * max(squeeze, 0.05)))
            sprite_h = max(1, round(crop.shape[0] * scale))
            sprite = np.asarray(
                cv2.resize(crop, (sprite_w, sprite_h), interpolation=cv2.INTER_AREA), np.uint8
            )
            cx = movement.start[0] + (movement.end[0] - movement.start[0]) * progress
            cy = movement.start[1] + (movement.end[1] - movement.start[1]) * progress
            face_cx = (inner.left + inner.right) / 2 * scale * max(squeeze, 0.05)
            face_cy = (inner.top + inner.bottom) / 2 * scale
            top, left = round(cy - face_cy), round(cx - face_cx)
            face = FaceBox(
                top=top + round(inner.top * scale),
                right=left + round(inner.right * scale * max(squeeze, 0.05)),
                bottom=top + round(inner.bottom * scale),
                left=left + round(inner.left * scale * max(squeeze, 0.05)),
            )
            if squeeze < 0.6:
                # Turned away: what the camera sees is the back of a head, not a face.
                sprite[:] = (55, 45, 40)
            _paste(frame, sprite, top, left)
            pasted.append(
                (
                    len(pasted),
                    FaceBox(
                        top=top, right=left + sprite_w - 1, bottom=top + sprite_h - 1, left=left
                    ),
                )
            )
            if movement.covered > 0:
                cover_top = face.bottom - round(movement.covered * face.height)
                cv2.rectangle(
                    frame,
                    (face.left - 4, cover_top),
                    (face.right + 4, face.bottom + 8),
                    (90, 90, 100),
                    thickness=-1,
                )
            inside = (
                face.top >= 0 and face.left >= 0 and face.bottom < height and face.right < width
            )
            if squeeze >= 0.6 and inside:
                visible.append(
                    VisibleFace(actors[movement.actor].person, face.as_tuple(), movement.covered)
                )
                visible_order.append(len(pasted) - 1)
        yield frame, tuple(_not_hidden(visible, visible_order, pasted))


def visible_spans(
    actors: Sequence[Actor],
    movements: Sequence[Movement],
    truth: Sequence[tuple[VisibleFace, ...]],
) -> list[tuple[str, int, int]]:
    """Per movement whose face is ever visible: the person, and the first and last frame in
    which it is (a face turned away or hidden at the ends is not).

    Args:
        actors: the clip's people.
        movements: their appearances.
        truth: the visible faces per frame, as :func:`compose` yields them.

    Returns:
        ``(person, first frame, last frame)`` in the order of ``movements``.
    """
    spans = []
    for movement in movements:
        person = actors[movement.actor].person
        seen = [
            i
            for i in range(movement.first_frame, min(len(truth), movement.last_frame + 1))
            if any(face.person == person for face in truth[i])
        ]
        if seen:
            spans.append((person, seen[0], seen[-1]))
    return spans


def write_clip(
    path: Path,
    actors: Sequence[Actor],
    movements: Sequence[Movement],
    *,
    width: int,
    height: int,
    frames: int,
    fps: float = 25.0,
    seed: int = 0,
) -> GroundTruth:
    """Render a clip to ``path`` (mp4) and its truth to ``path`` with ``.json``.

    Returns:
        The ground truth (also saved).

    Raises:
        OneEyeError: the video could not be written.
    """
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OneEyeError(f"cannot write video {path}")
    truth: list[tuple[VisibleFace, ...]] = []
    try:
        for frame, visible in compose(
            actors, movements, width=width, height=height, frames=frames, fps=fps, seed=seed
        ):
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
            truth.append(visible)
    finally:
        writer.release()
    visits: list[dict[str, int | str]] = [
        {"person": person, "first_frame": first, "last_frame": last}
        for person, first, last in visible_spans(actors, movements, truth)
    ]
    result = GroundTruth(width, height, fps, frames, tuple(truth), tuple(visits))
    result.save(path.with_suffix(".json"))
    logger.info("synth: wrote %s (%d frames, %d visits)", path, frames, len(visits))
    return result


def standard_scenario(
    actors: Sequence[Actor], width: int, height: int, fps: float = 25.0
) -> tuple[list[Movement], int]:
    """A clip that exercises a pipeline: the first actor enters and leaves; two cross paths at
    once; one turns away; one walks past half covered. Needs at least two actors.

    Returns:
        ``(movements, frames)``.
    """
    if len(actors) < 2:
        raise ValueError(f"standard_scenario needs at least 2 actors, got {len(actors)}")
    second = round(fps)
    face = max(40, height // 5)
    mid = height / 2.0
    movements = [
        # enters from the left, walks to the middle, leaves right
        Movement(0, 0, 3 * second, (-face, mid), (width + face, mid), face),
        # two at once, crossing
        Movement(0, 4 * second, 7 * second, (width * 0.15, mid), (width * 0.85, mid), face),
        Movement(1, 4 * second, 7 * second, (width * 0.85, mid), (width * 0.15, mid), face),
        # turns away at the end of the walk
        Movement(
            1, 8 * second, 10 * second, (width * 0.3, mid), (width * 0.6, mid), face, turn_away=0.3
        ),
        # half covered
        Movement(
            0, 11 * second, 13 * second, (width * 0.2, mid), (width * 0.7, mid), face, covered=0.3
        ),
    ]
    return movements, 14 * second
