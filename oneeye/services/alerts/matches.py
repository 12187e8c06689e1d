"""Matches: sightings of a case's person, live (a camera now) or retro (a kept unknown face
from before the case was filed), and the notifications they give.

A live sighting of an active case's person (``on_sighting``, a ``SightingService`` action)
becomes a match; so does each kept unknown face of the last ``retro_hours`` that the case's
photos are near and that the live gallery, asked as a camera would ask it, names as the case's
person (``retro_search``). One notification per active subscription (the case's and the
all-cases ones) is written to the outbox in the same transaction as the match, and the notifier
is woken. Each subscriber is told of at most one match per (case, camera) per ``cooldown``
seconds: the cooldown is the subscriber's own and starts only when it was told, so a match
nobody was subscribed to (a retro-search right after filing) holds nobody back, and one who
subscribes later gets the next sighting. A match is ``notified`` when it gave at least one
notification. Until the case is approved its matches are held; approval releases them in the
order they were seen, by the same cooldown (``approve``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from oneeye.gallery.nearest import nearest_distances
from oneeye.metrics import RETRO_SEARCH_SECONDS
from oneeye.services.alerts.errors import CaseApprovedError, CaseClosedError, CaseNotFoundError
from oneeye.services.alerts.words import likeness
from oneeye.services.events import EventHub
from oneeye.services.gallery import GalleryService
from oneeye.services.notify.base import AlertPayload
from oneeye.services.notify.subscriptions import Target, enqueue, outside_cooldown, targets
from oneeye.services.sightings import StoredSighting, photo_url
from oneeye.store.db import Database
from oneeye.store.repos import cases as repo
from oneeye.store.repos.cases import CameraLabel, CaseState, MatchInfo

logger = logging.getLogger(__name__)

WATCHLIST = "amber-alert"
"""The watchlist every case's person is on (its threshold decides matches)."""
RETRO_CHUNK = 20_000
"""Unknown sightings compared per numpy batch in a retro-search."""


class Notifier(Protocol):
    """What alerts need of the notifier: a nudge to send due outbox rows now."""

    def wake(self) -> None:
        """Send due notifications now instead of at the next poll."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A sighting that matched a case, before it is recorded."""

    sighting_id: str
    camera_id: str
    seen_at: datetime
    distance: float
    snapshot_key: str | None


@dataclass(frozen=True, slots=True)
class Approval:
    """What approving a case released."""

    held: int
    released: int
    notifications: int


