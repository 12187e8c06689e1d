"""What ``/metrics`` and ``/readyz`` read from the running parts when they are asked.

``oneeye.metrics`` holds what code counts as it works (timings, sightings, notification
attempts); this module adds what is a state rather than an event (a camera's frames per second,
the gallery's size and version, the outbox's depth, the WebSocket clients connected, each
edge's last status), collected at scrape time from the server's or the edge's parts, and the
readiness checks (database, bus, photo store, cameras).

Labels name cameras, edges, watchlists, states and reasons only: never a person or an address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from oneeye.bus.base import Bus
from oneeye.bus.messages import REJECTIONS, EdgeStatusPayload
from oneeye.gallery import GalleryIndex
from oneeye.metrics import REGISTRY
from oneeye.services.context import Services
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.video.worker import CameraStatus, CameraWorker

logger = logging.getLogger(__name__)

__all__ = [
    "CAMERA_STATES",
    "Check",
    "EdgeCollector",
    "ServerCollector",
    "check_bus",
    "check_database",
    "check_photo_store",
    "check_workers",
    "exposition",
]

CAMERA_STATES = ("online", "reconnecting", "offline", "ended", "disabled")
Metric = GaugeMetricFamily | CounterMetricFamily


def exposition(collector: Collector) -> bytes:
    """The text Prometheus scrapes: this process's counters and timings
    (``oneeye.metrics.REGISTRY``), then what ``collector`` reads now."""
    live = CollectorRegistry(auto_describe=False)
    live.register(collector)
    return generate_latest(REGISTRY) + generate_latest(live)


def _camera_metrics(
    statuses: Iterable[tuple[CameraStatus, str, int | None]],
) -> list[Metric]:
    """Per camera: fps, frames, dropped frames, tracks in view, state (one series per state,
    1 for the camera's). ``statuses``: (status, edge or ``""``, tracks or ``None``)."""
    fps = GaugeMetricFamily(
        "oneeye_camera_fps", "Frames per second a camera processes now.", labels=["camera", "edge"]
    )
    frames = CounterMetricFamily(
        "oneeye_camera_frames",
        "Frames the camera's current worker processed (starts again at 0 when it restarts).",
        labels=["camera", "edge"],
    )
    dropped = CounterMetricFamily(
        "oneeye_camera_dropped_frames",
        "Frames the camera's worker skipped because it was late for them.",
        labels=["camera", "edge"],
    )
    tracks = GaugeMetricFamily(
        "oneeye_camera_tracks", "Faces tracked in view now.", labels=["camera", "edge"]
    )
    state = GaugeMetricFamily(
        "oneeye_camera_state",
        "1 for the camera's state now (online, reconnecting, offline, ended, disabled).",
        labels=["camera", "edge", "state"],
    )
    for status, edge, in_view in statuses:
        labels = [status.camera_id, edge]
        fps.add_metric(labels, status.fps)
        frames.add_metric(labels, status.frames)
        dropped.add_metric(labels, status.dropped)
        if in_view is not None:
            tracks.add_metric(labels, in_view)
        for name in CAMERA_STATES:
            state.add_metric([*labels, name], 1.0 if status.state == name else 0.0)
    return [fps, frames, dropped, tracks, state]


def _bus_metrics() -> list[Metric]:
    dropped = CounterMetricFamily(
        "oneeye_bus_dropped_payloads",
        "Bus payloads this process dropped, by topic kind and reason.",
        labels=["kind", "reason"],
    )
    for (kind, reason), count in sorted(REJECTIONS.counts().items()):
        dropped.add_metric([kind, reason], count)
    return [dropped]


def _gallery_metrics(entries_held: int, version_held: int | None, process: str) -> list[Metric]:
    entries = GaugeMetricFamily(
        "oneeye_gallery_entries", "Templates in this process's gallery.", labels=["process"]
    )
    entries.add_metric([process], entries_held)
    version = GaugeMetricFamily(
        "oneeye_gallery_version",
        "The database's gallery version in force in this process (-1 before the first copy).",
        labels=["process"],
    )
    version.add_metric([process], -1 if version_held is None else version_held)
    return [entries, version]


def _edge_metrics(edges: Mapping[str, EdgeStatusPayload], now: float) -> list[Metric]:
    """What each edge said last on its status topic."""
    online = GaugeMetricFamily(
        "oneeye_edge_online", "1 when the edge's last status said online.", labels=["edge"]
    )
    seen = GaugeMetricFamily(
        "oneeye_edge_status_age_seconds",
        "Seconds since the edge's last status message (an online edge sends one every 5 s).",
        labels=["edge"],
    )
    version = GaugeMetricFamily(
        "oneeye_edge_gallery_version", "The gallery version in force on the edge.", labels=["edge"]
    )
    entries = GaugeMetricFamily(
        "oneeye_edge_gallery_entries", "Templates in the edge's gallery.", labels=["edge"]
    )
    queued = GaugeMetricFamily(
        "oneeye_edge_queued_sightings",
        "Sightings waiting in the edge's disk queue for the broker.",
        labels=["edge"],
    )
    for edge, status in sorted(edges.items()):
        online.add_metric([edge], 1.0 if status.state == "online" else 0.0)
        if status.at is not None:
            seen.add_metric([edge], max(0.0, now - status.at.timestamp()))
        if status.gallery_version is not None:
            version.add_metric([edge], status.gallery_version)
        if status.gallery_entries is not None:
            entries.add_metric([edge], status.gallery_entries)
        if status.queued_sightings is not None:
            queued.add_metric([edge], status.queued_sightings)
    return [online, seen, version, entries, queued]


class ServerCollector(Collector):
    """The server's state at scrape time: cameras (its own and the edges'), gallery, edges,
    outbox, WebSocket clients, dropped bus payloads."""

    def __init__(
        self, services: Services, edges: Callable[[], Mapping[str, EdgeStatusPayload]]
    ) -> None:
        """Read ``services``; ``edges()`` gives each edge's newest status (``EdgeMonitor``)."""
        self.services = services
        self.edges = edges

    def collect(self) -> Iterable[Metric]:
        """Every metric, read now (from a worker thread: it reads the database)."""
        s = self.services
        cameras: list[tuple[CameraStatus, str, int | None]] = []
        for camera_id, status in s.cameras.statuses().items():
            worker = s.cameras.worker(camera_id)
            cameras.append((status, "", None if worker is None else worker.tracks))
        for info in s.registry.edge_cameras():
            reported = s.sightings.statuses.latest(info.camera_id) or {}
            cameras.append((_reported(info.camera_id, info.name, reported), info.edge_id, None))
        yield from _camera_metrics(cameras)
        yield from _bus_metrics()
        yield from _gallery_metrics(len(s.gallery), s.gallery_service.version, "server")
        yield from _edge_metrics(self.edges(), time.time())
        stats = s.notifier.stats()
        outbox = GaugeMetricFamily(
            "oneeye_outbox_notifications",
            "Notification rows by status (pending, sent, failed).",
            labels=["status"],
        )
        for name, count in (
            ("pending", stats.pending),
            ("sent", stats.sent),
            ("failed", stats.failed),
        ):
            outbox.add_metric([name], count)
        yield outbox
        yield GaugeMetricFamily(
            "oneeye_outbox_retrying",
            "Pending notifications that failed at least once.",
            value=stats.retrying,
        )
        yield GaugeMetricFamily(
            "oneeye_outbox_oldest_pending_age_seconds",
            "Seconds since the oldest pending notification was written (0: none pending).",
            value=s.notifier.oldest_pending_age(),
        )
        yield GaugeMetricFamily(
            "oneeye_websocket_clients",
            "Dashboard WebSocket clients now.",
            value=s.events.subscribers,
        )
        yield CounterMetricFamily(
            "oneeye_websocket_dropped_clients",
            "Dashboard clients disconnected because their send queue overflowed.",
            value=s.events.dropped_clients,
        )


def _reported(camera_id: str, name: str, reported: Mapping[str, Any]) -> CameraStatus:
    """An edge camera's last reported status as a ``CameraStatus`` (offline if it said
    nothing since this server started)."""
    state = str(reported.get("state") or "offline")
    return CameraStatus(
        camera_id,
        name,
        state if state in CAMERA_STATES else "offline",  # type: ignore[arg-type]
        fps=float(reported.get("fps") or 0.0),
        dropped=int(reported.get("dropped") or 0),
    )


class EdgeCollector(Collector):
    """An edge's state at scrape time: its cameras, its gallery, its disk queue."""

    def __init__(
        self,
        workers: Sequence[CameraWorker],
        gallery: GalleryIndex,
        queued: Callable[[], tuple[int, int]],
        sent: Callable[[], int],
        version: Callable[[], int | None] = lambda: None,
    ) -> None:
        """``queued()``: (sightings, snapshots) waiting on disk; ``sent()``: sightings the
        broker acknowledged since the edge started."""
        self.workers = workers
        self.gallery = gallery
        self.queued = queued
        self.sent = sent
        self.version = version
        """The server's gallery version in force here (``GallerySync.version``)."""

    def collect(self) -> Iterable[Metric]:
        """Every metric, read now."""
        yield from _camera_metrics((w.status(), "", w.tracks) for w in self.workers)
        yield from _bus_metrics()
        yield from _gallery_metrics(len(self.gallery), self.version(), "edge")
        sightings, snapshots = self.queued()
        queue = GaugeMetricFamily(
            "oneeye_edge_outbox_depth",
            "Sightings and snapshots waiting in this edge's disk queue.",
            labels=["kind"],
        )
        queue.add_metric(["sighting"], sightings)
        queue.add_metric(["snapshot"], snapshots)
        yield queue
        yield CounterMetricFamily(
            "oneeye_edge_sent_sightings",
            "Sightings the broker acknowledged since this edge started.",
            value=self.sent(),
        )


# readiness ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check: its name, whether it passed, and a short sentence (never a
    secret: a failing check's details go to the log)."""

    name: str
    ok: bool
    detail: str = ""


def _guarded(name: str, run: Callable[[], str]) -> Check:
    try:
        return Check(name, True, run())
    except Exception:
        logger.warning("readiness: the %s check failed", name, exc_info=True)
        return Check(name, False, f"the {name} check failed (see the server's log)")


def check_database(db: Database) -> Check:
    """The database answers a query."""

    def run() -> str:
        with db.session() as session:
            session.execute(text("SELECT 1"))
        return "answers"

    return _guarded("database", run)


def check_bus(bus: Bus) -> Check:
    """The bus is connected (always, in-process)."""
    return Check("bus", bus.connected, "connected" if bus.connected else "not connected")


def check_photo_store(photos: PhotoStore) -> Check:
    """A small probe can be written, read back and deleted."""

    def run() -> str:
        key = photos.add("health", b"ok", "txt")
        try:
            if photos.get(key) != b"ok":
                raise ValueError("the probe read back differs")
        finally:
            photos.delete(key)
        return "writes and reads"

    return _guarded("photos", run)


def check_workers(workers: Mapping[str, CameraWorker | None]) -> Check:
    """Every enabled camera (``workers``: camera id -> its worker, ``None`` when it has
    none) has a running worker. A camera whose source is down is not a reason to take the
    server out of a load balancer: its worker runs and retries."""
    missing = sorted(
        c
        for c, w in workers.items()
        if w is None or not (w.alive or w.status().state == "ended")  # a file played to its end
    )
    if missing:
        return Check("cameras", False, f"no running worker for {', '.join(missing[:20])}")
    return Check("cameras", True, f"{len(workers)} running")
