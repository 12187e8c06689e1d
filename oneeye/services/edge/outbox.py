"""An edge's disk queue: sightings and snapshots wait here until the broker and the server took
them, so an edge keeps working through an outage (and a restart) and loses nothing.

The camera workers run unchanged on an edge; they are given :class:`EdgeBus` as their bus and
:class:`SpoolPhotoStore` as their photo store. Sighting messages and snapshots are written to
one SQLite file in the edge's data folder (committed before the worker goes on); the
:class:`OutboxSender` thread then uploads each snapshot to the server (``PUT
/api/v1/edge/snapshots/{key}``), publishes the sightings in order, and deletes a sighting from
the file only after the broker acknowledged it (``MqttBus.flush``) and had a subscriber for
it. A broker acknowledges a message no subscription matched and drops it (MQTT 5 says so in
the PUBACK): right after a Mosquitto restart the servers' shared subscriptions are gone until
they reconnect, so the sender keeps such sightings and sends them again. A crash between the
acknowledgement and the delete sends that sighting again after the restart: the server stores
sightings by id, so a repeat is stored once.

Snapshots go before the sightings that name them while the server answers; while it does not,
sightings go on without waiting (an alert must not wait for a picture) and the snapshot follows
when the server is back (its ``snapshot_url`` answers 404 until then).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ValidationError

from oneeye.bus.base import (
    ALL_SIGHTINGS,
    ALL_STATUS,
    Bus,
    Handler,
    edge_topic,
    encode_payload,
    topic_matches,
)
from oneeye.bus.messages import SightingPayload, describe_errors
from oneeye.store.files import private_sqlite
from oneeye.store.photos import PhotoNotFoundError, PhotoStore, check_key

logger = logging.getLogger(__name__)

WINDOW = 500
"""Sightings handed to the broker at once before waiting for their acknowledgement."""
POLL = 0.2
"""Seconds the sender sleeps when there is nothing to send."""
FLUSH_WAIT = 1.0
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
"""Backoff, in seconds, after a snapshot upload failed."""


class SnapshotRefusedError(Exception):
    """The server refused a snapshot for good (malformed, or another under its key)."""


Upload = Callable[[str, bytes], None]
"""Sends one snapshot to the server; raises ``SnapshotRefusedError`` when retrying cannot help
and any other exception when it may (server unreachable)."""


class Publisher(Protocol):
    """What the sender needs of the bus: publish, and wait for the broker's acknowledgements."""

    def publish(self, topic: str, payload: BaseModel, *, retain: bool = False) -> None:
        """Send one message."""

    def flush(self, timeout: float) -> bool:
        """Whether every publish so far was acknowledged within ``timeout`` seconds."""

    def take_unrouted(self) -> Counter[str]:
        """Topics of acknowledged publishes that no subscription matched (dropped by the
        broker) since the last call, with their counts."""


