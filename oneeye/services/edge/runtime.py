"""``oneeye edge``: recognition on the camera host, the DeepLens role; its settings and its
client of the central server. ``oneeye.edge_app`` builds and runs the parts.

An edge runs the same camera workers as the all-in-one server (``video.worker``), over its
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

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from oneeye.bus.base import is_slug
from oneeye.bus.factory import bus_name, bus_user
from oneeye.bus.messages import MAX_CAMERAS_PER_EDGE
from oneeye.config import MqttSettings
from oneeye.errors import OneEyeError
from oneeye.services.edge.outbox import SnapshotRefusedError
from oneeye.video.worker import CameraConfig

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
    ops_address: str | None = None
    """``host:port`` for ``/healthz``, ``/readyz`` and ``/metrics`` (no credentials: loopback
    or a management network); ``None``: not served."""

    def __post_init__(self) -> None:
        if not is_slug(self.edge_id):
            raise EdgeError(
                f"an edge id is 1-64 lower-case letters, digits, - or _, got {self.edge_id!r}"
            )
        if not self.server_url.startswith(("http://", "https://")):
            raise EdgeError(f"the server URL starts with http:// or https://: {self.server_url!r}")
        if bus_name(self.bus_url) not in ("mqtt", "mqtts"):
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
        user = self.mqtt.username or bus_user(self.bus_url)
        if user is not None and user != self.edge_id:
            raise EdgeError(
                f"an edge's broker user is its edge id ({self.edge_id}), got {user!r}: the "
                "broker lets each edge write under oneeye/v1/edges/<its user>/ only"
            )


def check_camera_id(camera_id: str) -> str:
    """``camera_id`` if it is a valid camera id (the bus's one rule, ``bus.base.SLUG_PATTERN``),
    else an ``EdgeError``."""
    if not is_slug(camera_id):
        raise EdgeError(
            f"a camera id is 1-64 lower-case letters, digits, - or _, got {camera_id!r}"
        )
    return camera_id


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
