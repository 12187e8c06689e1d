"""Amber Alert cases and their matches: the rows of ``cases`` and ``case_matches`` as values.

Functions take the caller's ``Session`` (the caller owns the transaction, and the row locks
``lock`` takes last until it ends) and return frozen values, never rows. Besides the case's
own tables this reads what a case is shown with: its person's photo keys (templates), the
names of the cameras its matches came from, and the kept embeddings of unknown faces that a
retro-search looks through.

It runs past 600 lines because the case aggregate is one: cases, their matches, their
retention and what erasure needs of them share the row types and the ``_infos`` reader, and
splitting them would only move imports around.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from oneeye.store.models import (
    AlertCase,
    Camera,
    CaseMatch,
    FaceTemplate,
    Person,
    Sighting,
    Watchlist,
)
from oneeye.store.repos.templates import EMBEDDING_BYTES, embeddings_from_bytes


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
class CaseState:
    """What deciding about a case needs of it (read under its row lock, see ``lock``)."""

    id: str
    person_id: str | None
    name: str
    description: str
    status: str
    approved_at: datetime | None
    purged_at: datetime | None


@dataclass(frozen=True, slots=True)
class CaseOwner:
    """Who filed a case, and whether it is approved: what a reporter's scope is made of."""

    id: str
    person_id: str | None
    filed_by: str | None
    reporter: str
    approved: bool


@dataclass(frozen=True, slots=True)
class CameraLabel:
    """A camera's name and location, as a match is shown with them."""

    name: str
    location: str


@dataclass(frozen=True, slots=True)
class KeptFace:
    """An unknown face whose embedding is kept: a retro-search candidate."""

    sighting_id: str
    camera_id: str
    seen_at: datetime
    snapshot_key: str | None


@dataclass(frozen=True, slots=True)
class PurgedCase:
    """What purging a case's rows left for the caller to delete elsewhere."""

    person_id: str | None
    photo_keys: list[str]
    snapshot_keys: list[str]


# cases -----------------------------------------------------------------------------------------


