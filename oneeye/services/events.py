"""Dashboard events: numbered, stored, and pushed to every connected dashboard.

OWNER: helper C (stub contract; replace the bodies).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oneeye.store.db import Database


@dataclass(frozen=True, slots=True)
class HubEvent:
    """One dashboard event: ``id`` increases; ``audience`` is the lowest role that gets it."""

    id: int
    type: str
    at: datetime
    audience: str
    payload: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The WebSocket frame for this event."""
        return {
            "id": self.id,
            "type": self.type,
            "at": self.at.isoformat(),
            "data": self.payload,
        }


class Subscription:
    """One connected client's queue of events (bounded; a client that cannot keep up is
    disconnected and reconnects with ``since``)."""

    def __init__(self, role: str, queue: asyncio.Queue[HubEvent | None]) -> None:
        self.role = role
        self.queue = queue


class EventHub:
    """Stores each event, then hands it to every subscriber whose role may see it."""

    def __init__(self, db: Database, history: int = 10_000) -> None:
        self.db = db
        self.history = history

    def publish(self, type: str, payload: dict[str, Any], audience: str = "viewer") -> HubEvent:
        """Store the event, then push it to subscribers. Safe from any thread."""
        raise NotImplementedError

    def since(self, event_id: int, role: str, limit: int = 1000) -> list[HubEvent]:
        """Stored events after ``event_id`` that ``role`` may see, oldest first."""
        raise NotImplementedError

    def subscribe(self, role: str) -> Subscription:
        """A new subscription; call from the event loop that will read it."""
        raise NotImplementedError

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop pushing to ``subscription``."""
        raise NotImplementedError
