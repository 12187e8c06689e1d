"""Verdicts on matches: a sighting's face confirmed as, or rejected as, the person it was
matched to; one row per (sighting, person), the newest verdict kept.

Functions take the caller's ``Session`` and return value types, never rows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, aliased

from oneeye.store.models import Person, SightingFeedback, utcnow

CONFIRM = "confirm"
REJECT = "reject"
IN_CHUNK = 1000
"""Values per ``IN (...)`` list when many sightings are asked about."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One verdict on a match."""

    sighting_id: str
    person_id: str
    verdict: str
    actual_person_id: str | None
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RejectedPair:
    """How often faces matched to ``person_id`` were rejected, by who they really were
    (``actual_person_id`` ``None``: nobody said)."""

    person_id: str
    person_name: str | None
    actual_person_id: str | None
    actual_name: str | None
    rejections: int
    last_at: datetime


def _verdict(row: SightingFeedback) -> Verdict:
    return Verdict(
        sighting_id=row.sighting_id,
        person_id=row.person_id,
        verdict=row.verdict,
        actual_person_id=row.actual_person_id,
        actor=row.actor,
        at=row.at,
    )


def record(
    session: Session,
    sighting_id: str,
    person_id: str,
    verdict: str,
    *,
    actor: str,
    actual_person_id: str | None = None,
) -> Verdict:
    """Store ``verdict`` on the match of ``sighting_id`` to ``person_id`` (replacing an earlier
    one; an ``actual_person_id`` given before is kept when none is given now)."""
    row = session.scalar(
        select(SightingFeedback).where(
            SightingFeedback.sighting_id == sighting_id, SightingFeedback.person_id == person_id
        )
    )
    if row is None:
        row = SightingFeedback(sighting_id=sighting_id, person_id=person_id)
        session.add(row)
    row.verdict = verdict
    row.actor = actor
    row.at = utcnow()
    if actual_person_id is not None:
        row.actual_person_id = actual_person_id
    session.flush()
    return _verdict(row)


def of_sighting(session: Session, sighting_id: str) -> list[Verdict]:
    """Every verdict on a sighting's matches."""
    rows = session.scalars(
        select(SightingFeedback).where(SightingFeedback.sighting_id == sighting_id)
    )
    return [_verdict(row) for row in rows]


def judged(
    session: Session, sighting_ids: Collection[str], verdict: str = REJECT
) -> set[tuple[str, str]]:
    """The (sighting, person) pairs among ``sighting_ids`` whose verdict is ``verdict``."""
    ids = sorted(set(sighting_ids))
    found: set[tuple[str, str]] = set()
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        rows = session.execute(
            select(SightingFeedback.sighting_id, SightingFeedback.person_id).where(
                SightingFeedback.sighting_id.in_(chunk), SightingFeedback.verdict == verdict
            )
        )
        found.update((sighting, person) for sighting, person in rows)
    return found


def rejected_pairs(session: Session, *, minimum: int = 1, limit: int = 200) -> list[RejectedPair]:
    """Persons whose matches were rejected, with who the faces really were, most rejections
    first."""
    actual = aliased(Person)
    count = func.count(SightingFeedback.id)
    rows = session.execute(
        select(
            SightingFeedback.person_id,
            Person.name,
            SightingFeedback.actual_person_id,
            actual.name,
            count,
            func.max(SightingFeedback.at),
        )
        .outerjoin(Person, Person.id == SightingFeedback.person_id)
        .outerjoin(actual, actual.id == SightingFeedback.actual_person_id)
        .where(SightingFeedback.verdict == REJECT)
        .group_by(
            SightingFeedback.person_id,
            Person.name,
            SightingFeedback.actual_person_id,
            actual.name,
        )
        .having(count >= minimum)
        .order_by(count.desc(), func.max(SightingFeedback.at).desc())
        .limit(limit)
    ).all()
    return [
        RejectedPair(
            person_id=person,
            person_name=name,
            actual_person_id=actual_id,
            actual_name=actual_name,
            rejections=int(n),
            last_at=last,
        )
        for person, name, actual_id, actual_name, n, last in rows
    ]


def delete_of_person(session: Session, person_id: str) -> int:
    """Delete every verdict naming ``person_id`` (erasure)."""
    result = session.execute(
        delete(SightingFeedback).where(
            or_(
                SightingFeedback.person_id == person_id,
                SightingFeedback.actual_person_id == person_id,
            )
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
