"""The face library: what staff see of the faces OneEye holds, beyond the enrolment API.

Two things live here. A template's **thumbnail**: the enrolled photo cropped to its face and
shrunk, so a page of customers shows faces, not whole photos. And the **unknown faces** of the
last hours **grouped by person**: the kept embeddings of unknown sightings (kept only for
``alerts.unknown_retention_hours``; retention drops them after that, and then they cannot be
grouped) are clustered greedily at the customers watchlist's threshold, so a stranger who
keeps coming back shows as one group with a count; staff can then name the group (its best
face is enrolled into a customer) or report it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import numpy.typing as npt

from oneeye.gallery import GalleryIndex
from oneeye.services.customers import CustomerDirectory
from oneeye.services.enrolment import EnrolmentService, NotFoundError, TemplateInfo, encode_jpeg
from oneeye.store.db import Database
from oneeye.store.photos import PhotoStore
from oneeye.store.repos import people, sightings, templates
from oneeye.store.repos.sightings import UnknownFace
from oneeye.vision.engine import Deadline
from oneeye.vision.images import load_image

logger = logging.getLogger(__name__)

THUMBNAIL_SIDE = 160
"""A thumbnail's longer side, in pixels."""
THUMBNAIL_MARGIN = 0.35
"""A thumbnail shows this much around the face's box, as a fraction of the box's size."""
MAX_UNKNOWN_FACES = 2000
"""Unknown faces grouped at most (the newest): the pairwise distances of 2,000 faces are a
16 MB matrix and take ~50 ms; a busier site sees the newest 2,000."""
MAX_UNKNOWN_GROUPS = 100
"""Groups answered at most (the largest)."""
MAX_GROUP_SIGHTINGS = 50
"""Sighting ids listed per group at most (the count says how many there are)."""
UNKNOWN_HOURS = 24.0
"""The window of unknown faces grouped (shorter when retention keeps embeddings less)."""
CUSTOMERS = "customers"


class NotThatFaceError(NotFoundError):
    """The sighting is not an unknown face whose snapshot is still kept."""


@dataclass(frozen=True, slots=True)
class UnknownGroup:
    """Unknown sightings that are probably the same person."""

    best_sighting_id: str
    """The group's best face (highest quality): the one to name or report."""
    best_snapshot_key: str | None
    best_quality: float
    sightings: int
    sighting_ids: tuple[str, ...]
    """Newest first, at most ``MAX_GROUP_SIGHTINGS``."""
    cameras: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class UnknownGroups:
    """The unknown faces of a window, grouped."""

    groups: tuple[UnknownGroup, ...]
    """Largest first, then most recent."""
    faces: int
    """Unknown faces with a kept embedding in the window (at most ``MAX_UNKNOWN_FACES``)."""
    hours: float
    """The window: ``UNKNOWN_HOURS``, or less when retention keeps embeddings less long."""
    threshold: float
    """Two faces nearer than this (euclidean) are put in one group."""
    truncated: bool
    """More faces were kept than ``MAX_UNKNOWN_FACES``: only the newest were grouped."""


def group_faces(embeddings: npt.NDArray[np.float32], threshold: float) -> list[list[int]]:
    """Greedy leader clustering: faces in the given order (best first); each face not yet in
    a group leads a new one, which takes every face still free within ``threshold`` of it.

    Args:
        embeddings: (n, 128) float32, best face first.
        threshold: the largest euclidean distance to a group's leader.

    Returns:
        Groups as lists of row indexes, each led by its first (best) face.
    """
    n = embeddings.shape[0]
    if n == 0:
        return []
    squares = np.einsum("ij,ij->i", embeddings, embeddings)
    d2 = squares[:, None] + squares[None, :] - 2.0 * (embeddings @ embeddings.T)
    near = d2 <= threshold * threshold
    free = np.ones(n, dtype=bool)
    groups: list[list[int]] = []
    for leader in range(n):
        if not free[leader]:
            continue
        members = np.flatnonzero(near[leader] & free)
        free[members] = False
        groups.append([leader, *(int(i) for i in members if i != leader)])
    return groups


def crop_face(
    image: npt.NDArray[np.uint8], box: tuple[int, int, int, int], side: int, margin: float
) -> npt.NDArray[np.uint8]:
    """The face at ``box`` (top, right, bottom, left) with ``margin`` around it, shrunk to
    at most ``side`` pixels on its longer side."""
    top, right, bottom, left = box
    height, width = image.shape[:2]
    pad_y = round((bottom - top) * margin)
    pad_x = round((right - left) * margin)
    y0, y1 = max(0, top - pad_y), min(height, bottom + pad_y + 1)
    x0, x1 = max(0, left - pad_x), min(width, right + pad_x + 1)
    crop = image[y0:y1, x0:x1] if y1 > y0 and x1 > x0 else image
    scale = side / max(crop.shape[:2])
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return np.ascontiguousarray(crop)


