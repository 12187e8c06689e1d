"""Dashboard events: numbered, stored, and pushed to every connected dashboard.

An event is written to ``dashboard_events`` first (its id is the number a client that
reconnects sends back as ``since``), then offered to every subscriber whose role may see it.
Subscribers are asyncio queues read by the WebSocket handlers; ``publish`` runs on any thread
(the bus thread, a camera worker) and hands each event over with ``call_soon_threadsafe``, so
the push never waits on a slow client. A client whose bounded queue is full is cut off (its
queue ends with ``None``); it reconnects with ``since`` and catches up from the database.

Audit of account details: every time a ``customer.arrived`` event (balance, address) is sent
to a user, one ``account.view`` row is written for that user (actor ``user:<name>``, their role
and address, subject the account id, the event id in the detail). ``delivered`` commits the row
before it returns and the WebSocket calls it (on a worker thread) before the frame goes out, so
a process killed at any moment has no account details sent without their row. Such events are
rare (one per customer arrival per teller), so a commit each costs little. One row per
recipient rather than one per event keeps the audit log searchable by user.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from oneeye.services.auth import ROLE_RANK, ROLES, role_allows
from oneeye.store.db import Database
from oneeye.store.repos import audit, events
from oneeye.store.repos.events import StoredEvent

logger = logging.getLogger(__name__)

QUEUE_SIZE = 256
"""Events a client may fall behind by before it is disconnected (and catches up by ``since``)."""

PRUNE_EVERY = 100
"""Publishes between two prunings of old events."""

ACCOUNT_EVENT = "customer.arrived"
"""The event type that carries account details."""

ARRIVAL_EVENTS = frozenset(
    {"sighting", ACCOUNT_EVENT, "sighting_update", "sighting.update", "sighting.revised"}
)
"""The event types a dashboard's arrival cards are made of (one card per sighting id);
``sighting.revised`` is ``services.sightings.REVISED_EVENT`` (that module builds on this one)."""


@dataclass(frozen=True, slots=True)
class HubEvent:
    """One dashboard event: ``id`` increases; ``audience`` is the lowest role that gets it."""

    id: int
    type: str
    at: datetime
    audience: str
    payload: dict[str, Any]
    text: str = field(default="", repr=False, compare=False)
    """The frame as JSON text, made once for every client (see :meth:`as_text`)."""

    def as_json(self) -> dict[str, Any]:
        """The WebSocket frame for this event."""
        return {
            "id": self.id,
            "type": self.type,
            "at": self.at.isoformat(),
            "data": self.payload,
        }

    def as_text(self) -> str:
        """The WebSocket frame as JSON text."""
        return self.text or json.dumps(self.as_json(), separators=(",", ":"))


def _event_of(stored: StoredEvent) -> HubEvent:
    event = HubEvent(stored.id, stored.type, stored.at, stored.audience, stored.payload)
    return replace(event, text=event.as_text())


def _offer_all(subscriptions: list[Subscription], event: HubEvent) -> None:
    for subscription in subscriptions:
        subscription.offer(event)


class Subscription:
    """One connected client's queue of events (bounded; a client that cannot keep up is
    disconnected and reconnects with ``since``)."""

    def __init__(self, role: str, queue: asyncio.Queue[HubEvent | None]) -> None:
        self.role = role
        self.queue = queue
        self.loop = asyncio.get_running_loop()
        self.overflowed = False
        """Set when the client fell ``QUEUE_SIZE`` events behind: its queue ends with None."""
        self.fell_behind = asyncio.Event()
        """Set with ``overflowed``: a handler stuck sending to a client that does not read
        waits on this, not on the queue."""

    def offer(self, event: HubEvent) -> None:
        """Queue ``event``; on overflow, empty the queue and end it. Call on ``self.loop``."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            self.fell_behind.set()
            logger.warning("dashboard client (%s) fell behind; disconnecting it", self.role)


