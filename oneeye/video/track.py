"""Per-camera face tracking, identity voting over a track, and sighting debouncing.

Pure logic on project types: no I/O, no images, no dlib. The pipeline feeds it detector output
frame by frame and decides from it when to encode, when an identity is settled and when a
sighting is new.

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

import numpy as np
import numpy.typing as npt

from oneeye.types import (
    UNKNOWN,
    Detection,
    Embedding,
    FaceBox,
    FaceQuality,
    Identification,
    check_embedding,
)

__all__ = ["FaceTracker", "SightingDebouncer", "Track", "TrackVote"]


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


@dataclass(frozen=True, slots=True)
class _Sample:
    label: str
    quality: float
    distance: float | None
    accepted: tuple[tuple[str | None, str, float | None], ...] = ()
    """(watchlist, person, distance) of each match the frame accepted; a person id given
    alone counts on the ``None`` watchlist."""


class TrackVote:
    """Decides who a track is from the identifications of several of its frames.

    Each watchlist votes on its own, as the gallery decides on its own (a face can be a
    customer and the subject of a missing-person case). On a watchlist, each sample votes for
    the person it accepted there, or for nobody, with its quality score as weight. A person
    is confirmed on the watchlist when their weight reaches ``min_votes`` and is at least
    ``dominance`` times the weight of every other person on it and of "nobody there". With one
    watchlist this is a vote over person ids and ``UNKNOWN``. :attr:`confirmed` is the primary
    answer: the confirmed person with the most weight, and it stays the same while its
    watchlist still confirms it (the answer does not flip between two watchlists that confirm
    the same face). After ``unknown_after`` samples with no person confirmed, the decision is
    ``UNKNOWN``, so a stranger yields a sighting too. The decision is recomputed from all
    samples, so a later run of good frames can still turn an unknown (or undecided) track into
    a confirmed person.

    **Fusion.** Samples added with their embedding are also fused: the quality-weighted mean
    of their unit embeddings, made unit length again (:attr:`fused_embedding`), once at least
    ``fuse_after`` of them are in. Frames of one face differ in pose, blur and noise, and
    their mean lies nearer the person's own centre than most single frames, so it is the
    track's strongest single piece of evidence. The caller identifies it against the gallery
    and hands the answer to :meth:`set_fused`, which replaces the previous fused answer. On
    each watchlist where the fused answer accepts a person, that person is confirmed (with
    the fused frames' total quality as weight), whatever the per-frame votes say there; where
    it accepts nobody, the per-frame votes decide as before. So fusion can name a face whose
    single frames each fall just short of the threshold, and overrule a few early frames that
    named someone else, but it never un-names a face its frames confirm. Before
    ``fuse_after`` frames, the per-frame votes alone decide, so a face is named as quickly as
    without fusion.
    """

    def __init__(
        self,
        *,
        min_votes: float = 2.0,
        dominance: float = 2.0,
        unknown_after: int = 5,
        fuse_after: int | None = None,
    ) -> None:
        """Create an empty vote for one track.

        Args:
            min_votes: quality-weighted votes a person needs (2.0 = two perfect frames); > 0.
            dominance: how many times the next label's weight the leader needs; >= 1.
            unknown_after: samples after which an unconfirmed track is decided ``UNKNOWN``;
                >= 1.
            fuse_after: samples with an embedding after which :attr:`fused_embedding` is
                given (see the class docstring); >= 1, or ``None`` for no fusion.

        Raises:
            ValueError: an argument is outside its range.
        """
        if not (math.isfinite(min_votes) and min_votes > 0.0):
            raise ValueError(f"min_votes must be a finite number > 0, got {min_votes!r}")
        if not (math.isfinite(dominance) and dominance >= 1.0):
            raise ValueError(f"dominance must be a finite number >= 1, got {dominance!r}")
        if (
            isinstance(unknown_after, bool)
            or not isinstance(unknown_after, int)
            or unknown_after < 1
        ):
            raise ValueError(f"unknown_after must be an int >= 1, got {unknown_after!r}")
        if fuse_after is not None and (
            isinstance(fuse_after, bool) or not isinstance(fuse_after, int) or fuse_after < 1
        ):
            raise ValueError(f"fuse_after must be an int >= 1 or None, got {fuse_after!r}")
        self.min_votes = min_votes
        self.dominance = dominance
        self.unknown_after = unknown_after
        self.fuse_after = fuse_after
        self._fused_sum: npt.NDArray[np.float64] | None = None
        self._fused_weight = 0.0
        self._fused_count = 0
        self._fused_qualities: list[float] = []
        self._fused: Identification | None = None
        self._samples: list[_Sample] = []
        self._weights: dict[str, float] = {}
        self._lanes: dict[str | None, dict[str, float]] = {}
        self._total = 0.0
        self._gave_up = False
        self._primary: tuple[str | None, str] | None = None

    def add(
        self,
        identity: Identification | str,
        quality: FaceQuality | float,
        distance: float | None = None,
        embedding: npt.ArrayLike | None = None,
    ) -> None:
        """Record one frame's identification.

        Args:
            identity: the gallery's answer, or a person id (``UNKNOWN`` for nobody).
            quality: the face's quality, or its score, in [0, 1]; the sample's weight.
            distance: embedding distance to the person, only with a person id; with an
                ``Identification`` it is taken from the match (or, when unknown, the nearest
                candidate).
            embedding: the frame's face embedding (128 finite numbers), to be fused with the
                track's other frames; ``None`` leaves the sample out of the fusion.

        Raises:
            ValueError: quality or distance out of range, an empty person id, or an embedding
                of the wrong shape or not finite.
            TypeError: ``distance`` given together with an ``Identification``.
        """
        accepted: tuple[tuple[str | None, str, float | None], ...]
        if isinstance(identity, Identification):
            if distance is not None:
                raise TypeError("distance comes from the Identification; pass it only with an id")
            label = identity.person
            nearest = identity.match or (identity.candidates[0] if identity.candidates else None)
            distance = nearest.distance if nearest is not None else None
            accepted = tuple((m.watchlist, m.person, m.distance) for m in identity.matches)
        else:
            if not isinstance(identity, str) or not identity:
                raise ValueError(f"identity must be a non-empty person id, got {identity!r}")
            label = identity
            accepted = () if label == UNKNOWN else ((None, label, distance),)
        score = quality.score if isinstance(quality, FaceQuality) else float(quality)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"quality must be in [0, 1], got {score!r}")
        if distance is not None and not (math.isfinite(distance) and distance >= 0.0):
            raise ValueError(f"distance must be a finite number >= 0, got {distance!r}")
        if embedding is not None:
            vector = check_embedding(embedding, "embedding").astype(np.float64)
            norm = float(np.linalg.norm(vector))
            if norm > 0.0:
                weighted = (score / norm) * vector
                self._fused_sum = (
                    weighted if self._fused_sum is None else self._fused_sum + weighted
                )
                self._fused_weight += score
                self._fused_count += 1
                self._fused_qualities.append(score)
        self._samples.append(_Sample(label, score, distance, accepted))
        self._weights[label] = self._weights.get(label, 0.0) + score
        self._total += score
        for watchlist, person, _ in accepted:
            lane = self._lanes.setdefault(watchlist, {})
            lane[person] = lane.get(person, 0.0) + score

    @property
    def fused_embedding(self) -> Embedding | None:
        """The quality-weighted mean of the samples' embeddings, unit length, once
        ``fuse_after`` samples came with one (and their weights add up to more than 0);
        ``None`` before, or without fusion."""
        if (
            self.fuse_after is None
            or self._fused_count < self.fuse_after
            or self._fused_sum is None
            or self._fused_weight <= 0.0
        ):
            return None
        norm = float(np.linalg.norm(self._fused_sum))
        if norm <= 0.0:
            return None
        return np.asarray(self._fused_sum / norm, dtype=np.float32)

    @property
    def fused_frames(self) -> int:
        """How many samples the fusion holds (those added with an embedding)."""
        return self._fused_count

    def set_fused(self, identity: Identification) -> None:
        """Record the gallery's answer for :attr:`fused_embedding`, replacing the previous.

        Args:
            identity: the gallery's identification of the fused embedding.

        Raises:
            ValueError: there is no fused embedding yet (too few samples, or no fusion).
        """
        if self.fused_embedding is None:
            raise ValueError("set_fused needs a fused embedding: too few samples or no fusion")
        self._fused = identity

    @property
    def fused(self) -> Identification | None:
        """The latest answer given to :meth:`set_fused`, or ``None``."""
        return self._fused

    def give_up(self) -> None:
        """Decide ``UNKNOWN`` now unless a person is confirmed: the caller has looked at the
        track for as long as it will wait. Later samples can still confirm a person."""
        self._gave_up = True

    @property
    def samples(self) -> int:
        """How many samples have been added."""
        return len(self._samples)

    @property
    def votes(self) -> dict[str, float]:
        """Quality-weighted votes per primary label (person ids and ``UNKNOWN``)."""
        return dict(self._weights)

    def _confirmed_on(self, lane: dict[str, float]) -> tuple[str, float] | None:
        people = sorted(((weight, person) for person, weight in lane.items()), reverse=True)
        if not people:
            return None
        weight, person = people[0]
        # A tiny tolerance so that e.g. 0.8 + 0.6 + 0.6 counts as reaching 2.0.
        if weight + 1e-9 < self.min_votes:
            return None
        nobody = self._total - sum(lane.values())
        rival = max([nobody, *(other for p, other in lane.items() if p != person)])
        if weight <= rival or weight + 1e-9 < self.dominance * rival:
            return None
        return person, weight

    def _found(self) -> dict[str | None, tuple[str, float]]:
        """Per watchlist that confirms someone: who, and the weight behind it (the fused
        answer's acceptances over the per-frame votes, see the class docstring)."""
        found = {w: c for w, lane in self._lanes.items() if (c := self._confirmed_on(lane))}
        if self._fused is not None:
            for match in self._fused.matches:
                found[match.watchlist] = (match.person, self._fused_weight)
        return found

    @property
    def decisions(self) -> dict[str | None, str]:
        """The person confirmed on each watchlist that confirms one (``None``: the persons
        given as bare ids)."""
        return {w: c[0] for w, c in self._found().items()}

    @property
    def confirmed_watchlist(self) -> str | None:
        """The watchlist of :attr:`confirmed` (``None`` when none, or for bare ids)."""
        return self._primary_lane()[0] if self.confirmed is not None else None

    def _primary_lane(self) -> tuple[str | None, str] | tuple[None, None]:
        found = self._found()
        if self._primary is not None:
            watchlist, person = self._primary
            if watchlist in found and found[watchlist][0] == person:
                return self._primary
        if not found:
            return (None, None)

        def rank(w: str | None) -> tuple[float, float, str]:
            distance = self.best_distance_on(w, found[w][0])
            return (-found[w][1], math.inf if distance is None else distance, w or "")

        watchlist = min(found, key=rank)
        self._primary = (watchlist, found[watchlist][0])
        return self._primary

    @property
    def confirmed(self) -> str | None:
        """The primary confirmed person's id, or ``None`` while no person has cleared the
        bar on any watchlist."""
        return self._primary_lane()[1]

    @property
    def decision(self) -> str | None:
        """The confirmed person, ``UNKNOWN`` after ``unknown_after`` samples without one (or
        once the caller gave up waiting), or ``None`` while undecided."""
        person = self.confirmed
        if person is not None:
            return person
        if self._gave_up or len(self._samples) >= self.unknown_after:
            return UNKNOWN
        return None

    def best_distance_on(self, watchlist: str | None, person: str) -> float | None:
        """The smallest distance among the samples that accepted ``person`` on ``watchlist``,
        and the fused answer when it accepted them there.

        Args:
            watchlist: the watchlist (``None`` for bare ids).
            person: the person id.

        Returns:
            The distance, or ``None`` when no such sample had one.
        """
        distances = [
            d
            for s in self._samples
            for w, p, d in s.accepted
            if w == watchlist and p == person and d is not None
        ]
        if self._fused is not None:
            distances += [
                m.distance
                for m in self._fused.matches
                if m.watchlist == watchlist and m.person == person
            ]
        return min(distances) if distances else None

    @property
    def best_distance(self) -> float | None:
        """The smallest distance among the samples for :attr:`decision` (for ``UNKNOWN``, the
        nearest non-accepted candidate), or ``None`` when undecided or no sample had one."""
        label = self.decision
        if label is not None and label != UNKNOWN:
            watchlist, person = self._primary_lane()
            if person is not None:
                return self.best_distance_on(watchlist, person)
        distances = [
            s.distance for s in self._samples if s.label == label and s.distance is not None
        ]
        return min(distances) if distances else None

    @property
    def best_quality(self) -> float | None:
        """The highest quality score among the samples for :attr:`decision`, or ``None`` when
        undecided."""
        label = self.decision
        if label is not None and label != UNKNOWN:
            watchlist, person = self._primary_lane()
            qualities = [s.quality for s in self._samples if (watchlist, person) in _lanes_of(s)]
            # Named by the fused answer alone: every fused frame spoke for it.
            qualities = qualities or self._fused_qualities
            return max(qualities) if qualities else None
        qualities = [s.quality for s in self._samples if s.label == label]
        return max(qualities) if qualities else None


def _lanes_of(sample: _Sample) -> set[tuple[str | None, str]]:
    return {(w, p) for w, p, _ in sample.accepted}


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