class EdgeOutbox:
    """The SQLite file of sightings and snapshots not yet delivered. Thread-safe."""

    def __init__(self, path: Path) -> None:
        private_sqlite(path)  # queued snapshots are faces: owner-only, like the server's db
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sightings (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " topic TEXT NOT NULL, payload TEXT NOT NULL, queued_at REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS snapshots (key TEXT PRIMARY KEY, data BLOB NOT NULL,"
            " queued_at REAL NOT NULL)"
        )

    def add_sighting(self, topic: str, payload: SightingPayload) -> None:
        """Queue one sighting message (committed when this returns)."""
        text = payload.model_dump_json()
        with self._lock:
            self._db.execute(
                "INSERT INTO sightings (topic, payload, queued_at) VALUES (?, ?, ?)",
                (topic, text, time.time()),
            )

    def sightings(
        self, after: int = 0, limit: int = WINDOW
    ) -> list[tuple[int, str, SightingPayload]]:
        """Queued sightings after sequence number ``after``, oldest first: ``(seq, topic,
        payload)``. A row that is no sighting (a damaged file) is deleted and logged."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload FROM sightings WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        found = []
        for seq, topic, text in rows:
            try:
                found.append((seq, topic, SightingPayload.model_validate_json(text)))
            except ValidationError as exc:
                logger.error(
                    "edge: dropping queued sighting %d: not a sighting (%s)",
                    seq,
                    describe_errors(exc),
                )
                self.delete_sighting(seq)
        return found

    def delete_sighting(self, seq: int) -> None:
        """Forget one sighting (one that can never be sent)."""
        with self._lock:
            self._db.execute("DELETE FROM sightings WHERE seq = ?", (seq,))

    def delete_sightings(self, up_to: int) -> None:
        """Forget the sightings up to sequence number ``up_to`` (the broker has them)."""
        with self._lock:
            self._db.execute("DELETE FROM sightings WHERE seq <= ?", (up_to,))

    def add_snapshot(self, key: str, data: bytes) -> None:
        """Queue one snapshot for upload."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO snapshots (key, data, queued_at) VALUES (?, ?, ?)",
                (key, data, time.time()),
            )

    def snapshot(self, key: str) -> bytes | None:
        """A queued snapshot's bytes, or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT data FROM snapshots WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def snapshot_keys(self, limit: int = 100) -> list[str]:
        """Keys of queued snapshots, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key FROM snapshots ORDER BY queued_at, key LIMIT ?", (limit,)
            ).fetchall()
        return [key for (key,) in rows]

    def delete_snapshot(self, key: str) -> bool:
        """Forget a snapshot; whether it was queued."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM snapshots WHERE key = ?", (key,))
        return cursor.rowcount > 0

    def counts(self) -> tuple[int, int]:
        """How many sightings and snapshots wait."""
        with self._lock:
            sightings = self._db.execute("SELECT count(*) FROM sightings").fetchone()[0]
            snapshots = self._db.execute("SELECT count(*) FROM snapshots").fetchone()[0]
        return int(sightings), int(snapshots)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()


class SpoolPhotoStore(PhotoStore):
    """The photo store of an edge's camera workers: a snapshot is queued for upload under the
    key it will have on the server."""

    def __init__(self, outbox: EdgeOutbox) -> None:
        self.outbox = outbox

    def put(self, key: str, data: bytes) -> None:
        """Queue ``data`` for upload under ``key``."""
        self.outbox.add_snapshot(check_key(key), data)

    def get(self, key: str) -> bytes:
        """A snapshot still waiting for upload (uploaded ones are on the server)."""
        data = self.outbox.snapshot(key)
        if data is None:
            raise PhotoNotFoundError(f"no queued snapshot {key!r} (uploaded, or never taken)")
        return data

    def delete(self, key: str) -> bool:
        """Drop a queued snapshot."""
        return self.outbox.delete_snapshot(key)

    def exists(self, key: str) -> bool:
        """Whether a snapshot waits under ``key``."""
        return self.outbox.snapshot(key) is not None


class EdgeBus(Bus):
    """The bus an edge's camera workers publish on: sightings go to the disk queue, anything
    else (camera status) straight to the broker. The workers name a server camera's topics
    (``oneeye/v1/cameras/{camera}/...``); they go out under the edge's own prefix
    (``oneeye/v1/edges/{edge}/cameras/{camera}/...``), the only place the broker lets the
    edge write and where the servers accept its cameras' messages."""

    def __init__(self, bus: Bus, outbox: EdgeOutbox, edge: str) -> None:
        self.bus = bus
        self.outbox = outbox
        self.edge = edge

    def publish(self, topic: str, payload: BaseModel, *, retain: bool = False) -> None:
        """Queue a sighting on disk; publish anything else on the broker."""
        if isinstance(payload, SightingPayload) and topic_matches(ALL_SIGHTINGS, topic):
            self.outbox.add_sighting(edge_topic(self.edge, topic), payload)
        elif topic_matches(ALL_STATUS, topic):
            self.bus.publish(edge_topic(self.edge, topic), payload, retain=retain)
        else:
            self.bus.publish(topic, payload, retain=retain)

    def subscribe(self, pattern: str, handler: Handler) -> None:
        """Subscribe on the broker."""
        self.bus.subscribe(pattern, handler)

    def start(self) -> None:
        """Nothing: the edge starts the broker's bus itself."""

    def stop(self) -> None:
        """Nothing: the edge stops the broker's bus itself."""


