"""A person's rights over what OneEye holds about them: erasure and subject access.

**Erasure** (``erase``) removes everything about one person id in one call: their templates
and enrolment photos, their place in the live gallery (the change reaches every edge, which
drops them from memory and rewrites its cached ``gallery.json``), every sighting of them with
its snapshot, the stored dashboard events that name them or their sightings (so a replay of
``/ws?since=0`` carries nothing about them), the Amber Alert cases filed for them with their
matches, subscriptions and notifications, and their customer account when it lives in
OneEye's own ``customer_accounts`` table and nobody else holds it. An account in the bank's
own directory (``customers.kind = http``) is not OneEye's to delete: the link to it goes with
the person. Audit rows about the person keep who did what and when, without names. One
``person.erase`` audit row records the erasure, with ids and counts only.

Erasure is idempotent: erasing an id again finds nothing left and writes nothing; an id
OneEye holds nothing about at all is a ``NotFoundError``. Photos are deleted before the rows
that name them, so an erasure that fails half way (an unreachable S3) is simply run again.

**Subject access** (``export``) gathers everything held about one person id: the person,
their templates' metadata, their account card, sightings, cases, dashboard events and the
audit rows about them, as one JSON document, or (``export_zip``) a zip of that document and
every photo it names. Each export is audited (``person.export``).
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy.orm import Session

from oneeye.services.auth import AuthService
from oneeye.services.customers import CustomerDirectory, DirectoryError
from oneeye.services.enrolment import NotFoundError
from oneeye.services.gallery import GalleryService
from oneeye.services.retention import snapshot_keys
from oneeye.store.db import Database
from oneeye.store.photos import PhotoNotFoundError, PhotoStore
from oneeye.store.repos import (
    audit,
    cases,
    events,
    feedback,
    notifications,
    people,
    sightings,
    templates,
)

logger = logging.getLogger(__name__)

EVENT_SCAN = 1000
"""Dashboard events read per query while looking for those that name a person."""
PERSONAL_DETAIL = frozenset({"name", "account_id", "notes", "file"})
"""Keys of an audit row's detail that hold personal data; erasure removes them."""
MAX_PERSON_ID = 64


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What one erasure removed (counts and ids only: it is written to the audit log)."""

    person_id: str
    person: bool = False
    """Whether a person row was deleted (``False``: only what an earlier delete left)."""
    templates: int = 0
    photos: int = 0
    """Enrolment and case photos, and the account's profile photo, deleted."""
    sightings: int = 0
    snapshots: int = 0
    events: int = 0
    cases: int = 0
    notifications: int = 0
    account: str = "none"
    """``deleted`` (OneEye's own table), ``unlinked`` (the bank's directory), ``shared``
    (another person holds it: kept), or ``none``."""
    audit_redacted: int = 0
    already_erased: bool = False
    """Nothing was left to erase: an earlier erasure took it all (no new audit row)."""

    def audit_detail(self) -> dict[str, Any]:
        """The ``person.erase`` audit row's detail."""
        detail = asdict(self)
        del detail["person_id"], detail["already_erased"]
        return detail


@dataclass(frozen=True, slots=True)
class AccountErasure:
    """What erasing a customer removed: each person who held the account, and the account."""

    account_id: str
    people: tuple[ErasureReport, ...]
    account_deleted: bool
    """Whether OneEye's own directory held the account (it is gone now)."""
    photos: int
    """Photos deleted in all (the people's and the profile photo)."""
    audit_redacted: int
    """Audit rows about the account whose names were removed."""


@dataclass(slots=True)
class _Held:
    """What the database holds about one person id (ids and keys, read in one session)."""

    person: bool = False
    account_id: str | None = None
    template_keys: list[str] = field(default_factory=list)
    case_ids: list[str] = field(default_factory=list)
    sighting_ids: set[str] = field(default_factory=set)
    snapshot_keys: list[str] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    audit_rows: int = 0
    erased_before: bool = False

    @property
    def anything(self) -> bool:
        return bool(
            self.person
            or self.template_keys
            or self.case_ids
            or self.sighting_ids
            or self.event_ids
        )