class FaceLibrary:
    """Thumbnails of enrolled faces, and the unknown faces grouped by person."""

    def __init__(
        self,
        db: Database,
        photos: PhotoStore,
        gallery: GalleryIndex,
        enrolment: EnrolmentService,
        directory: CustomerDirectory,
        unknown_retention_hours: float,
    ) -> None:
        self.db = db
        self.photos = photos
        self.gallery = gallery
        self.enrolment = enrolment
        self.directory = directory
        self.unknown_retention_hours = unknown_retention_hours

    # thumbnails -----------------------------------------------------------------------------

    def template(self, person_id: str, template_id: str) -> TemplateInfo:
        """One of a person's templates; ``NotFoundError`` if the person has no such one."""
        with self.db.session() as session:
            info = templates.get(session, template_id)
        if info is None or info.person_id != person_id:
            raise NotFoundError(f"person {person_id!r} has no template {template_id!r}")
        return info

    def thumbnail(self, info: TemplateInfo) -> bytes:
        """The template's face as a small JPEG (decoding work: run it off the event loop).

        Raises:
            PhotoNotFoundError: the template's photo is gone from the photo store.
        """
        data = self.photos.get(info.photo_key)
        image = load_image(data)
        box = (info.box.top, info.box.right, info.box.bottom, info.box.left)
        return encode_jpeg(crop_face(image, box, THUMBNAIL_SIDE, THUMBNAIL_MARGIN))

    # unknown faces --------------------------------------------------------------------------

    def window_hours(self) -> float:
        """How far back unknown faces can be grouped: ``UNKNOWN_HOURS``, or the embeddings'
        retention when that is shorter (0: no embedding is kept, nothing can be grouped)."""
        return min(UNKNOWN_HOURS, self.unknown_retention_hours)

    def unknown_groups(self, now: datetime | None = None) -> UnknownGroups:
        """The unknown faces of the last ``window_hours()`` grouped by person (see
        ``group_faces``), largest groups first."""
        now = now or datetime.now(UTC)
        hours = self.window_hours()
        threshold = self.gallery.threshold(CUSTOMERS)
        if hours <= 0:
            return UnknownGroups((), 0, hours, threshold, truncated=False)
        with self.db.session() as session:
            faces = sightings.unknown_faces(
                session, since=now - timedelta(hours=hours), limit=MAX_UNKNOWN_FACES + 1
            )
        truncated = len(faces) > MAX_UNKNOWN_FACES
        faces = [f for f in faces[:MAX_UNKNOWN_FACES] if templates.is_embedding(f.embedding)]
        # Best face first: each group is led (and shown) by its sharpest, most frontal face.
        faces.sort(key=lambda f: -f.quality)
        embeddings = templates.embeddings_from_bytes([f.embedding for f in faces])
        groups = [self._group([faces[i] for i in g]) for g in group_faces(embeddings, threshold)]
        groups.sort(key=lambda g: (-g.sightings, -g.last_seen.timestamp()))
        return UnknownGroups(
            tuple(groups[:MAX_UNKNOWN_GROUPS]), len(faces), hours, threshold, truncated
        )

    @staticmethod
    def _group(faces: list[UnknownFace]) -> UnknownGroup:
        best = faces[0]
        newest = sorted(faces, key=lambda f: f.first_seen, reverse=True)
        return UnknownGroup(
            best_sighting_id=best.id,
            best_snapshot_key=best.snapshot_key,
            best_quality=best.quality,
            sightings=len(faces),
            sighting_ids=tuple(f.id for f in newest[:MAX_GROUP_SIGHTINGS]),
            cameras=tuple(sorted({f.camera_id for f in faces})),
            first_seen=min(f.first_seen for f in faces),
            last_seen=max(f.last_seen for f in faces),
        )

    def name_unknown(
        self,
        sighting_id: str,
        account_id: str,
        *,
        name: str | None,
        actor: str,
        deadline: Deadline | None = None,
    ) -> tuple[str, TemplateInfo]:
        """Enrol an unknown sighting's face (its snapshot) into the customer of
        ``account_id``: the person who holds the account, or a new one on the customers
        watchlist; with ``name``, a missing account is created first (a new customer).

        Returns:
            The person's id and the new template.

        Raises:
            NotThatFaceError: no unknown sighting with a kept snapshot has this id.
            NotFoundError: no such account (and no ``name`` to create it with).
            FaceError, ImageError: the snapshot has no usable face for enrolment.
        """
        with self.db.session() as session:
            found = sightings.get(session, sighting_id)
        record = None if found is None else found[0]
        if record is None or record.person_id is not None or not record.snapshot_key:
            raise NotThatFaceError(f"no unknown face with a kept snapshot has id {sighting_id!r}")
        snapshot = self.photos.get(record.snapshot_key)
        card = self.directory.lookup(account_id)
        if card is None:
            if not name:
                raise NotFoundError(f"no customer account {account_id!r}; give a name to create it")
            card, _ = self.directory.save(account_id, name=name)
            self.enrolment.auth.audit(actor, "account.create", account_id, {"via": "unknown"})
        with self.db.session() as session:
            person_id = people.holder_of(session, account_id)
        if person_id is None:
            person_id = self.enrolment.create_person(
                card.name, [CUSTOMERS], actor=actor, account_id=account_id
            ).id
        info = self.enrolment.enrol_photo(
            person_id, snapshot, f"sighting {sighting_id}", actor=actor, deadline=deadline
        )
        self.enrolment.auth.audit(
            actor, "unknown.name", person_id, {"sighting": sighting_id, "template": info.id}
        )
        logger.info("unknown sighting %s enrolled into person %s", sighting_id, person_id)
        return person_id, info