class EventHub:
    """Stores each event, then hands it to every subscriber whose role may see it."""

    def __init__(self, db: Database, history: int = 10_000, queue_size: int = QUEUE_SIZE) -> None:
        """Set up the hub.

        Args:
            db: where events and audit rows are stored.
            history: events kept for clients that reconnect; older ones are pruned.
            queue_size: events a client may fall behind by before it is disconnected.
        """
        if history < 1 or queue_size < 1:
            raise ValueError(f"history and queue_size must be >= 1, got {history}, {queue_size}")
        self.db = db
        self.history = history
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._subscriptions: list[Subscription] = []
        self._published = 0
        self._dropped = 0

    # events ---------------------------------------------------------------------------------

    def publish(self, type: str, payload: dict[str, Any], audience: str = "viewer") -> HubEvent:
        """Store the event, then push it to subscribers. Safe from any thread.

        Args:
            type: ``sighting``, ``customer.arrived``, ``camera.status`` ...
            payload: the event's ``data`` (JSON-able).
            audience: the lowest role that receives it.

        Returns:
            The stored event, with its id.
        """
        if audience not in ROLE_RANK:
            raise ValueError(f"unknown audience {audience!r}; roles are {', '.join(ROLES)}")
        with self.db.session() as session:
            event = _event_of(events.add(session, type, payload, audience=audience))
        with self._lock:
            subscribers = [s for s in self._subscriptions if role_allows(s.role, audience)]
            self._published += 1
            prune = self._published % PRUNE_EVERY == 0
        # One wake-up per event loop (all WebSocket clients share the server's), not per client.
        by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = defaultdict(list)
        for subscription in subscribers:
            by_loop[subscription.loop].append(subscription)
        for loop, group in by_loop.items():
            try:
                loop.call_soon_threadsafe(_offer_all, group, event)
            except RuntimeError:  # the event loop has closed: its clients are gone
                for subscription in group:
                    self.unsubscribe(subscription)
        if prune:
            self.prune()
        return event

    def since(self, event_id: int, role: str, limit: int = 1000) -> list[HubEvent]:
        """Stored events after ``event_id`` that ``role`` may see, oldest first.

        Args:
            event_id: the last event id the client saw (0 for everything kept).
            role: the client's role.
            limit: the most events returned.
        """
        audiences = [r for r in ROLES if role_allows(role, r)]
        with self.db.session() as session:
            return [
                _event_of(stored) for stored in events.after(session, event_id, audiences, limit)
            ]

    def before(
        self, event_id: int, role: str, types: Collection[str], limit: int
    ) -> list[HubEvent]:
        """Stored events before ``event_id`` of one of ``types`` that ``role`` may see, newest
        first: a page of older events (the next page is before the last one's id).

        Args:
            event_id: the oldest event id the client has.
            role: the client's role.
            types: the event types wanted (``ARRIVAL_EVENTS`` for the arrival cards).
            limit: the most events returned.
        """
        audiences = [r for r in ROLES if role_allows(role, r)]
        with self.db.session() as session:
            found = events.before(session, event_id, audiences, sorted(types), limit)
        return [_event_of(stored) for stored in found]

    def latest_id(self) -> int:
        """The id of the newest stored event (0 when there is none)."""
        with self.db.session() as session:
            return events.latest_id(session)

    def prune(self) -> int:
        """Delete events beyond the newest ``history``; returns how many went."""
        newest = self.latest_id()
        with self.db.session() as session:
            removed = events.delete_through(session, newest - self.history)
        if removed:
            logger.debug("pruned %d dashboard events", removed)
        return removed

    def subscribe(self, role: str) -> Subscription:
        """A new subscription; call from the event loop that will read it."""
        subscription = Subscription(role, asyncio.Queue(self.queue_size))
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop pushing to ``subscription``."""
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

    @property
    def subscribers(self) -> int:
        """Clients connected now."""
        with self._lock:
            return len(self._subscriptions)

    def dropped(self, subscription: Subscription) -> None:
        """Count a client disconnected because it fell behind, and stop pushing to it."""
        self.unsubscribe(subscription)
        with self._lock:
            self._dropped += 1

    @property
    def dropped_clients(self) -> int:
        """Clients disconnected so far because they fell behind (or stopped reading)."""
        with self._lock:
            return self._dropped

    # audit of account details ---------------------------------------------------------------

    def delivered(self, event: HubEvent, actor: str, *, role: str = "", address: str = "") -> None:
        """Write the audit row for ``event`` about to be sent to ``actor`` (``user:<name>``,
        ``key:<name>``), with their ``role`` and client ``address``; committed on return.

        Only events with account details are audited. Blocking database work: call it from a
        worker thread, before the event is sent.
        """
        if event.type != ACCOUNT_EVENT:
            return
        account = event.payload.get("account") or {}
        with self.db.session() as session:
            audit.add(
                session,
                actor,
                "account.view",
                str(account.get("account_id") or ""),
                {
                    "event_id": event.id,
                    "sighting_id": event.payload.get("sighting_id"),
                    "via": "websocket",
                },
                role=role,
                address=address,
            )