def add(
    session: Session,
    *,
    case_id: str,
    person_id: str,
    name: str,
    description: str,
    contact: str,
    reporter: str,
    filed_by: str | None,
    approved: bool,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Store a new active case (approved by ``reporter`` at ``now`` when ``approved``)."""
    session.add(
        AlertCase(
            id=case_id,
            person_id=person_id,
            name=name,
            description=description,
            contact=contact,
            reporter=reporter,
            filed_by=filed_by,
            approved_at=now if approved else None,
            approved_by=reporter if approved else None,
            status="active",
            created_at=now,
            expires_at=expires_at,
        )
    )


def delete_case(session: Session, case_id: str, person_id: str) -> None:
    """Delete a case row and its person (whose templates go with it): undoing a filing that
    failed half way."""
    session.execute(delete(AlertCase).where(AlertCase.id == case_id))
    session.execute(delete(Person).where(Person.id == person_id))


def _state(row: AlertCase) -> CaseState:
    return CaseState(
        id=row.id,
        person_id=row.person_id,
        name=row.name,
        description=row.description,
        status=row.status,
        approved_at=row.approved_at,
        purged_at=row.purged_at,
    )


def state(session: Session, case_id: str) -> CaseState | None:
    """A case's state, unlocked; ``None``: no such case."""
    row = session.get(AlertCase, case_id)
    return None if row is None else _state(row)


def lock(session: Session, case_id: str) -> CaseState | None:
    """A case's state, its row locked until the transaction ends (on PostgreSQL; SQLite has
    one writer anyway); ``None``: no such case."""
    row = session.get(AlertCase, case_id, with_for_update=True)
    return None if row is None else _state(row)


def close(session: Session, case_id: str, status: str, actor: str, now: datetime) -> None:
    """Mark a case ``status`` (resolved, expired) by ``actor`` at ``now``."""
    session.execute(
        update(AlertCase)
        .where(AlertCase.id == case_id)
        .values(status=status, closed_at=now, closed_by=actor)
        .execution_options(synchronize_session=False)
    )


def approve(session: Session, case_id: str, actor: str, now: datetime) -> None:
    """Mark a case approved by ``actor`` at ``now``."""
    session.execute(
        update(AlertCase)
        .where(AlertCase.id == case_id)
        .values(approved_at=now, approved_by=actor)
        .execution_options(synchronize_session=False)
    )


def _infos(session: Session, cases: Sequence[AlertCase]) -> list[CaseInfo]:
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


def get(session: Session, case_id: str) -> CaseInfo | None:
    """One case with its photos and match counts; ``None``: no such case."""
    row = session.get(AlertCase, case_id)
    return None if row is None else _infos(session, [row])[0]


def search(
    session: Session,
    *,
    status: str | None = None,
    filed_by: tuple[str, str] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CaseInfo]:
    """Cases, newest first; only those with ``status``, and only those filed by
    ``filed_by`` (``(ref, actor)``), when given."""
    query = select(AlertCase).order_by(AlertCase.created_at.desc(), AlertCase.id)
    if status is not None:
        query = query.where(AlertCase.status == status)
    if filed_by is not None:
        ref, actor = filed_by
        query = query.where(AlertCase.filed_by == ref, AlertCase.reporter == actor)
    rows = list(session.scalars(query.limit(limit).offset(offset)))
    return _infos(session, rows)


def due_to_expire(session: Session, now: datetime) -> list[str]:
    """The active cases whose expiry has passed, by id."""
    return list(
        session.scalars(
            select(AlertCase.id).where(AlertCase.status == "active", AlertCase.expires_at <= now)
        )
    )


def active_of_person(session: Session, person_id: str) -> list[str]:
    """The active cases looking for ``person_id``, by id."""
    return list(
        session.scalars(
            select(AlertCase.id).where(
                AlertCase.person_id == person_id, AlertCase.status == "active"
            )
        )
    )


def owners(session: Session) -> list[CaseOwner]:
    """Every case's filer, person and approval."""
    rows = session.execute(
        select(
            AlertCase.id,
            AlertCase.person_id,
            AlertCase.filed_by,
            AlertCase.reporter,
            AlertCase.approved_at,
        )
    ).all()
    return [
        CaseOwner(case_id, person, filed_by, reporter, approved_at is not None)
        for case_id, person, filed_by, reporter, approved_at in rows
    ]


def people_on(session: Session, watchlist: str) -> set[str]:
    """The people on ``watchlist``, by id."""
    return set(
        session.scalars(select(Person.id).where(Person.watchlists.any(Watchlist.name == watchlist)))
    )


def matched_sightings(session: Session) -> list[tuple[str, str]]:
    """Every ``(case id, sighting id)`` of a match."""
    return [(c, s) for c, s in session.execute(select(CaseMatch.case_id, CaseMatch.sighting_id))]


def photo_owners(session: Session, photo_key: str) -> set[str]:
    """The people whose templates use the photo ``photo_key``."""
    return set(
        session.scalars(select(FaceTemplate.person_id).where(FaceTemplate.photo_key == photo_key))
    )


def sightings_with_snapshot(session: Session, snapshot_key: str) -> list[tuple[str, str | None]]:
    """Every ``(sighting id, person id)`` whose snapshot is ``snapshot_key``."""
    rows = session.execute(
        select(Sighting.id, Sighting.person_id).where(Sighting.snapshot_key == snapshot_key)
    )
    return [(sid, person) for sid, person in rows]


def first_photo_key(session: Session, person_id: str | None) -> str | None:
    """The photo of a person's oldest template (a case's face on the dashboard)."""
    return session.scalar(
        select(FaceTemplate.photo_key)
        .where(FaceTemplate.person_id == person_id)
        .order_by(FaceTemplate.created_at, FaceTemplate.id)
        .limit(1)
    )


def cameras(session: Session, camera_ids: Collection[str]) -> dict[str, CameraLabel]:
    """The registered cameras among ``camera_ids``, by id."""
    if not camera_ids:
        return {}
    rows = session.execute(
        select(Camera.id, Camera.name, Camera.location).where(Camera.id.in_(camera_ids))
    )
    return {cid: CameraLabel(name, location) for cid, name, location in rows}


# matches ---------------------------------------------------------------------------------------


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


def matches(session: Session, case_id: str) -> list[MatchInfo]:
    """A case's matches, in the order they were seen, with camera names and snapshots."""
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


def held(session: Session, case_id: str) -> list[MatchInfo]:
    """A case's held matches, in the order they were seen (camera names left as ids)."""
    rows = session.execute(
        select(CaseMatch, Sighting.snapshot_key)
        .outerjoin(Sighting, Sighting.id == CaseMatch.sighting_id)
        .where(CaseMatch.case_id == case_id, CaseMatch.held.is_(True))
        .order_by(CaseMatch.seen_at, CaseMatch.id)
    ).all()
    return [_match_info(match, snapshot, None, None) for match, snapshot in rows]


def has_match(session: Session, case_id: str, sighting_id: str) -> bool:
    """Whether this sighting is a match of this case already."""
    found = session.scalar(
        select(CaseMatch.id).where(
            CaseMatch.case_id == case_id, CaseMatch.sighting_id == sighting_id
        )
    )
    return found is not None


def add_match(
    session: Session,
    *,
    case_id: str,
    sighting_id: str,
    camera_id: str,
    distance: float,
    kind: str,
    seen_at: datetime,
    found_at: datetime,
    notified: bool,
    held: bool,
) -> int:
    """Store a match (flushed, so a later cooldown check sees it); returns its id."""
    match = CaseMatch(
        case_id=case_id,
        sighting_id=sighting_id,
        camera_id=camera_id,
        distance=distance,
        kind=kind,
        seen_at=seen_at,
        found_at=found_at,
        notified=notified,
        held=held,
    )
    session.add(match)
    session.flush()
    return match.id


def release(session: Session, match_id: int, *, notified: bool) -> None:
    """A held match is held no more (``notified``: it gave notifications)."""
    session.execute(
        update(CaseMatch)
        .where(CaseMatch.id == match_id)
        .values(held=False, notified=notified)
        .execution_options(synchronize_session=False)
    )


# retro-search ----------------------------------------------------------------------------------


def _decode(blobs: Sequence[bytes]) -> npt.NDArray[np.float32]:
    """Stored embeddings (each checked to be ``EMBEDDING_BYTES`` long) as an (n, 128) array."""
    return embeddings_from_bytes(blobs)


def kept_faces(
    session: Session, since: datetime, chunk: int
) -> Iterator[tuple[list[KeptFace], npt.NDArray[np.float32]]]:
    """The unknown faces seen since ``since`` whose embeddings are kept, ``chunk`` at a
    time: each chunk's faces and their (n, 128) embeddings (damaged ones skipped)."""
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
        .execution_options(yield_per=chunk)
    )
    for rows in session.execute(query).partitions():
        good = [r for r in rows if len(r[4] or b"") == EMBEDDING_BYTES]
        faces = [KeptFace(sid, camera, seen, snapshot) for sid, camera, seen, snapshot, _ in good]
        yield faces, _decode([bytes(r[4] or b"") for r in good])


