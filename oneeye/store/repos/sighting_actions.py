"""Sighting actions not yet finished: one row per stored sighting whose watchlist action has
not run to its end, with the server acting on it and until when (its lease).

The sightings service writes the row in the transaction that stores the sighting, and deletes
it when the action ran; a row whose lease ran out belongs to a server that died (or hung) in
between, and any server may take it over (:func:`take_over`: one conditional update, so two
sweepers never take the same row).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from oneeye.store.models import SightingAction


def add(session: Session, sighting_id: str, owner: str, lease_until: datetime) -> None:
    """Record that ``owner`` is acting on a sighting stored in this transaction, until
    ``lease_until``."""
    session.add(
        SightingAction(sighting_id=sighting_id, owner=owner, lease_until=lease_until, attempts=1)
    )


def finish(session: Session, sighting_id: str) -> bool:
    """The sighting's action ran: forget it. Whether there was a row."""
    result = session.execute(
        delete(SightingAction).where(SightingAction.sighting_id == sighting_id)
    )
    return cast("CursorResult[Any]", result).rowcount > 0


def expired(session: Session, now: datetime, limit: int) -> list[tuple[str, int]]:
    """Up to ``limit`` unfinished actions whose lease ran out by ``now``, oldest lease first:
    ``(sighting_id, attempts)``."""
    rows = session.execute(
        select(SightingAction.sighting_id, SightingAction.attempts)
        .where(SightingAction.lease_until < now)
        .order_by(SightingAction.lease_until)
        .limit(limit)
    ).all()
    return [(r[0], r[1]) for r in rows]


def take_over(
    session: Session, sighting_id: str, owner: str, now: datetime, lease_until: datetime
) -> bool:
    """Make ``owner`` the one acting on a sighting whose lease ran out by ``now``; ``False``
    if another server took it first (or it finished meanwhile)."""
    result = session.execute(
        update(SightingAction)
        .where(SightingAction.sighting_id == sighting_id, SightingAction.lease_until < now)
        .values(owner=owner, lease_until=lease_until, attempts=SightingAction.attempts + 1)
    )
    return cast("CursorResult[Any]", result).rowcount == 1


def pending(session: Session) -> int:
    """How many sightings' actions are unfinished (for tests and metrics)."""
    return len(session.execute(select(SightingAction.sighting_id)).all())