def mentions(
    payload: dict[str, Any], person_id: str, sighting_ids: set[str], case_ids: set[str]
) -> bool:
    """Whether a dashboard event's payload names the person or one of their sightings or
    cases (a ``customer.arrived`` card names the person, so their account goes with it)."""
    return (
        payload.get("person_id") == person_id
        or payload.get("sighting_id") in sighting_ids
        or payload.get("case_id") in case_ids
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class PrivacyService:
    """Erases everything about a person, and exports it for subject access requests."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        gallery: GalleryService,
        directory: CustomerDirectory,
        auth: AuthService,
    ) -> None:
        self.db = db
        self.photos = photos
        self.gallery = gallery
        self.directory = directory
        self.auth = auth

    # what is held -------------------------------------------------------------------------

    def _events_naming(
        self,
        session: Session,
        person_id: str,
        sighting_ids: set[str],
        case_ids: set[str],
    ) -> list[int]:
        """Ids of the stored dashboard events that name the person (their JSON is read
        here rather than queried: the same code on SQLite and PostgreSQL, and the table is
        bounded by ``server.event_history`` and ``retention.events_hours``)."""
        found: list[int] = []
        last = 0
        while True:
            rows = events.payloads(session, last, EVENT_SCAN)
            if not rows:
                return found
            for ident, payload in rows:
                if isinstance(payload, dict) and mentions(
                    payload, person_id, sighting_ids, case_ids
                ):
                    found.append(ident)
            last = rows[-1][0]

    def _held(self, session: Session, person_id: str) -> _Held:
        held = _Held()
        person = people.get(session, person_id)
        if person is not None:
            held.person = True
            held.account_id = person.account_id
        held.template_keys = templates.photo_keys(session, person_id)
        held.case_ids = cases.ids_of_person(session, person_id)
        # Named as them, or matched to their cases (an unknown face a retro-search found).
        rows = sightings.snapshots_of_person(session, person_id, held.case_ids)
        held.sighting_ids = {ident for ident, _ in rows}
        held.snapshot_keys = snapshot_keys([key for _, key in rows])
        held.event_ids = self._events_naming(
            session, person_id, held.sighting_ids, set(held.case_ids)
        )
        actions = audit.actions_about(session, person_id)
        held.audit_rows = len(actions)
        held.erased_before = "person.erase" in actions
        return held

    # erasure ------------------------------------------------------------------------------

    def erase(self, person_id: str, *, actor: str) -> ErasureReport:
        """Remove or anonymise everything held about ``person_id`` (see the module
        docstring).

        Args:
            person_id: the person's id (also an id whose person was deleted earlier, to
                remove what that deletion left).
            actor: who erases (``user:<name>``), for the audit row.

        Returns:
            What was removed.

        Raises:
            NotFoundError: OneEye holds nothing at all about this id.
            PhotoStoreError: photos could not be deleted (nothing else was; run it again).
        """
        if not person_id or len(person_id) > MAX_PERSON_ID:
            raise NotFoundError(f"no person with id {person_id!r}")
        with self.db.session() as session:
            held = self._held(session, person_id)
        if not held.anything:
            if held.erased_before:
                return ErasureReport(person_id, already_erased=True)
            if not held.audit_rows:
                raise NotFoundError(f"no person with id {person_id!r}")
        # Recognition stops first; every edge drops the person with this change.
        self.gallery.remove_person(person_id)
        self.photos.delete_many([*held.template_keys, *held.snapshot_keys])
        photos, snapshots = len(held.template_keys), len(held.snapshot_keys)
        account, account_photo = self._account_fate(person_id, held.account_id)
        with self.db.session() as session:
            late, erased_sightings, notified = self._delete_rows(session, person_id, held)
            redacted = self._redact_audit(session, person_id)
        if late:  # sightings stored while this ran: their snapshots go too
            self.photos.delete_many(late)
            snapshots += len(late)
        if account == "deleted" and held.account_id is not None:
            self.directory.delete(held.account_id)
            if account_photo is not None:
                self.photos.delete_many([account_photo])
                photos += 1
        report = ErasureReport(
            person_id,
            person=held.person,
            templates=len(held.template_keys),
            photos=photos,
            sightings=erased_sightings,
            snapshots=snapshots,
            events=len(held.event_ids),
            cases=len(held.case_ids),
            notifications=notified,
            account=account,
            audit_redacted=redacted,
        )
        self.auth.audit(actor, "person.erase", person_id, report.audit_detail())
        logger.info("person %s erased by %s", person_id, actor)
        return report

    def erase_account(self, account_id: str, *, actor: str) -> AccountErasure:
        """Erase a customer: every person who holds ``account_id`` (each through ``erase``,
        so their templates, photos, sightings and gallery entries go on every edge), then the
        account itself with its profile photo, and the names in the audit rows about it.

        Raises:
            NotFoundError: no such account in OneEye's own directory, and nobody holds it.
            PhotoStoreError: photos could not be deleted (run it again).
        """
        with self.db.session() as session:
            holders = people.holders_of(session, account_id)
        card = self.directory.lookup(account_id) if self.directory.editable else None
        if card is None and not holders:
            raise NotFoundError(f"no customer account {account_id!r}")
        reports = tuple(self.erase(person_id, actor=actor) for person_id in holders)
        # Erasing the last holder deleted the account; one nobody held is deleted here.
        left = self.directory.delete(account_id) if self.directory.editable else None
        photos = sum(r.photos for r in reports)
        if left is not None and left.profile_photo_key:
            self.photos.delete_many([left.profile_photo_key])
            photos += 1
        with self.db.session() as session:
            redacted = self._redact_audit(session, account_id)
        deleted = card is not None
        result = AccountErasure(account_id, reports, deleted, photos, redacted)
        self.auth.audit(
            actor,
            "account.erase",
            account_id,
            {"people": list(holders), "account_deleted": deleted, "photos": photos},
        )
        logger.info("account %s erased by %s (%d people)", account_id, actor, len(holders))
        return result

    def _account_fate(self, person_id: str, account_id: str | None) -> tuple[str, str | None]:
        """What becomes of the person's account: deleted from OneEye's own table (with the
        profile photo key to delete), unlinked (the bank's directory), or kept because
        another person holds it."""
        if account_id is None:
            return "none", None
        with self.db.session() as session:
            shared = people.others_with_account(session, account_id, person_id)
        if shared:
            return "shared", None
        if not self.directory.editable:
            return "unlinked", None
        card = self.directory.lookup(account_id)
        return "deleted", None if card is None else card.profile_photo_key

    def _delete_rows(
        self, session: Session, person_id: str, held: _Held
    ) -> tuple[list[str], int, int]:
        """Delete every row about the person in one transaction.

        Returns:
            The snapshot keys of sightings stored after ``held`` was read (their photos are
            still there), the sightings deleted, and the notification rows deleted.
        """
        late_rows = sightings.snapshots_of_person(
            session, person_id, held.case_ids, besides=held.sighting_ids
        )
        sighting_ids = held.sighting_ids | {ident for ident, _ in late_rows}
        notified = notifications.delete_about(session, held.case_ids, sighting_ids)
        cases.delete_matches(session, held.case_ids, sighting_ids)
        sightings.delete_ids(session, sighting_ids)
        events.delete_ids(session, held.event_ids)
        cases.delete_ids(session, held.case_ids)
        feedback.delete_of_person(session, person_id)  # verdicts naming them
        people.purge(session, person_id)
        return snapshot_keys([key for _, key in late_rows]), len(sighting_ids), notified

    @staticmethod
    def _redact_audit(session: Session, person_id: str) -> int:
        """Remove names and other personal fields from the audit rows about the person; the
        rows themselves (who did what, when) stay."""
        return audit.redact(session, person_id, PERSONAL_DETAIL)

    # subject access -----------------------------------------------------------------------

    def export(self, person_id: str, *, actor: str, photos: bool = False) -> dict[str, Any]:
        """Everything held about ``person_id`` as one JSON-able document; audited.

        Raises:
            NotFoundError: OneEye holds nothing about this id.
        """
        document = self._document(person_id)
        self.auth.audit(actor, "person.export", person_id, {"photos": photos})
        return document

    def export_zip(self, person_id: str, target: IO[bytes], *, actor: str) -> int:
        """Write a zip of the export (``person.json``) and every photo it names (under
        ``photos/``) to ``target``; audited. Returns how many photos it holds.

        Raises:
            NotFoundError: OneEye holds nothing about this id.
        """
        document = self.export(person_id, actor=actor, photos=True)
        count = 0
        missing: list[str] = []
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
            for key in _photo_keys(document):
                try:
                    data = self.photos.get(key)
                except PhotoNotFoundError:
                    missing.append(key)
                    continue
                archive.writestr(f"photos/{key}", data)  # JPEGs: compressing gains nothing
                count += 1
            document["missing_photos"] = missing
            archive.writestr(
                "person.json",
                json.dumps(document, indent=2, ensure_ascii=False),
                compress_type=zipfile.ZIP_DEFLATED,
            )
        return count

    def _document(self, person_id: str) -> dict[str, Any]:
        if not person_id or len(person_id) > MAX_PERSON_ID:
            raise NotFoundError(f"no person with id {person_id!r}")
        with self.db.session() as session:
            held = self._held(session, person_id)
            if not held.anything and not held.audit_rows:
                raise NotFoundError(f"no person with id {person_id!r}")
            person = people.get(session, person_id)
            enrolled = templates.of_person(session, person_id)
            seen = sightings.with_ids(session, held.sighting_ids)
            filed = cases.with_ids(session, held.case_ids)
            matches = cases.matches_of(session, held.case_ids)
            stored_events = events.with_ids(session, held.event_ids)
            # Rows about the person, their account, and each of their photos (who fetched
            # their enrolment photos and snapshots).
            subjects = [person_id, *held.template_keys, *held.snapshot_keys]
            if held.account_id:
                subjects.append(held.account_id)
            lines = audit.about(session, subjects)
            document: dict[str, Any] = {
                "person_id": person_id,
                "generated_at": datetime.now(UTC).isoformat(),
                "person": None
                if person is None
                else {
                    "id": person.id,
                    "name": person.name,
                    "account_id": person.account_id,
                    "notes": person.notes,
                    "watchlists": list(person.watchlists),
                    "created_at": _iso(person.created_at),
                },
                "templates": [
                    {
                        "id": t.id,
                        "photo_key": t.photo_key,
                        "box": [t.box.top, t.box.right, t.box.bottom, t.box.left],
                        "quality": t.quality,
                        "size_px": t.size_px,
                        "sharpness": t.sharpness,
                        "frontalness": t.frontalness,
                        "created_at": _iso(t.created_at),
                    }
                    for t in enrolled
                ],
                "sightings": [
                    {
                        "id": s.id,
                        "camera_id": s.camera_id,
                        "track": s.track,
                        "watchlist": s.watchlist,
                        "distance": s.distance,
                        "quality": s.quality,
                        "box": [s.top, s.right, s.bottom, s.left],
                        "first_seen": _iso(s.first_seen),
                        "last_seen": _iso(s.last_seen),
                        "left_at": _iso(s.left_at),
                        "snapshot_key": s.snapshot_key,
                    }
                    for s in seen
                ],
                "cases": [
                    {
                        "id": c.id,
                        "name": c.name,
                        "description": c.description,
                        "contact": c.contact,
                        "reporter": c.reporter,
                        "status": c.status,
                        "created_at": _iso(c.created_at),
                        "expires_at": _iso(c.expires_at),
                        "closed_at": _iso(c.closed_at),
                        "matches": [
                            {
                                "sighting_id": m.sighting_id,
                                "camera_id": m.camera_id,
                                "distance": m.distance,
                                "kind": m.kind,
                                "seen_at": _iso(m.seen_at),
                            }
                            for m in matches
                            if m.case_id == c.id
                        ],
                    }
                    for c in filed
                ],
                "dashboard_events": [
                    {"id": e.id, "type": e.type, "at": _iso(e.at), "data": e.payload}
                    for e in stored_events
                ],
                "audit": [
                    {
                        "id": a.id,
                        "at": _iso(a.at),
                        "actor": a.actor,
                        "action": a.action,
                        "subject": a.subject,
                        "detail": a.detail,
                    }
                    for a in lines
                ],
            }
        document["account"], document["account_error"] = self._account(held.account_id)
        return document

    def _account(self, account_id: str | None) -> tuple[dict[str, Any] | None, str | None]:
        if account_id is None:
            return None, None
        try:
            card = self.directory.lookup(account_id)
        except DirectoryError as exc:
            return None, f"the customer directory could not answer: {exc}"
        if card is None:
            return None, f"no account {account_id} in the customer directory"
        return asdict(card), None


def _photo_keys(document: dict[str, Any]) -> Iterator[str]:
    """Every photo key an export names, once each, in document order."""
    seen: set[str] = set()
    keys = [t["photo_key"] for t in document["templates"]]
    keys += [s["snapshot_key"] for s in document["sightings"] if s["snapshot_key"]]
    account = document.get("account") or {}
    if account.get("profile_photo_key"):
        keys.append(account["profile_photo_key"])
    for key in keys:
        if key not in seen:
            seen.add(key)
            yield key
