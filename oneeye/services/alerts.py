"""Amber Alert cases: a photo of a missing (or wanted) person that every camera looks for.

Filing a case checks every photo first (exactly one usable face each) and stores nothing if
any is bad; then the person goes on the ``amber-alert`` watchlist and their templates into the
live gallery, which every camera worker in this process shares, so the next frame each worker
processes already looks for the face. Then the kept embeddings of unknown faces from the last
``retro_hours`` are searched (vectorised numpy, confirmed by the live gallery so the answer is
the one a camera would have given) and each match is reported at once: "seen at camera 3,
20 minutes ago".

A live sighting of a case's person (a ``SightingService`` action) becomes a ``CaseMatch``;
one notification per active subscription (the case's and the all-cases ones) is written to
the outbox in the same transaction, and the notifier is woken. At most one match per
(case, camera) per ``cooldown`` seconds notifies; later ones inside it are stored, silently.

Who may do what (the ``may_*`` functions below; the web layer answers with them): a case is
owned by the user or key that filed it. Its filer, coordinators and admins may change it,
manage its subscriptions and resolve it; nobody else. A reporter sees only its own cases
(others' are "not found" to it, so their existence is not revealed); viewers and tellers see
every case; the contact details (``contact``, ``reporter``, subscribers' addresses) are for
tellers and above and the filer. Filing is open to reporters, which makes a photo of anyone a
face every camera looks for; so a case's sightings go to addresses outside the server (the
outbox: email, SMS, webhooks) only once a coordinator or admin approved it. Cameras and
dashboards look at once, approved or not. Matches found before approval (live and
retro-search) are stored as ``held`` and shown on the dashboards; approval releases them in the
order they were seen, with the usual (case, camera) cooldown, so none is lost and none is sent
twice. A case filed by a coordinator or admin is approved as it is filed. Each approval writes
a ``case.approve`` audit row.

Resolving or expiring a case takes its templates out of the gallery at once and stops its
notifications. After ``retention_days`` a closed case's photos, templates, person and the
snapshots of its sightings are deleted (the case row stays as the record); embeddings of
unknown faces are deleted after ``unknown_retention_hours``. A background loop expires cases;
``purge`` runs in every sweep of the retention service (``oneeye.services.retention``).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from oneeye.config import AlertSettings
from oneeye.errors import FaceError, ImageError, OneEyeError
from oneeye.services.auth import Principal
from oneeye.services.enrolment import EnrolmentService, encode_jpeg
from oneeye.services.events import EventHub
from oneeye.services.gallery import GalleryEntry, GalleryService
from oneeye.services.outbound import OutboundGuard, OutboundRefusedError
from oneeye.services.sightings import SightingService, StoredSighting, photo_url
from oneeye.store.db import Database
from oneeye.store.models import (
    EMBEDDING_BYTES,
    AlertCase,
    Camera,
    CaseMatch,
    FaceTemplate,
    Notification,
    Person,
    Sighting,
    Subscription,
    Watchlist,
    embedding_to_bytes,
    new_id,
    utcnow,
)
from oneeye.store.photos import PhotoStore
from oneeye.types import Face, FaceBox
from oneeye.vision.engine import Deadline

logger = logging.getLogger(__name__)

WATCHLIST = "amber-alert"
"""The watchlist every case's person is on (its threshold decides matches)."""
PHOTO_KIND = "cases"
"""Case photos are stored as ``cases/...``: shown to every viewer, like the alert itself."""
STATUSES = ("active", "resolved", "expired")
CHANNELS = ("email", "sms", "webhook")
MAX_PHOTOS = 10
MAX_NAME, MAX_DESCRIPTION, MAX_CONTACT = 200, 5000, 200
MAX_HOURS = 24.0 * 366
SWEEP_EVERY = 2.0
"""Seconds between two expiry checks."""
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
RETRO_CHUNK = 20_000
"""Unknown sightings compared per numpy batch in a retro-search."""

_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]+$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class Notifier(Protocol):
    """What alerts need of the notifier: a nudge to send due outbox rows now."""

    def wake(self) -> None:
        """Send due notifications now instead of at the next poll."""


class AlertError(OneEyeError):
    """A case or subscription cannot be created or changed as asked."""


class CaseNotFoundError(AlertError):
    """No case has this id."""


class CaseClosedError(AlertError):
    """The case is no longer active."""


class SubscriptionNotFoundError(AlertError):
    """No subscription has this id."""


class CaseApprovedError(AlertError):
    """The case is approved already."""


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """A case as the API shows it."""

    id: str
    name: str
    description: str
    contact: str
    reporter: str
    status: str
    person_id: str | None
    photo_keys: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    purged_at: datetime | None
    matches: int
    last_seen_at: datetime | None
    filed_by: str | None = None
    """The owner by row id (``user:<id>`` / ``key:<id>``); ``None``: no owner below
    coordinator."""
    approved_at: datetime | None = None
    """When its sightings were allowed to leave the server; ``None``: waiting for approval."""
    approved_by: str | None = None


@dataclass(frozen=True, slots=True)
class MatchInfo:
    """A sighting of a case's person, live or found in the past."""

    id: int
    case_id: str
    sighting_id: str
    camera_id: str
    camera_name: str
    location: str
    distance: float
    kind: str
    seen_at: datetime
    found_at: datetime
    notified: bool
    snapshot_key: str | None
    held: bool = False
    """Found before the case was approved: not sent yet."""


