"""The per-camera loop: one thread per camera, from frames to bus messages.

A :class:`CameraWorker` reads its source (``FrameReader``; a file may be paced at its native
frame rate and looped, for demos), runs the camera's ``CameraPipeline`` on every frame, and for
every pipeline event saves the snapshot to the photo store and publishes the sighting on
``oneeye/v1/cameras/{id}/sightings`` (a ``SightingPayload``). It knows a ``Bus`` and a
``PhotoStore`` only by their interfaces and touches no database: the server's camera manager
(``services.cameras``) and an edge (``services.edge``) run the same worker over their own bus
and photo store.

A track's ``sighting`` gets a fresh sighting id, which its ``sighting_update`` and ``left``
events repeat (a ``companion`` sighting, the same face on another watchlist, has an id of its
own per watchlist); a track that turns from unknown into a person gets a new ``sighting`` (the
pipeline says so) and so a new id, and its unknown sighting is closed first (a ``left`` for it,
at the frame that named the person). ``seen_at`` is the wall-clock time the event's frame was
captured. An unknown face's sighting carries the embedding the pipeline judged it by (for
searching the past); the worker encodes nothing itself.

A paced file plays as a live camera would: a frame the pipeline reaches more than
``LATE_FRAMES`` frame times late is dropped (counted in the status), as the live reader keeps
only its newest ``LATE_FRAMES + 1``, so a busy machine makes a camera see fewer frames, not
older ones.

The worker keeps the newest frame and the pipeline's labels; the MJPEG view annotates and
encodes it on demand, once per frame however many viewers watch. The camera's status
(``online``, ``reconnecting``, ``offline``, ``ended``, ``disabled``) is published retained on
``oneeye/v1/cameras/{id}/status`` when it changes and every ``STATUS_EVERY`` seconds. A source
that cannot be opened makes the camera ``offline`` with the error, and the worker tries again
with backoff; nothing a camera does stops the process running it.

A file that played to its end (and does not loop) makes the camera ``ended`` ("the video
ended", 0 fps), not ``online``: nothing more will come from it; a looping file stays
``online``. :meth:`CameraWorker.status` says ``ended`` as soon as the source has no more frames
(the worker may still be finishing its last one); the ``ended`` status message goes out once
the worker has finished, after the file's last sighting events.

At about 620 lines this module is a little over the ~600-line guide: it is one concern, the
camera thread's read, run, publish and status loop, whose paths share the worker's state.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from oneeye.bus.base import Bus, sightings_topic, status_topic
from oneeye.bus.messages import CameraStatusPayload, SightingPayload, clip, describe_errors
from oneeye.gallery import GalleryIndex
from oneeye.metrics import SIGHTINGS
from oneeye.store.photos import PhotoStore, snapshot_kind
from oneeye.types import CameraDetector, RGBImage
from oneeye.video.annotate import Label, annotate, encode_jpeg
from oneeye.video.pipeline import CameraPipeline
from oneeye.video.pipeline_io import EventKind, PipelineSettings, SightingEvent
from oneeye.video.source import LATE_FRAMES, Frame, FrameReader, SourceStatus
from oneeye.vision.detectors import FaceDetector, make_detector
from oneeye.vision.engine import FaceEngine
from oneeye.vision.light import LightMode

logger = logging.getLogger(__name__)

CameraState = Literal["online", "reconnecting", "offline", "ended", "disabled"]
"""``ended``: a file camera (not looping) played its file to the end."""
VIDEO_ENDED = "the video ended"
STATUS_EVERY = 5.0
"""Seconds between two status messages of a camera whose state has not changed."""
READ_TIMEOUT = 0.5
"""The longest a worker waits for a frame before it looks at its stop signal again."""
RETRY_FIRST, RETRY_MAX = 2.0, 60.0
"""Backoff, in seconds, before opening a source that failed to open again."""
JOIN_TIMEOUT = 10.0
SNAPSHOT_QUALITY = 85


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """What a worker needs of a camera's row (a detached copy: workers never touch the ORM)."""

    id: str
    name: str
    source: str
    enabled: bool = True
    location: str = ""
    min_face_px: int = 40
    detect_every: int = 3
    pace: bool = True
    loop: bool = False
    scan_every: int | None = None
    """Scan for newcomers every Nth frame: the camera's own, else (``None``) the process's
    ``VideoSettings``, which the camera manager fills in; ``None`` there too: the default."""
    detect_threads: int | None = None
    """Detector threads: the camera's own, else (``None``) the process's ``VideoSettings``,
    which the camera manager fills in; ``None`` there too: 1."""
    light: LightMode = "off"
    """How a dark frame is brightened (the process's ``VideoSettings.light``, which the camera
    manager fills in; a per-camera setting would be a column of the camera's row)."""
    light_encode: bool = False
    """Brighten a dark frame before encoding its faces, too (``VideoSettings.light_encode``)."""
    detector: CameraDetector | None = None
    """``hog``, ``cnn`` or ``auto``: the camera's own, else (``None``) the process's
    ``VideoSettings``, which the camera manager fills in; ``None`` there too: ``hog``."""
    cnn_ms_per_s: float | None = None
    """``auto``'s CNN budget (ms per second of video): the process's ``VideoSettings``, which
    the camera manager fills in; ``None``: the pipeline's default."""

    def pipeline_settings(self) -> PipelineSettings:
        """The pipeline settings this camera asks for."""
        extra: dict[str, Any] = {} if self.scan_every is None else {"scan_every": self.scan_every}
        if self.detector is not None:
            extra["detector"] = self.detector
        if self.cnn_ms_per_s is not None:
            extra["cnn_ms_per_s"] = self.cnn_ms_per_s
        return PipelineSettings(
            detect_every=self.detect_every,
            min_face_px=self.min_face_px,
            detect_threads=self.detect_threads or 1,
            light=self.light,
            light_encode=self.light_encode,
            **extra,
        )


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A camera's health as the API, the dashboard and the bus show it."""

    camera_id: str
    name: str
    state: CameraState
    fps: float = 0.0
    last_frame_at: float | None = None
    """Wall-clock time (``time.time()``) of the newest frame."""
    error: str | None = None
    frames: int = 0
    """Frames processed by the current worker."""
    dropped: int = 0
    """Frames of a paced file skipped because the pipeline was late for them."""
    sightings: int = 0
    """Sightings published by the current worker."""

    def as_payload(self) -> CameraStatusPayload:
        """The status message on the bus."""
        return CameraStatusPayload(
            camera=self.camera_id,
            name=self.name[:200],
            state=self.state,
            fps=round(min(max(self.fps, 0.0), 1_000.0), 2),
            last_frame_at=(
                None
                if self.last_frame_at is None
                else datetime.fromtimestamp(self.last_frame_at, UTC)
            ),
            error=clip(self.error),
            frames=self.frames,
            dropped=self.dropped,
            sightings=self.sightings,
        )


