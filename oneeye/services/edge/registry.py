"""Which cameras belong to whom: the servers' own (``cameras``) and each edge's
(``edge_cameras``), so that a sighting or a status is accepted only from its camera's sender.

The broker's ACL (``deploy/mosquitto/``) lets an edge publish only under
``oneeye/v1/edges/{edge}/`` and only servers on ``oneeye/v1/cameras/``, so a message's topic
says who sent it; this registry says whether that sender owns the camera it names. An edge
registers its cameras over its authenticated HTTP at start (``PUT /api/v1/edge/cameras``): a
camera id that is a server's or another edge's is refused. Snapshot keys are checked the same
way: a camera's snapshots live under ``snapshots/{camera}/`` (``store.photos``).

The check runs for every sighting on the bus thread, so it is a dictionary lookup. The cache is
loaded from the database at start, reloaded at once when this process changes a camera, and
reloaded when a camera is not found (a camera another server added): at most once per
``RELOAD_MIN`` seconds for one camera id and ``MISS_RELOADS`` times a second in all, so a flood
of made-up camera ids costs at most that many queries a second, while a camera registered
through another server a moment after this one reloaded for a different camera is still found
(one reload a second in all lost such a camera's sightings for up to a second); and it is
reloaded when older than ``MAX_AGE`` seconds (a camera another server removed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from oneeye.bus.base import CameraTopic, camera_topic
from oneeye.errors import Conflict
from oneeye.store.db import Database
from oneeye.store.repos import cameras as rows
from oneeye.store.repos.cameras import EdgeCameraInfo

__all__ = [
    "MAX_AGE",
    "MISS_RELOADS",
    "RELOAD_MIN",
    "SERVER",
    "CameraOwnedError",
    "CameraRegistry",
    "EdgeCameraInfo",
    "RefusedSenders",
]

logger = logging.getLogger(__name__)

SERVER = "@server"
"""The owner of the servers' own cameras (not a valid edge id, so it never names an edge)."""
RELOAD_MIN = 1.0
"""Seconds between two reloads caused by one camera id that was not found."""
MISS_RELOADS = 10
"""Reloads caused by cameras that were not found, at most, in any second."""
MAX_MISSES_KEPT = 10_000
"""Camera ids not found that are remembered (for ``RELOAD_MIN``); more, and the oldest go."""
MAX_AGE = 30.0
"""Seconds after which the cache is reloaded on its next use."""


class CameraOwnedError(Conflict):
    """A camera id is a server's or another edge's already."""