@dataclass(frozen=True, slots=True)
class CaseScope:
    """What a reporter may know of the people of Amber Alert cases (``AlertService.scope_of``).

    A case's person (and anyone on the ``amber-alert`` watchlist) exists for a reporter only if
    it filed a case for them; where and when they were seen, only once that case is approved.
    Everyone else is untouched: customers and unknown faces are seen as by a viewer."""

    hidden_people: frozenset[str]
    """Case people whose name, photos and templates are not for this reporter."""
    held_people: frozenset[str]
    """Case people whose sightings are not (yet) for this reporter: ``hidden_people`` and the
    people of its own cases that wait for approval."""
    held_sightings: frozenset[str]
    """Sightings matched to such a case while unknown (retro-search), by id."""

    def person_visible(self, person_id: str | None) -> bool:
        """Whether the person exists for the reporter."""
        return person_id is None or person_id not in self.hidden_people

    def sighting_visible(self, sighting_id: str, person_id: str | None) -> bool:
        """Whether the reporter may learn of this sighting (its camera, time, snapshot)."""
        if person_id is not None and person_id in self.held_people:
            return False
        return sighting_id not in self.held_sightings


@dataclass(frozen=True, slots=True)
class PhotoCheck:
    """Whether a photo can be filed: exactly one usable face, or the reason it cannot."""

    usable: bool
    reason: str | None
    box: FaceBox | None
    quality: float | None


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """A subscription as the API shows it (the webhook secret only when it is created)."""

    id: int
    case_id: str | None
    channel: str
    address: str
    active: bool
    created_by: str
    created_at: datetime
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one retention sweep deleted."""

    cases: int
    photos: int
    snapshots: int
    embeddings: int


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A sighting that matched a case, before it is recorded."""

    sighting_id: str
    camera_id: str
    seen_at: datetime
    distance: float
    snapshot_key: str | None


def check_address(channel: str, address: str) -> str:
    """``address`` cleaned if it fits ``channel`` (an email address, an E.164 phone number,
    an http(s) URL), else an ``AlertError`` saying what was expected."""
    address = address.strip()
    if any(unicodedata.category(ch) == "Cc" for ch in address):
        # A CR or LF in an address would end up in an email header or an HTTP request line.
        raise AlertError("a subscription's address cannot contain control characters")
    if channel == "email":
        if len(address) > 254 or not _EMAIL.match(address):
            raise AlertError(
                f"an email subscription needs an address like name@example.org, got {address!r}"
            )
        return address
    if channel == "sms":
        compact = re.sub(r"[\s().-]", "", address)
        if not _E164.match(compact):
            raise AlertError(
                "an SMS subscription needs a phone number in international (E.164) form, "
                f"like +15551234567; got {address!r}"
            )
        return compact
    if channel == "webhook":
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(address) > 2000:
            raise AlertError(
                f"a webhook subscription needs an http:// or https:// URL, got {address!r}"
            )
        return address
    raise AlertError(f"a subscription's channel is one of {', '.join(CHANNELS)}; got {channel!r}")


def _text(value: str, what: str, limit: int, *, required: bool = False) -> str:
    cleaned = value.strip()
    if required and not cleaned:
        raise AlertError(f"a case needs a {what}")
    if len(cleaned) > limit:
        raise AlertError(f"a case's {what} is at most {limit} characters, got {len(cleaned)}")
    return cleaned


# who may do what -----------------------------------------------------------------------------


def sees_own_cases_only(principal: Principal) -> bool:
    """Whether ``principal`` is a reporter (and not more): it sees only the cases it filed."""
    return principal.allows("reporter") and not principal.allows("teller")


def owns_case(principal: Principal, case: CaseInfo) -> bool:
    """Whether ``principal`` filed ``case`` (same user or key row, and same name: a row id a
    database reused for a new user does not inherit the case)."""
    return case.filed_by == principal.ref and case.reporter == principal.actor


def may_see_case(principal: Principal, case: CaseInfo) -> bool:
    """Whether ``case`` exists for ``principal``: viewers and tellers and above see every case,
    a reporter only its own."""
    if not principal.allows("viewer"):
        return False
    return not sees_own_cases_only(principal) or owns_case(principal, case)


def may_manage_case(principal: Principal, case: CaseInfo) -> bool:
    """Whether ``principal`` may change, resolve or manage the subscriptions of ``case``: its
    filer (a reporter or above), coordinators and admins."""
    if principal.allows("coordinator"):
        return True
    return principal.allows("reporter") and owns_case(principal, case)


def may_see_contact(principal: Principal, case: CaseInfo) -> bool:
    """Whether ``principal`` may read ``case``'s contact details (its contact, who filed it,
    who approved it, its subscribers' addresses): tellers and above, and the filer."""
    return principal.allows("teller") or owns_case(principal, case)


def may_see_held(principal: Principal) -> bool:
    """Whether ``principal`` sees the matches held while a case waits for approval (where and
    when the person was seen): viewers, tellers and above do; a reporter, even the filer, learns
    only how many there are until the case is approved, so that filing someone's photo is no
    way to follow them."""
    return not sees_own_cases_only(principal)


def as_seen_by(principal: Principal, case: CaseInfo) -> CaseInfo:
    """``case`` as ``principal`` may know it: for a reporter, the matches of a case that waits
    for approval are neither counted nor dated (``held_matches`` says how many there are)."""
    if case.approved_at is not None or may_see_held(principal):
        return case
    return replace(case, matches=0, last_seen_at=None)


def held_matches(case: CaseInfo) -> int:
    """How many of ``case``'s matches wait for its approval (all of them until then: approval
    releases every held match, and a match of an approved case is never held)."""
    return case.matches if case.approved_at is None else 0


def visible_matches(principal: Principal, matches: Sequence[MatchInfo]) -> list[MatchInfo]:
    """The matches ``principal`` may see: a reporter not the held ones."""
    return [m for m in matches if not m.held or may_see_held(principal)]


