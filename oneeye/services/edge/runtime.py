"""``oneeye edge``: recognition on the camera host, the DeepLens role.

An edge runs the same camera workers as the all-in-one server (``services.cameras``), over its
own copy of the gallery, and sends what they see to the central servers:

- **Gallery**: fetched whole from the server (``GET /api/v1/gallery`` with the edge's API key)
  at start, then kept in step by ``oneeye/v1/gallery/changes`` (``gallery.sync``; a gap in
  versions fetches it again). The copy is also kept in the data folder, so an edge that starts
  while the server is unreachable recognises people with the gallery it had. The copy is
  rewritten after every version that comes into force (on a thread of its own, the latest
  version only), so a person removed or erased on the server is gone from the edge's disk
  too, not only from its memory.
- **Cameras**: registered to this edge on the server at start (``PUT /api/v1/edge/cameras``
  with the edge's API key, which names the edge). The servers accept a camera's sightings,
  statuses and snapshots only from its edge, so nothing is sent before the registration went
  through (once it has, it is remembered in the data folder, so a restart while the server is
  away sends at once). A camera id that is already a server's or another edge's stops the
  edge with the server's answer.
- **Sightings**: queued on disk, published with QoS 1 under the edge's own prefix
  (``oneeye/v1/edges/{edge}/cameras/{camera}/sightings``: the broker's ACL lets the edge's
  broker user, named like the edge, write there only), deleted once the broker acknowledged
  them (``edge.outbox``); the central servers store them by id.
- **Snapshots**: uploaded to the server's photo store over HTTP (``PUT
  /api/v1/edge/snapshots/{key}``) under the key the sighting names. HTTP rather than MQTT:
  pictures stay off the broker (its queues and payload limit are for small messages), and the
  server checks and stores them in the one photo store (local or S3) its API serves from.
- **Status**: each camera's retained status (under the edge's prefix), and the edge's own on
  ``oneeye/v1/edges/{edge}/status`` (retained): ``online`` on every connect (the birth
  message), then every ``STATUS_EVERY`` seconds and whenever a gallery version comes into
  force (``gallery_version``, ``gallery_applied_at``: how propagation is measured), and
  ``offline`` as the broker's last will when the edge dies, or from the edge when it stops.
  The servers' ``EdgeMonitor`` marks a dead edge's cameras offline.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from oneeye.bus.base import EDGE_CAMERA_STATUS, EDGE_STATUS
from oneeye.bus.messages import MAX_CAMERAS_PER_EDGE, EdgeStatusPayload
from oneeye.bus.mqtt import Announcement, MqttBus, parse_broker_url, stored_client_id
from oneeye.config import MqttSettings
from oneeye.errors import OneEyeError
from oneeye.gallery import GalleryIndex
from oneeye.gallery.sync import GallerySnapshot, GallerySync
from oneeye.services.cameras import CameraConfig, CameraStatus, CameraWorker, check_camera_id
from oneeye.services.edge.monitor import EDGE_ID
from oneeye.services.edge.outbox import (
    EdgeBus,
    EdgeOutbox,
    OutboxSender,
    SnapshotRefusedError,
    SpoolPhotoStore,
)
from oneeye.store.files import private_dir, write_private
from oneeye.vision.engine import FaceEngine

logger = logging.getLogger(__name__)

STATUS_EVERY = 5.0
"""Seconds between two edge status messages when nothing changed."""
HTTP_TIMEOUT = 10.0
GALLERY_CACHE = "gallery.json"
CLIENT_ID_FILE = "mqtt-client-id"
"""The edge's MQTT client id (``oneeye-edge-<edge id>-<random>``), kept across restarts."""
OUTBOX_FILE = "outbox.sqlite3"
REGISTERED_FILE = "registered.json"
"""The cameras the server last confirmed as this edge's."""
REGISTER_RETRY_FIRST, REGISTER_RETRY_MAX = 1.0, 60.0
"""Backoff, in seconds, while the server cannot be reached to register the cameras."""


class RegistrationRefusedError(OneEyeError):
    """The server refused this edge's cameras (an id is another's, or the key names no edge
    or another edge): retrying cannot help."""


