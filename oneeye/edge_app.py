"""``oneeye edge``'s composition root: builds an edge's parts in order, stops them in reverse.

The edge counterpart of ``oneeye.app``: where the server runs the web application, the
database and the camera manager, an edge runs its cameras' workers (``video.worker``) over its
own copy of the gallery and sends what they see to the central servers (what each part does:
``services.edge``). The bus comes from ``oneeye.bus.make_bus`` like the server's; nothing here
names a backend.

Order: data folder -> disk queue -> server client -> bus (will and birth) -> gallery sync ->
sender -> camera workers; ``start`` registers the cameras, loads the cached gallery, then
starts the bus, the sync, the sender, the workers and the status thread; ``stop`` stops the
workers first and the disk queue last.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime

from oneeye.bus import Announcement, BusOptions, make_bus
from oneeye.bus.base import edge_camera_status_topic, edge_status_topic
from oneeye.bus.messages import EdgeStatusPayload
from oneeye.gallery import GalleryIndex
from oneeye.gallery.sync import GallerySnapshot, GallerySync
from oneeye.services.edge.ops import OpsServer
from oneeye.services.edge.outbox import EdgeBus, EdgeOutbox, OutboxSender, SpoolPhotoStore
from oneeye.services.edge.runtime import (
    CLIENT_ID_FILE,
    GALLERY_CACHE,
    HTTP_TIMEOUT,
    OUTBOX_FILE,
    REGISTER_RETRY_FIRST,
    REGISTER_RETRY_MAX,
    REGISTERED_FILE,
    EdgeSettings,
    RegistrationRefusedError,
    ServerClient,
)
from oneeye.services.metrics import Check, EdgeCollector, check_bus, check_workers, exposition
from oneeye.store.files import private_dir, write_private
from oneeye.video.worker import CameraStatus, CameraWorker
from oneeye.vision.engine import FaceEngine

logger = logging.getLogger(__name__)

__all__ = ["EdgeRuntime"]


class EdgeRuntime:
    """Everything ``oneeye edge`` runs: built in order, started in order, stopped in reverse.

    Order: data folder -> disk queue -> broker connection (will and birth) -> gallery copy
    (cached, then fetched) -> sender -> camera workers -> status thread.
    """

    def __init__(self, settings: EdgeSettings, engine: FaceEngine, gallery: GalleryIndex) -> None:
        self.settings = settings
        self.engine = engine
        self.gallery = gallery
        private_dir(settings.data_dir)
        self.outbox = EdgeOutbox(settings.data_dir / OUTBOX_FILE)
        self.server = ServerClient(settings.server_url, settings.api_key)
        cameras = [c.id for c in settings.cameras]
        self.status_topic = edge_status_topic(settings.edge_id)
        # The edge's own id, not ONEEYE_MQTT__CLIENT_ID: every edge needs a session of its own;
        # with a random part kept in its data folder, so another edge cannot take it over.
        self.bus = make_bus(
            settings.bus_url,
            BusOptions(
                mqtt=settings.mqtt.model_copy(update={"client_id": None}),
                identity_file=settings.data_dir / CLIENT_ID_FILE,
                identity_stem=f"oneeye-edge-{settings.edge_id}",
                will=Announcement(
                    self.status_topic,
                    EdgeStatusPayload(
                        edge=settings.edge_id,
                        cameras=cameras,
                        state="offline",
                        error="connection lost",
                    ),
                ),
                birth=Announcement(
                    self.status_topic,
                    EdgeStatusPayload(edge=settings.edge_id, cameras=cameras, state="online"),
                ),
            ),
        )
        self.sync = GallerySync(gallery, self.bus, self._fetch, on_applied=self._applied)
        self.registered = threading.Event()
        """Set once the server has these cameras as this edge's: sending waits for it."""
        self.sender = OutboxSender(
            self.outbox,
            self.bus,
            self.server.upload_snapshot,
            edge=settings.edge_id,
            ready=self.registered,
        )
        edge_bus = EdgeBus(self.bus, self.outbox, settings.edge_id)
        photos = SpoolPhotoStore(self.outbox)
        self.workers = [
            CameraWorker(config, engine, gallery, edge_bus, photos) for config in settings.cameras
        ]
        self._applied_at: tuple[int, float] | None = None
        self._cache_wanted = threading.Event()
        self._cache_written: int | None = None
        """The gallery version the cached file holds (for tests and status)."""
        self._cache_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._status_thread: threading.Thread | None = None
        self._register_thread: threading.Thread | None = None
        self._started = False
        self._status_lock = threading.Lock()
        self.ops: OpsServer | None = None
        """``/healthz``, ``/readyz`` and ``/metrics``, when ``ops_address`` is set (bound
        now, so an address in use stops the edge before it starts anything)."""
        if settings.ops_address is not None:
            collector = EdgeCollector(
                self.workers,
                gallery,
                self.outbox.counts,
                lambda: self.sender.sent,
                lambda: self.sync.version,
            )
            self.ops = OpsServer(
                settings.ops_address, lambda: exposition(collector), self.readiness
            )

    # lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Register the cameras (or start retrying), connect, load the cached gallery, start
        syncing, sending and the cameras.

        Raises:
            RegistrationRefusedError: the server refused the cameras as this edge's.
        """
        self._register_or_retry()
        self._started = True
        self._load_cache()
        self._cache_thread = threading.Thread(target=self._cache_loop, name="edge-cache")
        self._cache_thread.daemon = True
        self._cache_thread.start()
        self.bus.start()
        self.sync.start()
        self.sender.start()
        for worker in self.workers:
            worker.start()
        self._status_thread = threading.Thread(target=self._status_loop, name="edge-status")
        self._status_thread.daemon = True
        self._status_thread.start()
        if self.ops is not None:
            self.ops.start()
        logger.info(
            "edge %s: started with cameras %s",
            self.settings.edge_id,
            ", ".join(c.id for c in self.settings.cameras),
        )

    def stop(self) -> None:
        """Stop the cameras, deliver what is queued (briefly), say offline, disconnect."""
        self._stop.set()
        if self.ops is not None:
            self.ops.stop()
        if not self._started:  # the server refused the cameras: nothing else ran
            self.server.close()
            self.outbox.close()
            return
        # The reverse of start: the status thread (started last) first, so no periodic
        # "online" can follow the "offline" said below.
        if self._status_thread is not None:
            self._status_thread.join(timeout=5)
        for worker in self.workers:
            worker.request_stop()
        for worker in self.workers:
            worker.stop()
        self.sender.stop()
        self.sync.stop()
        if self._register_thread is not None:
            self._register_thread.join(timeout=HTTP_TIMEOUT + 1)
        for config in self.settings.cameras:
            status = CameraStatus(config.id, config.name, "offline", error="the edge stopped")
            topic = edge_camera_status_topic(self.settings.edge_id, config.id)
            self.bus.publish(topic, status.as_payload(), retain=True)
        self.bus.publish(
            self.status_topic,
            self._status().model_copy(update={"state": "offline", "error": "stopped"}),
            retain=True,
        )
        self.bus.flush(5.0)
        self.bus.stop()
        self._cache_wanted.set()
        if self._cache_thread is not None:
            self._cache_thread.join(timeout=10)
        self._write_cache()  # what the last changes left, before the process ends
        self.server.close()
        self.outbox.close()
        logger.info("edge %s: stopped", self.settings.edge_id)

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the broker is connected and a gallery copy is in force."""
        deadline = time.monotonic() + timeout
        return self.bus.wait_ready(timeout) and self.sync.wait_synced(
            max(0.0, deadline - time.monotonic())
        )

    def readiness(self) -> list[Check]:
        """The edge's readiness checks: broker connected, a gallery copy in force, cameras
        registered on the server, a running worker for every camera."""
        version = self.sync.version
        return [
            check_bus(self.bus),
            Check(
                "gallery",
                version is not None,
                "no gallery copy yet" if version is None else f"version {version}",
            ),
            Check(
                "registration",
                self.registered.is_set(),
                "registered" if self.registered.is_set() else "not registered on the server yet",
            ),
            check_workers({w.config.id: w for w in self.workers}),
        ]

    # camera registration ------------------------------------------------------------------------

    def _register_or_retry(self) -> None:
        """Register the cameras now; if the server cannot be reached, keep trying in the
        background (sending waits, unless the server confirmed these cameras before)."""
        cameras = [(c.id, c.name) for c in self.settings.cameras]
        marker = self.settings.data_dir / REGISTERED_FILE
        try:
            known = json.loads(marker.read_text()) if marker.is_file() else None
        except (OSError, ValueError):
            known = None
        if known == {"edge": self.settings.edge_id, "cameras": sorted(c for c, _ in cameras)}:
            self.registered.set()
        try:
            self._register(cameras)
        except RegistrationRefusedError:
            raise
        except Exception as exc:
            logger.warning(
                "edge %s: cannot register its cameras yet (%s); retrying in the background%s",
                self.settings.edge_id,
                exc,
                "" if self.registered.is_set() else "; sightings wait on disk until then",
            )
            self._register_thread = threading.Thread(
                target=self._register_loop, args=(cameras,), name="edge-register", daemon=True
            )
            self._register_thread.start()

    def _register(self, cameras: list[tuple[str, str]]) -> None:
        edge = self.server.register_cameras(cameras)
        if edge != self.settings.edge_id:
            raise RegistrationRefusedError(
                f"this API key belongs to edge {edge}, not {self.settings.edge_id}: "
                f"run with --edge-id {edge} or use this edge's own key"
            )
        registered = {"edge": edge, "cameras": sorted(c for c, _ in cameras)}
        write_private(self.settings.data_dir / REGISTERED_FILE, json.dumps(registered).encode())
        self.registered.set()
        logger.info("edge %s: cameras registered on the server", edge)

    def _register_loop(self, cameras: list[tuple[str, str]]) -> None:
        delay = REGISTER_RETRY_FIRST
        while not self._stop.wait(delay):
            try:
                self._register(cameras)
            except RegistrationRefusedError:
                logger.exception("edge %s: the server refused its cameras", self.settings.edge_id)
                return
            except Exception as exc:
                logger.debug("edge: registering the cameras failed again: %s", exc)
                delay = min(delay * 2, REGISTER_RETRY_MAX)
            else:
                return

    # gallery ----------------------------------------------------------------------------------

    def _fetch(self) -> GallerySnapshot:
        body = self.server.gallery()
        snapshot = GallerySnapshot.from_json(body)
        cache = self.settings.data_dir / GALLERY_CACHE
        # The cache holds every enrolled face's embedding: owner-only, written atomically.
        write_private(cache, json.dumps(body, separators=(",", ":")).encode())
        return snapshot

    def _load_cache(self) -> None:
        cache = self.settings.data_dir / GALLERY_CACHE
        if not cache.is_file():
            return
        try:
            snapshot = GallerySnapshot.from_json(json.loads(cache.read_text()))
        except (OSError, ValueError) as exc:
            logger.warning("edge: ignoring the cached gallery %s: %s", cache, exc)
            return
        self.sync.apply_snapshot(snapshot)
        logger.info("edge: cached gallery loaded (version %d)", snapshot.version)

    @property
    def cached_version(self) -> int | None:
        """The gallery version the cached ``gallery.json`` holds now."""
        with self._status_lock:
            return self._cache_written

    def _write_cache(self) -> None:
        """Write the gallery in force to ``gallery.json`` (atomically, owner-only)."""
        snapshot = self.sync.snapshot()
        if snapshot is None:
            return
        with self._status_lock:
            if self._cache_written == snapshot.version:
                return
        cache = self.settings.data_dir / GALLERY_CACHE
        write_private(cache, json.dumps(snapshot.to_json(), separators=(",", ":")).encode())
        with self._status_lock:
            self._cache_written = snapshot.version
        logger.debug("edge: cached gallery rewritten (version %d)", snapshot.version)

    def _cache_loop(self) -> None:
        # Off the bus thread: a large gallery takes a while to write, and a burst of changes
        # is written once, at the newest version.
        while not self._stop.is_set():
            self._cache_wanted.wait()
            self._cache_wanted.clear()
            if self._stop.is_set():
                return
            try:
                self._write_cache()
            except Exception:
                logger.exception("edge: could not rewrite the cached gallery")

    def _applied(self, version: int, how: str) -> None:
        self._cache_wanted.set()
        with self._status_lock:
            self._applied_at = (version, time.time())
        logger.info(
            "edge %s: gallery version %d in force (%s)", self.settings.edge_id, version, how
        )
        if self.bus.connected:
            self._publish_status()

    # status -----------------------------------------------------------------------------------

    def _status(self) -> EdgeStatusPayload:
        sightings, snapshots = self.outbox.counts()
        with self._status_lock:
            applied = self._applied_at
        return EdgeStatusPayload(
            edge=self.settings.edge_id,
            cameras=[c.id for c in self.settings.cameras],
            state="online",
            gallery_version=applied[0] if applied else None,
            gallery_applied_at=applied[1] if applied else None,
            gallery_entries=len(self.gallery),
            resyncs=self.sync.resyncs,
            queued_sightings=sightings,
            queued_snapshots=snapshots,
            sent_sightings=self.sender.sent,
            at=datetime.now(UTC),
        )

    def _publish_status(self) -> None:
        try:
            self.bus.publish(self.status_topic, self._status(), retain=True)
        except Exception:
            logger.exception("edge %s: could not publish its status", self.settings.edge_id)

    def _status_loop(self) -> None:
        while not self._stop.wait(self.settings.status_every):
            if self.bus.connected:
                self._publish_status()
