"""Sightings from the bus: stored first, then acted on.

A server's cameras publish their sightings on ``oneeye/v1/cameras/{camera}/sightings``, an
edge's on ``oneeye/v1/edges/{edge}/cameras/{camera}/sightings`` (the broker's ACL lets only
the servers write the former and only that edge the latter). A message is accepted only when
its camera is registered to the sender its topic names (``CameraRegistry``: the servers' own
cameras, each edge's registered ones) and its ``snapshot_key``, if any, is one of that
camera's snapshots; anything else is dropped and counted (``refused``) and changes nothing.
A message is written to the ``sightings`` table
(``store.repos.sightings``) before anything else happens to it, and by its id, so a message
delivered twice (a retried publish) is stored and acted on once.

Then the watchlist's action, looked up by name in :attr:`SightingService.actions`
(``services.actions``): ``customers`` (``services.arrivals``, registered here with the
directory the service is given) pushes the account card to the tellers; ``amber-alert`` (the
alerts code registers it) notifies the case's subscribers. Every new sighting is announced to
the dashboards as a ``sighting`` event (by its action, or here when it has none). Functions
that want every new sighting, whatever its watchlist, register with
:meth:`SightingService.add_action`.

A new sighting's action is recorded as unfinished in the transaction that stores it and
finished once it ran; a server that dies in between leaves it to another server's sweeper
(``services.sighting_sweeper``). The actions are idempotent where it matters (a case match is
recorded once per sighting); the dashboards may hear a sighting twice when a server died after
announcing it and before recording that it had.

Every stored sighting is closed (``left_at``) in the end. A ``left`` closes its own; a new
``sighting`` of a camera's track closes that track's earlier open one, at the new one's time:
a track that turns from unknown into a person has two sightings, and the camera worker says
``left`` for the unknown one first, but an edge that does not (or a lost message) must not
leave it open for ever. :func:`close_open_sightings` closes a camera's rows when its worker
stops or starts (the camera manager calls it).

The service only writes: the stored sightings are read through ``services.sighting_queries``.
It also consumes the cameras' status messages, checked the same way, and hands them
to its ``statuses`` (``services.camera_status``), which keeps each camera's newest status and
announces it to the dashboards.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oneeye.bus.base import (
    ALL_EDGE_CAMERA_STATUS,
    ALL_EDGE_SIGHTINGS,
    ALL_SIGHTINGS,
    ALL_STATUS,
    Bus,
    Message,
)
from oneeye.bus.messages import PayloadReader, SightingPayload
from oneeye.errors import OneEyeError
from oneeye.metrics import BUS_LAG
from oneeye.services.actions import (
    StoredSighting,
    WatchlistAction,
    WatchlistActions,
    photo_url,
)
from oneeye.services.arrivals import ACTION as CUSTOMERS_ACTION
from oneeye.services.arrivals import CustomerArrivals
from oneeye.services.auth import AuthService
from oneeye.services.camera_status import CameraStatuses
from oneeye.services.customers import CustomerDirectory
from oneeye.services.edge.registry import CameraRegistry, RefusedSenders
from oneeye.services.events import EventHub
from oneeye.services.sighting_sweeper import ACTION_LEASE, SWEEP_EVERY, SightingSweeper
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore, snapshot_camera
from oneeye.store.repos import sighting_actions as unfinished
from oneeye.store.repos import sightings as rows
from oneeye.store.repos.sightings import Decision, NewSighting

__all__ = [
    "REVISED_EVENT",
    "Decision",
    "Revision",
    "SightingAction",
    "SightingService",
    "StoredSighting",
    "close_open_sightings",
    "photo_url",
]

logger = logging.getLogger(__name__)

SNAPSHOT_KIND = "snapshots/"
"""The photo store prefix of camera snapshots."""
REVISED_EVENT = "sighting.revised"
"""The dashboard event of a sighting whose decision (person or watchlist) was revised."""


def close_open_sightings(db: Database, camera_id: str, at: datetime | None = None) -> int:
    """Set ``left_at`` on every open sighting of a camera: to ``at``, or when ``None`` to each
    one's ``last_seen`` (the last time it is known to have been there).

    Returns:
        How many sightings were closed.
    """
    with db.session() as session:
        closed = rows.close_open(session, camera_id, at)
    if closed:
        logger.info("camera %s: closed %d open sighting(s)", camera_id, closed)
    return closed


SightingAction = Callable[[StoredSighting], None]
"""Called (on the bus thread) for every new sighting after it is stored and announced."""


@dataclass(frozen=True, slots=True)
class Revision:
    """A stored sighting whose decision an update revised: what it is now, and what it was
    (shown as such on the dashboards) until ``revised_at``."""

    sighting: StoredSighting
    previous: Decision
    revised_at: datetime

    def event_data(self) -> dict[str, Any]:
        """The ``sighting.revised`` dashboard event's data: the sighting as it is now, with
        ``previous``."""
        before = self.previous
        return {
            **self.sighting.event_data(),
            "revised_at": self.revised_at.isoformat(),
            "previous": {
                "person_id": before.person_id,
                "person_name": before.person_name,
                "watchlist": before.watchlist,
                "distance": None if before.distance is None else round(before.distance, 4),
            },
        }


def new_sighting(message: SightingPayload) -> NewSighting:
    """What a sighting message asks to store."""
    return NewSighting(
        id=message.id,
        camera_id=message.camera,
        track=message.track,
        person_id=message.person,
        watchlist=message.watchlist,
        distance=message.distance,
        quality=message.quality,
        frame=message.frame,
        t=message.t,
        box=message.box,
        seen_at=message.seen_at,
        snapshot_key=message.snapshot_key,
        embedding=message.embedding,
    )


class SightingService:
    """Consumes camera sightings and statuses from the bus."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        bus: Bus,
        events: EventHub,
        directory: CustomerDirectory,
        auth: AuthService,
        reader: PayloadReader | None = None,
        registry: CameraRegistry | None = None,
        *,
        action_lease: float = ACTION_LEASE,
        sweep_every: float = SWEEP_EVERY,
    ) -> None:
        self.db = db
        self.reader = reader or PayloadReader()
        self.registry = registry if registry is not None else CameraRegistry(db)
        """Which sender owns which camera: a message is accepted only from its camera's."""
        self.refused = RefusedSenders()
        """Messages dropped because their sender does not own the camera or snapshot."""
        self.photos = photos
        self.bus = bus
        self.events = events
        self.directory = directory
        self.auth = auth
        self.actions = WatchlistActions()
        """Watchlist action name -> what a new sighting on such a watchlist does."""
        self.arrivals = CustomerArrivals(events, directory)
        """The ``customers`` action."""
        self.actions.register(CUSTOMERS_ACTION, self.arrivals)
        self._every: list[SightingAction] = []
        self._running = False
        self._subscribed = False
        self.statuses = CameraStatuses(events, self.registry, self.refused, self.reader)
        """The newest status of every camera, from the status messages this service hears."""
        self._acting = threading.Lock()
        """One action at a time in this process (the bus thread's and the sweeper's)."""
        self.sweeper = SightingSweeper(
            db,
            self._describe_stored,
            self._act,
            action_lease=action_lease,
            sweep_every=sweep_every,
        )
        """This process's unfinished actions, and the thread that takes over others'."""

    @property
    def owner(self) -> str:
        """This process among the servers, as the unfinished actions it holds name it."""
        return self.sweeper.owner

    def start(self) -> None:
        """Subscribe to every camera's sightings and status, and start the sweeper of
        unfinished actions."""
        self._running = True
        self.arrivals.start()
        self.sweeper.start()
        if not self._subscribed:
            self.registry.reload()
            self.bus.subscribe(ALL_SIGHTINGS, self._on_sighting)
            self.bus.subscribe(ALL_STATUS, self._on_status)
            self.bus.subscribe(ALL_EDGE_SIGHTINGS, self._on_sighting)
            self.bus.subscribe(ALL_EDGE_CAMERA_STATUS, self._on_status)
            self._subscribed = True

    def stop(self) -> None:
        """Stop consuming (the bus has no unsubscribe: messages after this are ignored) and
        wait for the cards being looked up."""
        self._running = False
        self.sweeper.stop()
        self.arrivals.stop()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every card being looked up has been published; ``False`` on timeout."""
        return self.arrivals.wait_idle(timeout)

    def add_action(self, action: SightingAction) -> None:
        """Run ``action`` for every new sighting, after it is stored, announced and acted on
        by its watchlist's action."""
        self._every.append(action)

    def register_action(self, name: str, action: WatchlistAction) -> None:
        """Make ``action`` what a new sighting on a watchlist whose action is ``name`` does
        (``services.actions``; ``ValueError`` if ``name`` has one already)."""
        self.actions.register(name, action)

    # sightings ------------------------------------------------------------------------------

    def _on_sighting(self, message: Message) -> None:
        if not self._running:
            # The server stops the bus's intake before this service (app.stop), so this
            # is a message the bus took in spite of it: say so, it will not be stored.
            logger.warning(
                "a sighting message on %s came after the consumer stopped", message.topic
            )
            return
        sighting = self.reader.read(SightingPayload, message)
        if sighting is None:
            return
        if not self._from_its_camera(message.topic, sighting.camera, sighting.snapshot_key):
            return
        if sighting.event == "sighting":
            BUS_LAG.observe(max(0.0, (datetime.now(UTC) - sighting.seen_at).total_seconds()))
        self.handle(sighting)

    def _from_its_camera(self, topic: str, camera: str, snapshot_key: str | None) -> bool:
        """Whether a sighting on ``topic`` naming ``camera`` and ``snapshot_key`` comes from
        the sender that owns that camera (the topic says who sent it: the broker's ACL lets
        an edge write under its own prefix only), with a snapshot of that camera. Anything
        else is counted and dropped; nothing about it is stored or announced."""
        source = self.refused.source_of(topic, camera)
        if source is None:
            return False
        if not self.registry.allows(source.edge, camera):
            self.refused.refuse_camera(source, self.registry.owner(camera))
            return False
        if snapshot_key is not None and snapshot_camera(snapshot_key) != camera:
            self.refused.refuse(
                source.source, "its snapshot_key is not under the camera's snapshots", camera
            )
            return False
        return True

    def handle(self, message: SightingPayload) -> StoredSighting | None:
        """Store ``message``, then act on it if it is a new sighting.

        Returns:
            The stored sighting when it was new (and acted on), else ``None``.
        """
        stored, revision = self._store(message)
        if revision is not None:
            self._revise(revision)
        if stored is None:
            return None
        self._act(stored)
        self.sweeper.finish(stored.id)
        return stored

    def store(self, message: SightingPayload) -> StoredSighting | None:
        """Write ``message`` to the database (a revision it makes is stored, not announced:
        :meth:`handle` announces it). A new sighting's action is recorded as unfinished and
        not run: a sweeper runs it once its lease (``action_lease``) has run out.

        Returns:
            The sighting when it is new (a ``sighting``, or an update whose sighting was never
            received), ``None`` for a repeat, an update or a ``left``.
        """
        return self._store(message)[0]

    def _store(self, message: SightingPayload) -> tuple[StoredSighting | None, Revision | None]:
        try:
            with self.db.session() as session:
                if message.person is not None and not rows.person_exists(session, message.person):
                    message = self._as_unknown(message)
                new = new_sighting(message)
                if message.event == "left":
                    if not rows.mark_left(session, message.id, message.seen_at):
                        logger.warning(
                            "camera %s: left for unknown sighting %s", message.camera, message.id
                        )
                    return None, None
                if rows.exists(session, message.id):
                    if message.event != "sighting_update":
                        logger.info(
                            "camera %s: sighting %s was already stored; ignoring the repeat",
                            message.camera,
                            message.id,
                        )
                        return None, None
                    applied = rows.apply_update(session, new)
                    if applied.replaced_snapshot is not None:
                        self._delete_after_commit(session, applied.replaced_snapshot)
                    if applied.previous is None or applied.revised_at is None:
                        return None, None
                    return None, Revision(
                        self._describe_stored(session, message.id),
                        applied.previous,
                        applied.revised_at,
                    )
                closed = rows.close_track(session, new)
                if closed:
                    logger.info(
                        "camera %s: track %d has a new sighting %s; closed %d earlier open one(s)",
                        message.camera,
                        message.track,
                        message.id,
                        closed,
                    )
                rows.add(session, new)
                # Its action is unfinished until it ran: a server dying before then leaves
                # this row for another to find (the sweeper).
                unfinished.add(session, message.id, self.owner, self.sweeper.lease_until())
                return self._describe(session, message), None
        except IntegrityError:
            logger.info("sighting %s was stored meanwhile; ignoring the repeat", message.id)
            return None, None

    @staticmethod
    def _as_unknown(message: SightingPayload) -> SightingPayload:
        """A sighting naming a person OneEye does not hold (deleted or erased while an edge
        still had them in its gallery) is stored as an unknown face: no row may carry the id
        of someone erased."""
        logger.info(
            "camera %s: sighting %s names a person who is not enrolled; stored as unknown",
            message.camera,
            message.id,
        )
        return message.model_copy(update={"person": None, "watchlist": None, "distance": None})

    def _delete_after_commit(self, session: Session, key: str) -> None:
        """Delete a snapshot that a better one replaced, once the row no longer names it (a
        replaced snapshot is named by no row: no retention or erasure would ever find it).
        Only keys under ``snapshots/``: a row may name anything a camera sent."""
        if not key.startswith(SNAPSHOT_KIND):
            return

        def delete(_: Session) -> None:
            try:
                self.photos.delete(key)
            except OneEyeError:
                logger.exception("could not delete the replaced snapshot %s; it is orphaned", key)

        event.listen(session, "after_commit", delete, once=True)

    @staticmethod
    def _describe(session: Session, message: SightingPayload) -> StoredSighting:
        about = rows.context(session, message.camera, message.person, message.watchlist)
        return StoredSighting(
            id=message.id,
            camera_id=message.camera,
            camera_name=about.camera_name,
            person_id=message.person,
            person_name=about.person_name,
            account_id=about.account_id,
            watchlist=message.watchlist,
            watchlist_action=about.watchlist_action,
            distance=message.distance,
            seen_at=message.seen_at,
            snapshot_key=message.snapshot_key,
        )

    @staticmethod
    def _describe_stored(session: Session, sighting_id: str) -> StoredSighting:
        """A stored sighting as it is now (after an update), for the actions."""
        found = rows.get(session, sighting_id)
        assert found is not None, "described right after it was updated"
        record = found[0]
        about = rows.context(session, record.camera_id, record.person_id, record.watchlist)
        return StoredSighting(
            id=record.id,
            camera_id=record.camera_id,
            camera_name=about.camera_name,
            person_id=record.person_id,
            person_name=about.person_name,
            account_id=about.account_id,
            watchlist=record.watchlist,
            watchlist_action=about.watchlist_action,
            distance=record.distance,
            seen_at=record.first_seen,
            snapshot_key=record.snapshot_key,
        )

    def _revise(self, revision: Revision) -> None:
        """Announce a revised decision to every dashboard (the card shown for the earlier one
        is updated or withdrawn), then, when it now names someone, run their watchlist's
        action as for a new sighting of them (the customer's card, the case's match)."""
        sighting = revision.sighting
        logger.info(
            "camera %s: sighting %s was revised (%s -> %s)",
            sighting.camera_id,
            sighting.id,
            revision.previous.watchlist or "unknown",
            sighting.watchlist or "unknown",
        )
        self.events.publish(REVISED_EVENT, revision.event_data(), audience="viewer")
        action = self.actions.get(sighting.watchlist_action) if sighting.person_id else None
        if action is None:
            return
        try:
            action(sighting, lambda: None)  # announced above, as a revision
        except Exception:
            logger.exception(
                "camera %s: the %s action failed on revised sighting %s",
                sighting.camera_id,
                sighting.watchlist_action,
                sighting.id,
            )

    def sweep(self) -> int:
        """Take over the unfinished actions whose lease ran out and run them
        (:meth:`SightingSweeper.sweep`).

        Returns:
            How many actions were run.
        """
        return self.sweeper.sweep()

    def unfinished_actions(self) -> int:
        """How many stored sightings' actions have not finished (for tests and metrics).

        Returns:
            The number of unfinished action records, whoever holds them.
        """
        return self.sweeper.pending()

    def _act(self, sighting: StoredSighting) -> None:
        with self._acting:
            self._act_locked(sighting)

    def _act_locked(self, sighting: StoredSighting) -> None:
        data = sighting.event_data()
        announced = threading.Event()

        def announce() -> None:
            if not announced.is_set():
                announced.set()
                self.events.publish("sighting", data, audience="viewer")

        action = self.actions.get(sighting.watchlist_action)
        if action is None:
            announce()
        else:
            try:
                action(sighting, announce)
            except Exception:
                logger.exception(
                    "camera %s: the %s action failed on sighting %s",
                    sighting.camera_id,
                    sighting.watchlist_action,
                    sighting.id,
                )
                announce()
        for every in list(self._every):
            try:
                every(sighting)
            except Exception:
                logger.exception(
                    "camera %s: a sighting action failed on sighting %s",
                    sighting.camera_id,
                    sighting.id,
                )

    # camera status --------------------------------------------------------------------------

    def _on_status(self, message: Message) -> None:
        if self._running:
            self.statuses.handle(message)