# retention -------------------------------------------------------------------------------------


def due_to_purge(session: Session, closed_before: datetime) -> list[str]:
    """The closed cases not purged yet that closed before ``closed_before``, by id."""
    return list(
        session.scalars(
            select(AlertCase.id).where(
                AlertCase.status != "active",
                AlertCase.purged_at.is_(None),
                AlertCase.closed_at <= closed_before,
            )
        )
    )


def purge(session: Session, case_id: str, now: datetime) -> PurgedCase | None:
    """Delete a closed case's person (its templates go with it) and forget its sightings'
    snapshots and embeddings; the case row stays, ``purged_at`` set. Returns the photo and
    snapshot keys to delete from the photo store, or ``None`` when there is nothing to purge
    (no such case, still active, purged already)."""
    case = session.get(AlertCase, case_id, with_for_update=True)
    if case is None or case.purged_at is not None or case.status == "active":
        return None
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
    snapshot_keys = [
        key
        for key in session.scalars(
            select(Sighting.snapshot_key).where(of_case, Sighting.snapshot_key.is_not(None))
        )
        if key is not None
    ]
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
    return PurgedCase(person_id, photo_keys, snapshot_keys)


def forget_embeddings(session: Session, before: datetime) -> int:
    """Delete the kept embeddings of faces first seen before ``before``; returns how many."""
    result = session.execute(
        update(Sighting)
        .where(Sighting.embedding.is_not(None), Sighting.first_seen < before)
        .values(embedding=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# a person's cases (erasure and subject access) -------------------------------------------------


def ids_of_person(session: Session, person_id: str) -> list[str]:
    """Every case filed for ``person_id`` (any status, purged or not), by id."""
    return list(session.scalars(select(AlertCase.id).where(AlertCase.person_id == person_id)))


def with_ids(session: Session, case_ids: Collection[str]) -> list[CaseInfo]:
    """The cases among ``case_ids``, ordered by id."""
    if not case_ids:
        return []
    rows = list(
        session.scalars(select(AlertCase).where(AlertCase.id.in_(case_ids)).order_by(AlertCase.id))
    )
    return _infos(session, rows)


def matches_of(session: Session, case_ids: Collection[str]) -> list[MatchInfo]:
    """The matches of the cases among ``case_ids``, in the order they were stored (camera
    names left as ids)."""
    if not case_ids:
        return []
    rows = session.execute(
        select(CaseMatch, Sighting.snapshot_key)
        .outerjoin(Sighting, Sighting.id == CaseMatch.sighting_id)
        .where(CaseMatch.case_id.in_(case_ids))
        .order_by(CaseMatch.id)
    ).all()
    return [_match_info(match, snapshot, None, None) for match, snapshot in rows]


def delete_matches(
    session: Session, case_ids: Collection[str], sighting_ids: Collection[str]
) -> None:
    """Delete the matches of the cases among ``case_ids`` and of the sightings among
    ``sighting_ids``."""
    session.execute(
        delete(CaseMatch)
        .where(or_(CaseMatch.case_id.in_(case_ids), CaseMatch.sighting_id.in_(sighting_ids)))
        .execution_options(synchronize_session=False)
    )


def delete_ids(session: Session, case_ids: Collection[str]) -> None:
    """Delete the case rows among ``case_ids`` (their matches must be gone first)."""
    session.execute(
        delete(AlertCase)
        .where(AlertCase.id.in_(case_ids))
        .execution_options(synchronize_session=False)
    )


def held_by_a_case() -> ColumnElement[bool]:
    """The condition on ``sightings`` rows that a case not yet purged holds as matches (its
    retention decides when they go); ``store.repos.sightings`` sweeps with its negation."""
    held = (
        select(CaseMatch.sighting_id)
        .join(AlertCase, AlertCase.id == CaseMatch.case_id)
        .where(AlertCase.purged_at.is_(None))
    )
    return Sighting.id.in_(held)


def matched_to(case_ids: Collection[str]) -> ColumnElement[bool]:
    """The condition on ``sightings`` rows matched to one of the cases among ``case_ids``."""
    return Sighting.id.in_(select(CaseMatch.sighting_id).where(CaseMatch.case_id.in_(case_ids)))