def may_approve(principal: Principal) -> bool:
    """Whether ``principal`` may approve cases (coordinators and admins); filing as one of
    them approves the case at once."""
    return principal.allows("coordinator")


def _embeddings(blobs: Sequence[bytes]) -> npt.NDArray[np.float32]:
    """Stored embeddings as an (n, 128) array (damaged ones must be filtered out first)."""
    if not blobs:
        return np.zeros((0, 128), dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32)
    return flat.reshape(len(blobs), 128)


def nearest_distances(
    probes: npt.NDArray[np.float32], templates: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """For each row of ``probes`` (m, 128), the euclidean distance to the nearest row of
    ``templates`` (n, 128), in one matrix product."""
    if len(probes) == 0 or len(templates) == 0:
        return np.full(len(probes), np.inf, dtype=np.float32)
    squared = (
        np.einsum("ij,ij->i", probes, probes)[:, None]
        + np.einsum("ij,ij->i", templates, templates)[None, :]
        - 2.0 * probes @ templates.T
    )
    nearest: npt.NDArray[np.float32] = np.sqrt(np.maximum(squared.min(axis=1), 0.0)).astype(
        np.float32
    )
    return nearest


class AlertService:
    """Cases, their matches and subscriptions, the live-match action and the sweeps."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        enrolment: EnrolmentService,
        gallery: GalleryService,
        events: EventHub,
        sightings: SightingService,
        notifier: Notifier,
        settings: AlertSettings,
        *,
        cooldown: float,
        public_url: str,
        sweep_every: float = SWEEP_EVERY,
        outbound: OutboundGuard | None = None,
    ) -> None:
        """Set up the service and register its live-match action with ``sightings``.

        Args:
            db: the database.
            photos: where case photos are kept (and snapshots deleted from).
            enrolment: decodes uploads and finds their one face.
            gallery: the live gallery the camera workers search.
            events: dashboard events.
            sightings: the sightings consumer; every new sighting is checked against cases.
            notifier: woken after outbox rows are written (anything with ``wake()``).
            settings: expiry, retention and retro-search settings.
            cooldown: seconds; one notified match per (case, camera) within it.
            public_url: the server's address, for the case links in notifications.
            sweep_every: seconds between expiry checks of the background loop.
            outbound: refuses webhook URLs that reach internal addresses when subscribed
                (default: no internal host allowed).
        """
        self.db = db
        self.photos = photos
        self.enrolment = enrolment
        self.gallery = gallery
        self.events = events
        self.notifier = notifier
        self.settings = settings
        self.cooldown = cooldown
        self.public_url = public_url.rstrip("/")
        self.sweep_every = sweep_every
        self.outbound = outbound if outbound is not None else OutboundGuard()
        self._lock = threading.Lock()
        """Serialises recording matches, so the cooldown sees every earlier match."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        sightings.add_action(self.on_sighting)

    # lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop that expires cases (``purge`` runs on the retention service's
        schedule, ``oneeye.services.retention``)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop (within one sweep)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.expire_due()
            except Exception:  # one failed sweep is logged; the next one tries again
                logger.exception("alerts: a sweep failed")
            self._stop.wait(self.sweep_every)

    # photos ---------------------------------------------------------------------------------

    def _face_of(
        self, data: bytes, filename: str, deadline: Deadline | None = None
    ) -> tuple[Face, bytes]:
        """The photo's one usable face and the photo re-encoded (upright, no EXIF).

        Anyone with the reporter role sends these: the photo is shrunk to the enrolment
        service's ``photo_max_side`` and searched with the cheap detection stages only."""
        image = self.enrolment.decode_upload(data, filename, max_side=self.enrolment.photo_max_side)
        try:
            face = self.enrolment.engine.enrolment_face(image, thorough=False, deadline=deadline)
        except FaceError as exc:
            where = f"{filename}: " if filename else ""
            raise FaceError(f"{where}{exc}") from None
        return face, encode_jpeg(image)

    def check_photo(
        self, data: bytes, filename: str = "", *, deadline: Deadline | None = None
    ) -> PhotoCheck:
        """Whether a photo can be filed (the report page's instant check); nothing is
        stored. ``TimeLimitError`` when ``deadline`` passes first."""
        try:
            face, _ = self._face_of(data, filename, deadline)
        except (ImageError, FaceError) as exc:
            return PhotoCheck(usable=False, reason=str(exc), box=None, quality=None)
        return PhotoCheck(usable=True, reason=None, box=face.box, quality=face.quality.score)

    # cases ----------------------------------------------------------------------------------

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
        now = utcnow()
        if expires_at is None:
            expires_at = now + timedelta(hours=self.settings.default_hours)
        elif expires_at.tzinfo is None or expires_at <= now:
            raise AlertError("a case's expiry must be a time (with its zone) in the future")
        # Every photo is checked before anything is stored.
        faces = [self._face_of(data, filename, deadline) for data, filename in photos]

        keys: list[str] = []
        try:
            for _, jpeg in faces:
                keys.append(self.photos.add(PHOTO_KIND, jpeg, "jpg"))
            case_id, person_id, entries = self._store_case(
                name, description, contact, actor, filed_by, approved, expires_at, faces, keys
            )
        except BaseException:
            self._delete_photos(keys)
            raise
        try:
            self.gallery.add_templates([WATCHLIST], entries)
        except BaseException:
            with self.db.session() as session:
                session.execute(delete(AlertCase).where(AlertCase.id == case_id))
                session.execute(delete(Person).where(Person.id == person_id))
            self._delete_photos(keys)
            raise
        logger.info(
            "case %s filed by %s: %d photos in the gallery (person %s)",
            case_id,
            actor,
            len(entries),
            person_id,
        )
        self.enrolment.auth.audit(
            # By id: the audit log keeps no names (the case row has it while the case is kept).
            actor,
            "case.create",
            case_id,
            {"photos": len(keys), "person": person_id, "approved": approved},
            role=role,
            address=address,
        )
        if approved:
            self.enrolment.auth.audit(
                actor, "case.approve", case_id, {"as_filed": True}, role=role, address=address
            )
        info = self.case(case_id)
        self.events.publish("case.created", self._case_event(info), audience="viewer")
        try:
            self.retro_search(case_id)
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
        faces: Sequence[tuple[Face, bytes]],
        keys: Sequence[str],
    ) -> tuple[str, str, list[GalleryEntry]]:
        case_id, person_id = new_id(), new_id()
        entries = []
        with self.db.session() as session:
            watchlist = session.scalar(select(Watchlist).where(Watchlist.name == WATCHLIST))
            if watchlist is None:
                raise AlertError(
                    f"the {WATCHLIST!r} watchlist is missing; start the server once to create it"
                )
            person = Person(
                id=person_id,
                name=name,
                notes=f"Amber Alert case {case_id}",
                watchlists=[watchlist],
            )
            session.add(person)
            for (face, _), key in zip(faces, keys, strict=True):
                template_id = new_id()
                session.add(
                    FaceTemplate(
                        id=template_id,
                        person=person,
                        photo_key=key,
                        embedding=embedding_to_bytes(face.embedding),
                        top=face.box.top,
                        right=face.box.right,
                        bottom=face.box.bottom,
                        left=face.box.left,
                        quality=face.quality.score,
                        size_px=float(face.quality.size),
                        sharpness=face.quality.sharpness,
                        frontalness=face.quality.frontalness,
                    )
                )
                entries.append(
                    GalleryEntry(template_id, person_id, face.embedding, face.quality.score)
                )
            session.flush()
            now = utcnow()
            session.add(
                AlertCase(
                    id=case_id,
                    person_id=person_id,
                    name=name,
                    description=description,
                    contact=contact,
                    reporter=actor,
                    filed_by=filed_by,
                    approved_at=now if approved else None,
                    approved_by=actor if approved else None,
                    status="active",
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        return case_id, person_id, entries

    def _delete_photos(self, keys: Iterable[str | None]) -> int:
        deleted = 0
        for key in keys:
            if key is None:
                continue
            try:
                deleted += bool(self.photos.delete(key))
            except OneEyeError:
                logger.exception("could not delete photo %s; it is orphaned", key)
        return deleted

    def _infos(self, session: Session, cases: Sequence[AlertCase]) -> list[CaseInfo]:
        ids = [c.id for c in cases]
        persons = [c.person_id for c in cases if c.person_id is not None]
        keys: dict[str, list[str]] = {}
        if persons:
            rows = session.execute(
                select(FaceTemplate.person_id, FaceTemplate.photo_key)
                .where(FaceTemplate.person_id.in_(persons))
                .order_by(FaceTemplate.created_at, FaceTemplate.id)
            )
            for person_id, key in rows:
                keys.setdefault(person_id, []).append(key)
        stats: dict[str, tuple[int, datetime | None]] = {}
        if ids:
            counted = session.execute(
                select(CaseMatch.case_id, func.count(), func.max(CaseMatch.seen_at))
                .where(CaseMatch.case_id.in_(ids))
                .group_by(CaseMatch.case_id)
            )
            stats = {case_id: (int(n), last) for case_id, n, last in counted}
        return [
            CaseInfo(
                id=c.id,
                name=c.name,
                description=c.description,
                contact=c.contact,
                reporter=c.reporter,
                status=c.status,
                person_id=c.person_id,
                photo_keys=tuple(keys.get(c.person_id, ())) if c.person_id else (),
                created_at=c.created_at,
                expires_at=c.expires_at,
                closed_at=c.closed_at,
                closed_by=c.closed_by,
                purged_at=c.purged_at,
                matches=stats.get(c.id, (0, None))[0],
                last_seen_at=stats.get(c.id, (0, None))[1],
                filed_by=c.filed_by,
                approved_at=c.approved_at,
                approved_by=c.approved_by,
            )
            for c in cases
        ]

    def case(self, case_id: str) -> CaseInfo:
        """One case; ``CaseNotFoundError`` if there is none with this id."""
        with self.db.session() as session:
            row = session.get(AlertCase, case_id)
            if row is None:
                raise CaseNotFoundError(f"no case with id {case_id!r}")
            return self._infos(session, [row])[0]

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
        query = select(AlertCase).order_by(AlertCase.created_at.desc(), AlertCase.id)
        if status is not None:
            query = query.where(AlertCase.status == status)
        if filed_by is not None:
            query = query.where(
                AlertCase.filed_by == filed_by.ref, AlertCase.reporter == filed_by.actor
            )
        with self.db.session() as session:
            rows = list(session.scalars(query.limit(max(1, min(limit, 1000))).offset(offset)))
            return self._infos(session, rows)

    def filed_by(self, case_id: str, principal: Principal) -> bool:
        """Whether ``principal`` filed the case (``False`` for an unknown id)."""
        try:
            return owns_case(principal, self.case(case_id))
        except CaseNotFoundError:
            return False

    def scope_of(self, principal: Principal) -> CaseScope | None:
        """What ``principal`` may know of the cases' people (see ``CaseScope``); ``None`` for
        viewers, tellers and above, who see every person and sighting. Database work: call it
        in a thread."""
        if not sees_own_cases_only(principal):
            return None
        with self.db.session() as session:
            cases = session.execute(
                select(
                    AlertCase.id,
                    AlertCase.person_id,
                    AlertCase.filed_by,
                    AlertCase.reporter,
                    AlertCase.approved_at,
                )
            ).all()
            listed = set(
                session.scalars(
                    select(Person.id).where(Person.watchlists.any(Watchlist.name == WATCHLIST))
                )
            )
            released = set()
            for case_id, _, filed_by, reporter, approved_at in cases:
                mine = filed_by == principal.ref and reporter == principal.actor
                if mine and approved_at is not None:
                    released.add(case_id)
            matched = session.execute(select(CaseMatch.case_id, CaseMatch.sighting_id)).all()
        people = listed | {person for _, person, *_ in cases if person is not None}
        own = {
            person
            for _, person, filed_by, reporter, _ in cases
            if person is not None and filed_by == principal.ref and reporter == principal.actor
        }
        own_released = {
            person for case_id, person, *_ in cases if person is not None and case_id in released
        }
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
                owners = set(
                    session.scalars(
                        select(FaceTemplate.person_id).where(FaceTemplate.photo_key == key)
                    )
                )
                return bool(owners) and all(scope.person_visible(p) for p in owners)
            seen = session.execute(
                select(Sighting.id, Sighting.person_id).where(Sighting.snapshot_key == key)
            ).all()
        return all(scope.sighting_visible(sid, person) for sid, person in seen)

    def matches(self, case_id: str) -> list[MatchInfo]:
        """A case's matches, live and retro, in the order they were seen."""
        with self.db.session() as session:
            if session.get(AlertCase, case_id) is None:
                raise CaseNotFoundError(f"no case with id {case_id!r}")
            rows = session.execute(
                select(CaseMatch, Sighting.snapshot_key, Camera.name, Camera.location)
                .outerjoin(Sighting, Sighting.id == CaseMatch.sighting_id)
                .outerjoin(Camera, Camera.id == CaseMatch.camera_id)
                .where(CaseMatch.case_id == case_id)
                .order_by(CaseMatch.seen_at, CaseMatch.id)
            ).all()
            return [
                _match_info(match, snapshot, camera_name, location)
                for match, snapshot, camera_name, location in rows
            ]

    def resolve(self, case_id: str, *, actor: str) -> CaseInfo:
        """Close a case as found: its templates leave the gallery at once and it notifies no
        more. ``CaseClosedError`` if it is not active."""
        return self._close(case_id, "resolved", actor)

    def _close(self, case_id: str, status: str, actor: str) -> CaseInfo:
        with self.db.session() as session:
            row = session.get(AlertCase, case_id, with_for_update=True)
            if row is None:
                raise CaseNotFoundError(f"no case with id {case_id!r}")
            if row.status != "active":
                raise CaseClosedError(f"case {case_id} is already {row.status}")
            row.status = status
            row.closed_at = utcnow()
            row.closed_by = actor
            person_id = row.person_id
        if person_id is not None:
            self.gallery.remove_person(person_id)
        logger.info("case %s %s by %s; its templates left the gallery", case_id, status, actor)
        self.enrolment.auth.audit(actor, f"case.{status.removesuffix('d')}", case_id)
        info = self.case(case_id)
        self.events.publish(f"case.{status}", self._case_event(info), audience="viewer")
        return info

    def expire_due(self, now: datetime | None = None) -> list[str]:
        """Expire every active case whose time has passed; returns their ids."""
        now = now or utcnow()
        with self.db.session() as session:
            due = list(
                session.scalars(
                    select(AlertCase.id).where(
                        AlertCase.status == "active", AlertCase.expires_at <= now
                    )
                )
            )
        expired = []
        for case_id in due:
            try:
                self._close(case_id, "expired", "system")
                expired.append(case_id)
            except CaseClosedError:
                pass  # resolved meanwhile
        return expired

    def _case_event(self, info: CaseInfo) -> dict[str, Any]:
        # Every viewer gets these: no contact details (contact, reporter, approver) in them.
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

    # matches --------------------------------------------------------------------------------

    def on_sighting(self, sighting: StoredSighting) -> None:
        """The live-match action: a new sighting of an active case's person is a match."""
        if sighting.watchlist_action != "amber-alert" or sighting.person_id is None:
            return
        with self.db.session() as session:
            case_ids = list(
                session.scalars(
                    select(AlertCase.id).where(
                        AlertCase.person_id == sighting.person_id, AlertCase.status == "active"
                    )
                )
            )
        candidate = _Candidate(
            sighting_id=sighting.id,
            camera_id=sighting.camera_id,
            seen_at=sighting.seen_at,
            distance=sighting.distance if sighting.distance is not None else 0.0,
            snapshot_key=sighting.snapshot_key,
        )
        for case_id in case_ids:
            self._record(case_id, [candidate], "live")

    def retro_search(self, case_id: str, now: datetime | None = None) -> list[MatchInfo]:
        """Search the unknown faces of the last ``retro_hours`` for a case's person and
        record each match (kind ``retro``); returns the new matches."""
        now = now or utcnow()
        since = now - timedelta(hours=self.settings.retro_hours)
        with self.db.session() as session:
            row = session.get(AlertCase, case_id)
            if row is None:
                raise CaseNotFoundError(f"no case with id {case_id!r}")
            if row.status != "active" or row.person_id is None:
                return []
            person_id = row.person_id
            blobs = list(
                session.scalars(
                    select(FaceTemplate.embedding).where(FaceTemplate.person_id == person_id)
                )
            )
        templates = _embeddings([bytes(b) for b in blobs if len(b) == EMBEDDING_BYTES])
        threshold = self.gallery.gallery.threshold(WATCHLIST)
        query = (
            select(
                Sighting.id,
                Sighting.camera_id,
                Sighting.first_seen,
                Sighting.snapshot_key,
                Sighting.embedding,
            )
            .where(
                Sighting.person_id.is_(None),
                Sighting.embedding.is_not(None),
                Sighting.first_seen >= since,
            )
            .execution_options(yield_per=RETRO_CHUNK)
        )
        found: list[tuple[_Candidate, npt.NDArray[np.float32]]] = []
        scanned = 0
        started = time.perf_counter()
        with self.db.session() as session:
            for chunk in session.execute(query).partitions():
                good = [r for r in chunk if len(r[4] or b"") == EMBEDDING_BYTES]
                scanned += len(good)
                probes = _embeddings([bytes(r[4] or b"") for r in good])
                distances = nearest_distances(probes, templates)
                for index in np.flatnonzero(distances <= threshold):
                    sid, camera, seen, snapshot, _ = good[int(index)]
                    candidate = _Candidate(sid, camera, seen, float(distances[index]), snapshot)
                    found.append((candidate, probes[int(index)]))
        # Confirm with the live gallery: the answer a camera would have given (margin rule,
        # other people nearer), not only "near one of the case's photos".
        confirmed = []
        if found:
            answers = self.gallery.gallery.identify_batch(np.stack([p for _, p in found]), k=2)
            confirmed = [
                candidate
                for (candidate, _), answer in zip(found, answers, strict=True)
                if answer.match is not None and answer.match.person == person_id
            ]
        logger.info(
            "case %s: retro-search of %d unknown faces since %s: %d matches (%.0f ms)",
            case_id,
            scanned,
            since.isoformat(timespec="seconds"),
            len(confirmed),
            (time.perf_counter() - started) * 1000,
        )
        if not confirmed:
            return []
        confirmed.sort(key=lambda c: c.seen_at)
        return self._record(case_id, confirmed, "retro")

    def _record(self, case_id: str, candidates: Sequence[_Candidate], kind: str) -> list[MatchInfo]:
        """Store matches and their outbox rows (one transaction), wake the notifier, and tell
        the dashboards."""
        recorded: list[MatchInfo] = []
        notifications = 0
        with self._lock, self.db.session() as session:
            # Locked (on PostgreSQL) against an approval of the same case in another server:
            # a match is either held and released by the approval, or recorded after it.
            case = session.get(AlertCase, case_id, with_for_update=True)
            if case is None or case.status != "active":
                return []
            approved = case.approved_at is not None
            case_name = case.name
            photo_key = session.scalar(
                select(FaceTemplate.photo_key)
                .where(FaceTemplate.person_id == case.person_id)
                .order_by(FaceTemplate.created_at, FaceTemplate.id)
                .limit(1)
            )
            subscriptions = _subscriptions_of(session, case_id)
            cameras = _cameras_of(session, {c.camera_id for c in candidates})
            for candidate in candidates:
                exists = session.scalar(
                    select(CaseMatch.id).where(
                        CaseMatch.case_id == case_id,
                        CaseMatch.sighting_id == candidate.sighting_id,
                    )
                )
                if exists is not None:
                    continue
                notified = approved and self._outside_cooldown(session, case_id, candidate)
                match = CaseMatch(
                    case_id=case_id,
                    sighting_id=candidate.sighting_id,
                    camera_id=candidate.camera_id,
                    distance=candidate.distance,
                    kind=kind,
                    seen_at=candidate.seen_at,
                    found_at=utcnow(),
                    notified=notified,
                    held=not approved,
                )
                session.add(match)
                session.flush()
                camera = cameras.get(candidate.camera_id)
                camera_name = camera.name if camera is not None else candidate.camera_id
                location = camera.location if camera is not None else ""
                if notified:
                    notifications += self._outbox(
                        session, case, candidate, kind, camera_name, location, subscriptions
                    )
                recorded.append(_match_info(match, candidate.snapshot_key, camera_name, location))
        if notifications:
            try:
                self.notifier.wake()
            except Exception:  # the rows are stored; the notifier's next poll sends them
                logger.exception("case %s: could not wake the notifier", case_id)
        for info in recorded:
            logger.info(
                "case %s: %s match at camera %s (sighting %s, distance %.3f, %s)",
                case_id,
                kind,
                info.camera_id,
                info.sighting_id,
                info.distance,
                "notified"
                if info.notified
                else "held until the case is approved"
                if info.held
                else "within the cooldown",
            )
            self.events.publish(
                "alert.sighting",
                {
                    "case_id": case_id,
                    "case_name": case_name,
                    "match_id": info.id,
                    "sighting_id": info.sighting_id,
                    "camera_id": info.camera_id,
                    "camera_name": info.camera_name,
                    "location": info.location,
                    "seen_at": info.seen_at.isoformat(),
                    "distance": round(info.distance, 4),
                    "snapshot_url": photo_url(info.snapshot_key),
                    "case_photo_url": photo_url(photo_key),
                    "kind": kind,
                    "minutes_ago": int((info.found_at - info.seen_at).total_seconds() // 60),
                    "notified": info.notified,
                    "held": info.held,
                },
                audience="viewer",
            )
        return recorded

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
        released = notifications = 0
        held = 0
        with self._lock, self.db.session() as session:
            case = session.get(AlertCase, case_id, with_for_update=True)
            if case is None:
                raise CaseNotFoundError(f"no case with id {case_id!r}")
            if case.status != "active":
                raise CaseClosedError(f"case {case_id} is {case.status}; it sends no alerts")
            if case.approved_at is not None:
                raise CaseApprovedError(f"case {case_id} is approved already")
            case.approved_at = utcnow()
            case.approved_by = actor
            rows = session.execute(
                select(CaseMatch, Sighting.snapshot_key)
                .outerjoin(Sighting, Sighting.id == CaseMatch.sighting_id)
                .where(CaseMatch.case_id == case_id, CaseMatch.held.is_(True))
                .order_by(CaseMatch.seen_at, CaseMatch.id)
            ).all()
            held = len(rows)
            subscriptions = _subscriptions_of(session, case_id)
            cameras = _cameras_of(session, {match.camera_id for match, _ in rows})
            for match, snapshot_key in rows:
                candidate = _Candidate(
                    match.sighting_id, match.camera_id, match.seen_at, match.distance, snapshot_key
                )
                match.held = False
                match.notified = self._outside_cooldown(session, case_id, candidate)
                session.flush()  # the next one's cooldown sees this one
                if match.notified:
                    released += 1
                    camera = cameras.get(match.camera_id)
                    notifications += self._outbox(
                        session,
                        case,
                        candidate,
                        match.kind,
                        camera.name if camera is not None else match.camera_id,
                        camera.location if camera is not None else "",
                        subscriptions,
                    )
        self.enrolment.auth.audit(
            actor,
            "case.approve",
            case_id,
            {"held": held, "released": released, "notifications": notifications},
            role=role,
            address=address,
        )
        logger.info(
            "case %s approved by %s: %d held matches, %d released (%d notifications)",
            *(case_id, actor, held, released, notifications),
        )
        if notifications:
            try:
                self.notifier.wake()
            except Exception:  # the rows are stored; the notifier's next poll sends them
                logger.exception("case %s: could not wake the notifier", case_id)
        info = self.case(case_id)
        self.events.publish("case.approved", self._case_event(info), audience="viewer")
        return info

    def _outside_cooldown(self, session: Session, case_id: str, candidate: _Candidate) -> bool:
        """Whether no notified match of this case on this camera lies within ``cooldown``
        seconds of the candidate."""
        if self.cooldown <= 0:
            return True
        window = timedelta(seconds=self.cooldown)
        near = session.scalar(
            select(CaseMatch.id)
            .where(
                CaseMatch.case_id == case_id,
                CaseMatch.camera_id == candidate.camera_id,
                CaseMatch.notified.is_(True),
                CaseMatch.seen_at > candidate.seen_at - window,
                CaseMatch.seen_at < candidate.seen_at + window,
            )
            .limit(1)
        )
        return near is None

    def _outbox(
        self,
        session: Session,
        case: AlertCase,
        candidate: _Candidate,
        kind: str,
        camera_name: str,
        location: str,
        subscriptions: Sequence[Subscription],
    ) -> int:
        """One pending notification per subscription (skipping one this sighting has already
        given: the same sighting can match two cases for an all-cases subscriber)."""
        payload = {
            "case_id": case.id,
            "case_name": case.name,
            "description": case.description,
            "person_id": case.person_id,
            "camera_id": candidate.camera_id,
            "camera_name": camera_name,
            "location": location,
            "seen_at": candidate.seen_at.isoformat(),
            "distance": round(candidate.distance, 4),
            "sighting_id": candidate.sighting_id,
            "snapshot_key": candidate.snapshot_key,
            "kind": kind,
            "case_url": f"{self.public_url}/cases/{case.id}",
        }
        taken = set(
            session.scalars(
                select(Notification.subscription_id).where(
                    Notification.sighting_id == candidate.sighting_id
                )
            )
        )
        now = utcnow()
        added = 0
        for subscription in subscriptions:
            if subscription.id in taken:
                continue
            session.add(
                Notification(
                    case_id=case.id,
                    sighting_id=candidate.sighting_id,
                    subscription_id=subscription.id,
                    channel=subscription.channel,
                    address=subscription.address,
                    payload=payload,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            added += 1
        return added

    # retention ------------------------------------------------------------------------------

    def purge(self, now: datetime | None = None) -> PurgeReport:
        """Delete what retention no longer allows: closed cases' photos, templates, person
        and snapshots after ``retention_days``; unknown faces' embeddings after
        ``unknown_retention_hours``."""
        now = now or utcnow()
        closed_before = now - timedelta(days=self.settings.retention_days)
        with self.db.session() as session:
            due = list(
                session.scalars(
                    select(AlertCase.id).where(
                        AlertCase.status != "active",
                        AlertCase.purged_at.is_(None),
                        AlertCase.closed_at <= closed_before,
                    )
                )
            )
        photos = snapshots = 0
        for case_id in due:
            deleted_photos, deleted_snapshots = self._purge_case(case_id, now)
            photos += deleted_photos
            snapshots += deleted_snapshots
        forget_before = now - timedelta(hours=self.settings.unknown_retention_hours)
        with self.db.session() as session:
            result = session.execute(
                update(Sighting)
                .where(Sighting.embedding.is_not(None), Sighting.first_seen < forget_before)
                .values(embedding=None)
            )
            embeddings = int(result.rowcount or 0)  # type: ignore[attr-defined]
        report = PurgeReport(len(due), photos, snapshots, embeddings)
        if due or embeddings:
            logger.info(
                "retention: %d closed cases purged (%d photos, %d snapshots), %d unknown "
                "faces' embeddings deleted",
                *(report.cases, report.photos, report.snapshots, report.embeddings),
            )
        return report

    def _purge_case(self, case_id: str, now: datetime) -> tuple[int, int]:
        with self.db.session() as session:
            case = session.get(AlertCase, case_id, with_for_update=True)
            if case is None or case.purged_at is not None or case.status == "active":
                return 0, 0
            person_id = case.person_id
            photo_keys: list[str] = []
            if person_id is not None:
                photo_keys = list(
                    session.scalars(
                        select(FaceTemplate.photo_key).where(FaceTemplate.person_id == person_id)
                    )
                )
            matched = select(CaseMatch.sighting_id).where(CaseMatch.case_id == case_id)
            of_case: ColumnElement[bool] = Sighting.id.in_(matched)
            if person_id is not None:
                of_case = or_(of_case, Sighting.person_id == person_id)
            snapshot_keys = list(
                session.scalars(
                    select(Sighting.snapshot_key).where(of_case, Sighting.snapshot_key.is_not(None))
                )
            )
            session.execute(
                update(Sighting)
                .where(of_case)
                .values(snapshot_key=None, embedding=None)
                .execution_options(synchronize_session=False)
            )
            if person_id is not None:
                session.execute(delete(Person).where(Person.id == person_id))
            case.person_id = None
            case.purged_at = now
        if person_id is not None:
            self.gallery.remove_person(person_id)
        photos = self._delete_photos(photo_keys)
        snapshots = self._delete_photos(snapshot_keys)
        self.enrolment.auth.audit(
            "system",
            "case.purge",
            case_id,
            {"photos": len(photo_keys), "snapshots": len(snapshot_keys)},
        )
        logger.info("case %s purged: %d photos, %d snapshots deleted", case_id, photos, snapshots)
        return photos, snapshots

    # subscriptions --------------------------------------------------------------------------

    def add_subscription(
        self,
        channel: str,
        address: str,
        *,
        actor: str,
        case_id: str | None = None,
        secret: str | None = None,
    ) -> SubscriptionInfo:
        """Subscribe an address to one case's sightings (``case_id``) or every case's.

        A webhook gets ``secret`` as its signing key, or a generated one; the returned info
        carries it this once.
        """
        address = check_address(channel, address)
        if channel == "webhook":
            try:
                # Resolves the name (a worker thread, not the event loop); the notifier
                # checks again on every send, against DNS rebinding.
                self.outbound.check_url(address)
            except OutboundRefusedError as exc:
                raise AlertError(f"this webhook URL cannot be used: {exc}") from None
            secret = secret.strip() if secret else secrets.token_urlsafe(32)
            if not 16 <= len(secret) <= 128:
                raise AlertError("a webhook secret is 16-128 characters")
        else:
            secret = None
        with self.db.session() as session:
            if case_id is not None:
                case = session.get(AlertCase, case_id)
                if case is None:
                    raise CaseNotFoundError(f"no case with id {case_id!r}")
                if case.status != "active":
                    raise CaseClosedError(f"case {case_id} is {case.status}; it sends no alerts")
            row = Subscription(
                case_id=case_id,
                channel=channel,
                address=address,
                secret=secret,
                active=True,
                created_by=actor,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            info = _subscription_info(row, secret)
        self.enrolment.auth.audit(
            actor,
            "subscription.create",
            str(info.id),
            {"case": case_id, "channel": channel},  # no address: the log keeps ids only
        )
        return info

    def subscription(self, subscription_id: int) -> SubscriptionInfo:
        """One subscription (without its secret)."""
        with self.db.session() as session:
            row = session.get(Subscription, subscription_id)
            if row is None:
                raise SubscriptionNotFoundError(f"no subscription with id {subscription_id}")
            return _subscription_info(row, None)

    def subscriptions(self, case_id: str | None = None) -> list[SubscriptionInfo]:
        """A case's subscriptions (``case_id``), or the all-cases ones (``None``)."""
        query = select(Subscription).order_by(Subscription.id)
        with self.db.session() as session:
            if case_id is not None:
                if session.get(AlertCase, case_id) is None:
                    raise CaseNotFoundError(f"no case with id {case_id!r}")
                query = query.where(Subscription.case_id == case_id)
            else:
                query = query.where(Subscription.case_id.is_(None))
            return [_subscription_info(row, None) for row in session.scalars(query)]

    def delete_subscription(self, subscription_id: int, *, actor: str) -> None:
        """Remove a subscription (its sent and pending notifications stay, unlinked)."""
        with self.db.session() as session:
            row = session.get(Subscription, subscription_id)
            if row is None:
                raise SubscriptionNotFoundError(f"no subscription with id {subscription_id}")
            detail = {"case": row.case_id, "channel": row.channel}
            session.delete(row)
        self.enrolment.auth.audit(actor, "subscription.delete", str(subscription_id), detail)


def _subscriptions_of(session: Session, case_id: str) -> list[Subscription]:
    """The active subscriptions a match of ``case_id`` notifies: the case's and the
    all-cases ones."""
    return list(
        session.scalars(
            select(Subscription)
            .where(
                Subscription.active.is_(True),
                or_(Subscription.case_id == case_id, Subscription.case_id.is_(None)),
            )
            .order_by(Subscription.id)
        )
    )


def _cameras_of(session: Session, camera_ids: set[str]) -> dict[str, Camera]:
    """The registered cameras among ``camera_ids``, by id."""
    if not camera_ids:
        return {}
    return {c.id: c for c in session.scalars(select(Camera).where(Camera.id.in_(camera_ids)))}


def _match_info(
    match: CaseMatch, snapshot_key: str | None, camera_name: str | None, location: str | None
) -> MatchInfo:
    return MatchInfo(
        id=match.id,
        case_id=match.case_id,
        sighting_id=match.sighting_id,
        camera_id=match.camera_id,
        camera_name=camera_name or match.camera_id,
        location=location or "",
        distance=match.distance,
        kind=match.kind,
        seen_at=match.seen_at,
        found_at=match.found_at,
        notified=match.notified,
        snapshot_key=snapshot_key,
        held=match.held,
    )


def _subscription_info(row: Subscription, secret: str | None) -> SubscriptionInfo:
    return SubscriptionInfo(
        id=row.id,
        case_id=row.case_id,
        channel=row.channel,
        address=row.address,
        active=row.active,
        created_by=row.created_by,
        created_at=row.created_at,
        secret=secret,
    )