def iso(timestamp: float | None) -> str | None:
    """A ``time.time()`` value as ISO-8601 UTC."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


def _state_of(source: SourceStatus, loop: bool) -> CameraState:
    if source.state == "ended":
        # A looping file is opened again at once: its end is not the camera's.
        return "online" if loop else "ended"
    if source.state == "online":
        return "online"
    if source.state in ("connecting", "reconnecting"):
        return "reconnecting"
    return "offline"


class ReusedDetectors:
    """Makes a camera's detectors once and hands the same ones to each new pipeline, by name.

    A looped file or a reconnecting stream gets a new ``CameraPipeline`` for each play; making
    dlib's HOG detector costs 0.3-0.8 s of CPU, which a 2-second looped clip paid on every loop
    (about 14% of a core for an idle edge camera). Only one pipeline of a worker runs at a
    time, so its detectors are never shared between threads.
    """

    def __init__(self, make: Callable[[str], FaceDetector]) -> None:
        """``make`` makes one new detector of the kind a name names (``"hog"``, ``"cnn"``)."""
        self._make = make
        self._made: dict[str, list[FaceDetector]] = {}
        self._given: dict[str, int] = {}

    def rewind(self) -> None:
        """The next calls hand out the detectors already made, in order, per name."""
        self._given.clear()

    @property
    def made(self) -> int:
        """How many detectors were made so far, of every kind."""
        return sum(len(made) for made in self._made.values())

    def __call__(self, name: str) -> FaceDetector:
        """The next detector called ``name``: an earlier one when there is one left, else a
        new one."""
        made = self._made.setdefault(name, [])
        given = self._given.get(name, 0)
        if given == len(made):
            made.append(self._make(name))
        self._given[name] = given + 1
        return made[given]


class CameraWorker:
    """One camera's thread: source -> pipeline -> snapshots and bus messages."""

    def __init__(
        self,
        config: CameraConfig,
        engine: FaceEngine,
        gallery: GalleryIndex,
        bus: Bus,
        photos: PhotoStore,
        *,
        status_every: float = STATUS_EVERY,
        retry_first: float = RETRY_FIRST,
        name_of: Callable[[str], str] | None = None,
        on_ended: Callable[[str], None] | None = None,
        resume_from: int = 0,
    ) -> None:
        """Set up the worker; :meth:`start` runs it. ``name_of`` turns a person id into the
        name drawn on the live view (ids are drawn when it is ``None``); ``on_ended`` is called
        with the camera id when a file (not looping) has played to its end; a file's first
        play starts at frame ``resume_from`` (where a previous run stopped)."""
        self.name_of = name_of
        self.on_ended = on_ended
        self._resume_from = resume_from
        self._position = resume_from
        self._file = False
        self.config = config
        self.engine = engine
        self.gallery = gallery
        self.bus = bus
        self.photos = photos
        self.status_every = status_every
        self.retry_first = retry_first
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._reader: FrameReader | None = None
        self._status = CameraStatus(config.id, config.name, "reconnecting")
        self._published: tuple[CameraStatus, float] | None = None
        self._latest: tuple[int, RGBImage, list[Label]] | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._frames = 0
        self._dropped = 0
        self._sightings = 0
        self._in_view = 0
        self._logged_state: CameraState | None = None
        self._was_online = False
        self._tracks: dict[tuple[int, str | None], str] = {}
        """Sighting id per (track, companion watchlist or ``None`` for the primary answer)."""
        self._detectors = ReusedDetectors(lambda name: make_detector(name, engine.models))

    # control --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker's thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"camera-{self.config.id}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to stop, without waiting for it."""
        self._stop.set()

    def stop(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Stop the thread (within a frame's processing time) and close the source."""
        self._stop.set()
        with self._lock:
            reader = self._reader
        if reader is not None:
            reader.close()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error(
                    "camera %s: worker did not stop within %.0f s", self.config.id, timeout
                )

    @property
    def alive(self) -> bool:
        """Whether the worker's thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def position(self) -> int:
        """For a file: the index of the next frame it has not handled yet (where a later run
        resumes)."""
        return self._position

    @property
    def resumable(self) -> bool:
        """Whether a later run should resume at :attr:`position`: a file that does not loop
        and has not played to its end (a live source, or a loop, has nothing to resume)."""
        with self._lock:
            is_file = self._file
        return is_file and not self.config.loop and self.status().state != "ended"

    @property
    def tracks(self) -> int:
        """Faces tracked in view now (0 between plays)."""
        return self._in_view

    def status(self) -> CameraStatus:
        """The camera's status now."""
        with self._lock:
            reader, status = self._reader, self._status
        if reader is not None:
            source = reader.status()
            state = _state_of(source, self.config.loop)
            error = None if state == "online" else source.last_error
            status = replace(
                status,
                state=state,
                fps=0.0 if state == "ended" else source.fps,
                last_frame_at=source.last_frame_at or status.last_frame_at,
                error=VIDEO_ENDED if state == "ended" else error,
            )
        return replace(
            status, frames=self._frames, dropped=self._dropped, sightings=self._sightings
        )

    def latest_jpeg(self, quality: int = 80) -> tuple[int, bytes] | None:
        """The newest frame with boxes and names, as ``(frame number, JPEG)``; ``None``
        before the first frame."""
        with self._lock:
            latest, cached = self._latest, self._jpeg
        if latest is None:
            return None
        seq, image, labels = latest
        if cached is not None and cached[0] == seq:
            return cached
        jpeg = (seq, encode_jpeg(annotate(image, labels), quality))
        with self._lock:
            self._jpeg = jpeg
        return jpeg

    # the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        camera = self.config.id
        delay = self.retry_first
        while not self._stop.is_set():
            try:
                reader = FrameReader(
                    self.config.source, pace=self.config.pace, start_frame=self._resume_from
                )
                self._resume_from = 0  # a loop, or a reopened file, starts at the beginning
            except Exception as exc:  # a bad source makes the camera offline, never crashes
                logger.warning("camera %s: cannot open its source: %s", camera, exc)
                self._set_status("offline", f"cannot open the source: {exc}")
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, RETRY_MAX)
                continue
            with self._lock:
                self._reader = reader
                self._file = not reader.is_live
            if self._stop.is_set():  # stopped while opening
                reader.close()
                break
            try:
                self._play(reader)
            except Exception as exc:
                logger.exception("camera %s: worker failed; restarting it", camera)
                self._set_status("offline", f"the camera worker failed: {exc}")
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, RETRY_MAX)
                continue
            finally:
                with self._lock:
                    self._reader = None
                reader.close()
            if self._stop.is_set():
                break
            delay = self.retry_first
            if not reader.is_live and self.config.loop:
                logger.info("camera %s: end of file, playing it again", camera)
                continue
            if reader.is_live:
                self._set_status("offline", "closed")
            else:
                self._set_status("ended", VIDEO_ENDED)
                if self.on_ended is not None:
                    try:
                        self.on_ended(camera)
                    except Exception:
                        logger.exception("camera %s: could not record that it ended", camera)
            break
        logger.info("camera %s: worker stopped", camera)

    def settings_for(self, reader: FrameReader) -> PipelineSettings:
        """The pipeline settings for a play of ``reader``: the camera's own, keeping real time
        (``PipelineSettings.real_time``) for a live source or a paced file."""
        return replace(
            self.config.pipeline_settings(), real_time=reader.is_live or self._paced(reader)
        )

    def _paced(self, reader: FrameReader) -> bool:
        """Whether ``reader`` is a file played at its own frame rate."""
        return self.config.pace and not reader.is_live and bool(reader.fps)

    def _play(self, reader: FrameReader) -> None:
        """Run the pipeline over the source until it ends or the worker stops."""
        self._detectors.rewind()  # the previous play's pipeline is closed: reuse its detectors
        # A paced file plays like a live camera: frames the pipeline is too late for are
        # dropped (as the live reader does), so a slow pipeline stays current, not behind.
        paced = self._paced(reader)
        pipeline = CameraPipeline(
            self.config.id,
            self.engine,
            self.gallery,
            self.settings_for(reader),
            make_detector=self._detectors,
        )
        self._tracks.clear()
        last: tuple[int, float, int] = (0, 0.0, 0)
        fps = reader.fps or 25.0
        clip_start: float | None = None
        # The pipeline counts processed frames, not source frames: "detect every Nth frame"
        # then holds however many frames a live source or a late pipeline skips.
        processed = 0
        try:
            self._publish_status(force=True)
            while not self._stop.is_set():
                frame = reader.read(timeout=READ_TIMEOUT)
                if frame is None:
                    if reader.status().state in ("ended", "offline"):
                        break
                    self._publish_status()
                    continue
                if paced:
                    due = frame.captured_at - frame.index / fps
                    clip_start = due if clip_start is None else min(clip_start, due)
                    if frame.captured_at - (clip_start + frame.index / fps) > LATE_FRAMES / fps:
                        self._dropped += 1
                        self._position = frame.index + 1
                        continue
                events = pipeline.process(processed, frame.t, frame.image)
                processed += 1
                self._frames += 1
                self._in_view = len(pipeline.tracks)
                with self._lock:
                    self._latest = (self._frames, frame.image, pipeline.labels(self.name_of))
                for event in events:
                    self._emit(event, frame, frame.index)
                self._position = frame.index + 1
                last = (processed - 1, frame.t, frame.index)
                self._publish_status()
            for event in pipeline.finish(last[0], last[1]):
                self._emit(event, None, last[2])
        finally:
            self._in_view = 0
            pipeline.close()  # its detector threads, if it has any

    def _emit(self, event: SightingEvent, frame: Frame | None, index: int) -> None:
        """Save the event's snapshot and publish it on the bus (``index``: the source's
        index of the event's frame)."""
        camera = self.config.id
        key = (event.track, event.watchlist if event.companion else None)
        superseded = (
            self._tracks.get(key) if event.event == "sighting" and not event.companion else None
        )
        if superseded is not None:
            # A second ``sighting`` of a track: it was an unknown face and is now a person. The
            # earlier sighting ends at this frame, or its row would stay open for ever.
            self._publish(
                lambda: self._payload(superseded, "left", event, frame, index, as_unknown=True)
            )
            logger.info(
                "camera %s: track %d is now person %s; its earlier sighting %s ended",
                camera,
                event.track,
                event.person or "unknown",
                superseded,
            )
        if event.event == "sighting" or key not in self._tracks:
            self._tracks[key] = uuid.uuid4().hex
        sighting_id = self._tracks[key]
        if event.event == "left":
            del self._tracks[key]
        snapshot_key = None
        if event.snapshot is not None:
            try:
                snapshot_key = self.photos.add(
                    snapshot_kind(camera), encode_jpeg(event.snapshot, SNAPSHOT_QUALITY)
                )
            except Exception:
                logger.exception(
                    "camera %s: could not save the snapshot of track %d", camera, event.track
                )
        # The pipeline hands over the embedding it judged an unknown face by: not encoded again.
        embedding = (
            [float(v) for v in event.embedding]
            if event.event == "sighting" and event.person is None and event.embedding is not None
            else None
        )
        self._publish(
            lambda: self._payload(
                sighting_id,
                event.event,
                event,
                frame,
                index,
                snapshot_key=snapshot_key,
                embedding=embedding,
            )
        )
        if event.event == "sighting":
            self._sightings += 1
            SIGHTINGS.labels(
                camera, event.watchlist or "", "unknown" if event.person is None else "known"
            ).inc()
        logger.info(
            "camera %s: %s of track %d (person %s, sighting %s)",
            camera,
            event.event,
            event.track,
            event.person or "unknown",
            sighting_id,
        )

    def _payload(
        self,
        sighting_id: str,
        kind: EventKind,
        event: SightingEvent,
        frame: Frame | None,
        index: int,
        *,
        as_unknown: bool = False,
        snapshot_key: str | None = None,
        embedding: list[float] | None = None,
    ) -> SightingPayload:
        """The sighting payload of ``event`` as a ``kind`` event of sighting ``sighting_id``
        (``as_unknown``: without the person, for the unknown sighting a track leaves)."""
        captured = frame.captured_at if frame is not None else time.time()
        return SightingPayload(
            id=sighting_id,
            event=kind,
            camera=self.config.id,
            track=event.track,
            person=None if as_unknown else event.person,
            watchlist=None if as_unknown else event.watchlist,
            distance=None if as_unknown else event.distance,
            quality=event.quality,
            frame=index,
            t=event.t,
            box=event.box,
            seen_at=datetime.fromtimestamp(captured, UTC),
            snapshot_key=snapshot_key,
            embedding=embedding,
        )

    def _publish(self, build: Callable[[], SightingPayload]) -> None:
        """Build a sighting payload and publish it. One the model refuses (a value out of its
        bounds) is logged and skipped: the camera goes on."""
        try:
            payload = build()
        except ValidationError as exc:
            logger.error(
                "camera %s: not publishing a sighting the bus would refuse: %s",
                self.config.id,
                describe_errors(exc),
            )
            return
        self.bus.publish(sightings_topic(self.config.id), payload)

    def _set_status(self, state: CameraState, error: str | None) -> None:
        with self._lock:
            self._status = replace(self._status, state=state, error=error, fps=0.0)
        self._publish_status(force=True)

    def _publish_status(self, force: bool = False) -> None:
        status = self.status()
        if status.state == "ended" and not force:
            # The worker says "ended" itself once the file's last events are out: on the bus,
            # "ended" comes after every sighting of the file.
            return
        now = time.monotonic()
        previous = self._published
        if (
            not force
            and previous is not None
            and (previous[0].state, previous[0].error) == (status.state, status.error)
            and now - previous[1] < self.status_every
        ):
            return
        self._published = (status, now)
        self._log_change(status)
        self.bus.publish(status_topic(self.config.id), status.as_payload(), retain=True)

    def _log_change(self, status: CameraStatus) -> None:
        """One activity line when the camera's state changes: started, stalled, reconnected,
        offline, ended (the source's errors are logged where they happen)."""
        previous, self._logged_state = self._logged_state, status.state
        if status.state == previous:
            return
        camera = self.config.id
        if status.state == "online":
            logger.info("camera %s: %s", camera, "reconnected" if self._was_online else "started")
            self._was_online = True
        elif status.state == "reconnecting" and self._was_online:
            logger.warning("camera %s: stalled, reconnecting: %s", camera, status.error or "")
        elif status.state == "offline":
            logger.warning("camera %s: offline: %s", camera, status.error or "")
        elif status.state == "ended":
            logger.info(
                "camera %s: ended: %d frames, %d dropped, %d sightings",
                camera,
                status.frames,
                status.dropped,
                status.sightings,
            )
