"""People, their photos and templates; and "who is in this photo?".

Enrolling a photo is all or nothing: the upload is size-checked, decoded, must show exactly one
usable face, then the photo is stored, the template row written and the live gallery told; if
any step fails, what earlier steps stored is removed again, so a bad upload leaves no trace.
Every enrolment and deletion is written to the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Final

import cv2
import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from oneeye.errors import FaceError, ImageError, OneEyeError
from oneeye.services.auth import AuthService
from oneeye.services.customers import CustomerError, check_account_id
from oneeye.services.gallery import GalleryEntry, GalleryService, template_of
from oneeye.store.db import Database
from oneeye.store.models import FaceTemplate, Person, Watchlist, embedding_to_bytes, new_id
from oneeye.store.photos import PhotoStore
from oneeye.types import Face, FaceBox, FaceQuality, RGBImage
from oneeye.vision.engine import Deadline, FaceEngine
from oneeye.vision.images import load_image, upright_size

logger = logging.getLogger(__name__)

JPEG_QUALITY = 92
"""Enrolment photos are stored re-encoded as JPEG: upright, and without their EXIF (a phone
photo's GPS position is nobody's business)."""
MAX_NAME = 200


class EnrolmentError(OneEyeError):
    """A person or template cannot be created or changed as asked (bad name, unknown
    watchlist, ...)."""


class NotFoundError(EnrolmentError):
    """No person or template has this id."""


class UploadTooLargeError(ImageError):
    """The upload is larger than the server accepts."""


class _Unset:
    """The type of ``UNSET``: "leave this field as it is"."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


@dataclass(frozen=True, slots=True)
class PersonInfo:
    """A person as the API shows it."""

    id: str
    name: str
    account_id: str | None
    notes: str
    watchlists: tuple[str, ...]
    templates: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """An enrolled photo of a person: where the face is and how good it is."""

    id: str
    person_id: str
    photo_key: str
    box: FaceBox
    quality: float
    size_px: float
    sharpness: float
    frontalness: float
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MatchInfo:
    """One candidate for a face in an identified photo."""

    person_id: str
    name: str
    watchlist: str
    distance: float
    matched: bool
    """Whether this candidate is the accepted answer (within threshold and margin)."""


@dataclass(frozen=True, slots=True)
class IdentifiedFace:
    """A face found in an uploaded photo and who it is, if anyone."""

    box: FaceBox
    quality: FaceQuality
    person_id: str | None
    name: str | None
    watchlist: str | None
    distance: float | None
    matches: tuple[MatchInfo, ...]


def _person_info(person: Person, templates: int) -> PersonInfo:
    return PersonInfo(
        id=person.id,
        name=person.name,
        account_id=person.account_id,
        notes=person.notes,
        watchlists=tuple(sorted(w.name for w in person.watchlists)),
        templates=templates,
        created_at=person.created_at,
    )


def _template_info(row: FaceTemplate) -> TemplateInfo:
    return TemplateInfo(
        id=row.id,
        person_id=row.person_id,
        photo_key=row.photo_key,
        box=FaceBox(top=row.top, right=row.right, bottom=row.bottom, left=row.left),
        quality=row.quality,
        size_px=row.size_px,
        sharpness=row.sharpness,
        frontalness=row.frontalness,
        created_at=row.created_at,
    )


def _check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME:
        raise EnrolmentError(f"a person's name is 1-{MAX_NAME} characters, got {len(cleaned)}")
    return cleaned


def _check_account(account_id: str | None) -> str | None:
    if account_id is None or account_id == "":
        return None
    try:
        return check_account_id(account_id)
    except CustomerError as exc:
        raise EnrolmentError(str(exc)) from None


def encode_jpeg(image: RGBImage) -> bytes:
    """An RGB image as JPEG bytes (no metadata)."""
    ok, buffer = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise ImageError("the photo could not be re-encoded as JPEG")
    return bytes(np.asarray(buffer).tobytes())


def scaled_box(box: FaceBox, *, sx: float, sy: float, width: int, height: int) -> FaceBox:
    """``box`` of a shrunk image in the pixels of the full ``width`` x ``height`` image."""
    return FaceBox(
        top=min(height - 1, round(box.top * sy)),
        right=min(width - 1, round(box.right * sx)),
        bottom=min(height - 1, round(box.bottom * sy)),
        left=min(width - 1, round(box.left * sx)),
    )


