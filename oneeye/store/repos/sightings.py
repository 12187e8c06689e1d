"""Stored sightings: one row per track per person, written from camera messages.

Functions take the caller's ``Session`` and speak in value types: a sighting to write is a
``NewSighting``, a stored one comes back as a ``SightingRecord`` (never a row), and what an
action needs to know about a new one (the camera's name, the person's name and account, the
watchlist's action) is a ``SightingContext``. The service above decides what to write; this
module only knows how rows look.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete, or_, select, update
from sqlalchemy import exists as sql_exists
from sqlalchemy.orm import Session, defer

from oneeye.store.models import Camera, Person, Sighting, SightingDecision, Watchlist
from oneeye.store.repos import cases
from oneeye.store.repos.templates import embedding_to_bytes

Box = tuple[int, int, int, int]
"""``(top, right, bottom, left)`` in the frame's pixels."""


@dataclass(frozen=True, slots=True)
class NewSighting:
    """A sighting (or an update of one) as a camera reported it."""

    id: str
    camera_id: str
    track: int
    person_id: str | None
    watchlist: str | None
    distance: float | None
    quality: float | None
    frame: int
    t: float
    box: Box
    seen_at: datetime
    snapshot_key: str | None = None
    embedding: Sequence[float] | None = None


@dataclass(frozen=True, slots=True)
class SightingRecord:
    """A stored sighting (without its embedding)."""

    id: str
    camera_id: str
    track: int
    person_id: str | None
    watchlist: str | None
    distance: float | None
    quality: float | None
    frame: int
    t: float
    top: int
    right: int
    bottom: int
    left: int
    first_seen: datetime
    last_seen: datetime
    left_at: datetime | None
    snapshot_key: str | None
    revised: bool = False
    """Whether an earlier decision about this sighting was replaced (see ``decisions``)."""

    @property
    def box(self) -> Box:
        """``(top, right, bottom, left)``."""
        return (self.top, self.right, self.bottom, self.left)


@dataclass(frozen=True, slots=True)
class Decision:
    """Who a sighting was said to be from ``decided_at`` on (``person_id`` ``None``: an
    unknown face)."""

    person_id: str | None
    person_name: str | None
    watchlist: str | None
    distance: float | None
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class Applied:
    """What storing an update did."""

    replaced_snapshot: str | None = None
    """The snapshot key the update replaced (no row names it any more)."""
    previous: Decision | None = None
    """The decision the update revised (another person or watchlist), else ``None``."""
    revised_at: datetime | None = None
    """When the revised decision ended (the update's time), with ``previous``."""


Cursor = tuple[datetime, str]
"""Where a page of :func:`find` ended: the last sighting's ``(first_seen, id)``."""


@dataclass(frozen=True, slots=True)
class SightingContext:
    """What the rows around a new sighting say about it."""

    camera_name: str
    person_name: str | None
    account_id: str | None
    watchlist_action: str | None


def _record(row: Sighting, revised: bool = False) -> SightingRecord:
    return SightingRecord(
        id=row.id,
        camera_id=row.camera_id,
        track=row.track,
        person_id=row.person_id,
        watchlist=row.watchlist,
        distance=row.distance,
        quality=row.quality,
        frame=row.frame,
        t=row.t,
        top=row.top,
        right=row.right,
        bottom=row.bottom,
        left=row.left,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        left_at=row.left_at,
        snapshot_key=row.snapshot_key,
        revised=revised,
    )


def _row(new: NewSighting) -> Sighting:
    top, right, bottom, left = new.box
    return Sighting(
        id=new.id,
        camera_id=new.camera_id,
        track=new.track,
        person_id=new.person_id,
        watchlist=new.watchlist,
        distance=new.distance,
        quality=new.quality,
        frame=new.frame,
        t=new.t,
        top=top,
        right=right,
        bottom=bottom,
        left=left,
        first_seen=new.seen_at,
        last_seen=new.seen_at,
        snapshot_key=new.snapshot_key,
        embedding=None if new.embedding is None else embedding_to_bytes(new.embedding),
    )


def _rowcount(result: Any) -> int:
    return cast("CursorResult[Any]", result).rowcount


def person_exists(session: Session, person_id: str) -> bool:
    """Whether ``person_id`` is an enrolled person."""
    return session.get(Person, person_id) is not None


def exists(session: Session, sighting_id: str) -> bool:
    """Whether a sighting with this id is stored."""
    return session.get(Sighting, sighting_id) is not None


