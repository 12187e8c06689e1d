"""Sightings from the bus: stored first, then acted on.

A server's cameras publish their sightings on ``oneeye/v1/cameras/{camera}/sightings``, an
edge's on ``oneeye/v1/edges/{edge}/cameras/{camera}/sightings`` (the broker's ACL lets only
the servers write the former and only that edge the latter). A message is accepted only when
its camera is registered to the sender its topic names (``CameraRegistry``: the servers' own
cameras, each edge's registered ones) and its ``snapshot_key``, if any, is one of that
camera's snapshots; anything else is dropped and counted (``refused``) and changes nothing.
Camera statuses are checked the same way. A message is written to the ``sightings`` table
before anything else happens to it, and by its id, so a message delivered twice (a retried
publish) is stored and acted on once. Then: a ``sighting`` event for every dashboard, and for
a person on a ``customers`` watchlist who holds an account, a ``customer.arrived`` event with
the account card for tellers and admins only (viewers and reporters get the ``sighting``
event, never a redacted card). The account is looked up on a small pool of threads, so a slow
directory (the bank's API, up to its timeout) delays that card only, not the bus. A directory
that fails is logged and the card still goes out, without the account details and with
``account_error`` saying why. Further actions (the Amber Alert workflow) register with
:meth:`SightingService.add_action`.

Every stored sighting is closed (``left_at``) in the end. A ``left`` closes its own; a new
``sighting`` of a camera's track closes that track's earlier open one, at the new one's time:
a track that turns from unknown into a person has two sightings, and the camera worker says
``left`` for the unknown one first, but an edge that does not (or a lost message) must not
leave it open for ever. :func:`close_open_sightings` closes a camera's rows when its worker
stops or starts (the camera manager calls it).

Camera status messages become ``camera.status`` events when a camera's state or error
changes, and otherwise at most every ``STATUS_EVERY`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, event, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oneeye.bus.base import (
    ALL_EDGE_CAMERA_STATUS,
    ALL_EDGE_SIGHTINGS,
    ALL_SIGHTINGS,
    ALL_STATUS,
    Bus,
    CameraTopic,
    Message,
    camera_topic,
)
from oneeye.bus.messages import CameraStatusPayload, PayloadReader, SightingPayload
from oneeye.errors import OneEyeError
from oneeye.services.auth import AuthService
from oneeye.services.customers import CustomerCard, CustomerDirectory
from oneeye.services.edge.registry import SERVER, CameraRegistry, RefusedSenders
from oneeye.services.events import EventHub
from oneeye.store.db import Database
from oneeye.store.models import (
    Camera,
    Person,
    Sighting,
    Watchlist,
    embedding_to_bytes,
)
from oneeye.store.photos import PhotoStore, snapshot_camera

logger = logging.getLogger(__name__)

STATUS_EVERY = 5.0
"""Seconds between two ``camera.status`` events of a camera whose state has not changed."""
ARRIVAL_WORKERS = 4
"""Threads that look accounts up and publish cards, so a slow directory holds up no camera."""
PHOTOS_URL = "/api/v1/photos/"
SNAPSHOT_KIND = "snapshots/"
"""The photo store prefix of camera snapshots."""
MAX_LIMIT = 1000


def photo_url(key: str | None) -> str | None:
    """The URL the dashboard loads a stored photo from."""
    return None if key is None else f"{PHOTOS_URL}{key}"


def close_open_sightings(db: Database, camera_id: str, at: datetime | None = None) -> int:
    """Set ``left_at`` on every open sighting of a camera: to ``at``, or when ``None`` to each
    one's ``last_seen`` (the last time it is known to have been there).

    Returns:
        How many sightings were closed.
    """
    query = (
        update(Sighting)
        .where(Sighting.camera_id == camera_id, Sighting.left_at.is_(None))
        .values(left_at=Sighting.last_seen if at is None else at)
        .execution_options(synchronize_session=False)
    )
    with db.session() as session:
        closed = cast("CursorResult[Any]", session.execute(query)).rowcount
    if closed:
        logger.info("camera %s: closed %d open sighting(s)", camera_id, closed)
    return closed


@dataclass(frozen=True, slots=True)
class StoredSighting:
    """A sighting as stored, with what the actions need to know about it."""

    id: str
    camera_id: str
    camera_name: str
    person_id: str | None
    person_name: str | None
    account_id: str | None
    watchlist: str | None
    watchlist_action: str | None
    distance: float | None
    seen_at: datetime
    snapshot_key: str | None

    def event_data(self) -> dict[str, Any]:
        """The ``sighting`` dashboard event's data."""
        return {
            "sighting_id": self.id,
            "camera_id": self.camera_id,
            "camera_name": self.camera_name,
            "person_id": self.person_id,
            "person_name": self.person_name,
            "watchlist": self.watchlist,
            "distance": None if self.distance is None else round(self.distance, 4),
            "seen_at": self.seen_at.isoformat(),
            "snapshot_url": photo_url(self.snapshot_key),
        }