class CameraRegistry:
    """Camera id -> owner (an edge id, or ``SERVER``), cached in memory. Thread-safe."""

    def __init__(
        self, db: Database, *, reload_min: float = RELOAD_MIN, max_age: float = MAX_AGE
    ) -> None:
        self.db = db
        self.reload_min = reload_min
        self.max_age = max_age
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._loaded_at = float("-inf")
        self._misses: dict[str, float] = {}
        """Camera id not found -> when it last caused a reload."""
        self._miss_reloads: list[float] = []
        """When the reloads of the last second caused by misses happened."""
        self.reloads = 0
        """Reloads so far (for tests)."""

    # the hot path -------------------------------------------------------------------------------

    def owner(self, camera_id: str) -> str | None:
        """The camera's owner: an edge id, ``SERVER``, or ``None`` for an unknown camera."""
        now = time.monotonic()
        with self._lock:
            stale = now - self._loaded_at > self.max_age
            found = self._owners.get(camera_id)
            retry = found is None and self._may_reload_for_locked(camera_id, now)
        if stale or retry:
            self.reload()
            with self._lock:
                found = self._owners.get(camera_id)
        return found

    def _may_reload_for_locked(self, camera_id: str, now: float) -> bool:
        """Whether a miss of ``camera_id`` may reload now (and if so, count it)."""
        if now - self._misses.get(camera_id, float("-inf")) < self.reload_min:
            return False
        self._miss_reloads = [t for t in self._miss_reloads if now - t < 1.0]
        if len(self._miss_reloads) >= MISS_RELOADS:
            return False
        self._miss_reloads.append(now)
        if len(self._misses) >= MAX_MISSES_KEPT:
            self._misses = {c: t for c, t in self._misses.items() if now - t < self.reload_min}
            if len(self._misses) >= MAX_MISSES_KEPT:
                self._misses.clear()
        self._misses[camera_id] = now
        return True

    def allows(self, edge: str | None, camera_id: str) -> bool:
        """Whether ``camera_id`` belongs to ``edge`` (``None``: to the servers)."""
        return self.owner(camera_id) == (SERVER if edge is None else edge)

    def name_of(self, camera_id: str) -> str | None:
        """An edge camera's name as it registered it (``None`` for the servers' own)."""
        with self._lock:
            return self._names.get(camera_id)

    def cameras_of(self, edge: str) -> list[str]:
        """The cameras registered to ``edge`` (an edge's will names its own; the cache is
        reloaded first if it is older than ``RELOAD_MIN``: this is not on the hot path)."""
        with self._lock:
            stale = time.monotonic() - self._loaded_at > self.reload_min
        if stale:
            self.reload()
        with self._lock:
            return sorted(c for c, owner in self._owners.items() if owner == edge)

    def reload(self) -> None:
        """Read every camera's owner from the database."""
        with self.db.session() as session:
            servers = rows.server_ids(session)
            edges, names = rows.edge_owners(session)
        owners = dict.fromkeys(sorted(servers), SERVER)
        # A server camera added while an edge registered the same id (two servers at once):
        # neither may claim it; the server's wins, as the check in ``register`` would say.
        owners.update({camera: edge for camera, edge in edges.items() if camera not in owners})
        with self._lock:
            self._owners = owners
            self._names = names
            self._loaded_at = time.monotonic()
            self.reloads += 1

    # changes --------------------------------------------------------------------------------------

    def register(self, edge: str, cameras: Sequence[tuple[str, str]]) -> list[EdgeCameraInfo]:
        """Register ``edge``'s cameras (``(id, name)`` pairs); ones it has already are kept
        (names updated), cameras it does not list now stay registered.

        Raises:
            CameraOwnedError: a camera id is a server's or another edge's (nothing changes).
        """
        ids = [camera for camera, _ in cameras]
        with self.db.session() as session:
            servers = rows.server_ids(session, ids)
            owners = rows.edges_of(session, ids)
            taken = sorted(
                f"{camera} (a server camera)"
                if camera in servers
                else f"{camera} (edge {owners[camera]})"
                for camera in ids
                if camera in servers or (camera in owners and owners[camera] != edge)
            )
            if taken:
                raise CameraOwnedError(
                    f"these camera ids belong to another sender already: {', '.join(taken)}; "
                    "give this edge's cameras other ids"
                )
            for camera, name in cameras:
                if rows.register(session, edge, camera, name):
                    logger.info("edge %s registered camera %s", edge, camera)
            registered = rows.edge_cameras(session, edge)
        self.reload()
        return registered

    def unregister(self, edge: str, camera_id: str) -> bool:
        """Forget that ``camera_id`` is ``edge``'s; whether it was."""
        with self.db.session() as session:
            if not rows.unregister(session, edge, camera_id):
                return False
        logger.info("camera %s of edge %s unregistered", camera_id, edge)
        self.reload()
        return True

    def edge_cameras(self) -> list[EdgeCameraInfo]:
        """Every registered edge camera, by edge and camera."""
        with self.db.session() as session:
            return rows.edge_cameras(session)

    def edge_of(self, camera_id: str) -> str | None:
        """The edge that registered ``camera_id`` (read from the database, not the cache: for
        refusing a server camera with an edge camera's id)."""
        with self.db.session() as session:
            return rows.edge_of(session, camera_id)


class RefusedSenders:
    """Counts messages refused because their sender may not send them, and logs the first one
    of each sender and reason (then every ``log_every``-th), so a flood fills no disk. Logs
    name the sender and the camera, never the payload's person."""

    def __init__(self, log_every: int = 1000) -> None:
        self.log_every = log_every
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def refuse(self, source: str, reason: str, camera: str) -> None:
        """Count one refused message from ``source`` for ``reason`` about ``camera``."""
        with self._lock:
            count = self._counts.get((source, reason), 0) + 1
            self._counts[(source, reason)] = count
        if count == 1 or count % self.log_every == 0:
            logger.warning(
                "refused a message from %s about camera %r: %s (%d such so far; logged once, "
                "then every %d)",
                source,
                camera[:64],
                reason,
                count,
                self.log_every,
            )

    def source_of(self, topic: str, camera: str) -> CameraTopic | None:
        """Who sent a message on ``topic`` whose payload names ``camera``: ``None``, and the
        message counted as refused, when the topic is not a camera topic or names another
        camera."""
        source = camera_topic(topic)
        if source is None or source.camera != camera:
            self.refuse(
                source.source if source else "an unknown sender",
                "the payload names another camera than its topic",
                camera,
            )
            return None
        return source

    def refuse_camera(self, source: CameraTopic, owner: str | None) -> None:
        """Count a message from a sender that does not own its camera, whose owner is
        ``owner`` (``CameraRegistry.owner``; ``None``: no one's)."""
        why = (
            "the camera is not registered"
            if owner is None
            else "the camera is registered to another sender"
        )
        self.refuse(source.source, why, source.camera)

    def counts(self) -> dict[tuple[str, str], int]:
        """Refused messages by ``(sender, reason)``."""
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        """Every refused message so far."""
        with self._lock:
            return sum(self._counts.values())
