"""The camera manager inside ``serve``: the cameras in the database, one worker each.

Each enabled camera runs a ``CameraWorker`` (``video.worker``: source -> pipeline -> snapshots
and bus messages). Cameras are added, changed, enabled, disabled and removed at runtime; only
the camera concerned has its worker restarted. A new camera may not take an id an edge holds
(``CameraRegistry``).

Every sighting row gets its ``left_at``: the worker closes a track's unknown sighting before
the named one opens, and the manager closes a camera's rows still open when it stops or starts
the camera's worker (a worker that stopped cannot see its tracks leave; one that crashed, or a
server that was killed, never said they did).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from oneeye.bus.base import Bus, is_slug, status_topic
from oneeye.config import VideoSettings
from oneeye.errors import Conflict, NotFound, Unusable
from oneeye.gallery import GalleryIndex
from oneeye.services.edge.registry import CameraRegistry
from oneeye.services.sightings import close_open_sightings
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.store.repos import cameras as rows
from oneeye.store.repos import people
from oneeye.store.repos.cameras import StoredCamera
from oneeye.types import CAMERA_DETECTORS
from oneeye.video.pipeline_io import PipelineSettings
from oneeye.video.source import mask_credentials
from oneeye.video.worker import (
    VIDEO_ENDED,
    CameraConfig,
    CameraState,
    CameraStatus,
    CameraWorker,
)
from oneeye.vision.engine import FaceEngine

__all__ = [
    "CAMERA_ID_RULE",
    "DETECT_THREADS_MAX",
    "EDITABLE",
    "SCAN_EVERY_MAX",
    "CameraConfig",
    "CameraDisabledError",
    "CameraError",
    "CameraExistsError",
    "CameraManager",
    "CameraNotFoundError",
    "CameraState",
    "CameraStatus",
    "CameraWatch",
    "PersonNames",
    "WatchedCamera",
    "check_camera_id",
    "check_video_settings",
    "config_of",
    "iso",
]

logger = logging.getLogger(__name__)

EDITABLE = (
    "name",
    "location",
    "source",
    "enabled",
    "min_face_px",
    "detect_every",
    "pace",
    "loop",
    "scan_every",
    "detect_threads",
    "detector",
)
SCAN_EVERY_MAX = 1_000
"""A camera's ``scan_every`` is 1 to this many frames (as ``VideoSettings.scan_every``)."""
DETECT_THREADS_MAX = 16
"""A camera's ``detect_threads`` is 1 to this many (as ``VideoSettings.detect_threads``)."""
CAMERA_ID_RULE = "1-64 lower-case letters (a-z), digits (0-9), hyphens (-) or underscores (_)"
"""The camera id rule (``bus.base.SLUG_PATTERN``) in words, for forms and errors."""


class CameraError(Unusable):
    """A camera cannot be added or changed as asked."""


class CameraNotFoundError(CameraError, NotFound):
    """No camera has this id."""


class CameraExistsError(CameraError, Conflict):
    """A camera with this id exists already."""


class CameraDisabledError(CameraError, Conflict):
    """The camera is disabled: it cannot be (re)started until it is enabled."""


def config_of(row: StoredCamera) -> CameraConfig:
    """The worker's config of a stored camera (workers never touch the database)."""
    return CameraConfig(
        id=row.id,
        name=row.name,
        source=row.source,
        enabled=row.enabled,
        location=row.location,
        min_face_px=row.min_face_px,
        detect_every=row.detect_every,
        pace=row.pace,
        loop=row.loop,
        scan_every=row.scan_every,
        detect_threads=row.detect_threads,
        detector=row.detector,
    )


def iso(timestamp: float | None) -> str | None:
    """A ``time.time()`` value as ISO-8601 UTC."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat()


def check_camera_id(camera_id: str) -> str:
    """``camera_id`` if it is a slug (``a-z``, ``0-9``, ``-``, ``_``; 1-64: the bus's one rule,
    ``bus.base.SLUG_PATTERN``), else a ``CameraError``."""
    if not is_slug(camera_id):
        raise CameraError(f"a camera id is {CAMERA_ID_RULE}, got {camera_id!r}")
    return camera_id


def check_video_settings(
    scan_every: int | None, detect_threads: int | None, detector: str | None = None
) -> None:
    """A ``CameraError`` unless ``scan_every``, ``detect_threads`` and ``detector`` are
    ``None`` (the server's settings) or within their limits (``detector``: one of
    ``CAMERA_DETECTORS``)."""
    if detector is not None and detector not in CAMERA_DETECTORS:
        raise CameraError(
            f"a camera's detector is one of {', '.join(CAMERA_DETECTORS)}, got {detector!r}"
        )
    if scan_every is not None and not 1 <= scan_every <= SCAN_EVERY_MAX:
        raise CameraError(f"scan every is 1 to {SCAN_EVERY_MAX} frames, got {scan_every}")
    if detect_threads is not None and not 1 <= detect_threads <= DETECT_THREADS_MAX:
        raise CameraError(f"detector threads are 1 to {DETECT_THREADS_MAX}, got {detect_threads}")


@dataclass(frozen=True, slots=True)
class WatchedCamera:
    """One camera and its state now, as the case page and the dashboard name it."""

    id: str
    name: str
    state: str
    """``online`` (looking), ``reconnecting``, ``offline``, ``ended`` or ``disabled``."""
    edge: str | None = None
    """The edge that runs it; ``None`` for a server's own camera."""

    @property
    def running(self) -> bool:
        """Whether the camera is looking now (``online``; a camera reconnecting is not)."""
        return self.state == "online"


