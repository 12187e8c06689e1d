"""The bus interface: publish JSON payloads on topics, subscribe handlers to topic filters.

Topics are those of DESIGN.md ("Bus topics"); every payload is one of the models of
``oneeye.bus.messages`` and carries ``v``, its schema version. Backends (in-process, MQTT)
sit behind ``Bus``; nothing else imports a concrete backend. Handlers run on the backend's
delivery thread and must not block it long.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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


@dataclass(frozen=True, slots=True)
class Message:
    """One message as delivered: its topic and its decoded JSON object. Consumers read the
    payload into its model with ``messages.PayloadReader``, never by its keys."""

    topic: str
    payload: dict[str, Any]
    retained: bool = False


Handler = Callable[[Message], None]


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
