"""People, their photos and templates; and "who is in this photo?".

Enrolling a photo is all or nothing: the upload is size-checked, decoded, must show exactly one
usable face, then the photo is stored, the template row written and the live gallery told; if
any step fails, what earlier steps stored is removed again, so a bad upload leaves no trace.
Every enrolment and deletion is written to the audit log.

The checks on the photo itself (decode safely, exactly one usable face, encode) are
``enrolment_photo.read_enrolment_face``, which needs no database: ``EnrolmentService`` runs it
before it stores anything, and ``oneeye enroll`` to enrol into a gallery folder.

At about 620 lines this module is a little over the ~600-line guide: it is one concern, the
``EnrolmentService`` and its small value types; the photo checks already live apart.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from functools import partial

import cv2
import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oneeye.errors import ImageError, Invalid, NotFound, OneEyeError, TooLarge
from oneeye.services.auth import AuthService
from oneeye.services.customers import CustomerError, check_account_id
from oneeye.services.enrolment_photo import PhotoFace, decode_photo, read_enrolment_face
from oneeye.services.gallery import GalleryEntry, GalleryService
from oneeye.services.same_face import SameFaceCheck, SameFaceError, check_same_face
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.store.repos import people, templates
from oneeye.store.repos.people import UNSET, PersonInfo, UnknownWatchlistError, Unset
from oneeye.store.repos.templates import TemplateInfo
from oneeye.types import Face, FaceBox, FaceQuality, RGBImage
from oneeye.vision.engine import Deadline, FaceEngine
from oneeye.vision.images import upright_size

logger = logging.getLogger(__name__)

JPEG_QUALITY = 92
"""Enrolment photos are stored re-encoded as JPEG: upright, and without their EXIF (a phone
photo's GPS position is nobody's business)."""
MAX_NAME = 200


class EnrolmentError(Invalid):
    """A person or template cannot be created or changed as asked (bad name, unknown
    watchlist, ...)."""


class NotFoundError(EnrolmentError, NotFound):
    """No person or template has this id."""


class UploadTooLargeError(ImageError, TooLarge):
    """The upload is larger than the server accepts."""


__all__ = [
    "UNSET",
    "EnrolledTemplate",
    "EnrolmentError",
    "EnrolmentService",
    "IdentifiedFace",
    "MatchInfo",
    "NotFoundError",
    "PersonInfo",
    "PhotoFace",
    "SameFaceCheck",
    "SameFaceError",
    "TemplateInfo",
    "UploadTooLargeError",
    "decode_photo",
    "read_enrolment_face",
]
"""``PersonInfo``, ``TemplateInfo`` and ``UNSET`` are the people and templates repositories'
value types, named here too because this service's callers use them; ``PhotoFace``,
``decode_photo`` and ``read_enrolment_face`` are ``enrolment_photo``'s database-free steps."""


@dataclass(frozen=True, slots=True)
class EnrolledTemplate(TemplateInfo):
    """A template just enrolled, and how its face compared with the person's others."""

    same_face: SameFaceCheck | None = None

    @classmethod
    def of(cls, info: TemplateInfo, check: SameFaceCheck) -> EnrolledTemplate:
        """``info`` with the same-face ``check`` of its face."""
        values = {f.name: getattr(info, f.name) for f in fields(TemplateInfo)}
        return cls(**values, same_face=check)


