"""The bus interface: publish JSON payloads on topics, subscribe handlers to topic filters.

Topics are those of DESIGN.md ("Bus topics"); every payload is one of the models of
``oneeye.bus.messages`` and carries ``v``, its schema version. Backends (in-process, MQTT)
sit behind ``Bus``; nothing else imports a concrete backend. Handlers run on the backend's
delivery thread and must not block it long.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

SCHEMA_VERSION = 1
SIGHTINGS = "oneeye/v1/cameras/{camera}/sightings"
STATUS = "oneeye/v1/cameras/{camera}/status"
GALLERY_CHANGES = "oneeye/v1/gallery/changes"
GALLERY_VERSION = "oneeye/v1/gallery/version"
ALL_SIGHTINGS = "oneeye/v1/cameras/+/sightings"
ALL_STATUS = "oneeye/v1/cameras/+/status"
EDGE_STATUS = "oneeye/v1/edges/{edge}/status"
"""Retained: an edge's own status (its birth message, its periodic status, its last will)."""
ALL_EDGE_STATUS = "oneeye/v1/edges/+/status"
EDGE_PREFIX = "oneeye/v1/edges/{edge}/"
"""Everything an edge publishes is under its own prefix: the broker's ACL lets the broker user
named like the edge write there and nowhere else, so the topic says who sent a message."""
EDGE_SIGHTINGS = "oneeye/v1/edges/{edge}/cameras/{camera}/sightings"
EDGE_CAMERA_STATUS = "oneeye/v1/edges/{edge}/cameras/{camera}/status"
ALL_EDGE_SIGHTINGS = "oneeye/v1/edges/+/cameras/+/sightings"
ALL_EDGE_CAMERA_STATUS = "oneeye/v1/edges/+/cameras/+/status"

SLUG_PATTERN = r"^[a-z0-9_-]{1,64}$"
"""A camera or edge id, the one rule for both: 1-64 of ``a-z``, ``0-9``, ``-``, ``_``. It is
one level of a topic, so it holds no ``/``, ``+`` or ``#``."""
_SLUG = re.compile(SLUG_PATTERN)


def is_slug(text: str) -> bool:
    """Whether ``text`` is a valid camera or edge id (:data:`SLUG_PATTERN`)."""
    return _SLUG.match(text) is not None


def sightings_topic(camera: str) -> str:
    """Where a server's camera publishes its sightings."""
    return SIGHTINGS.format(camera=camera)


def status_topic(camera: str) -> str:
    """Where a server's camera publishes its status (retained)."""
    return STATUS.format(camera=camera)


def edge_status_topic(edge: str) -> str:
    """Where an edge publishes its own status (retained; its birth message and last will)."""
    return EDGE_STATUS.format(edge=edge)


def edge_camera_status_topic(edge: str, camera: str) -> str:
    """Where an edge's camera's status goes (retained), under the edge's prefix."""
    return EDGE_CAMERA_STATUS.format(edge=edge, camera=camera)


def edge_of_status_topic(topic: str) -> str | None:
    """The edge an ``oneeye/v1/edges/{edge}/status`` topic names, ``None`` for any other topic."""
    levels = topic.split("/")
    if len(levels) == 5 and levels[:3] == ["oneeye", "v1", "edges"] and levels[4] == "status":
        return levels[3] or None
    return None


@dataclass(frozen=True, slots=True)
class Message:
    """One message as delivered: its topic and its decoded JSON object. Consumers read the
    payload into its model with ``messages.PayloadReader``, never by its keys."""

    topic: str
    payload: dict[str, Any]
    retained: bool = False


Handler = Callable[[Message], None]