@dataclass(frozen=True, slots=True)
class CameraWatch:
    """Every camera, servers' and edges', by name: which are looking and which are not."""

    cameras: tuple[WatchedCamera, ...] = ()

    @property
    def running(self) -> list[WatchedCamera]:
        """The cameras looking now."""
        return [c for c in self.cameras if c.running]

    @property
    def stopped(self) -> list[WatchedCamera]:
        """The cameras not looking now (with their state: ended, disabled, offline...)."""
        return [c for c in self.cameras if not c.running]

    def as_json(self) -> list[dict[str, str | None]]:
        """The cameras as the pages' script keeps them (id, name, state, edge)."""
        return [
            {"id": c.id, "name": c.name, "state": c.state, "edge": c.edge} for c in self.cameras
        ]


class PersonNames:
    """Person id -> name for the live view: read from the database, cached for a minute."""

    def __init__(self, db: Database, ttl: float = 60.0) -> None:
        self.db = db
        self.ttl = ttl
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, person_id: str) -> str:
        """The person's name (their id's first 8 characters if they are gone)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(person_id)
        if hit is not None and now - hit[1] < self.ttl:
            return hit[0]
        try:
            with self.db.session() as session:
                name = people.names(session, [person_id]).get(person_id, person_id[:8])
        except Exception:  # the live view must not die because the database blinked
            logger.warning("cannot look up the name of person %s", person_id, exc_info=True)
            return hit[0] if hit is not None else person_id[:8]
        with self._lock:
            self._cache[person_id] = (name, now)
        return name


class CameraManager:
    """Runs one worker thread per enabled camera in the database."""

    def __init__(
        self,
        db: Database,
        engine: FaceEngine,
        gallery: GalleryIndex,
        bus: Bus,
        photos: PhotoStore,
        video: VideoSettings | None = None,
        registry: CameraRegistry | None = None,
    ) -> None:
        self.video = video or VideoSettings()
        self.registry = registry if registry is not None else CameraRegistry(db)
        """Whose every camera id is: a new camera may not take an edge's id, and the
        sightings consumer learns of a new camera before its worker publishes."""
        """How hard every camera works (scan rate, detector threads) unless the camera says
        otherwise."""
        self.db = db
        self.engine = engine
        self.gallery = gallery
        self.bus = bus
        self.photos = photos
        self._names = PersonNames(db)
        self._lock = threading.RLock()
        self._workers: dict[str, CameraWorker] = {}
        self._ended: set[str] = set()
        """Enabled cameras not started because their file had ended before."""
        self._running = False

    def worker_config(self, camera_id: str) -> CameraConfig | None:
        """What a running camera's worker was given: its stored config with this process's
        video settings; ``None`` when no worker runs for it."""
        with self._lock:
            worker = self._workers.get(camera_id)
            return None if worker is None else worker.config

    def video_defaults(self) -> tuple[int, int, str]:
        """``(scan_every, detect_threads, detector)`` of a camera that sets none itself."""
        return (
            self.video.scan_every or PipelineSettings().scan_every,
            self.video.detect_threads,
            self.video.detector,
        )

    # lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start a worker for every enabled camera, but a file camera that played to its end
        before (it stays ended until it is restarted: a server restart does not replay its
        file as new arrivals)."""
        with self.db.session() as session:
            ended = rows.ended_ids(session)
            resume = rows.resume_frames(session)
        with self._lock:
            self._running = True
            for config in self.configs():
                if config.enabled and config.id in ended:
                    self._ended.add(config.id)
                    status = CameraStatus(config.id, config.name, "ended", error=VIDEO_ENDED)
                    self.bus.publish(status_topic(config.id), status.as_payload(), retain=True)
                    logger.info("camera %s: its file ended before; not played again", config.id)
                    continue
                self._reload(config, resume_from=resume.get(config.id, 0))

    def stop(self) -> None:
        """Stop every worker."""
        with self._lock:
            self._running = False
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.request_stop()
        for worker in workers:
            worker.stop()
        self._remember_positions(workers)
        # The workers' last "left" messages may reach a sightings consumer that has stopped.
        stopped_at = datetime.now(UTC)
        for worker in workers:
            self._close_sightings(worker.config.id, stopped_at)

    # the cameras in the database ----------------------------------------------------------------

    def configs(self) -> list[CameraConfig]:
        """Every camera, by id."""
        with self.db.session() as session:
            return [config_of(row) for row in rows.every(session)]

    def config(self, camera_id: str) -> CameraConfig:
        """One camera; ``CameraNotFoundError`` if there is none."""
        with self.db.session() as session:
            row = rows.get(session, camera_id)
        if row is None:
            raise CameraNotFoundError(f"there is no camera {camera_id!r}")
        return config_of(row)

    def add(self, config: CameraConfig) -> CameraConfig:
        """Store a new camera and start its worker if it is enabled."""
        check_camera_id(config.id)
        check_video_settings(config.scan_every, config.detect_threads, config.detector)
        if not config.source.strip():
            raise CameraError("a camera needs a source: a webcam index, a file path or a URL")
        with self._lock:
            edge = self.registry.edge_of(config.id)
            if edge is not None:
                raise CameraExistsError(
                    f"a camera {config.id!r} exists already, on edge {edge}; choose another id"
                )
            with self.db.session() as session:
                if rows.get(session, config.id) is not None:
                    raise CameraExistsError(f"a camera {config.id!r} exists already")
                rows.add(
                    session,
                    StoredCamera(
                        id=config.id,
                        name=config.name or config.id,
                        location=config.location,
                        source=config.source.strip(),
                        enabled=config.enabled,
                        min_face_px=config.min_face_px,
                        detect_every=config.detect_every,
                        pace=config.pace,
                        loop=config.loop,
                        scan_every=config.scan_every,
                        detect_threads=config.detect_threads,
                        detector=config.detector,
                    ),
                )
            stored = self.config(config.id)
            logger.info("camera %s added (%s)", stored.id, mask_credentials(stored.source))
            self.registry.reload()
            self._reload(stored)
            return stored

    def update(self, camera_id: str, **changes: Any) -> CameraConfig:
        """Change a camera's fields (``EDITABLE``) and restart its worker only."""
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise CameraError(f"cannot change {', '.join(sorted(unknown))} of a camera")
        if "source" in changes and not str(changes["source"]).strip():
            raise CameraError("a camera needs a source: a webcam index, a file path or a URL")
        check_video_settings(
            changes.get("scan_every"), changes.get("detect_threads"), changes.get("detector")
        )
        with self._lock:
            with self.db.session() as session:
                cleaned = {
                    name: value.strip() if name == "source" else value
                    for name, value in changes.items()
                }
                if not rows.update(session, camera_id, cleaned):
                    raise CameraNotFoundError(f"there is no camera {camera_id!r}")
            stored = self.config(camera_id)
            logger.info("camera %s changed: %s", camera_id, ", ".join(sorted(changes)) or "nothing")
            self._reload(stored)
            return stored

    def enable(self, camera_id: str) -> CameraConfig:
        """Start watching a camera."""
        return self.update(camera_id, enabled=True)

    def disable(self, camera_id: str) -> CameraConfig:
        """Stop watching a camera (it stays configured)."""
        return self.update(camera_id, enabled=False)

    def restart(self, camera_id: str) -> CameraConfig:
        """Start an enabled camera's worker again: a file camera that ended plays its file
        again, a source that failed is opened again at once. ``CameraDisabledError`` for a
        disabled camera, ``CameraNotFoundError`` for none."""
        with self._lock:
            config = self.config(camera_id)
            if not config.enabled:
                raise CameraDisabledError(
                    f"camera {camera_id!r} is disabled: enable it to start it again"
                )
            self._reload(config)
        logger.info("camera %s restarted", camera_id)
        return config

    def remove(self, camera_id: str) -> None:
        """Stop a camera's worker and delete the camera (its sightings stay)."""
        with self._lock:
            with self.db.session() as session:
                name = rows.delete(session, camera_id)
                if name is None:
                    raise CameraNotFoundError(f"there is no camera {camera_id!r}")
            worker = self._workers.pop(camera_id, None)
        if worker is not None:
            worker.stop()
            self._close_sightings(camera_id, datetime.now(UTC))
        self.registry.reload()
        payload = CameraStatus(camera_id, name, "offline", error="removed").as_payload()
        self.bus.publish(
            status_topic(camera_id),
            payload.model_copy(update={"removed": True}),
            retain=True,
        )
        logger.info("camera %s removed", camera_id)

    # live state -----------------------------------------------------------------------------

    def status(self, camera_id: str) -> CameraStatus:
        """A camera's live status (``disabled`` when no worker runs for it)."""
        with self._lock:
            worker = self._workers.get(camera_id)
        if worker is not None:
            return worker.status()
        config = self.config(camera_id)
        with self._lock:
            ended = config.enabled and camera_id in self._ended
        if ended:
            return CameraStatus(camera_id, config.name, "ended", error=VIDEO_ENDED)
        return CameraStatus(camera_id, config.name, "disabled")

    def statuses(self) -> dict[str, CameraStatus]:
        """Every camera's live status, by id."""
        return {config.id: self.status(config.id) for config in self.configs()}

    def latest_jpeg(self, camera_id: str, quality: int = 80) -> tuple[int, bytes] | None:
        """The camera's newest annotated frame, as ``(frame number, JPEG)``; ``None`` if it
        has none (no worker, or no frame yet)."""
        with self._lock:
            worker = self._workers.get(camera_id)
        return None if worker is None else worker.latest_jpeg(quality)

    def _close_sightings(self, camera_id: str, at: datetime | None) -> None:
        try:
            close_open_sightings(self.db, camera_id, at)
        except Exception:  # a blink of the database must not stop a camera from (re)starting
            logger.exception("camera %s: could not close its open sightings", camera_id)

    def watch(self, reported: Callable[[str], Mapping[str, Any] | None]) -> CameraWatch:
        """Which cameras are looking now: the servers' own (their workers' status) and every
        edge's registered camera (the status it last ``reported`` over the bus, read by the
        sightings service; ``offline`` when it said nothing since this server started).

        Args:
            reported: camera id -> the newest status the camera published, or ``None``.
        """
        watched = [WatchedCamera(s.camera_id, s.name, s.state) for s in self.statuses().values()]
        for info in self.registry.edge_cameras():
            status = reported(info.camera_id) or {}
            state = str(status.get("state") or "offline")
            watched.append(WatchedCamera(info.camera_id, info.name, state, edge=info.edge_id))
        return CameraWatch(tuple(sorted(watched, key=lambda c: (c.name, c.id))))

    def worker(self, camera_id: str) -> CameraWorker | None:
        """The running worker of a camera, if any."""
        with self._lock:
            return self._workers.get(camera_id)

    def _remember_positions(self, workers: list[CameraWorker]) -> None:
        """Keep where each file camera stopped, so the next start resumes there rather than
        replaying the file's start as new arrivals."""
        for worker in workers:
            if not worker.resumable:
                continue
            try:
                with self.db.session() as session:
                    rows.set_resume(session, worker.config.id, worker.position)
            except Exception:
                logger.exception(
                    "camera %s: could not keep where its file stopped", worker.config.id
                )
                continue
            logger.info(
                "camera %s: stopped at frame %d of its file; resumes there",
                worker.config.id,
                worker.position,
            )

    def _mark_ended(self, camera_id: str) -> None:
        """A worker's file played to its end: remembered, so a restart does not replay it."""
        with self.db.session() as session:
            rows.mark_ended(session, camera_id, datetime.now(UTC))

    def _reload(self, config: CameraConfig, resume_from: int = 0) -> None:
        """Replace one camera's worker (call with the lock held); a file that had ended
        plays again, from its start unless ``resume_from`` says where it stopped."""
        self._ended.discard(config.id)
        with self.db.session() as session:
            rows.mark_ended(session, config.id, None)
            rows.set_resume(session, config.id, None)
        old = self._workers.pop(config.id, None)
        if old is not None:
            old.stop()
        if old is not None or self._running:
            # Rows still open now belong to no track that will ever leave: the old worker's
            # (closed now) or, with no old worker, a previous run's (closed when last seen).
            self._close_sightings(config.id, datetime.now(UTC) if old is not None else None)
        if not self._running:
            return
        if not config.enabled:
            status = CameraStatus(config.id, config.name, "disabled")
            self.bus.publish(status_topic(config.id), status.as_payload(), retain=True)
            return
        worker = CameraWorker(
            replace(
                config,
                scan_every=config.scan_every or self.video.scan_every,
                detect_threads=config.detect_threads or self.video.detect_threads,
                light=self.video.light,
                light_encode=self.video.light_encode,
                detector=config.detector or self.video.detector,
                cnn_ms_per_s=self.video.cnn_ms_per_s,
            ),
            self.engine,
            self.gallery,
            self.bus,
            self.photos,
            name_of=self._names,
            on_ended=self._mark_ended,
            resume_from=resume_from,
        )
        self._workers[config.id] = worker
        worker.start()
        logger.info("camera %s: worker started", config.id)
