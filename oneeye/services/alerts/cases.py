"""Cases: filing, reading, approving, resolving and expiring them, and what a reporter may
know of them.

Filing a case checks every photo first (exactly one usable face each, through the enrolment
service) and stores nothing if any is bad; then the person goes on the ``amber-alert``
watchlist (enrolment writes the person and templates, in the same transaction as the case row)
and their templates into the live gallery, which every camera worker in this process shares,
so the next frame each worker processes already looks for the face. Then the recent past is
searched (``MatchService.retro_search``) and each match is reported at once.

Filing is open to reporters, which makes a photo of anyone a face every camera looks for; so a
case's sightings go to addresses outside the server only once a coordinator or admin approved
it (``approve``). A case filed by a coordinator or admin is approved as it is filed. Resolving
or expiring a case takes its templates out of the gallery at once and stops its notifications.
Who may do what is in ``access``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from oneeye.config import AlertSettings
from oneeye.errors import FaceError, ImageError, OneEyeError
from oneeye.services.alerts.access import CaseScope, filed, owns_case, sees_own_cases_only
from oneeye.services.alerts.errors import AlertError, CaseClosedError, CaseNotFoundError
from oneeye.services.alerts.matches import WATCHLIST, MatchService
from oneeye.services.alerts.words import photo_advice
from oneeye.services.auth import AuthService, Principal
from oneeye.services.enrolment import EnrolmentError, EnrolmentService
from oneeye.services.events import EventHub
from oneeye.services.gallery import GalleryEntry, GalleryService
from oneeye.services.notify.subscriptions import (
    CheckedSubscription,
    SubscriptionInfo,
    audit_added,
    store,
)
from oneeye.services.sightings import photo_url
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.store.repos import cases as repo
from oneeye.store.repos.cases import CaseInfo
from oneeye.types import Face, FaceBox
from oneeye.vision.engine import Deadline

logger = logging.getLogger(__name__)

PHOTO_KIND = "cases"
"""Case photos are stored as ``cases/...``: shown to every viewer, like the alert itself."""
STATUSES = ("active", "resolved", "expired")
MAX_PHOTOS = 10
MAX_NAME, MAX_DESCRIPTION, MAX_CONTACT = 200, 5000, 200
MAX_HOURS = 24.0 * 366
CASE_EVENTS = frozenset(
    {
        "case.created",
        "case.approved",
        "case.resolved",
        "case.expired",
        "alert.sighting",
        "notify.failed",
    }
)
"""The dashboard events about one case (``case_id`` in the payload): a reporter gets only
those of its own cases."""


@dataclass(frozen=True, slots=True)
class PhotoCheck:
    """Whether a photo can be filed: exactly one usable face, or the reason it cannot."""

    usable: bool
    reason: str | None
    """Why not, in the engine's words (``None`` when usable)."""
    box: FaceBox | None
    quality: float | None
    advice: str | None = None
    """Why not and what to do, in plain words for a parent (``words.photo_advice``)."""


def _text(value: str, what: str, limit: int, *, required: bool = False) -> str:
    cleaned = value.strip()
    if required and not cleaned:
        raise AlertError(f"a case needs a {what}")
    if len(cleaned) > limit:
        raise AlertError(f"a case's {what} is at most {limit} characters, got {len(cleaned)}")
    return cleaned


def delete_photos(photos: PhotoStore, keys: Iterable[str | None]) -> int:
    """Delete stored photos, logging (not raising) each that cannot be; returns how many
    were deleted."""
    deleted = 0
    for key in keys:
        if key is None:
            continue
        try:
            deleted += bool(photos.delete(key))
        except OneEyeError:
            logger.exception("could not delete photo %s; it is orphaned", key)
    return deleted


