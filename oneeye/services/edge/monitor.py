"""The server's watch on edges: a dead edge's cameras turn offline on the dashboard.

MQTT gives a connection one last will, so an edge's will is its own retained status on
``oneeye/v1/edges/{edge}/status`` (``{"edge", "state": "offline", "cameras": [...]}``), not
one per camera. The monitor, on a server, hears that status and publishes each of the edge's
cameras as ``offline`` (retained, on ``oneeye/v1/cameras/{camera}/status``), where the
sightings service turns it into ``camera.status`` events and the cameras API reads it. An
edge that comes back publishes its cameras' real status within ``STATUS_EVERY`` seconds.
Several servers may each publish the same offline status; it is the same message.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime
from typing import Any

from oneeye.bus.base import STATUS, Bus, Message

logger = logging.getLogger(__name__)

EDGE_STATUS = "oneeye/v1/edges/{edge}/status"
"""Retained: an edge's own status (its birth message, its periodic status, its last will)."""
ALL_EDGE_STATUS = "oneeye/v1/edges/+/status"
EDGE_ID = re.compile(r"^[a-z0-9_-]{1,64}$")
_CAMERA_ID = re.compile(r"^[a-z0-9_-]{1,64}$")


class EdgeMonitor:
    """Turns an edge's offline status into offline statuses of its cameras."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._lock = threading.Lock()
        self._edges: dict[str, dict[str, Any]] = {}
        self._subscribed = False

    def start(self) -> None:
        """Listen to every edge's status."""
        if not self._subscribed:
            self.bus.subscribe(ALL_EDGE_STATUS, self._on_status)
            self._subscribed = True

    def edges(self) -> dict[str, dict[str, Any]]:
        """The newest status of every edge heard from, by edge id."""
        with self._lock:
            return {edge: dict(status) for edge, status in self._edges.items()}

    def _on_status(self, message: Message) -> None:
        payload = message.payload
        edge = message.topic.split("/")[3]
        cameras = payload.get("cameras")
        if (
            payload.get("edge") != edge
            or not EDGE_ID.match(edge)
            or not isinstance(cameras, list)
            or not all(isinstance(c, str) and _CAMERA_ID.match(c) for c in cameras)
        ):
            logger.warning("dropping a malformed edge status on %s", message.topic)
            return
        with self._lock:
            previous = self._edges.get(edge, {})
            self._edges[edge] = payload
        state = payload.get("state")
        if state != "offline":
            return
        if previous.get("state") == "offline" and message.retained:
            return  # a status the cameras were already marked offline for
        error = payload.get("error") or f"edge {edge} is offline"
        logger.warning("edge %s is offline (%s): its %d cameras too", edge, error, len(cameras))
        now = datetime.now(UTC).isoformat()
        for camera in cameras:
            self.bus.publish(
                STATUS.format(camera=camera),
                {
                    "camera": camera,
                    "name": camera,
                    "state": "offline",
                    "fps": 0.0,
                    "last_frame_at": None,
                    "error": f"edge {edge}: {error}",
                    "edge": edge,
                    "at": now,
                },
                retain=True,
            )
