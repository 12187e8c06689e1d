"""The server's watch on edges: a dead edge's cameras turn offline on the dashboard.

MQTT gives a connection one last will, so an edge's will is its own retained status on
``oneeye/v1/edges/{edge}/status`` (``{"edge", "state": "offline", "cameras": [...]}``), not
one per camera. The monitor, on a server, hears that status and publishes each of the edge's
cameras as ``offline`` (retained, on ``oneeye/v1/edges/{edge}/cameras/{camera}/status``),
where the camera statuses (``services.camera_status``) turn it into ``camera.status`` events
and the cameras API reads it. Only cameras registered to that edge are marked
(``CameraRegistry``): an edge's status cannot turn another edge's cameras offline by naming
them. An edge that comes back publishes its cameras' real status within ``STATUS_EVERY`` seconds.
Several servers may each publish the same offline status; it is the same message.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from oneeye.bus.base import (
    ALL_EDGE_STATUS,
    EDGE_STATUS,
    Bus,
    Message,
    edge_camera_status_topic,
    edge_of_status_topic,
)
from oneeye.bus.messages import CameraStatusPayload, EdgeStatusPayload, PayloadReader, clip
from oneeye.services.edge.registry import CameraRegistry

logger = logging.getLogger(__name__)

__all__ = ["ALL_EDGE_STATUS", "EDGE_STATUS", "EdgeMonitor"]


class EdgeMonitor:
    """Turns an edge's offline status into offline statuses of its cameras."""

    def __init__(self, bus: Bus, reader: PayloadReader | None, registry: CameraRegistry) -> None:
        self.bus = bus
        self.reader = reader or PayloadReader()
        self.registry = registry
        self._lock = threading.Lock()
        self._edges: dict[str, EdgeStatusPayload] = {}
        self._subscribed = False

    def start(self) -> None:
        """Listen to every edge's status."""
        if not self._subscribed:
            self.bus.subscribe(ALL_EDGE_STATUS, self._on_status)
            self._subscribed = True

    def edges(self) -> dict[str, EdgeStatusPayload]:
        """The newest status of every edge heard from, by edge id."""
        with self._lock:
            return dict(self._edges)

    @staticmethod
    def _log_online(previous: EdgeStatusPayload | None, status: EdgeStatusPayload) -> None:
        """Activity lines: an edge joined (online after nothing or offline), or resynced its
        gallery (its count of whole fetches went up)."""
        if previous is None or previous.state == "offline":
            logger.info(
                "edge %s joined: %d cameras, gallery version %s",
                status.edge,
                len(status.cameras),
                "none yet" if status.gallery_version is None else status.gallery_version,
            )
        elif (
            status.resyncs is not None
            and previous.resyncs is not None
            and status.resyncs > previous.resyncs
        ):
            logger.info(
                "edge %s resynced its gallery: version %s",
                status.edge,
                status.gallery_version,
            )

    def _on_status(self, message: Message) -> None:
        status = self.reader.read(EdgeStatusPayload, message)
        if status is None:
            return
        edge = status.edge
        if edge_of_status_topic(message.topic) != edge:
            self.reader.reject(message.topic, "wrong_topic", "the edge differs from the topic's")
            return
        with self._lock:
            previous = self._edges.get(edge)
            self._edges[edge] = status
        if status.state != "offline":
            self._log_online(previous, status)
            return
        if previous is not None and previous.state == "offline" and message.retained:
            return  # a status the cameras were already marked offline for
        error = status.error or f"edge {edge} is offline"
        registered = set(self.registry.cameras_of(edge))
        mine = [camera for camera in status.cameras if camera in registered]
        logger.warning("edge %s left (%s): its %d cameras are offline", edge, error, len(mine))
        now = datetime.now(UTC)
        for camera in mine:
            self.bus.publish(
                edge_camera_status_topic(edge, camera),
                CameraStatusPayload(
                    camera=camera,
                    name=camera,
                    state="offline",
                    error=clip(f"edge {edge}: {error}"),
                    edge=edge,
                    at=now,
                ),
                retain=True,
            )