def add(session: Session, new: NewSighting) -> None:
    """Write a new sighting (open: no ``left_at``); flushed, so a repeated id fails here."""
    session.add(_row(new))
    session.flush()


def mark_left(session: Session, sighting_id: str, at: datetime) -> bool:
    """Close a sighting at ``at`` (an earlier close stands) and stretch its ``last_seen``;
    ``False`` if there is no such sighting."""
    row = session.get(Sighting, sighting_id)
    if row is None:
        return False
    row.left_at = row.left_at or at
    row.last_seen = max(row.last_seen, at)
    return True


def _decided_at(session: Session, row: Sighting) -> datetime:
    """When the sighting's current decision was made: its last revision, else first seen."""
    last = session.scalar(
        select(SightingDecision.revised_at)
        .where(SightingDecision.sighting_id == row.id)
        .order_by(SightingDecision.revised_at.desc(), SightingDecision.id.desc())
        .limit(1)
    )
    return row.first_seen if last is None else last


def apply_update(session: Session, new: NewSighting) -> Applied:
    """Update a stored sighting with a later message of it: who, how close, where, and a
    better snapshot or quality when it brings one. An update naming another person or
    watchlist revises the decision: the replaced one is kept as a ``SightingDecision`` row,
    ended at the update's time.

    Returns:
        The snapshot key the update replaced, and the decision it revised.
    """
    row = session.get(Sighting, new.id)
    if row is None:
        return Applied()
    replaced = row.snapshot_key
    previous = None
    if (row.person_id, row.watchlist) != (new.person_id, new.watchlist):
        person = session.get(Person, row.person_id) if row.person_id else None
        previous = Decision(
            person_id=row.person_id,
            person_name=person.name if person is not None else None,
            watchlist=row.watchlist,
            distance=row.distance,
            decided_at=_decided_at(session, row),
        )
        revised_at = max(new.seen_at, previous.decided_at)
        session.add(
            SightingDecision(
                sighting_id=row.id,
                person_id=previous.person_id,
                watchlist=previous.watchlist,
                distance=previous.distance,
                decided_at=previous.decided_at,
                revised_at=revised_at,
            )
        )
    row.distance = new.distance
    row.person_id = new.person_id
    row.watchlist = new.watchlist
    if new.quality is not None:
        row.quality = new.quality
    if new.snapshot_key is not None:
        row.snapshot_key = new.snapshot_key
    row.top, row.right, row.bottom, row.left = new.box
    row.last_seen = max(row.last_seen, new.seen_at)
    session.flush()
    gone = replaced if replaced is not None and replaced != row.snapshot_key else None
    if previous is None:
        return Applied(replaced_snapshot=gone)
    return Applied(replaced_snapshot=gone, previous=previous, revised_at=revised_at)


def close_track(session: Session, new: NewSighting) -> int:
    """Close the open sighting(s) of ``new``'s camera track that began before it, at its
    time: its unknown one, and an earlier one on the same watchlist (a track's sighting on
    another watchlist is the same face's, and stays open); returns how many."""
    return _rowcount(
        session.execute(
            update(Sighting)
            .where(
                Sighting.camera_id == new.camera_id,
                Sighting.track == new.track,
                or_(Sighting.watchlist.is_(None), Sighting.watchlist == new.watchlist),
                Sighting.left_at.is_(None),
                Sighting.first_seen <= new.seen_at,
                Sighting.id != new.id,
            )
            .values(left_at=new.seen_at)
            .execution_options(synchronize_session=False)
        )
    )


def close_open(session: Session, camera_id: str, at: datetime | None = None) -> int:
    """Set ``left_at`` on every open sighting of a camera: to ``at``, or when ``None`` to each
    one's ``last_seen``; returns how many were closed."""
    return _rowcount(
        session.execute(
            update(Sighting)
            .where(Sighting.camera_id == camera_id, Sighting.left_at.is_(None))
            .values(left_at=Sighting.last_seen if at is None else at)
            .execution_options(synchronize_session=False)
        )
    )


def context(
    session: Session, camera_id: str, person_id: str | None, watchlist: str | None
) -> SightingContext:
    """The camera's name (its id if it is gone), the person's name and account, and the
    watchlist's action of a sighting."""
    camera = session.get(Camera, camera_id)
    person = session.get(Person, person_id) if person_id else None
    action = None
    if watchlist is not None:
        action = session.scalar(select(Watchlist.action).where(Watchlist.name == watchlist))
    return SightingContext(
        camera_name=camera.name if camera is not None else camera_id,
        person_name=person.name if person is not None else None,
        account_id=person.account_id if person is not None else None,
        watchlist_action=action,
    )