@dataclass(frozen=True, slots=True)
class Announcement:
    """A message the bus sends on the client's behalf: the last will (broker-sent when the
    client vanishes without a clean stop) or the birth message (sent on every connect). A bus
    without a broker (in-process) has no one to vanish from and ignores both."""

    topic: str
    payload: BaseModel
    retain: bool = True


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the MQTT filter ``pattern`` (``+`` one level, ``#`` the rest)."""
    parts = pattern.split("/")
    levels = topic.split("/")
    for i, part in enumerate(parts):
        if part == "#":
            return True
        if i >= len(levels):
            return False
        if part not in ("+", levels[i]):
            return False
    return len(parts) == len(levels)


@dataclass(frozen=True, slots=True)
class CameraTopic:
    """Who a camera topic says sent a message: ``edge`` (``None``: a server) and ``camera``."""

    edge: str | None
    camera: str
    kind: str
    """``sightings`` or ``status``."""

    @property
    def source(self) -> str:
        """The sender, as logs name it: ``edge <id>`` or ``the servers``."""
        return "the servers" if self.edge is None else f"edge {self.edge}"


def camera_topic(topic: str) -> CameraTopic | None:
    """The sender and camera of a camera topic: ``oneeye/v1/cameras/{camera}/{kind}`` (a
    server's camera) or ``oneeye/v1/edges/{edge}/cameras/{camera}/{kind}`` (an edge's);
    ``None`` for any other topic."""
    levels = topic.split("/")
    if len(levels) == 5 and levels[:3] == ["oneeye", "v1", "cameras"]:
        return CameraTopic(None, levels[3], levels[4])
    if (
        len(levels) == 7
        and levels[:3] == ["oneeye", "v1", "edges"]
        and levels[4] == "cameras"
        and levels[3]
    ):
        return CameraTopic(levels[3], levels[5], levels[6])
    return None


def edge_topic(edge: str, topic: str) -> str:
    """A server camera topic (``oneeye/v1/cameras/{camera}/...``) as the same topic under
    ``edge``'s prefix; any other topic as it is. The camera workers publish the former; an edge
    sends the latter, the only camera topics the broker lets it write."""
    parsed = camera_topic(topic)
    if parsed is None or parsed.edge is not None:
        return topic
    return f"{EDGE_PREFIX.format(edge=edge)}cameras/{parsed.camera}/{parsed.kind}"


def encode_payload(payload: BaseModel) -> bytes:
    """A payload model as the UTF-8 JSON that goes on the wire (its ``v`` included)."""
    return payload.model_dump_json().encode()


class Bus(ABC):
    """Publish and subscribe."""

    @abstractmethod
    def publish(self, topic: str, payload: BaseModel, *, retain: bool = False) -> None:
        """Send ``payload`` (a model of ``oneeye.bus.messages``) to every subscriber of
        ``topic``. A retained payload is also given to later subscribers."""

    @abstractmethod
    def subscribe(self, pattern: str, handler: Handler) -> None:
        """Call ``handler`` for every message whose topic matches ``pattern``."""

    @abstractmethod
    def start(self) -> None:
        """Begin delivering messages."""

    @abstractmethod
    def stop(self) -> None:
        """Deliver what is queued, then stop."""

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every message published so far has been handed to its handlers.

        Shutdown calls this after the producers stopped and before the consumers do, so no
        message is dropped between them. A bus whose broker keeps unacknowledged messages
        (MQTT with persistent sessions) holds nothing that could be lost, and returns at once.

        Args:
            timeout: seconds to wait at most.

        Returns:
            Whether everything was delivered in time.
        """
        del timeout
        return True

    def close_intake(self, timeout: float = 10.0) -> bool:
        """Stop taking messages in and hand those already taken to their handlers; publishing
        still works until :meth:`stop`.

        Shutdown calls this before it stops the consumers: a message a consumer could no
        longer act on is then never taken (a broker keeps it for the next session or another
        member of the group) instead of being acknowledged and dropped.

        Args:
            timeout: seconds to wait at most for the messages already taken.

        Returns:
            Whether every message taken in was handled in time.
        """
        return self.drain(timeout)

    @property
    def connected(self) -> bool:
        """Whether the bus can deliver now (a broker's link is up); always, in-process."""
        return True

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the bus delivers and every subscription is in
        force; whether it did (at once, in-process)."""
        del timeout
        return True

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every publish so far has left this process (a
        broker acknowledged it, or the in-process bus delivered it); whether it did."""
        return self.drain(timeout)

    def take_unrouted(self) -> Counter[str]:
        """Topics of the messages published since the last call that the broker acknowledged
        and dropped because no subscription matched, with their counts; empty for a bus that
        cannot tell (the in-process bus, an MQTT 3.1.1 broker). ``MqttBus`` says."""
        return Counter()