class CaseService:
    """Files cases and takes them through their life: approved, resolved or expired."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        enrolment: EnrolmentService,
        gallery: GalleryService,
        events: EventHub,
        auth: AuthService,
        matches: MatchService,
        settings: AlertSettings,
    ) -> None:
        """Keep cases in ``db`` and their photos in ``photos``; check photos and add the
        person through ``enrolment``, and their templates to the live ``gallery``; tell the
        dashboards through ``events``; audit through ``auth``; search the past and release
        held matches through ``matches``; expiry from ``settings``."""
        self.db = db
        self.photos = photos
        self.enrolment = enrolment
        self.gallery = gallery
        self.events = events
        self.auth = auth
        self.matches = matches
        self.settings = settings

    # photos ---------------------------------------------------------------------------------

    def check_photo(
        self, data: bytes, filename: str = "", *, deadline: Deadline | None = None
    ) -> PhotoCheck:
        """Whether a photo can be filed (the report page's instant check); nothing is
        stored. ``TimeLimitError`` when ``deadline`` passes first."""
        try:
            face, _ = self.enrolment.face_of_photo(data, filename, deadline=deadline)
        except (ImageError, FaceError) as exc:
            return PhotoCheck(
                usable=False, reason=str(exc), box=None, quality=None, advice=photo_advice(exc)
            )
        return PhotoCheck(usable=True, reason=None, box=face.box, quality=face.quality.score)

    # filing ---------------------------------------------------------------------------------

    def create_case(
        self,
        name: str,
        description: str,
        contact: str,
        photos: Sequence[tuple[bytes, str]],
        *,
        actor: str,
        filed_by: str | None = None,
        approved: bool = False,
        expires_at: datetime | None = None,
        deadline: Deadline | None = None,
        role: str = "",
        address: str = "",
        subscribe: Sequence[CheckedSubscription] = (),
    ) -> CaseInfo:
        """File a case: every camera looks for the person at once, and the recent past is
        searched. Until the case is approved its matches are held (not sent outside).

        Args:
            name: the person's name.
            description: what they look like, wear, where last seen.
            contact: whom to call.
            photos: ``(bytes, filename)`` of each photo; each must show exactly one usable
                face.
            actor: who files it (for the audit log and the case's reporter).
            filed_by: who owns it, by row id (``Principal.ref``); ``None``: no owner, only
                coordinators and admins may act on it.
            approved: approve it as it is filed (the filer is a coordinator or admin).
            expires_at: when the case expires; ``None``: ``default_hours`` from now.
            deadline: when to give up checking the photos (``TimeLimitError``; nothing is
                stored then).
            role, address: the filer's role and client address, for the audit rows (``""``
                when it did not come over the web).
            subscribe: who to tell of the case's sightings (the reporter's email or phone),
                stored in the case's own transaction: the retro-search that follows already
                tells them, and a case is never filed without them or they without it.

        Returns:
            The case, with the matches retro-search found counted.

        Raises:
            AlertError: a bad field or expiry.
            UploadTooLargeError, ImageError, FaceError: a photo cannot be used (its file
                name in the message); nothing was stored.
        """
        name = _text(name, "name", MAX_NAME, required=True)
        description = _text(description, "description", MAX_DESCRIPTION)
        contact = _text(contact, "contact", MAX_CONTACT)
        if not photos:
            raise AlertError("a case needs at least one photo of the person")
        if len(photos) > MAX_PHOTOS:
            raise AlertError(f"a case takes at most {MAX_PHOTOS} photos, got {len(photos)}")
        now = datetime.now(UTC)
        if expires_at is None:
            expires_at = now + timedelta(hours=self.settings.default_hours)
        elif expires_at.tzinfo is None or expires_at <= now:
            raise AlertError("a case's expiry must be a time (with its zone) in the future")
        # Every photo is checked before anything is stored.
        faces = [
            self.enrolment.face_of_photo(data, filename, deadline=deadline)
            for data, filename in photos
        ]

        keys: list[str] = []
        try:
            for _, jpeg in faces:
                keys.append(self.photos.add(PHOTO_KIND, jpeg, "jpg"))
            case_id, person_id, entries, subscribed = self._store_case(
                name,
                description,
                contact,
                actor,
                filed_by,
                approved,
                expires_at,
                [(face, key) for (face, _), key in zip(faces, keys, strict=True)],
                subscribe,
            )
        except BaseException:
            delete_photos(self.photos, keys)
            raise
        try:
            self.gallery.add_templates([WATCHLIST], entries)
        except BaseException:
            with self.db.session() as session:
                repo.delete_case(session, case_id, person_id)
            delete_photos(self.photos, keys)
            raise
        logger.info(
            "case %s filed by %s: %d photos in the gallery (person %s)",
            case_id,
            actor,
            len(entries),
            person_id,
        )
        self.auth.audit(
            # By id: the audit log keeps no names (the case row has it while the case is kept).
            actor,
            "case.create",
            case_id,
            {"photos": len(keys), "person": person_id, "approved": approved},
            role=role,
            address=address,
        )
        if approved:
            self.auth.audit(
                actor, "case.approve", case_id, {"as_filed": True}, role=role, address=address
            )
        for subscription in subscribed:
            audit_added(self.auth, subscription, actor=actor)
        info = self.case(case_id)
        self.events.publish("case.created", case_event(info), audience="viewer")
        try:
            self.matches.retro_search(case_id)
        except Exception:  # the case is live; a failed look at the past must not undo it
            logger.exception("case %s: retro-search failed", case_id)
        return self.case(case_id)

    def _store_case(
        self,
        name: str,
        description: str,
        contact: str,
        actor: str,
        filed_by: str | None,
        approved: bool,
        expires_at: datetime,
        faces: Sequence[tuple[Face, str]],
        subscribe: Sequence[CheckedSubscription],
    ) -> tuple[str, str, list[GalleryEntry], list[SubscriptionInfo]]:
        """The person, their templates, the case row and its first subscriptions, in one
        transaction."""
        case_id = uuid.uuid4().hex
        with self.db.session() as session:
            try:
                person_id, entries = self.enrolment.add_person_with_faces(
                    session,
                    name=name,
                    notes=f"Amber Alert case {case_id}",
                    watchlist=WATCHLIST,
                    faces=faces,
                )
            except EnrolmentError:
                raise AlertError(
                    f"the {WATCHLIST!r} watchlist is missing; start the server once to create it"
                ) from None
            repo.add(
                session,
                case_id=case_id,
                person_id=person_id,
                name=name,
                description=description,
                contact=contact,
                reporter=actor,
                filed_by=filed_by,
                approved=approved,
                now=datetime.now(UTC),
                expires_at=expires_at,
            )
            session.flush()  # the case row before the subscriptions that refer to it
            subscribed = [store(session, s, actor=actor, case_id=case_id) for s in subscribe]
        return case_id, person_id, entries, subscribed

    # reading --------------------------------------------------------------------------------

    def case(self, case_id: str) -> CaseInfo:
        """One case; ``CaseNotFoundError`` if there is none with this id."""
        with self.db.session() as session:
            info = repo.get(session, case_id)
        if info is None:
            raise CaseNotFoundError(f"no case with id {case_id!r}")
        return info

    def cases(
        self,
        status: str | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        filed_by: Principal | None = None,
    ) -> list[CaseInfo]:
        """Cases, newest first; only those with ``status`` if given, and only those
        ``filed_by`` filed if given (what a reporter sees)."""
        if status is not None and status not in STATUSES:
            raise AlertError(f"a case's status is one of {', '.join(STATUSES)}; got {status!r}")
        with self.db.session() as session:
            return repo.search(
                session,
                status=status,
                filed_by=None if filed_by is None else (filed_by.ref, filed_by.actor),
                limit=max(1, min(limit, 1000)),
                offset=offset,
            )

    def filed_by(self, case_id: str, principal: Principal) -> bool:
        """Whether ``principal`` filed the case (``False`` for an unknown id)."""
        try:
            return owns_case(principal, self.case(case_id))
        except CaseNotFoundError:
            return False

    def require_active(self, case_id: str) -> None:
        """``CaseNotFoundError`` / ``CaseClosedError`` unless the case is active."""
        with self.db.session() as session:
            state = repo.state(session, case_id)
        if state is None:
            raise CaseNotFoundError(f"no case with id {case_id!r}")
        if state.status != "active":
            raise CaseClosedError(f"case {case_id} is {state.status}; it sends no alerts")

    def require(self, case_id: str) -> None:
        """``CaseNotFoundError`` unless the case exists."""
        with self.db.session() as session:
            if repo.state(session, case_id) is None:
                raise CaseNotFoundError(f"no case with id {case_id!r}")

    def scope_of(self, principal: Principal) -> CaseScope | None:
        """What ``principal`` may know of the cases' people (see ``CaseScope``); ``None`` for
        viewers, tellers and above, who see every person and sighting. Database work: call it
        in a thread."""
        if not sees_own_cases_only(principal):
            return None
        with self.db.session() as session:
            cases = repo.owners(session)
            listed = repo.people_on(session, WATCHLIST)
            matched = repo.matched_sightings(session)
        mine = [c for c in cases if filed(principal, c.filed_by, c.reporter)]
        released = {c.id for c in mine if c.approved}
        people = listed | {c.person_id for c in cases if c.person_id is not None}
        own = {c.person_id for c in mine if c.person_id is not None}
        own_released = {c.person_id for c in mine if c.person_id is not None and c.approved}
        return CaseScope(
            hidden_people=frozenset(people - own),
            held_people=frozenset(people - own_released),
            held_sightings=frozenset(sid for case_id, sid in matched if case_id not in released),
        )

    def photo_visible(self, principal: Principal, key: str) -> bool:
        """Whether ``principal`` may fetch the stored photo ``key``: for a reporter, a case
        photo only of its own cases, and a snapshot not of a sighting it may not know of (see
        ``CaseScope``). Database work: call it in a thread."""
        scope = self.scope_of(principal)
        if scope is None:
            return True
        with self.db.session() as session:
            if key.startswith(f"{PHOTO_KIND}/"):
                owners = repo.photo_owners(session, key)
                return bool(owners) and all(scope.person_visible(p) for p in owners)
            seen = repo.sightings_with_snapshot(session, key)
        return all(scope.sighting_visible(sid, person) for sid, person in seen)

    # approval and closing -------------------------------------------------------------------

    def approve(self, case_id: str, *, actor: str, role: str = "", address: str = "") -> CaseInfo:
        """Let a case's sightings leave the server: from now on its matches notify its
        subscribers, and the matches held since it was filed are released now, in the order
        they were seen, by the usual (case, camera) cooldown. Audited (``case.approve``, with
        the approver's ``role`` and client ``address``).

        Raises:
            CaseNotFoundError: no case with this id.
            CaseClosedError: the case is resolved or expired (nothing would be sent).
            CaseApprovedError: the case is approved already.
        """
        done = self.matches.approve(case_id, actor=actor)
        self.auth.audit(
            actor,
            "case.approve",
            case_id,
            {"held": done.held, "released": done.released, "notifications": done.notifications},
            role=role,
            address=address,
        )
        logger.info(
            "case %s approved by %s: %d held matches, %d released (%d notifications)",
            *(case_id, actor, done.held, done.released, done.notifications),
        )
        info = self.case(case_id)
        self.events.publish("case.approved", case_event(info), audience="viewer")
        return info

    def resolve(self, case_id: str, *, actor: str) -> CaseInfo:
        """Close a case as found: its templates leave the gallery at once and it notifies no
        more. ``CaseClosedError`` if it is not active."""
        return self._close(case_id, "resolved", actor)

    def _close(self, case_id: str, status: str, actor: str) -> CaseInfo:
        with self.db.session() as session:
            state = repo.lock(session, case_id)
            if state is None:
                raise CaseNotFoundError(f"no case with id {case_id!r}")
            if state.status != "active":
                raise CaseClosedError(f"case {case_id} is already {state.status}")
            repo.close(session, case_id, status, actor, datetime.now(UTC))
        if state.person_id is not None:
            self.gallery.remove_person(state.person_id)
        logger.info("case %s %s by %s; its templates left the gallery", case_id, status, actor)
        self.auth.audit(actor, f"case.{status.removesuffix('d')}", case_id)
        info = self.case(case_id)
        self.events.publish(f"case.{status}", case_event(info), audience="viewer")
        return info

    def expire_due(self, now: datetime | None = None) -> list[str]:
        """Expire every active case whose time has passed; returns their ids."""
        now = now or datetime.now(UTC)
        with self.db.session() as session:
            due = repo.due_to_expire(session, now)
        expired = []
        for case_id in due:
            try:
                self._close(case_id, "expired", "system")
                expired.append(case_id)
            except CaseClosedError:
                pass  # resolved meanwhile
        return expired


def case_event(info: CaseInfo) -> dict[str, Any]:
    """The dashboard event about a case. Every viewer gets these: no contact details
    (contact, reporter, approver) in them."""
    return {
        "case_id": info.id,
        "name": info.name,
        "description": info.description,
        "status": info.status,
        "approved": info.approved_at is not None,
        "approved_at": None if info.approved_at is None else info.approved_at.isoformat(),
        "created_at": info.created_at.isoformat(),
        "expires_at": info.expires_at.isoformat(),
        "closed_at": None if info.closed_at is None else info.closed_at.isoformat(),
        "photo_url": photo_url(info.photo_keys[0]) if info.photo_keys else None,
        "matches": info.matches,
    }