SightingAction = Callable[[StoredSighting], None]
"""Called (on the bus thread) for every new sighting after it is stored."""


@dataclass(frozen=True, slots=True)
class SightingView:
    """A stored sighting for the API, with the person's name."""

    sighting: Sighting
    person_name: str | None


def account_of(card: CustomerCard | None, account_id: str, name: str | None) -> dict[str, Any]:
    """The ``account`` object of a ``customer.arrived`` event (details ``None`` when the
    directory gave no card)."""
    if card is None:
        return {
            "account_id": account_id,
            "name": name,
            "account_type": None,
            "address": None,
            "balance": None,
            "currency": None,
            "profile_photo_url": None,
        }
    return {
        "account_id": card.account_id,
        "name": card.name,
        "account_type": card.account_type,
        "address": card.address,
        "balance": card.balance,
        "currency": card.currency,
        "profile_photo_url": card.profile_photo_url or photo_url(card.profile_photo_key),
    }


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
        self._actions: list[SightingAction] = []
        self._running = False
        self._subscribed = False
        self._lock = threading.Lock()
        self._statuses: dict[str, dict[str, Any]] = {}
        self._status_sent: dict[str, tuple[tuple[Any, ...], float]] = {}
        self._arrivals: ThreadPoolExecutor | None = None
        self._pending: set[Future[None]] = set()

    def start(self) -> None:
        """Subscribe to every camera's sightings and status."""
        self._running = True
        if self._arrivals is None:
            self._arrivals = ThreadPoolExecutor(ARRIVAL_WORKERS, thread_name_prefix="arrivals")
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
        arrivals, self._arrivals = self._arrivals, None
        if arrivals is not None:
            arrivals.shutdown(wait=True)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every card being looked up has been published; ``False`` on timeout."""
        with self._lock:
            pending = list(self._pending)
        _, left = wait(pending, timeout=timeout)
        return not left

    def add_action(self, action: SightingAction) -> None:
        """Run ``action`` for every new sighting, after it is stored and announced."""
        self._actions.append(action)

    # sightings ------------------------------------------------------------------------------

    def _on_sighting(self, message: Message) -> None:
        if not self._running:
            return
        sighting = self.reader.read(SightingPayload, message)
        if sighting is None:
            return
        if not self._from_its_camera(message.topic, sighting.camera, sighting.snapshot_key):
            return
        self.handle(sighting)

    def _from_its_camera(self, topic: str, camera: str, snapshot_key: str | None) -> bool:
        """Whether a sighting on ``topic`` naming ``camera`` and ``snapshot_key`` comes from
        the sender that owns that camera (the topic says who sent it: the broker's ACL lets
        an edge write under its own prefix only), with a snapshot of that camera. Anything
        else is counted and dropped; nothing about it is stored or announced."""
        source = camera_topic(topic)
        if source is None or source.camera != camera:
            self.refused.refuse(
                source.source if source else "an unknown sender",
                "the payload names another camera than its topic",
                camera,
            )
            return False
        if not self.registry.allows(source.edge, camera):
            self._refuse_camera(source)
            return False
        if snapshot_key is not None and snapshot_camera(snapshot_key) != camera:
            self.refused.refuse(
                source.source, "its snapshot_key is not under the camera's snapshots", camera
            )
            return False
        return True

    def _refuse_camera(self, source: CameraTopic) -> None:
        owner = self.registry.owner(source.camera)
        why = (
            "the camera is not registered"
            if owner is None
            else "the camera is registered to another sender"
        )
        self.refused.refuse(source.source, why, source.camera)

    def handle(self, message: SightingPayload) -> StoredSighting | None:
        """Store ``message``, then act on it if it is a new sighting.

        Returns:
            The stored sighting when it was new (and acted on), else ``None``.
        """
        stored = self.store(message)
        if stored is None:
            return None
        self._act(stored)
        return stored

    def store(self, message: SightingPayload) -> StoredSighting | None:
        """Write ``message`` to the database.

        Returns:
            The sighting when it is new (a ``sighting``, or an update whose sighting was never
            received), ``None`` for a repeat, an update or a ``left``.
        """
        try:
            with self.db.session() as session:
                if message.person is not None and session.get(Person, message.person) is None:
                    message = self._as_unknown(message)
                row = session.get(Sighting, message.id)
                if message.event == "left":
                    if row is None:
                        logger.warning(
                            "camera %s: left for unknown sighting %s", message.camera, message.id
                        )
                    else:
                        row.left_at = row.left_at or message.seen_at
                        row.last_seen = max(row.last_seen, message.seen_at)
                    return None
                if row is not None:
                    if message.event == "sighting_update":
                        replaced = row.snapshot_key
                        self._update(row, message)
                        if replaced is not None and replaced != row.snapshot_key:
                            self._delete_after_commit(session, replaced)
                    else:
                        logger.info(
                            "camera %s: sighting %s was already stored; ignoring the repeat",
                            message.camera,
                            message.id,
                        )
                    return None
                self._close_track(session, message)
                session.add(self._new_row(message))
                session.flush()
                return self._describe(session, message)
        except IntegrityError:
            logger.info("sighting %s was stored meanwhile; ignoring the repeat", message.id)
            return None

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
    def _close_track(session: Any, message: SightingPayload) -> None:
        """Close the open sighting(s) of the message's track that began before it (the
        unknown sighting of a track that is now a person)."""
        closed = session.execute(
            update(Sighting)
            .where(
                Sighting.camera_id == message.camera,
                Sighting.track == message.track,
                Sighting.left_at.is_(None),
                Sighting.first_seen <= message.seen_at,
                Sighting.id != message.id,
            )
            .values(left_at=message.seen_at)
            .execution_options(synchronize_session=False)
        ).rowcount
        if closed:
            logger.info(
                "camera %s: track %d has a new sighting %s; closed %d earlier open one(s)",
                message.camera,
                message.track,
                message.id,
                closed,
            )

    @staticmethod
    def _new_row(message: SightingPayload) -> Sighting:
        top, right, bottom, left = message.box
        return Sighting(
            id=message.id,
            camera_id=message.camera,
            track=message.track,
            person_id=message.person,
            watchlist=message.watchlist,
            distance=message.distance,
            quality=message.quality,
            frame=message.frame,
            t=message.t,
            top=top,
            right=right,
            bottom=bottom,
            left=left,
            first_seen=message.seen_at,
            last_seen=message.seen_at,
            snapshot_key=message.snapshot_key,
            embedding=None if message.embedding is None else embedding_to_bytes(message.embedding),
        )

    @staticmethod
    def _update(row: Sighting, message: SightingPayload) -> None:
        row.distance = message.distance
        row.person_id = message.person
        row.watchlist = message.watchlist
        if message.quality is not None:
            row.quality = message.quality
        if message.snapshot_key is not None:
            row.snapshot_key = message.snapshot_key
        row.top, row.right, row.bottom, row.left = message.box
        row.last_seen = max(row.last_seen, message.seen_at)

    @staticmethod
    def _describe(session: Any, message: SightingPayload) -> StoredSighting:
        camera = session.get(Camera, message.camera)
        person = session.get(Person, message.person) if message.person else None
        action = None
        if message.watchlist is not None:
            action = session.scalar(
                select(Watchlist.action).where(Watchlist.name == message.watchlist)
            )
        return StoredSighting(
            id=message.id,
            camera_id=message.camera,
            camera_name=camera.name if camera is not None else message.camera,
            person_id=message.person,
            person_name=person.name if person is not None else None,
            account_id=person.account_id if person is not None else None,
            watchlist=message.watchlist,
            watchlist_action=action,
            distance=message.distance,
            seen_at=message.seen_at,
            snapshot_key=message.snapshot_key,
        )

    def _act(self, sighting: StoredSighting) -> None:
        data = sighting.event_data()
        if sighting.watchlist_action == "customers" and sighting.account_id:
            # The card goes first and the plain sighting after it, from the same thread: the
            # two would otherwise contend for the database's write lock and the event loop,
            # and the card is what the tellers wait for.
            self._submit_arrival(sighting, data)
        else:
            self.events.publish("sighting", data, audience="viewer")
        for action in list(self._actions):
            try:
                action(sighting)
            except Exception:
                logger.exception(
                    "camera %s: a sighting action failed on sighting %s",
                    sighting.camera_id,
                    sighting.id,
                )

    def _submit_arrival(self, sighting: StoredSighting, data: dict[str, Any]) -> None:
        """Look the account up and publish the card on a pool thread: a slow directory (the
        bank's API, up to its timeout) must not hold up the bus for every camera."""
        pool = self._arrivals
        if pool is None:  # not started: do it here
            self._announce_arrival(sighting, data)
            return
        future = pool.submit(self._announce_arrival, sighting, data)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _announce_arrival(self, sighting: StoredSighting, data: dict[str, Any]) -> None:
        try:
            self.events.publish("customer.arrived", self._arrival(sighting, data), "teller")
        except Exception:
            logger.exception(
                "camera %s: could not announce the arrival of sighting %s",
                sighting.camera_id,
                sighting.id,
            )
        self.events.publish("sighting", data, audience="viewer")

    def _arrival(self, sighting: StoredSighting, data: dict[str, Any]) -> dict[str, Any]:
        account_id = sighting.account_id or ""
        card: CustomerCard | None = None
        error: str | None = None
        try:
            card = self.directory.lookup(account_id)
            if card is None:
                error = f"no account {account_id} in the customer directory"
        except Exception as exc:  # a directory that fails must not stop the arrival
            logger.exception(
                "camera %s: customer directory failed for account %s (person %s)",
                sighting.camera_id,
                account_id,
                sighting.person_id,
            )
            error = f"the customer directory could not answer: {exc}"
        if error is not None:
            logger.warning("camera %s: %s", sighting.camera_id, error)
        return {
            **data,
            "account": account_of(card, account_id, sighting.person_name),
            "account_error": error,
        }

    # queries --------------------------------------------------------------------------------

    def query(
        self,
        camera: str | None = None,
        person: str | None = None,
        watchlist: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        exclude_people: Collection[str] = (),
        exclude_sightings: Collection[str] = (),
    ) -> list[SightingView]:
        """Stored sightings, newest first.

        Args:
            camera: only this camera's.
            person: only this person's (person id).
            watchlist: only matches on this watchlist.
            since: first seen at or after this time.
            until: first seen before this time.
            limit: at most this many (1..1000).
            exclude_people: not these people's (what a reporter may not know of).
            exclude_sightings: not these sightings.
        """
        limit = max(1, min(limit, MAX_LIMIT))
        query = (
            select(Sighting, Person.name)
            .outerjoin(Person, Person.id == Sighting.person_id)
            .order_by(Sighting.first_seen.desc(), Sighting.id)
            .limit(limit)
        )
        if camera is not None:
            query = query.where(Sighting.camera_id == camera)
        if person is not None:
            query = query.where(Sighting.person_id == person)
        if watchlist is not None:
            query = query.where(Sighting.watchlist == watchlist)
        if since is not None:
            query = query.where(Sighting.first_seen >= since)
        if until is not None:
            query = query.where(Sighting.first_seen < until)
        if exclude_people:
            # NOT IN alone would drop the unknown faces too (NULL NOT IN ... is not true).
            query = query.where(
                or_(Sighting.person_id.is_(None), Sighting.person_id.not_in(exclude_people))
            )
        if exclude_sightings:
            query = query.where(Sighting.id.not_in(exclude_sightings))
        with self.db.session() as session:
            return [SightingView(row, name) for row, name in session.execute(query)]

    def get(self, sighting_id: str) -> SightingView | None:
        """One stored sighting, or ``None``."""
        query = (
            select(Sighting, Person.name)
            .outerjoin(Person, Person.id == Sighting.person_id)
            .where(Sighting.id == sighting_id)
        )
        with self.db.session() as session:
            found = session.execute(query).first()
        return None if found is None else SightingView(found[0], found[1])

    # camera status --------------------------------------------------------------------------

    def camera_status(self, camera: str) -> dict[str, Any] | None:
        """The newest status a camera published, or ``None``."""
        with self._lock:
            status = self._statuses.get(camera)
            return None if status is None else dict(status)

    def _on_status(self, message: Message) -> None:
        if not self._running:
            return
        status = self.reader.read(CameraStatusPayload, message)
        if status is None:
            return
        camera = status.camera
        source = camera_topic(message.topic)
        if source is None or source.camera != camera:
            self.refused.refuse(
                source.source if source else "an unknown sender",
                "the payload names another camera than its topic",
                camera,
            )
            return
        # A server camera's last status ("removed") comes after its row is gone; only the
        # servers may write their cameras' topics, and it only clears the camera's status.
        removed_by_server = (
            source.edge is None and status.removed and self.registry.owner(camera) in (None, SERVER)
        )
        if not removed_by_server and not self.registry.allows(source.edge, camera):
            self._refuse_camera(source)
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