class OutboxSender:
    """The thread that empties the disk queue: snapshots to the server, sightings to the
    broker, each deleted once delivered."""

    def __init__(
        self,
        outbox: EdgeOutbox,
        bus: Publisher,
        upload: Upload,
        *,
        window: int = WINDOW,
        poll: float = POLL,
        retry_first: float = RETRY_FIRST,
        retry_max: float = RETRY_MAX,
        edge: str | None = None,
        ready: threading.Event | None = None,
    ) -> None:
        self.outbox = outbox
        self.edge = edge
        """Sightings queued under a server camera's topic (by an edge of an earlier version)
        go out under this edge's prefix."""
        self.ready = ready
        """Nothing is sent until it is set: the servers drop what comes from cameras they do
        not know are this edge's, so sending waits for the cameras' registration."""
        self.bus = bus
        self.upload = upload
        self.window = window
        self.poll = poll
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.sent = 0
        """Sightings the broker acknowledged."""
        self.uploaded = 0
        """Snapshots the server stored."""
        self.refused = 0
        """Snapshots the server refused for good (dropped)."""
        self.oversized = 0
        """Sightings larger than the bus takes (dropped: they could never be sent)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.unrouted = 0
        """Sightings the broker took but had no subscriber for (sent again later)."""
        self._upload_delay = retry_first
        self._upload_after = 0.0
        self._resend_delay = retry_first

    def start(self) -> None:
        """Start sending."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="edge-sender", daemon=True)
        self._thread.start()

    def stop(self, drain: float = 5.0) -> None:
        """Stop, after trying for up to ``drain`` seconds to deliver what is queued (what is
        not delivered stays on disk for the next start)."""
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline and self.outbox.counts()[0]:
            time.sleep(0.05)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        # The last sequence number handed to the broker and not yet confirmed, how many, and
        # on which topics.
        in_flight, handed = 0, 0
        topics: set[str] = set()
        while not self._stop.is_set():
            if self.ready is not None and not self.ready.is_set():
                self._stop.wait(self.poll)
                continue
            try:
                self._upload_snapshots()
                if in_flight == 0:
                    limit = getattr(self.bus, "max_payload", None)
                    for seq, topic, payload in self.outbox.sightings(limit=self.window):
                        if isinstance(limit, int) and len(encode_payload(payload)) > limit:
                            # A message the bus refuses every time would block the queue.
                            logger.error(
                                "edge: dropping sighting %s on %s: over the bus limit of %d bytes",
                                payload.id,
                                topic,
                                limit,
                            )
                            self.outbox.delete_sighting(seq)
                            self.oversized += 1
                            continue
                        edge = self.edge
                        full = edge_topic(edge, topic) if edge else topic
                        self.bus.publish(full, payload)
                        in_flight, handed = seq, handed + 1
                        topics.add(full)
                if in_flight:
                    if not self.bus.flush(FLUSH_WAIT):
                        logger.debug("edge: the broker has not acknowledged the sightings yet")
                        continue
                    unrouted = self.bus.take_unrouted()
                    lost = sum(unrouted[topic] for topic in topics)
                    confirmed, count = in_flight, handed
                    in_flight, handed, topics = 0, 0, set()
                    if lost:
                        # Nothing is deleted: the whole window goes again (the server ignores
                        # the repeats of those that did arrive).
                        self.unrouted += lost
                        logger.warning(
                            "edge: the broker had no subscriber for %d sighting(s) (no server "
                            "subscribed yet); sending them again in %.0f s",
                            lost,
                            self._resend_delay,
                        )
                        self._stop.wait(self._resend_delay)
                        self._resend_delay = min(self._resend_delay * 2, self.retry_max)
                        continue
                    self._resend_delay = self.retry_first
                    self.outbox.delete_sightings(confirmed)
                    self.sent += count
                    continue
            except Exception:  # the sender outlives any one failure; what is queued stays
                # What was handed over before the failure is confirmed on the next round.
                logger.exception("edge: sending the queue failed; trying again")
            self._stop.wait(self.poll)

    def _upload_snapshots(self) -> None:
        """Upload queued snapshots, oldest first, until one fails (then back off)."""
        if time.monotonic() < self._upload_after:
            return
        for key in self.outbox.snapshot_keys():
            data = self.outbox.snapshot(key)
            if data is None:
                continue
            try:
                self.upload(key, data)
            except SnapshotRefusedError as exc:
                logger.error("edge: the server refused snapshot %s for good: %s", key, exc)
                self.refused += 1
            except Exception as exc:
                logger.warning(
                    "edge: could not upload snapshot %s (%s); again in %.0f s",
                    key,
                    exc,
                    self._upload_delay,
                )
                self._upload_after = time.monotonic() + self._upload_delay
                self._upload_delay = min(self._upload_delay * 2, self.retry_max)
                return
            else:
                self.uploaded += 1
            self.outbox.delete_snapshot(key)
            self._upload_delay = self.retry_first
