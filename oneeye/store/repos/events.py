"""Stored dashboard events: numbered, so a client that reconnects gets what it missed.

Functions take the caller's ``Session`` and return ``StoredEvent`` values, never rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from oneeye.store.models import DashboardEvent, utcnow
from oneeye.store.repos.oldest import delete_oldest

IN_CHUNK = 1000
"""Ids per ``IN (...)`` list, and events per page of ``scan``."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One stored event; ``audience`` is the lowest role that may receive it."""

    id: int
    type: str
    at: datetime
    audience: str
    payload: dict[str, Any]


def _stored(row: DashboardEvent) -> StoredEvent:
    return StoredEvent(row.id, row.type, row.at, row.audience, dict(row.payload))


def add(session: Session, type: str, payload: dict[str, Any], *, audience: str) -> StoredEvent:
    """Store an event, stamped now; flushed, so it has its id."""
    row = DashboardEvent(at=utcnow(), type=type, audience=audience, payload=payload)
    session.add(row)
    session.flush()
    return _stored(row)


def after(
    session: Session, event_id: int, audiences: Sequence[str], limit: int
) -> list[StoredEvent]:
    """Up to ``limit`` events after ``event_id`` for one of ``audiences``, oldest first."""
    query = (
        select(DashboardEvent)
        .where(DashboardEvent.id > event_id, DashboardEvent.audience.in_(audiences))
        .order_by(DashboardEvent.id)
        .limit(limit)
    )
    return [_stored(row) for row in session.scalars(query)]


def before(
    session: Session,
    event_id: int,
    audiences: Sequence[str],
    types: Sequence[str],
    limit: int,
) -> list[StoredEvent]:
    """Up to ``limit`` events before ``event_id`` of one of ``types`` for one of
    ``audiences``, newest first (a page of older events, read backwards)."""
    query = (
        select(DashboardEvent)
        .where(
            DashboardEvent.id < event_id,
            DashboardEvent.audience.in_(audiences),
            DashboardEvent.type.in_(types),
        )
        .order_by(DashboardEvent.id.desc())
        .limit(limit)
    )
    return [_stored(row) for row in session.scalars(query)]


def with_ids(session: Session, ids: Sequence[int]) -> list[StoredEvent]:
    """The events among ``ids`` that are stored, oldest first."""
    found = [
        _stored(row)
        for start in range(0, len(ids), IN_CHUNK)
        for row in session.scalars(
            select(DashboardEvent).where(DashboardEvent.id.in_(ids[start : start + IN_CHUNK]))
        )
    ]
    found.sort(key=lambda event: event.id)
    return found


def payloads(session: Session, after_id: int, limit: int = IN_CHUNK) -> list[tuple[int, Any]]:
    """``(id, payload)`` of up to ``limit`` events after ``after_id``, oldest first: for
    reading through every stored event a page at a time."""
    rows = session.execute(
        select(DashboardEvent.id, DashboardEvent.payload)
        .where(DashboardEvent.id > after_id)
        .order_by(DashboardEvent.id)
        .limit(limit)
    )
    return [(ident, payload) for ident, payload in rows]


def latest_id(session: Session) -> int:
    """The id of the newest stored event (0 when there is none)."""
    return int(session.scalar(select(func.max(DashboardEvent.id))) or 0)


def delete_through(session: Session, event_id: int) -> int:
    """Delete every event with an id up to ``event_id``; returns how many went."""
    result = session.execute(delete(DashboardEvent).where(DashboardEvent.id <= event_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delete_ids(session: Session, ids: Sequence[int]) -> None:
    """Delete the events among ``ids``."""
    for start in range(0, len(ids), IN_CHUNK):
        session.execute(
            delete(DashboardEvent)
            .where(DashboardEvent.id.in_(ids[start : start + IN_CHUNK]))
            .execution_options(synchronize_session=False)
        )


def delete_older(session: Session, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest events stored before ``cutoff`` (select the ids,
    then delete by id: the same statements on SQLite and PostgreSQL); returns how many."""
    return delete_oldest(session, DashboardEvent.id, DashboardEvent.at < cutoff, limit=limit)
