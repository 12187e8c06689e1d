"""The cameras' statuses from the bus: the newest each camera published, and the dashboards'
``camera.status`` events.

A status is accepted only from its camera's sender, as a sighting is (``services.sightings``,
whose service owns a ``CameraStatuses`` and hands it the status messages): the topic must name
the payload's camera and the registry must give that camera to the topic's sender. The one
exception is a server camera's last status (``removed``), which comes after its row is gone:
only the servers may write their cameras' topics, and it only clears the camera's status.
A status becomes an event when the camera's state or error changes, and otherwise at most
every ``STATUS_EVERY`` seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from oneeye.bus.base import Message
from oneeye.bus.messages import CameraStatusPayload, PayloadReader
from oneeye.services.edge.registry import SERVER, CameraRegistry, RefusedSenders
from oneeye.services.events import EventHub

__all__ = ["STATUS_EVERY", "CameraStatuses"]

STATUS_EVERY = 5.0
"""Seconds between two ``camera.status`` events of a camera whose state has not changed."""


class CameraStatuses:
    """The newest status of every camera, from its status messages (``handle``)."""

    def __init__(
        self,
        events: EventHub,
        registry: CameraRegistry,
        refused: RefusedSenders,
        reader: PayloadReader,
    ) -> None:
        self.events = events
        self.registry = registry
        self.refused = refused
        """Shared with the sightings: one count of refused messages per server."""
        self.reader = reader
        self._lock = threading.Lock()
        self._statuses: dict[str, dict[str, Any]] = {}
        self._status_sent: dict[str, tuple[tuple[Any, ...], float]] = {}

    def latest(self, camera: str) -> dict[str, Any] | None:
        """The newest status a camera published (a copy), or ``None``."""
        with self._lock:
            status = self._statuses.get(camera)
            return None if status is None else dict(status)

    def handle(self, message: Message) -> None:
        """Keep a status message's status and announce it (see the module docstring); a
        malformed message, or one from a sender that does not own the camera, changes
        nothing."""
        status = self.reader.read(CameraStatusPayload, message)
        if status is None:
            return
        camera = status.camera
        source = self.refused.source_of(message.topic, camera)
        if source is None:
            return
        removed_by_server = (
            source.edge is None and status.removed and self.registry.owner(camera) in (None, SERVER)
        )
        if not removed_by_server and not self.registry.allows(source.edge, camera):
            self.refused.refuse_camera(source, self.registry.owner(camera))
            return
        data: dict[str, Any] = {
            "camera_id": camera,
            "name": status.name,
            "state": status.state,
            "fps": status.fps,
            "last_frame_at": (
                None if status.last_frame_at is None else status.last_frame_at.isoformat()
            ),
            "error": status.error,
            "dropped": status.dropped,
        }
        if status.removed:
            data["removed"] = True
        key = (data["state"], data["error"], data.get("removed", False))
        now = time.monotonic()
        with self._lock:
            if data.get("removed"):
                self._statuses.pop(camera, None)
            else:
                self._statuses[camera] = data
            previous = self._status_sent.get(camera)
            if previous is not None and previous[0] == key and now - previous[1] < STATUS_EVERY:
                return
            self._status_sent[camera] = (key, now)
        self.events.publish("camera.status", data, audience="viewer")