def _was(column: Any, value: str) -> ColumnElement[bool]:
    """A sighting whose decision, now or before a revision, had ``column == value``."""
    return or_(
        getattr(Sighting, column.key) == value,
        Sighting.id.in_(select(SightingDecision.sighting_id).where(column == value)),
    )


def _revised() -> ColumnElement[bool]:
    return sql_exists().where(SightingDecision.sighting_id == Sighting.id)


def find(
    session: Session,
    *,
    camera: str | None = None,
    person: str | None = None,
    watchlist: str | None = None,
    unknown: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    after: Cursor | None = None,
    exclude_people: Collection[str] = (),
    exclude_sightings: Collection[str] = (),
) -> list[tuple[SightingRecord, str | None]]:
    """Stored sightings with their person's name, newest first (see
    ``services.sighting_queries.SightingQueries.query`` for the filters). A person or
    watchlist filter finds the sightings that were decided so at any time, also those revised
    since."""
    query = (
        select(Sighting, Person.name, _revised().label("revised"))
        .outerjoin(Person, Person.id == Sighting.person_id)
        .options(defer(Sighting.embedding))  # never shown; 512 bytes a row for nothing
        .order_by(Sighting.first_seen.desc(), Sighting.id)
        .limit(limit)
    )
    if after is not None:
        # The plain range first, so the database walks the first_seen index from the cursor
        # (an OR alone makes SQLite scan the table on every page).
        query = query.where(
            Sighting.first_seen <= after[0],
            or_(Sighting.first_seen < after[0], Sighting.id > after[1]),
        )
    if camera is not None:
        query = query.where(Sighting.camera_id == camera)
    if person is not None:
        query = query.where(_was(SightingDecision.person_id, person))
    if watchlist is not None:
        query = query.where(_was(SightingDecision.watchlist, watchlist))
    if unknown:
        query = query.where(Sighting.person_id.is_(None))
    if since is not None:
        query = query.where(Sighting.first_seen >= since)
    if until is not None:
        query = query.where(Sighting.first_seen < until)
    if exclude_people:
        # NOT IN alone would drop the unknown faces too (NULL NOT IN ... is not true).
        query = query.where(
            or_(Sighting.person_id.is_(None), Sighting.person_id.not_in(exclude_people))
        )
        # ... and a sighting once decided to be one of them is theirs too.
        query = query.where(
            Sighting.id.not_in(
                select(SightingDecision.sighting_id).where(
                    SightingDecision.person_id.in_(exclude_people)
                )
            )
        )
    if exclude_sightings:
        query = query.where(Sighting.id.not_in(exclude_sightings))
    return [(_record(row, bool(revised)), name) for row, name, revised in session.execute(query)]


def decisions(
    session: Session, found: Collection[tuple[SightingRecord, str | None]]
) -> dict[str, list[Decision]]:
    """Each sighting's decision trail, oldest first: the revised decisions, then the current
    one (decided at the last revision, or when first seen).

    Args:
        found: sightings with their current person's name, as :func:`find` gives them.
    """
    earlier: dict[str, list[tuple[Decision, datetime]]] = {}
    revised = [record.id for record, _ in found if record.revised]
    if revised:
        rows = session.execute(
            select(SightingDecision, Person.name)
            .outerjoin(Person, Person.id == SightingDecision.person_id)
            .where(SightingDecision.sighting_id.in_(revised))
            .order_by(SightingDecision.decided_at, SightingDecision.id)
        )
        for row, past_name in rows:
            decision = Decision(
                row.person_id, past_name, row.watchlist, row.distance, row.decided_at
            )
            earlier.setdefault(row.sighting_id, []).append((decision, row.revised_at))
    trails: dict[str, list[Decision]] = {}
    for record, name in found:
        past = earlier.get(record.id, [])
        decided_at = max([record.first_seen, *(ended for _, ended in past)])
        current = Decision(record.person_id, name, record.watchlist, record.distance, decided_at)
        trails[record.id] = [*(decision for decision, _ in past), current]
    return trails


