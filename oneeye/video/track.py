"""Per-camera face tracking and sighting debouncing.

Pure logic on project types: no I/O, no images, no dlib. The pipeline feeds ``FaceTracker``
detector output frame by frame and decides from its tracks which faces to encode, and asks
``SightingDebouncer`` whether a person's sighting on a camera is new. Whether a track's
identity is settled is neither's to say: the track's vote decides it (``TrackVote``, in
:mod:`oneeye.video.vote`).

Association is greedy on descending IoU rather than Hungarian (optimal assignment). A camera
frame holds a handful of faces, faces seldom overlap, and every track is compared against its
constant-velocity *prediction*, so the pair with the highest IoU is almost always the right one
and the optimum and the greedy answer coincide. Greedy needs no solver (SciPy is not a
dependency), is deterministic on ties (track id, then detection order) and lets the two gates be
tiered cleanly: every pair that passes the IoU gate is considered before any pair that only
passes the centroid-distance fallback, which catches a face that moved too far between two
detection rounds for its boxes to overlap much (fast motion, or detection run every Nth frame).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from oneeye.types import (
    Detection,
    FaceBox,
)

__all__ = ["FaceTracker", "SightingDebouncer", "Track"]


@dataclass(frozen=True, slots=True)
class Track:
    """One face followed across frames of one camera; a snapshot, replaced on every update.

    Attributes:
        id: unique within its tracker, increasing in creation order, never reused.
        box: where the face is in the latest frame: the detection when one matched, else the
            constant-velocity prediction from the last matched detection (may extend past the
            image edges; clip it before cropping). For an ended track: where the face was
            last found (a prediction after the face left says nothing).
        first_frame: frame index of the detection that started the track.
        last_frame: frame index of the latest detection matched to the track.
        hits: how many detections have been matched to the track, the first included.
        missed: consecutive detection rounds without a match (frames where detection did not
            run do not count).
        velocity: centre motion as ``(dx, dy)`` pixels per frame, smoothed over detections.
    """

    id: int
    box: FaceBox
    first_frame: int
    last_frame: int
    hits: int
    missed: int
    velocity: tuple[float, float]


def _shifted(box: FaceBox, dx: float, dy: float) -> FaceBox:
    """``box`` moved by ``(dx, dy)`` pixels, rounded to whole pixels, size unchanged."""
    x, y = round(dx), round(dy)
    return FaceBox(top=box.top + y, right=box.right + x, bottom=box.bottom + y, left=box.left + x)


class FaceTracker:
    """Gives each face on one camera a track id and follows it between detections.

    Call :meth:`update` once per frame, in frame order. With detections, they are matched to
    the live tracks (see the module docstring), unmatched detections start new tracks and
    unmatched tracks count a miss; with ``None`` (detection skipped on this frame) every track
    moves along its velocity. A track that misses ``max_missed`` detection rounds in a row ends:
    it leaves the result of :meth:`update` and is handed out once by :meth:`ended`.
    """

    def __init__(
        self,
        *,
        min_iou: float = 0.3,
        max_missed: int = 5,
        max_center_distance: float = 1.0,
        max_size_ratio: float = 2.0,
        velocity_smoothing: float = 0.5,
    ) -> None:
        """Create a tracker with no tracks.

        Args:
            min_iou: a detection and a track's predicted box with at least this IoU may match;
                in (0, 1].
            max_missed: consecutive detection rounds without a match after which a track
                ends; >= 1.
            max_center_distance: the fast-motion fallback: a pair below ``min_iou`` may still
                match when the centres are at most this many track-box sizes apart; >= 0
                (0 turns the fallback off).
            max_size_ratio: the fallback only pairs boxes whose sizes differ by at most this
                factor, so a small far face never takes over a large near one; >= 1.
            velocity_smoothing: weight of the newest measurement in the velocity average; in
                (0, 1] (1 = use only the latest displacement).

        Raises:
            ValueError: an argument is outside its range (the message names it and the value).
        """
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou!r}")
        if isinstance(max_missed, bool) or not isinstance(max_missed, int) or max_missed < 1:
            raise ValueError(f"max_missed must be an int >= 1, got {max_missed!r}")
        if not (math.isfinite(max_center_distance) and max_center_distance >= 0.0):
            raise ValueError(
                f"max_center_distance must be a finite number >= 0, got {max_center_distance!r}"
            )
        if not (math.isfinite(max_size_ratio) and max_size_ratio >= 1.0):
            raise ValueError(f"max_size_ratio must be a finite number >= 1, got {max_size_ratio!r}")
        if not 0.0 < velocity_smoothing <= 1.0:
            raise ValueError(f"velocity_smoothing must be in (0, 1], got {velocity_smoothing!r}")
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.max_center_distance = max_center_distance
        self.max_size_ratio = max_size_ratio
        self.velocity_smoothing = velocity_smoothing
        self._tracks: dict[int, Track] = {}
        # The last matched detection box per track: predictions start from it, so rounding a
        # prediction to whole pixels never accumulates over skipped frames.
        self._anchors: dict[int, FaceBox] = {}
        self._ended: list[Track] = []
        self._next_id = 1
        self._frame: int | None = None

    @property
    def tracks(self) -> list[Track]:
        """The live tracks after the latest update, by id."""
        return [self._tracks[track_id] for track_id in sorted(self._tracks)]

    def update(self, frame_index: int, detections: Sequence[Detection] | None) -> list[Track]:
        """Advance to ``frame_index`` with this frame's detections.

        Args:
            frame_index: the frame's number; must be greater than the previous call's (frames
                may be skipped).
            detections: the faces found in this frame (an empty sequence is a detection round
                that found nothing, so every track counts a miss), or ``None`` when detection
                did not run on this frame.

        Returns:
            The live tracks, by id, new ones included; tracks that ended on this frame are not
            in it but in :meth:`ended`.

        Raises:
            ValueError: ``frame_index`` is not after the previous frame.
        """
        if isinstance(frame_index, bool) or not isinstance(frame_index, int):
            raise TypeError(f"frame_index must be an int, got {type(frame_index).__name__}")
        if self._frame is not None and frame_index <= self._frame:
            raise ValueError(
                f"frame_index must be greater than the previous frame {self._frame}, "
                f"got {frame_index}"
            )
        self._frame = frame_index
        predicted = {
            track_id: self._predict(track, frame_index) for track_id, track in self._tracks.items()
        }
        if detections is None:
            for track_id, box in predicted.items():
                self._tracks[track_id] = replace(self._tracks[track_id], box=box)
            return self.tracks

        pairs = self._associate(predicted, detections)
        matched = set(pairs.values())
        for track_id, box in predicted.items():
            track = self._tracks[track_id]
            if track_id in pairs:
                self._tracks[track_id] = self._matched(
                    track, detections[pairs[track_id]].box, frame_index
                )
            elif track.missed + 1 >= self.max_missed:
                self._ended.append(
                    replace(track, box=self._anchors[track_id], missed=track.missed + 1)
                )
                del self._tracks[track_id]
                del self._anchors[track_id]
            else:
                self._tracks[track_id] = replace(track, box=box, missed=track.missed + 1)
        for index, detection in enumerate(detections):
            if index not in matched:
                self._start(detection.box, frame_index)
        return self.tracks

    def ended(self) -> list[Track]:
        """Tracks that ended since the previous call, each handed out exactly once.

        Returns:
            The ended tracks in the order they ended (by id within one frame), as they were on
            the frame they ended, each with the box of its last detection.
        """
        ended, self._ended = self._ended, []
        return ended

    def end_all(self) -> None:
        """End every live track now (the camera stopped); they come out of :meth:`ended`."""
        for track_id in sorted(self._tracks):
            self._ended.append(replace(self._tracks[track_id], box=self._anchors[track_id]))
        self._tracks.clear()
        self._anchors.clear()

    def _predict(self, track: Track, frame_index: int) -> FaceBox:
        """Where ``track`` should be on ``frame_index`` if it kept its velocity."""
        elapsed = frame_index - track.last_frame
        dx, dy = track.velocity
        return _shifted(self._anchors[track.id], dx * elapsed, dy * elapsed)

    def _associate(
        self, predicted: dict[int, FaceBox], detections: Sequence[Detection]
    ) -> dict[int, int]:
        """Greedy matching: track id -> detection index (see the module docstring)."""
        # (tier, cost, track id, detection index): tier 0 passes the IoU gate (cost -IoU),
        # tier 1 only the centroid fallback (cost = distance in track-box sizes).
        candidates: list[tuple[int, float, int, int]] = []
        for track_id, box in predicted.items():
            cx, cy = box.center
            for index, detection in enumerate(detections):
                other = detection.box
                iou = box.iou(other)
                if iou >= self.min_iou:
                    candidates.append((0, -iou, track_id, index))
                    continue
                if self.max_center_distance <= 0.0:
                    continue
                ratio = max(box.size, other.size) / min(box.size, other.size)
                if ratio > self.max_size_ratio:
                    continue
                ox, oy = other.center
                distance = math.hypot(ox - cx, oy - cy) / box.size
                # A track seen once has no velocity yet, so its prediction is only where it
                # was: it may have moved twice as far from it.
                limit = self.max_center_distance * (
                    2.0 if self._tracks[track_id].hits == 1 else 1.0
                )
                if distance <= limit:
                    candidates.append((1, distance, track_id, index))
        candidates.sort()
        pairs: dict[int, int] = {}
        taken: set[int] = set()
        for _, _, track_id, index in candidates:
            if track_id in pairs or index in taken:
                continue
            pairs[track_id] = index
            taken.add(index)
        return pairs

    def _matched(self, track: Track, box: FaceBox, frame_index: int) -> Track:
        """``track`` after detection ``box`` matched it on ``frame_index``."""
        anchor = self._anchors[track.id]
        elapsed = frame_index - track.last_frame
        (ax, ay), (bx, by) = anchor.center, box.center
        measured = ((bx - ax) / elapsed, (by - ay) / elapsed)
        if track.hits == 1:
            velocity = measured
        else:
            weight = self.velocity_smoothing
            velocity = (
                weight * measured[0] + (1.0 - weight) * track.velocity[0],
                weight * measured[1] + (1.0 - weight) * track.velocity[1],
            )
        self._anchors[track.id] = box
        return replace(
            track,
            box=box,
            last_frame=frame_index,
            hits=track.hits + 1,
            missed=0,
            velocity=velocity,
        )

    def _start(self, box: FaceBox, frame_index: int) -> None:
        """Start a track for an unmatched detection."""
        track = Track(
            id=self._next_id,
            box=box,
            first_frame=frame_index,
            last_frame=frame_index,
            hits=1,
            missed=0,
            velocity=(0.0, 0.0),
        )
        self._next_id += 1
        self._tracks[track.id] = track
        self._anchors[track.id] = box


class SightingDebouncer:
    """Turns a stream of "person seen on camera" into one sighting per visit.

    A visit lasts while the person keeps being seen on the camera with gaps shorter than
    ``cooldown`` seconds; the gap counts from the last time they were *seen*, not from the
    sighting. Different strangers all share ``UNKNOWN``, so pass a per-track key for them (for
    example ``f"unknown:{track.id}"``), or one stranger would hide the next.
    """

    def __init__(self, cooldown: float) -> None:
        """Create a debouncer that remembers nobody.

        Args:
            cooldown: seconds a person must go unseen on a camera before a new sighting; > 0.

        Raises:
            ValueError: ``cooldown`` is not a finite number > 0.
        """
        if isinstance(cooldown, bool) or not (math.isfinite(cooldown) and cooldown > 0.0):
            raise ValueError(f"cooldown must be a finite number of seconds > 0, got {cooldown!r}")
        self.cooldown = float(cooldown)
        self._last_seen: dict[tuple[str, str], float] = {}

    def should_emit(self, camera: str, person: str, now: float) -> bool:
        """Whether seeing ``person`` on ``camera`` at ``now`` starts a new visit; records it seen.

        Args:
            camera: camera id.
            person: person id (see the class docstring for unknown faces).
            now: monotonic time in seconds.

        Returns:
            True for the first sighting, or when the person was last seen on this camera at
            least ``cooldown`` seconds ago; False within a visit.
        """
        key = (camera, person)
        last = self._last_seen.get(key)
        self.seen(camera, person, now)
        return last is None or now - last >= self.cooldown

    def seen(self, camera: str, person: str, now: float) -> None:
        """Record that ``person`` is still on ``camera`` at ``now``, extending the visit.

        Args:
            camera: camera id.
            person: person id.
            now: monotonic time in seconds; an earlier time than already recorded is ignored.

        Raises:
            ValueError: ``now`` is not finite.
        """
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite number of seconds, got {now!r}")
        key = (camera, person)
        self._last_seen[key] = max(now, self._last_seen.get(key, now))

    def last_seen(self, camera: str, person: str) -> float | None:
        """When ``person`` was last seen on ``camera``, or ``None`` if never (or forgotten).

        Args:
            camera: camera id.
            person: person id.

        Returns:
            The time passed to the latest :meth:`seen` / :meth:`should_emit`, or ``None``.
        """
        return self._last_seen.get((camera, person))

    def prune(self, now: float) -> int:
        """Forget visits that ended (unseen for ``cooldown`` or more), to bound memory.

        Args:
            now: monotonic time in seconds.

        Returns:
            How many (camera, person) entries were forgotten.
        """
        stale = [key for key, last in self._last_seen.items() if now - last >= self.cooldown]
        for key in stale:
            del self._last_seen[key]
        return len(stale)
