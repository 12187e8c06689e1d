"""One camera's loop: detect, track, judge quality, encode, vote, and turn tracks into
sightings.

Which frames are looked at for faces, and where (near tracked faces, where the frame changed,
the whole frame now and then, with HOG, the CNN or both), is ``oneeye.video.rounds``. Between
detections the tracker carries boxes along. A face is encoded when its track is new and then on
a few re-checks until its identity is decided, never on every frame. One track gives at most
one ``sighting`` (when its identity is decided), ``sighting_update`` events when a nearer match
or a better snapshot arrives, and a ``left`` event when it ends. A person seen again on the
same camera within ``cooldown`` seconds of last being seen is the same visit: no new sighting.

Each watchlist decides on its own (``TrackVote``), so a face can be a customer *and* a
missing person: the track's primary answer drives the events above, and once it is sighted,
every other watchlist that confirms someone on the track gives a ``companion`` sighting of its
own (its person, its watchlist, its ``left`` with the track's), so that watchlist's action
runs too (issue 12: the customer card *and* the case match).

A track's trusted frames are also fused (issue 13): once ``fuse_after`` of them are encoded,
the quality-weighted mean of their embeddings is identified against the gallery as well, and
on each watchlist where it is accepted it decides (``TrackVote``, "Fusion"). Fusion costs one
gallery query per encoding, no encoding.

A frame passes through the pipeline's ``preprocess`` step, if it has one, before anything
looks at it.

What a pipeline is told and what it says (``PipelineSettings``, ``SightingEvent``) are in
``oneeye.video.pipeline_io``; identity voting over a track is ``oneeye.video.vote``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from oneeye.gallery import GalleryIndex
from oneeye.metrics import ENCODING_SECONDS
from oneeye.types import (
    UNKNOWN,
    Detection,
    Embedding,
    Face,
    FaceBox,
    RGBImage,
)
from oneeye.video.annotate import Label
from oneeye.video.pipeline_io import EventKind, PipelineSettings, SightingEvent
from oneeye.video.rounds import DetectionRounds
from oneeye.video.track import FaceTracker, SightingDebouncer, Track
from oneeye.video.vote import TrackVote
from oneeye.vision import detectors
from oneeye.vision.detectors import FaceDetector
from oneeye.vision.engine import FaceEngine
from oneeye.vision.light import LightNormaliser

logger = logging.getLogger(__name__)

SNAPSHOT_MARGIN = 0.5
"""The snapshot shows this much of the frame around the face, as a fraction of its size."""

FramePreprocess = Callable[[RGBImage], RGBImage]
"""A step every frame goes through before the pipeline looks at it (lighting normalisation for
dark frames would go here): takes the RGB frame, returns one of the same shape."""


@dataclass(slots=True)
class _TrackState:
    vote: TrackVote
    first_t: float
    """When the track was first encoded (seconds into the source)."""
    last_encoded_round: int = -(10**9)
    encodings: int = 0
    emitted: bool = False
    same_visit: bool = False
    """The person was sighted on this camera within the cooldown: this track stays silent."""
    person: str | None = None
    watchlist: str | None = None
    distance: float | None = None
    quality: float = 0.0
    watchlists: dict[str, str] = field(default_factory=dict)
    gallery_version: int = -1
    """The gallery's version at the track's last encoding."""
    companions: dict[str, _Companion] = field(default_factory=dict)
    """Per other watchlist that confirmed someone on this track: who, and whether sighted."""


@dataclass(slots=True)
class _Companion:
    person: str
    distance: float | None
    emitted: bool


def visit_key(person: str, watchlist: str | None) -> str:
    """The debouncer's key: a person's visits count apart on each watchlist (the customer's
    cooldown does not hide the case filed since with the same face)."""
    return person if watchlist is None else f"{person}@{watchlist}"


def snapshot_of(image: RGBImage, box: FaceBox) -> RGBImage:
    """The part of the frame around a face (a copy)."""
    height, width = image.shape[:2]
    pad = round(SNAPSHOT_MARGIN * box.size)
    top, left = max(0, box.top - pad), max(0, box.left - pad)
    bottom, right = min(height, box.bottom + pad + 1), min(width, box.right + pad + 1)
    return np.ascontiguousarray(image[top:bottom, left:right].copy())


class CameraPipeline:
    """Turns one camera's frames into sighting events. Not thread-safe: one per camera loop.

    The gallery is shared and read live, so a person enrolled while the camera runs is
    recognised from the next encoding on.
    """

    def __init__(
        self,
        camera: str,
        engine: FaceEngine,
        gallery: GalleryIndex,
        settings: PipelineSettings | None = None,
        make_detector: Callable[[str], FaceDetector] | None = None,
        preprocess: FramePreprocess | None = None,
    ) -> None:
        """Set up the per-camera state.

        Args:
            camera: the camera's id, carried in every event.
            engine: the face engine (its calls are serialised; give each camera thread its own
                engine for parallelism).
            gallery: who to recognise.
            settings: pipeline settings; defaults if ``None``.
            make_detector: makes a detector by name (``"hog"``, ``"cnn"``): one per detector
                thread, and ``auto``'s CNN; new ones from ``engine.models`` if ``None``. A
                worker that plays a source again passes one that hands back its earlier
                detectors: making dlib's HOG detector costs 0.3-0.8 s of CPU.
            preprocess: a step every frame goes through first (see ``FramePreprocess``);
                none if ``None``.
        """
        self.camera = camera
        self.engine = engine
        self.gallery = gallery
        self.settings = settings or PipelineSettings()
        self._tracker = FaceTracker(max_missed=self.settings.max_missed)
        self._debouncer = SightingDebouncer(self.settings.cooldown)
        self._states: dict[int, _TrackState] = {}
        self._round = 0
        self._shape = (1, 1)
        make = make_detector or (lambda name: detectors.make_detector(name, engine.models))
        self._rounds = DetectionRounds(camera, self.settings, make)
        self._preprocess = preprocess
        self._light = LightNormaliser(self.settings.light)
        self._last_index: int | None = None
        self.frames = 0
        self.encodings = 0

    @property
    def detections(self) -> int:
        """Detection rounds so far."""
        return self._rounds.detections

    @property
    def scans(self) -> int:
        """Scans so far (whole or where the frame changed)."""
        return self._rounds.scans

    @property
    def whole_scans(self) -> int:
        """Whole scans so far."""
        return self._rounds.whole_scans

    @property
    def cnn_detections(self) -> int:
        """``auto``: detections the CNN added (lost faces and motion HOG did not explain)."""
        return self._rounds.cnn_detections

    def close(self) -> None:
        """Stop the detector threads, if any (the pipeline is not used again)."""
        self._rounds.close()

    def counts(self) -> dict[str, int]:
        """What the pipeline did so far: frames, encodings, and its detection rounds' counts
        (``DetectionRounds.counts``: rounds, scans, and with ``auto`` the CNN's work)."""
        return {"frames": self.frames, "encodings": self.encodings} | self._rounds.counts()

    @property
    def tracks(self) -> list[Track]:
        """The faces followed now (after the latest frame), by track id."""
        return self._tracker.tracks

    def process(self, index: int, t: float, image: RGBImage) -> list[SightingEvent]:
        """Handle one frame.

        Args:
            index: the frame's index in the source.
            t: seconds into the source.
            image: the frame, RGB.

        Returns:
            The events this frame caused, in order.
        """
        self.frames += 1
        started, started_cpu = time.perf_counter(), time.thread_time()
        if self._preprocess is not None:
            image = self._preprocess(image)
        self._shape = (int(image.shape[0]), int(image.shape[1]))
        grey = np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
        # A dark frame is brightened for the motion map too: a face moving in a dark room
        # changes the frame by fewer grey levels than the map counts as motion.
        seen = self._light.grey(grey)
        moved = self._rounds.observe(seen, t)
        elapsed = 1 if self._last_index is None else index - self._last_index
        self._last_index = index
        detections = self._rounds.detect(index, image, seen, moved, elapsed, self.tracks)
        if detections is not None:
            self._round += 1
        tracks = self._tracker.update(index, detections)
        events: list[SightingEvent] = []
        if detections is not None:
            found = [tr for tr in tracks if tr.last_frame == index]
            events.extend(self._identify(index, t, image, grey, found))
        for track in tracks:
            if track.last_frame != index:
                continue  # only a face actually found counts as seen, not a carried-on box
            state = self._states.get(track.id)
            if state is not None and (state.emitted or state.same_visit) and state.person:
                self._debouncer.seen(self.camera, visit_key(state.person, state.watchlist), t)
            for watchlist, companion in state.companions.items() if state is not None else ():
                self._debouncer.seen(self.camera, visit_key(companion.person, watchlist), t)
        for track in self._tracker.ended():
            events.extend(self._left(track, index, t))
        self._rounds.worked(started, time.perf_counter(), time.thread_time() - started_cpu)
        return events

    def labels(self, name_of: Callable[[str], str] | None = None) -> list[Label]:
        """What to draw for the faces tracked now: name and distance, ``unknown``, or ``?``
        while undecided.

        Args:
            name_of: turns a gallery person key into the name to draw (the server's keys are
                ids); the key itself when ``None``.
        """
        labels = []
        for track in self._tracker.tracks:
            state = self._states.get(track.id)
            decision = state.vote.decision if state is not None else None
            if state is not None and state.person is not None:
                distance = "" if state.distance is None else f" {state.distance:.2f}"
                name = state.person if name_of is None else name_of(state.person)
                labels.append(Label(track.box, f"{name}{distance}", state.watchlist))
            elif decision is not None:
                labels.append(Label(track.box, "unknown"))
            else:
                labels.append(Label(track.box, "?"))
        return labels

    def finish(self, index: int, t: float) -> list[SightingEvent]:
        """The source ended: every track leaves.

        Args:
            index: index of the last frame.
            t: its time.

        Returns:
            The ``left`` events.
        """
        self._tracker.end_all()
        events: list[SightingEvent] = []
        for track in self._tracker.ended():
            events.extend(self._left(track, index, t))
        return events

    def _due(self, track: Track) -> bool:
        state = self._states.get(track.id)
        if state is None:
            return True
        if state.same_visit:
            return False
        if state.vote.decision == UNKNOWN and state.gallery_version != self.gallery.version:
            return True  # the gallery changed since this face was judged nobody: look again
        rounds = self._round - state.last_encoded_round
        if state.vote.decision is None or (
            state.vote.decision == UNKNOWN and state.encodings < self.settings.max_samples
        ):
            # Undecided, or unknown on few samples (a face that may still turn to the camera):
            # look at every re-check until max_samples.
            return (
                state.encodings < self.settings.max_samples
                and rounds >= self.settings.recheck_every
            )
        return rounds >= self.settings.update_every

    def _identify(
        self,
        index: int,
        t: float,
        image: RGBImage,
        grey: npt.NDArray[np.uint8],
        tracks: list[Track],
    ) -> list[SightingEvent]:
        due = [track for track in tracks if self._due(track)]
        if not due:
            return []
        started = time.perf_counter()
        encoded = self._light.image(image, grey) if self.settings.light_encode else image
        faces = self.engine.encode(
            encoded, [Detection(box=track.box, confidence=1.0, detector="track") for track in due]
        )
        ENCODING_SECONDS.labels(self.camera).observe(time.perf_counter() - started)
        self.encodings += len(faces)
        version = self.gallery.version
        answers = self.gallery.identify_batch([face.embedding for face in faces], k=2)
        events: list[SightingEvent] = []
        for track, face, answer in zip(due, faces, answers, strict=True):
            state = self._states.get(track.id)
            if state is None:
                state = self._states[track.id] = _TrackState(self._new_vote(), first_t=t)
            elif state.vote.decision == UNKNOWN and state.gallery_version != version:
                # Someone was enrolled (an Amber Alert case filed) while this face was in view
                # as a stranger: its "nobody" votes predate the new templates, so count anew.
                state.vote = self._new_vote()
            state.gallery_version = version
            state.last_encoded_round = self._round
            state.encodings += 1
            if face.quality.score >= self.settings.min_quality:
                state.vote.add(answer, face.quality, embedding=face.embedding)
                if answer.match is not None:
                    state.watchlists[answer.match.person] = answer.match.watchlist
                fused = state.vote.fused_embedding
                if fused is not None:
                    state.vote.set_fused(self.gallery.identify(fused, k=2))
            waited = (
                state.encodings >= self.settings.max_samples
                or t - state.first_t >= self.settings.decide_within
            )
            if state.vote.decision is None and waited:
                # A face in view this long that never gave enough trustworthy frames is still
                # someone who was here: an unknown sighting (see decide_within).
                state.vote.give_up()
            elif face.quality.score < self.settings.min_quality:
                continue  # tracked, but not trusted for identity
            events.extend(self._decide(track, state, face, index, t, image))
            events.extend(self._companions(track, state, index, t, image))
        return events

    def _new_vote(self) -> TrackVote:
        return TrackVote(
            min_votes=self.settings.min_votes,
            unknown_after=self.settings.unknown_after,
            fuse_after=self.settings.fuse_after,
        )

    def _companions(
        self, track: Track, state: _TrackState, index: int, t: float, image: RGBImage
    ) -> list[SightingEvent]:
        """Sightings for the other watchlists that confirm someone on a track named by its
        primary answer (sighted, or silent as the same visit: the case filed since is news)."""
        if not (state.emitted or state.same_visit) or state.person is None:
            return []
        events: list[SightingEvent] = []
        for watchlist, person in state.vote.decisions.items():
            if watchlist is None or watchlist == state.watchlist or watchlist in state.companions:
                continue
            distance = state.vote.best_distance_on(watchlist, person)
            companion = _Companion(person, distance, emitted=False)
            state.companions[watchlist] = companion
            key = visit_key(person, watchlist)
            if not self._debouncer.should_emit(self.camera, key, t):
                self._debouncer.seen(self.camera, key, t)
                continue
            companion.emitted = True
            logger.info(
                "camera %s: track %d is also %s on %s (distance %s)",
                self.camera,
                track.id,
                person,
                watchlist,
                distance,
            )
            events.append(
                self._companion_event("sighting", track, state, watchlist, index, t, image)
            )
        return events

    def _companion_event(
        self,
        kind: EventKind,
        track: Track,
        state: _TrackState,
        watchlist: str,
        index: int,
        t: float,
        image: RGBImage | None,
    ) -> SightingEvent:
        companion = state.companions[watchlist]
        return SightingEvent(
            event=kind,
            camera=self.camera,
            track=track.id,
            person=companion.person,
            watchlist=watchlist,
            distance=companion.distance,
            frame=index,
            t=t,
            box=track.box.clipped(*self._shape).as_tuple(),
            quality=state.quality,
            snapshot=None if image is None else snapshot_of(image, track.box),
            companion=True,
        )

    def _decide(
        self, track: Track, state: _TrackState, face: Face, index: int, t: float, image: RGBImage
    ) -> list[SightingEvent]:
        decision = state.vote.decision
        if decision is None:
            return []
        person = None if decision == UNKNOWN else decision
        distance = state.vote.best_distance
        quality = face.quality.score
        if not state.emitted:
            state.emitted = True
            state.person, state.distance, state.quality = person, distance, quality
            state.watchlist = self._watchlist_of(state, decision) if person else None
            key = visit_key(person, state.watchlist) if person is not None else None
            if key is not None and not self._debouncer.should_emit(self.camera, key, t):
                logger.debug(
                    "camera %s: track %d is %s again within the cooldown",
                    self.camera,
                    track.id,
                    person,
                )
                state.emitted, state.same_visit = False, True
                self._debouncer.seen(self.camera, key, t)
                return []
            logger.info(
                "camera %s: track %d is %s (distance %s)",
                self.camera,
                track.id,
                person or "unknown",
                distance,
            )
            fused = state.vote.fused_embedding
            embedding = (fused if fused is not None else face.embedding) if person is None else None
            return [self._event("sighting", track, state, index, t, image, embedding)]
        if state.person is None and person is not None:
            # An unknown face became someone (enrolled meanwhile, or better frames): for that
            # person this is the sighting, unless they were just seen here.
            state.person, state.distance, state.quality = person, distance, quality
            state.watchlist = self._watchlist_of(state, decision)
            if not self._debouncer.should_emit(self.camera, visit_key(person, state.watchlist), t):
                state.same_visit = True
                return []
            return [self._event("sighting", track, state, index, t, image)]
        better_distance = (
            distance is not None and state.distance is not None and distance < state.distance - 1e-6
        )
        changed = person != state.person
        better_snapshot = quality > state.quality + 0.1
        if not (better_distance or changed or better_snapshot):
            return []
        state.person, state.distance = person, distance
        state.quality = max(state.quality, quality)
        state.watchlist = self._watchlist_of(state, decision) if person else None
        return [self._event("sighting_update", track, state, index, t, image)]

    @staticmethod
    def _watchlist_of(state: _TrackState, person: str) -> str | None:
        """The watchlist the track's primary answer ``person`` was confirmed on."""
        return state.vote.confirmed_watchlist or state.watchlists.get(person)

    def _event(
        self,
        kind: EventKind,
        track: Track,
        state: _TrackState,
        index: int,
        t: float,
        image: RGBImage | None,
        embedding: Embedding | None = None,
    ) -> SightingEvent:
        return SightingEvent(
            event=kind,
            camera=self.camera,
            track=track.id,
            person=state.person,
            watchlist=state.watchlist,
            distance=state.distance,
            frame=index,
            t=t,
            box=track.box.clipped(*self._shape).as_tuple(),
            quality=state.quality,
            snapshot=None if image is None else snapshot_of(image, track.box),
            embedding=embedding,
        )

    def _left(self, track: Track, index: int, t: float) -> list[SightingEvent]:
        state = self._states.pop(track.id, None)
        if state is None:
            return []
        primary = [self._event("left", track, state, index, t, None)] if state.emitted else []
        return primary + [
            self._companion_event("left", track, state, watchlist, index, t, None)
            for watchlist, companion in state.companions.items()
            if companion.emitted
        ]