def get(session: Session, sighting_id: str) -> tuple[SightingRecord, str | None] | None:
    """One stored sighting with its person's name, or ``None``."""
    found = session.execute(
        select(Sighting, Person.name, _revised().label("revised"))
        .outerjoin(Person, Person.id == Sighting.person_id)
        .where(Sighting.id == sighting_id)
    ).first()
    return None if found is None else (_record(found[0], bool(found[2])), found[1])


# a person's sightings (erasure and subject access) ---------------------------------------------


def _of_person(person_id: str, case_ids: Collection[str]) -> ColumnElement[bool]:
    return or_(
        _was(SightingDecision.person_id, person_id),  # now, or before a revision
        cases.matched_to(case_ids),
    )


def snapshots_of_person(
    session: Session,
    person_id: str,
    case_ids: Collection[str],
    *,
    besides: Collection[str] = (),
) -> list[tuple[str, str | None]]:
    """Every ``(sighting id, snapshot key)`` of a person: named as them (now or before a
    revision), or matched to one of their cases ``case_ids`` (an unknown face a retro-search
    found to be them); those among ``besides`` left out."""
    query = select(Sighting.id, Sighting.snapshot_key).where(_of_person(person_id, case_ids))
    if besides:
        query = query.where(Sighting.id.not_in(besides))
    return [(ident, key) for ident, key in session.execute(query)]


def with_ids(session: Session, sighting_ids: Collection[str]) -> list[SightingRecord]:
    """The sightings among ``sighting_ids``, oldest first."""
    if not sighting_ids:
        return []
    rows = session.scalars(
        select(Sighting)
        .where(Sighting.id.in_(sighting_ids))
        .order_by(Sighting.first_seen, Sighting.id)
    )
    return [_record(row) for row in rows]


def delete_ids(session: Session, sighting_ids: Collection[str]) -> None:
    """Delete the sightings among ``sighting_ids`` (their case matches must be gone first)."""
    session.execute(
        delete(Sighting)
        .where(Sighting.id.in_(sighting_ids))
        .execution_options(synchronize_session=False)
    )


# retention -------------------------------------------------------------------------------------


def _expired(*, known: bool, before: datetime) -> list[ColumnElement[bool]]:
    who = Sighting.person_id.is_not(None) if known else Sighting.person_id.is_(None)
    return [who, Sighting.last_seen < before, ~cases.held_by_a_case()]


def expired(
    session: Session, *, known: bool, before: datetime, limit: int
) -> list[tuple[str, str | None]]:
    """Up to ``limit`` ``(sighting id, snapshot key)`` of the oldest sightings of enrolled
    people (``known``) or of unknown faces last seen before ``before``, leaving out those a
    case not yet purged holds as matches."""
    rows = session.execute(
        select(Sighting.id, Sighting.snapshot_key)
        .where(*_expired(known=known, before=before))
        .order_by(Sighting.last_seen, Sighting.id)
        .limit(limit)
    )
    return [(ident, key) for ident, key in rows]


def delete_expired(
    session: Session, sighting_ids: Collection[str], *, known: bool, before: datetime
) -> None:
    """Delete the sightings among ``sighting_ids`` that ``expired`` would still find (one a
    case matched in the meantime stays)."""
    session.execute(
        delete(Sighting)
        .where(Sighting.id.in_(sighting_ids), *_expired(known=known, before=before))
        .execution_options(synchronize_session=False)
    )


# unknown faces of the face library -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnknownFace:
    """An unknown face's sighting with its kept embedding (128 float32, decoded)."""

    id: str
    camera_id: str
    first_seen: datetime
    last_seen: datetime
    quality: float
    snapshot_key: str | None
    embedding: bytes


def unknown_faces(session: Session, *, since: datetime, limit: int) -> list[UnknownFace]:
    """The newest ``limit`` sightings of unknown faces first seen at or after ``since`` whose
    embedding is still kept (retention drops them), newest first."""
    rows = session.execute(
        select(
            Sighting.id,
            Sighting.camera_id,
            Sighting.first_seen,
            Sighting.last_seen,
            Sighting.quality,
            Sighting.snapshot_key,
            Sighting.embedding,
        )
        .where(
            Sighting.person_id.is_(None),
            Sighting.embedding.is_not(None),
            Sighting.first_seen >= since,
        )
        .order_by(Sighting.first_seen.desc(), Sighting.id)
        .limit(limit)
    ).all()
    return [
        UnknownFace(ident, camera, first, last, float(quality or 0.0), key, bytes(blob or b""))
        for ident, camera, first, last, quality, key, blob in rows
    ]