class MatchService:
    """Records matches with their outbox rows, live and retro, and releases held ones."""

    def __init__(
        self,
        db: Database,
        gallery: GalleryService,
        events: EventHub,
        notifier: Notifier,
        *,
        cooldown: float,
        public_url: str,
        retro_hours: float,
    ) -> None:
        """Record into ``db``; search the live ``gallery``; tell the dashboards through
        ``events`` and wake ``notifier`` after writing outbox rows. ``cooldown``: seconds, each
        subscriber is told of one match per (case, camera) within it; ``public_url``: the
        server's address, for the case links in notifications; ``retro_hours``: how far back a
        retro-search looks."""
        self.db = db
        self.gallery = gallery
        self.events = events
        self.notifier = notifier
        self.cooldown = cooldown
        self.public_url = public_url.rstrip("/")
        self.retro_hours = retro_hours
        self._lock = threading.Lock()
        """Serialises recording matches and approvals, so the cooldown sees every earlier
        match."""

    def threshold(self) -> float:
        """The largest face distance the case watchlist calls a match (what a match's
        likeness is told against)."""
        return self.gallery.gallery.threshold(WATCHLIST)

    def matches(self, case_id: str) -> list[MatchInfo]:
        """A case's matches, live and retro, in the order they were seen."""
        with self.db.session() as session:
            if repo.state(session, case_id) is None:
                raise CaseNotFoundError(f"no case with id {case_id!r}")
            return repo.matches(session, case_id)

    def on_sighting(self, sighting: StoredSighting) -> None:
        """The live-match action: a new sighting of an active case's person is a match."""
        if sighting.watchlist_action != "amber-alert" or sighting.person_id is None:
            return
        with self.db.session() as session:
            case_ids = repo.active_of_person(session, sighting.person_id)
        candidate = Candidate(
            sighting_id=sighting.id,
            camera_id=sighting.camera_id,
            seen_at=sighting.seen_at,
            distance=sighting.distance if sighting.distance is not None else 0.0,
            snapshot_key=sighting.snapshot_key,
        )
        for case_id in case_ids:
            self.record(case_id, [candidate], "live")

    def retro_search(self, case_id: str, now: datetime | None = None) -> list[MatchInfo]:
        """Search the unknown faces of the last ``retro_hours`` for a case's person and
        record each match (kind ``retro``); returns the new matches."""
        now = now or datetime.now(UTC)
        since = now - timedelta(hours=self.retro_hours)
        with self.db.session() as session:
            case = repo.state(session, case_id)
        if case is None:
            raise CaseNotFoundError(f"no case with id {case_id!r}")
        if case.status != "active" or case.person_id is None:
            return []
        person_id = case.person_id
        gallery = self.gallery.gallery
        # The case's photos as the live gallery holds them (they went in when it was filed).
        kept = gallery.templates(person_id)
        templates = (
            np.stack([t.embedding for t in kept]) if kept else np.zeros((0, 128), dtype=np.float32)
        )
        threshold = gallery.threshold(WATCHLIST)
        found: list[tuple[Candidate, npt.NDArray[np.float32]]] = []
        scanned = 0
        started = time.perf_counter()
        with self.db.session() as session:
            for faces, probes in repo.kept_faces(session, since, RETRO_CHUNK):
                scanned += len(faces)
                distances = nearest_distances(probes, templates)
                for index in np.flatnonzero(distances <= threshold):
                    face = faces[int(index)]
                    candidate = Candidate(
                        face.sighting_id,
                        face.camera_id,
                        face.seen_at,
                        float(distances[index]),
                        face.snapshot_key,
                    )
                    found.append((candidate, probes[int(index)]))
        # Confirm with the live gallery: the answer a camera would have given on the case's
        # watchlist (margin rule, other people on it nearer), not only "near one of the
        # case's photos"; a customer with the same face is no rival (issue 12).
        confirmed = []
        if found:
            answers = gallery.identify_batch(np.stack([p for _, p in found]), k=2)
            confirmed = [
                candidate
                for (candidate, _), answer in zip(found, answers, strict=True)
                if (match := answer.match_on(WATCHLIST)) is not None and match.person == person_id
            ]
        took = time.perf_counter() - started
        RETRO_SEARCH_SECONDS.observe(took)
        logger.info(
            "case %s: retro-search done: %d unknown faces since %s, %d matches, %.0f ms",
            case_id,
            scanned,
            since.isoformat(timespec="seconds"),
            len(confirmed),
            took * 1000,
        )
        if not confirmed:
            return []
        confirmed.sort(key=lambda c: c.seen_at)
        return self.record(case_id, confirmed, "retro")

    def record(self, case_id: str, candidates: Sequence[Candidate], kind: str) -> list[MatchInfo]:
        """Store matches and their outbox rows (one transaction), wake the notifier, and tell
        the dashboards."""
        recorded: list[MatchInfo] = []
        notifications = 0
        with self._lock, self.db.session() as session:
            # Locked (on PostgreSQL) against an approval of the same case in another server:
            # a match is either held and released by the approval, or recorded after it.
            case = repo.lock(session, case_id)
            if case is None or case.status != "active":
                return []
            approved = case.approved_at is not None
            photo_key = repo.first_photo_key(session, case.person_id)
            to = targets(session, case_id)
            cameras = repo.cameras(session, {c.camera_id for c in candidates})
            for candidate in candidates:
                if repo.has_match(session, case_id, candidate.sighting_id):
                    continue
                camera = _label(cameras, candidate.camera_id)
                sent = self._outbox(session, case, candidate, kind, camera, to) if approved else 0
                notifications += sent
                notified = sent > 0
                found_at = datetime.now(UTC)
                match_id = repo.add_match(
                    session,
                    case_id=case_id,
                    sighting_id=candidate.sighting_id,
                    camera_id=candidate.camera_id,
                    distance=candidate.distance,
                    kind=kind,
                    seen_at=candidate.seen_at,
                    found_at=found_at,
                    notified=notified,
                    held=not approved,
                )
                recorded.append(
                    MatchInfo(
                        id=match_id,
                        case_id=case_id,
                        sighting_id=candidate.sighting_id,
                        camera_id=candidate.camera_id,
                        camera_name=camera.name or candidate.camera_id,
                        location=camera.location,
                        distance=candidate.distance,
                        kind=kind,
                        seen_at=candidate.seen_at,
                        found_at=found_at,
                        notified=notified,
                        snapshot_key=candidate.snapshot_key,
                        held=not approved,
                    )
                )
        if notifications:
            self._wake(case_id)
        for info in recorded:
            self._announce(case.name, photo_key, info)
        return recorded

    def _announce(self, case_name: str, photo_key: str | None, info: MatchInfo) -> None:
        logger.info(
            "case %s: %s match at camera %s (sighting %s, distance %.3f, %s)",
            info.case_id,
            info.kind,
            info.camera_id,
            info.sighting_id,
            info.distance,
            "notified"
            if info.notified
            else "held until the case is approved"
            if info.held
            else "nobody to tell (no subscriber, or each within its cooldown)",
        )
        self.events.publish(
            "alert.sighting",
            {
                "case_id": info.case_id,
                "case_name": case_name,
                "match_id": info.id,
                "sighting_id": info.sighting_id,
                "camera_id": info.camera_id,
                "camera_name": info.camera_name,
                "location": info.location,
                "seen_at": info.seen_at.isoformat(),
                "distance": round(info.distance, 4),
                "likeness": likeness(info.distance, self.threshold()),
                "snapshot_url": photo_url(info.snapshot_key),
                "case_photo_url": photo_url(photo_key),
                "kind": info.kind,
                "minutes_ago": int((info.found_at - info.seen_at).total_seconds() // 60),
                "notified": info.notified,
                "held": info.held,
            },
            audience="viewer",
        )

    def approve(self, case_id: str, *, actor: str) -> Approval:
        """Approve a case and release its held matches, in the order they were seen, by the
        usual (case, camera) cooldown, writing their outbox rows (one transaction).

        Raises:
            CaseNotFoundError: no case with this id.
            CaseClosedError: the case is resolved or expired (nothing would be sent).
            CaseApprovedError: the case is approved already.
        """
        released = notifications = 0
        with self._lock, self.db.session() as session:
            case = repo.lock(session, case_id)
            if case is None:
                raise CaseNotFoundError(f"no case with id {case_id!r}")
            if case.status != "active":
                raise CaseClosedError(f"case {case_id} is {case.status}; it sends no alerts")
            if case.approved_at is not None:
                raise CaseApprovedError(f"case {case_id} is approved already")
            repo.approve(session, case_id, actor, datetime.now(UTC))
            held = repo.held(session, case_id)
            to = targets(session, case_id)
            cameras = repo.cameras(session, {match.camera_id for match in held})
            for match in held:
                candidate = Candidate(
                    match.sighting_id,
                    match.camera_id,
                    match.seen_at,
                    match.distance,
                    match.snapshot_key,
                )
                camera = _label(cameras, match.camera_id)
                # Queued before the next one's cooldown is checked, so that one sees them.
                sent = self._outbox(session, case, candidate, match.kind, camera, to)
                repo.release(session, match.id, notified=sent > 0)
                if sent:
                    released += 1
                    notifications += sent
        if notifications:
            self._wake(case_id)
        return Approval(len(held), released, notifications)

    def _wake(self, case_id: str) -> None:
        try:
            self.notifier.wake()
        except Exception:  # the rows are stored; the notifier's next poll sends them
            logger.exception("case %s: could not wake the notifier", case_id)

    def _outbox(
        self,
        session: Session,
        case: CaseState,
        candidate: Candidate,
        kind: str,
        camera: CameraLabel,
        to: Sequence[Target],
    ) -> int:
        """One pending notification per subscription in ``to`` this match is due to (outside
        that subscriber's cooldown); returns how many were queued."""
        payload = AlertPayload(
            case_id=case.id,
            case_name=case.name,
            description=case.description,
            person_id=case.person_id,
            camera_id=candidate.camera_id,
            camera_name=camera.name,
            location=camera.location,
            seen_at=candidate.seen_at,
            distance=round(candidate.distance, 4),
            likeness=likeness(candidate.distance, self.threshold()),
            sighting_id=candidate.sighting_id,
            snapshot_key=candidate.snapshot_key,
            kind=kind,
            case_url=f"{self.public_url}/cases/{case.id}",
        )
        due = outside_cooldown(
            session, case.id, candidate.camera_id, candidate.seen_at, to, self.cooldown
        )
        return enqueue(session, case.id, payload, due) if due else 0


def _label(cameras: dict[str, CameraLabel], camera_id: str) -> CameraLabel:
    """A camera's name and location; an unregistered one by its id, with no location."""
    return cameras.get(camera_id) or CameraLabel(camera_id, "")