class EdgeError(OneEyeError):
    """An edge cannot start as configured."""


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """What ``oneeye edge`` runs with."""

    edge_id: str
    server_url: str
    api_key: str = field(repr=False)
    bus_url: str
    cameras: tuple[CameraConfig, ...]
    data_dir: Path
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    status_every: float = STATUS_EVERY

    def __post_init__(self) -> None:
        if not EDGE_ID.match(self.edge_id):
            raise EdgeError(
                f"an edge id is 1-64 lower-case letters, digits, - or _, got {self.edge_id!r}"
            )
        if not self.server_url.startswith(("http://", "https://")):
            raise EdgeError(f"the server URL starts with http:// or https://: {self.server_url!r}")
        if not self.bus_url.startswith(("mqtt://", "mqtts://")):
            raise EdgeError("an edge talks to the servers through a broker: --bus mqtt://host:port")
        if not self.cameras:
            raise EdgeError("an edge needs at least one camera: --camera ID=SOURCE")
        if len(self.cameras) > MAX_CAMERAS_PER_EDGE:
            raise EdgeError(f"an edge runs at most {MAX_CAMERAS_PER_EDGE} cameras")
        ids = [c.id for c in self.cameras]
        for camera in ids:
            check_camera_id(camera)
        if len(set(ids)) != len(ids):
            raise EdgeError(f"camera ids must differ: {', '.join(ids)}")
        user = self.mqtt.username or parse_broker_url(self.bus_url).username
        if user is not None and user != self.edge_id:
            raise EdgeError(
                f"an edge's broker user is its edge id ({self.edge_id}), got {user!r}: the "
                "broker lets each edge write under oneeye/v1/edges/<its user>/ only"
            )


def parse_camera(spec: str, **options: Any) -> CameraConfig:
    """A camera from ``ID=SOURCE`` (a webcam index, a file, an RTSP or HTTP URL)."""
    camera, sep, source = spec.partition("=")
    if not sep or not source.strip():
        raise EdgeError(f"a camera is ID=SOURCE, got {spec!r}")
    check_camera_id(camera)
    return CameraConfig(id=camera, name=camera, source=source.strip(), **options)


class ServerClient:
    """The edge's HTTP client of the central server (gallery, snapshots)."""

    def __init__(self, base_url: str, api_key: str, timeout: float = HTTP_TIMEOUT) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def gallery(self) -> dict[str, Any]:
        """The server's gallery export (raises on any failure)."""
        response = self._client.get("/api/v1/gallery")
        _raise_for(response, "fetch the gallery")
        body = response.json()
        if not isinstance(body, dict):
            raise OneEyeError("the gallery export is not a JSON object")
        return body

    def register_cameras(self, cameras: list[tuple[str, str]]) -> str:
        """Register ``(id, name)`` cameras as this key's edge's; returns the edge id the server
        bound them to. ``RegistrationRefusedError`` when the server refuses (409, 403, 422);
        any other exception when it may answer later."""
        response = self._client.put(
            "/api/v1/edge/cameras",
            json={"cameras": [{"id": camera, "name": name} for camera, name in cameras]},
        )
        if response.status_code in (401, 403, 409, 422):
            raise RegistrationRefusedError(
                f"the server refused this edge's cameras: HTTP {response.status_code}: "
                f"{_detail(response)}"
            )
        _raise_for(response, "register the cameras")
        edge = response.json().get("edge")
        if not isinstance(edge, str):
            raise OneEyeError("the server's answer to the camera registration names no edge")
        return edge

    def upload_snapshot(self, key: str, data: bytes) -> None:
        """Store one snapshot on the server (``SnapshotRefusedError`` if it never will)."""
        response = self._client.put(
            f"/api/v1/edge/snapshots/{key}",
            content=data,
            headers={"Content-Type": "image/jpeg"},
        )
        if response.status_code in (409, 413, 422):
            raise SnapshotRefusedError(_detail(response))
        _raise_for(response, f"upload snapshot {key}")

    def close(self) -> None:
        """Close the connections."""
        self._client.close()


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise OneEyeError(f"could not {what}: HTTP {response.status_code}: {_detail(response)}")


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
        self.status_topic = EDGE_STATUS.format(edge=settings.edge_id)
        # The edge's own id, not ONEEYE_MQTT__CLIENT_ID: every edge needs a session of its own;
        # with a random part kept in its data folder, so another edge cannot take it over.
        self.bus = MqttBus.from_settings(
            settings.bus_url,
            settings.mqtt.model_copy(update={"client_id": None}),
            client_id=stored_client_id(
                settings.data_dir / CLIENT_ID_FILE, f"oneeye-edge-{settings.edge_id}"
            ),
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
        logger.info(
            "edge %s: started with cameras %s",
            self.settings.edge_id,
            ", ".join(c.id for c in self.settings.cameras),
        )

    def stop(self) -> None:
        """Stop the cameras, deliver what is queued (briefly), say offline, disconnect."""
        self._stop.set()
        if not self._started:  # the server refused the cameras: nothing else ran
            self.server.close()
            self.outbox.close()
            return
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
            topic = EDGE_CAMERA_STATUS.format(edge=self.settings.edge_id, camera=config.id)
            self.bus.publish(topic, status.as_payload(), retain=True)
        self.bus.publish(
            self.status_topic,
            self._status().model_copy(update={"state": "offline", "error": "stopped"}),
            retain=True,
        )
        self.bus.flush(5.0)
        self.bus.stop()
        if self._status_thread is not None:
            self._status_thread.join(timeout=5)
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