@dataclass(frozen=True, slots=True)
class MatchInfo:
    """One candidate for a face in an identified photo."""

    person_id: str
    name: str
    watchlist: str
    distance: float
    matched: bool
    """Whether this candidate is its watchlist's accepted answer (within the watchlist's
    threshold, and clear of its other persons by the margin): one face can be matched on
    several watchlists."""


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

    def _unknown_person(self, person_id: str) -> NotFoundError:
        return NotFoundError(f"no person with id {person_id!r}")

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
        with self.db.session() as session:
            return people.search(
                session,
                watchlist=watchlist,
                q=q,
                limit=limit,
                offset=offset,
                match_accounts=match_accounts,
                exclude=exclude,
            )

    def person(self, person_id: str) -> PersonInfo:
        """One person; ``NotFoundError`` if there is none with this id."""
        with self.db.session() as session:
            info = people.get(session, person_id)
        if info is None:
            raise self._unknown_person(person_id)
        return info

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
        try:
            with self.db.session() as session:
                info = people.create(
                    session, name=name, account_id=account, notes=notes, watchlists=watchlists
                )
        except UnknownWatchlistError as exc:
            raise EnrolmentError(str(exc)) from None
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
        name: str | Unset = UNSET,
        account_id: str | Unset | None = UNSET,
        notes: str | Unset = UNSET,
        watchlists: Sequence[str] | Unset = UNSET,
    ) -> PersonInfo:
        """Change the given fields of a person; a change of watchlists changes the live
        gallery too."""
        changed: dict[str, object] = {}
        try:
            with self.db.session() as session:
                if people.watchlists_of(session, person_id) is None:
                    raise self._unknown_person(person_id)
                if not isinstance(name, Unset):
                    name = _check_name(name)
                    changed["name"] = True  # the audit log names people by id, never by name
                if not isinstance(account_id, Unset):
                    account_id = _check_account(account_id)
                    changed["account_id"] = account_id
                if not isinstance(notes, Unset):
                    changed["notes"] = True
                if not isinstance(watchlists, Unset):
                    changed["watchlists"] = sorted(set(watchlists))
                updated = people.update(
                    session,
                    person_id,
                    name=name,
                    account_id=account_id,
                    notes=notes,
                    watchlists=watchlists,
                )
        except UnknownWatchlistError as exc:
            raise EnrolmentError(str(exc)) from None
        if updated is None:
            raise self._unknown_person(person_id)
        info, moved = updated
        if moved:
            self.gallery.sync_person(person_id)
        if changed:
            self.auth.audit(actor, "person.update", person_id, changed)
        return info

    def delete_person(self, person_id: str, *, actor: str) -> None:
        """Remove a person with their templates, photos and gallery entries."""
        with self.db.session() as session:
            keys = people.delete(session, person_id)
        if keys is None:
            raise self._unknown_person(person_id)
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
            if people.watchlists_of(session, person_id) is None:
                raise self._unknown_person(person_id)
            return templates.of_person(session, person_id)

    def decode_upload(
        self, data: bytes, filename: str = "", *, max_side: int | None = None
    ) -> RGBImage:
        """An upload as an RGB image (shrunk to ``max_side`` on its longer side if given):
        ``UploadTooLargeError`` above ``max_upload_bytes``, ``ImageError`` (naming the file)
        for anything that is not a usable image."""
        self._check_upload_size(data, filename)
        return decode_photo(
            data,
            filename,
            max_pixels=self.engine.settings.max_pixels,
            max_bytes=self.max_upload_bytes,
            max_side=max_side,
        )

    def _check_upload_size(self, data: bytes, filename: str) -> None:
        if len(data) > self.max_upload_bytes:
            where = f"{filename}: " if filename else ""
            raise UploadTooLargeError(
                f"{where}the upload is {len(data):,} bytes; the limit is "
                f"{self.max_upload_bytes:,} bytes"
            )

    def enrol_photo(
        self,
        person_id: str,
        data: bytes,
        filename: str = "",
        *,
        actor: str,
        deadline: Deadline | None = None,
        force: bool = False,
    ) -> EnrolledTemplate:
        """Add a template to a person from a photo showing exactly one usable face.

        Args:
            person_id: the person.
            data: the uploaded file.
            filename: the upload's name, for messages.
            actor: who enrols (for the audit log).
            deadline: when to give up (checked between the steps, before anything is stored).
            force: enrol even when the same-face check finds the photo suspicious (audited).

        Returns:
            The new template, with its face box and quality, and the same-face check.

        Raises:
            NotFoundError: no such person.
            UploadTooLargeError, ImageError: the upload is too large or not a usable image.
            FaceError: no face, several faces, or a face too small.
            SameFaceError: the face may be someone else's (``services.same_face``) and
                ``force`` is not set; nothing was stored.
            TimeLimitError: the deadline passed or was cancelled; nothing was stored.
        """
        self.person(person_id)  # a missing person is a 404 before any decoding work
        self._check_upload_size(data, filename)
        found = read_enrolment_face(
            self.engine, data, filename, max_bytes=self.max_upload_bytes, deadline=deadline
        )
        return self.enrol_face(
            person_id, found.face, encode_jpeg(found.image), actor=actor, force=force
        )

    def same_face(self, person_id: str, face: Face) -> SameFaceCheck:
        """How ``face`` compares with ``person_id``'s templates and with other people."""
        with self.db.session() as session:
            watchlists = people.watchlists_of(session, person_id)
            if watchlists is None:
                raise self._unknown_person(person_id)
            own = [v.embedding for v in templates.vectors_of_person(session, person_id)]
        return check_same_face(face.embedding, person_id, own, self.gallery.gallery, watchlists)

    def enrol_face(
        self,
        person_id: str,
        face: Face,
        jpeg: bytes,
        *,
        actor: str,
        force: bool = False,
        sighting_id: str | None = None,
    ) -> EnrolledTemplate:
        """Add a template of a face already found and checked (its photo ``jpeg``, the box in
        its pixels), after the same-face check.

        Args:
            person_id: the person.
            face: the face, with its embedding and quality.
            jpeg: the photo to keep with the template.
            actor: who enrols (for the audit log).
            force: enrol even when the same-face check finds the face suspicious (audited).
            sighting_id: the sighting the face was taken from, if any (kept with the template,
                so an admin can see which templates came from cameras).

        Raises:
            NotFoundError: no such person.
            SameFaceError: the face may be someone else's and ``force`` is not set.
        """
        check = self.same_face(person_id, face)
        if check.suspicious and not force:
            logger.info(
                "person %s: a new face was refused by the same-face check (%s)",
                person_id,
                check.reason(),
            )
            raise SameFaceError(check)
        key = self.photos.add("templates", jpeg, "jpg")
        try:
            info, watchlists = self._store_template(person_id, key, face, sighting_id)
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
                templates.delete(session, info.id)
            self.photos.delete(key)
            raise
        # No file name: an upload is often named after the person.
        detail: dict[str, object] = {"template": info.id, "quality": round(info.quality, 3)}
        if sighting_id is not None:
            detail["sighting"] = sighting_id
        if check.own_templates:
            detail["same_face"] = check.as_json()
        if check.suspicious:
            detail["forced"] = True
        self.auth.audit(
            actor,
            "template.enrol.forced" if check.suspicious else "template.enrol",
            person_id,
            detail,
        )
        logger.info(
            "enrolled template %s for person %s (quality %.2f, face %d px%s%s)",
            info.id,
            person_id,
            info.quality,
            face.box.size,
            ", from a sighting" if sighting_id else "",
            ", forced past the same-face check" if check.suspicious else "",
        )
        return EnrolledTemplate.of(info, check)

    def _store_template(
        self, person_id: str, key: str, face: Face, sighting_id: str | None = None
    ) -> tuple[TemplateInfo, list[str]]:
        try:
            with self.db.session() as session:
                watchlists = people.watchlists_of(session, person_id)
                if watchlists is None:
                    raise self._unknown_person(person_id)
                return (
                    templates.add(session, person_id, key, face, sighting_id=sighting_id),
                    watchlists,
                )
        except IntegrityError:
            # The person was deleted while the photo was being checked.
            raise NotFoundError(f"no person with id {person_id!r}") from None

    def delete_template(self, person_id: str, template_id: str, *, actor: str) -> None:
        """Remove one template: its row, its photo and its gallery entries."""
        with self.db.session() as session:
            key = templates.delete(session, template_id, person_id=person_id)
        if key is None:
            raise NotFoundError(f"person {person_id!r} has no template {template_id!r}")
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
        person_ids = {m.person for a in answers for m in a.candidates + a.matches}
        with self.db.session() as session:
            names = people.names(session, person_ids)
        found = []
        for face, answer in zip(faces, answers, strict=True):
            accepted = answer.match
            # Each watchlist decides on its own: a candidate is matched when it is its
            # watchlist's accepted person (a customer can also be a case's person).
            chosen = {(m.person, m.watchlist) for m in answer.matches}
            listed = answer.candidates + tuple(
                m for m in answer.matches if m not in answer.candidates
            )
            matches = tuple(
                MatchInfo(
                    person_id=m.person,
                    name=names.get(m.person, ""),
                    watchlist=m.watchlist,
                    distance=m.distance,
                    matched=(m.person, m.watchlist) in chosen,
                )
                for m in listed
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
        self._check_upload_size(data, filename)
        found = read_enrolment_face(
            self.engine,
            data,
            filename,
            max_bytes=self.max_upload_bytes,
            max_side=self.photo_max_side,
            thorough=False,
            deadline=deadline,
        )
        return found.face, encode_jpeg(found.image)

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
        try:
            person = people.create(
                session, name=name, account_id=None, notes=notes, watchlists=[watchlist]
            )
        except UnknownWatchlistError as exc:
            raise EnrolmentError(str(exc)) from None
        entries = []
        for face, key in faces:
            template = templates.add(session, person.id, key, face)
            entries.append(GalleryEntry(template.id, person.id, face.embedding, face.quality.score))
        return person.id, entries