class EnrolmentService:
    """Enrols photos: exactly one usable face, stored photo, template, live gallery."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        engine: FaceEngine,
        gallery: GalleryService,
        auth: AuthService,
        max_upload_bytes: int,
        photo_max_side: int = 1280,
    ) -> None:
        """Enrol into ``db``, ``photos`` and ``gallery``.

        ``engine`` is the uploads' own face engine (not the cameras': a large upload must not
        hold the lock the cameras encode under). Uploads over ``max_upload_bytes`` are refused;
        photos searched rather than enrolled (``identify``, case photos) are shrunk to
        ``photo_max_side`` pixels on their longer side first.
        """
        self.db = db
        self.photos = photos
        self.engine = engine
        self.gallery = gallery
        self.auth = auth
        self.max_upload_bytes = max_upload_bytes
        self.photo_max_side = photo_max_side

    # people --------------------------------------------------------------------------------

    def _watchlist_rows(self, session: Session, names: Sequence[str]) -> list[Watchlist]:
        wanted = sorted(set(names))
        rows = list(session.scalars(select(Watchlist).where(Watchlist.name.in_(wanted))))
        missing = sorted(set(wanted) - {row.name for row in rows})
        if missing:
            known = sorted(session.scalars(select(Watchlist.name)))
            raise EnrolmentError(
                f"no watchlist named {', '.join(map(repr, missing))}; "
                f"the watchlists are {', '.join(known) or 'none yet'}"
            )
        return rows

    def _template_count(self, session: Session, person_id: str) -> int:
        count = session.scalar(
            select(func.count())
            .select_from(FaceTemplate)
            .where(FaceTemplate.person_id == person_id)
        )
        return int(count or 0)

    def _get_person(self, session: Session, person_id: str) -> Person:
        person = session.get(Person, person_id, options=[selectinload(Person.watchlists)])
        if person is None:
            raise NotFoundError(f"no person with id {person_id!r}")
        return person

    def people(
        self,
        *,
        watchlist: str | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
        match_accounts: bool = True,
        exclude: Collection[str] = (),
    ) -> list[PersonInfo]:
        """People by name: only those on ``watchlist``, or whose name (or account id, with
        ``match_accounts``) contains ``q`` (any case); never those in ``exclude`` (the case
        people a reporter may not know of)."""
        counts = (
            select(FaceTemplate.person_id, func.count().label("n"))
            .group_by(FaceTemplate.person_id)
            .subquery()
        )
        query = (
            select(Person, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.person_id == Person.id)
            .options(selectinload(Person.watchlists))
            .order_by(Person.name, Person.id)
        )
        if watchlist:
            query = query.where(Person.watchlists.any(Watchlist.name == watchlist))
        if q:
            pattern = f"%{q.lower()}%"
            matches = [func.lower(Person.name).like(pattern)]
            if match_accounts:
                matches.append(func.lower(Person.account_id).like(pattern))
            query = query.where(or_(*matches))
        if exclude:
            query = query.where(Person.id.not_in(exclude))
        with self.db.session() as session:
            rows = session.execute(query.limit(limit).offset(offset)).all()
            return [_person_info(person, int(n)) for person, n in rows]

    def person(self, person_id: str) -> PersonInfo:
        """One person; ``NotFoundError`` if there is none with this id."""
        with self.db.session() as session:
            person = self._get_person(session, person_id)
            return _person_info(person, self._template_count(session, person_id))

    def create_person(
        self,
        name: str,
        watchlists: Sequence[str],
        *,
        actor: str,
        account_id: str | None = None,
        notes: str = "",
    ) -> PersonInfo:
        """Add a person on ``watchlists`` (which must exist), optionally holding a customer
        account."""
        name = _check_name(name)
        account = _check_account(account_id)
        with self.db.session() as session:
            rows = self._watchlist_rows(session, watchlists)
            person = Person(name=name, account_id=account, notes=notes, watchlists=rows)
            session.add(person)
            session.flush()
            info = _person_info(person, 0)
        self.auth.audit(
            actor,
            "person.create",
            info.id,
            {"watchlists": list(info.watchlists), "account_id": account},
        )
        return info

    def update_person(
        self,
        person_id: str,
        *,
        actor: str,
        name: str | _Unset = UNSET,
        account_id: str | _Unset | None = UNSET,
        notes: str | _Unset = UNSET,
        watchlists: Sequence[str] | _Unset = UNSET,
    ) -> PersonInfo:
        """Change the given fields of a person; a change of watchlists changes the live
        gallery too."""
        changed: dict[str, object] = {}
        with self.db.session() as session:
            person = self._get_person(session, person_id)
            if not isinstance(name, _Unset):
                person.name = _check_name(name)
                changed["name"] = True  # the audit log names people by id, never by name
            if not isinstance(account_id, _Unset):
                person.account_id = _check_account(account_id)
                changed["account_id"] = person.account_id
            if not isinstance(notes, _Unset):
                person.notes = notes
                changed["notes"] = True
            moved = False
            if not isinstance(watchlists, _Unset):
                rows = self._watchlist_rows(session, watchlists)
                moved = {w.name for w in rows} != {w.name for w in person.watchlists}
                person.watchlists = rows
                changed["watchlists"] = sorted(w.name for w in rows)
            session.flush()
            info = _person_info(person, self._template_count(session, person_id))
        if moved:
            self.gallery.sync_person(person_id)
        if changed:
            self.auth.audit(actor, "person.update", person_id, changed)
        return info

    def delete_person(self, person_id: str, *, actor: str) -> None:
        """Remove a person with their templates, photos and gallery entries."""
        with self.db.session() as session:
            person = self._get_person(session, person_id)
            keys = list(
                session.scalars(
                    select(FaceTemplate.photo_key).where(FaceTemplate.person_id == person_id)
                )
            )
            session.delete(person)
        self.gallery.remove_person(person_id)
        self._delete_photos(keys)
        self.auth.audit(actor, "person.delete", person_id, {"templates": len(keys)})

    def _delete_photos(self, keys: Sequence[str]) -> None:
        for key in keys:
            try:
                self.photos.delete(key)
            except OneEyeError:
                logger.exception("could not delete photo %s; it is orphaned", key)

    # templates ------------------------------------------------------------------------------

    def templates(self, person_id: str) -> list[TemplateInfo]:
        """A person's templates, oldest first."""
        with self.db.session() as session:
            self._get_person(session, person_id)
            rows = session.scalars(
                select(FaceTemplate)
                .where(FaceTemplate.person_id == person_id)
                .order_by(FaceTemplate.created_at, FaceTemplate.id)
            )
            return [_template_info(row) for row in rows]

    def decode_upload(
        self, data: bytes, filename: str = "", *, max_side: int | None = None
    ) -> RGBImage:
        """An upload as an RGB image (shrunk to ``max_side`` on its longer side if given):
        ``UploadTooLargeError`` above ``max_upload_bytes``, ``ImageError`` (naming the file)
        for anything that is not a usable image."""
        where = f"{filename}: " if filename else ""
        if len(data) > self.max_upload_bytes:
            raise UploadTooLargeError(
                f"{where}the upload is {len(data):,} bytes; the limit is "
                f"{self.max_upload_bytes:,} bytes"
            )
        try:
            return load_image(
                data,
                max_bytes=self.max_upload_bytes,
                max_pixels=self.engine.settings.max_pixels,
                max_side=max_side,
            )
        except ImageError as exc:
            raise ImageError(f"{where}{exc}") from None

    def enrol_photo(
        self,
        person_id: str,
        data: bytes,
        filename: str = "",
        *,
        actor: str,
        deadline: Deadline | None = None,
    ) -> TemplateInfo:
        """Add a template to a person from a photo showing exactly one usable face.

        Args:
            person_id: the person.
            data: the uploaded file.
            filename: the upload's name, for messages.
            actor: who enrols (for the audit log).
            deadline: when to give up (checked between the steps, before anything is stored).

        Returns:
            The new template, with its face box and quality.

        Raises:
            NotFoundError: no such person.
            UploadTooLargeError, ImageError: the upload is too large or not a usable image.
            FaceError: no face, several faces, or a face too small.
            TimeLimitError: the deadline passed or was cancelled; nothing was stored.
        """
        self.person(person_id)  # a missing person is a 404 before any decoding work
        image = self.decode_upload(data, filename)
        try:
            face = self.engine.enrolment_face(image, deadline=deadline)
        except FaceError as exc:
            where = f"{filename}: " if filename else ""
            raise FaceError(f"{where}{exc}") from None
        key = self.photos.add("templates", encode_jpeg(image), "jpg")
        try:
            info, watchlists = self._store_template(person_id, key, face)
        except BaseException:
            self.photos.delete(key)
            raise
        try:
            self.gallery.add_templates(
                watchlists,
                [GalleryEntry(info.id, person_id, face.embedding, face.quality.score)],
            )
        except BaseException:
            with self.db.session() as session:
                row = session.get(FaceTemplate, info.id)
                if row is not None:
                    session.delete(row)
            self.photos.delete(key)
            raise
        self.auth.audit(
            actor,
            "template.enrol",
            person_id,
            # No file name: an upload is often named after the person.
            {"template": info.id, "quality": round(info.quality, 3)},
        )
        logger.info(
            "enrolled template %s for person %s (quality %.2f, face %d px)",
            info.id,
            person_id,
            info.quality,
            face.box.size,
        )
        return info

    def _store_template(
        self, person_id: str, key: str, face: Face
    ) -> tuple[TemplateInfo, list[str]]:
        try:
            with self.db.session() as session:
                person = self._get_person(session, person_id)
                row = FaceTemplate(
                    person_id=person_id,
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
                session.add(row)
                session.flush()
                return _template_info(row), sorted(w.name for w in person.watchlists)
        except IntegrityError:
            # The person was deleted while the photo was being checked.
            raise NotFoundError(f"no person with id {person_id!r}") from None

    def delete_template(self, person_id: str, template_id: str, *, actor: str) -> None:
        """Remove one template: its row, its photo and its gallery entries."""
        with self.db.session() as session:
            row = session.get(FaceTemplate, template_id)
            if row is None or row.person_id != person_id:
                raise NotFoundError(f"person {person_id!r} has no template {template_id!r}")
            key = row.photo_key
            session.delete(row)
        self.gallery.remove_template(template_id)
        self._delete_photos([key])
        self.auth.audit(actor, "template.delete", person_id, {"template": template_id})

    # identification -------------------------------------------------------------------------

    def identify(
        self, data: bytes, filename: str = "", *, k: int = 3, deadline: Deadline | None = None
    ) -> list[IdentifiedFace]:
        """Every face in an uploaded photo with its nearest ``k`` people; nothing is stored.

        The photo is shrunk to ``photo_max_side`` and searched with the cheap detection stages
        only; boxes are given back in the uploaded photo's own pixels.

        Raises:
            UploadTooLargeError, ImageError: the upload is too large or not a usable image.
            TimeLimitError: the deadline passed or was cancelled.
        """
        image = self.decode_upload(data, filename, max_side=self.photo_max_side)
        faces = self.engine.faces(image, fallback=True, thorough=False, deadline=deadline)
        if not faces:
            return []
        full_width, full_height = upright_size(data)
        shrunk_height, shrunk_width = image.shape[:2]
        to_full = partial(
            scaled_box,
            sx=full_width / shrunk_width,
            sy=full_height / shrunk_height,
            width=full_width,
            height=full_height,
        )
        answers = self.gallery.gallery.identify_batch(
            np.stack([face.embedding for face in faces]), k=k
        )
        person_ids = {m.person for a in answers for m in a.candidates}
        with self.db.session() as session:
            rows = session.execute(select(Person.id, Person.name).where(Person.id.in_(person_ids)))
            names = dict(rows.all())
        found = []
        for face, answer in zip(faces, answers, strict=True):
            accepted = answer.match
            matches = tuple(
                MatchInfo(
                    person_id=m.person,
                    name=names.get(m.person, ""),
                    watchlist=m.watchlist,
                    distance=m.distance,
                    matched=accepted is not None
                    and template_of(m.template) == template_of(accepted.template)
                    and m.watchlist == accepted.watchlist,
                )
                for m in answer.candidates
            )
            found.append(
                IdentifiedFace(
                    box=to_full(face.box),
                    quality=face.quality,
                    person_id=accepted.person if accepted else None,
                    name=names.get(accepted.person) if accepted else None,
                    watchlist=accepted.watchlist if accepted else None,
                    distance=accepted.distance if accepted else None,
                    matches=matches,
                )
            )
        return found

    # people filed from photos elsewhere (Amber Alert cases) ----------------------------------

    def face_of_photo(
        self, data: bytes, filename: str = "", *, deadline: Deadline | None = None
    ) -> tuple[Face, bytes]:
        """The one usable face of a photo anyone with the reporter role may send, and the
        photo re-encoded for storing (upright, no EXIF); nothing is stored.

        The photo is shrunk to ``photo_max_side`` and searched with the cheap detection stages
        only.

        Raises:
            UploadTooLargeError, ImageError: the upload is too large or not a usable image.
            FaceError: no face, several faces, or a face too small (the file name in it).
            TimeLimitError: the deadline passed or was cancelled.
        """
        image = self.decode_upload(data, filename, max_side=self.photo_max_side)
        try:
            face = self.engine.enrolment_face(image, thorough=False, deadline=deadline)
        except FaceError as exc:
            where = f"{filename}: " if filename else ""
            raise FaceError(f"{where}{exc}") from None
        return face, encode_jpeg(image)

    def add_person_with_faces(
        self,
        session: Session,
        *,
        name: str,
        notes: str,
        watchlist: str,
        faces: Sequence[tuple[Face, str]],
    ) -> tuple[str, list[GalleryEntry]]:
        """Add a person on ``watchlist`` with one template per ``(face, stored photo key)``,
        in the caller's transaction (so the record of why they were added commits with them).

        Returns:
            The person's id, and the entries to give the live gallery once it commits.

        Raises:
            EnrolmentError: the watchlist does not exist.
        """
        [row] = self._watchlist_rows(session, [watchlist])
        person = Person(id=new_id(), name=name, notes=notes, watchlists=[row])
        session.add(person)
        entries = []
        for face, key in faces:
            template = FaceTemplate(
                id=new_id(),
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
            session.add(template)
            entries.append(GalleryEntry(template.id, person.id, face.embedding, face.quality.score))
        session.flush()
        return person.id, entries
