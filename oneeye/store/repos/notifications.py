"""Notification rows: the outbox's queue of messages to send, and what is swept or erased of it.

Functions take the caller's ``Session`` (the caller owns the transaction) and speak in ids,
counts and value types, never rows. The outbox decides when to send and what a failure means;
this module only knows how the rows look.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, select
from sqlalchemy.orm import Session

from oneeye.store.models import Notification


def _rowcount(result: Any) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


# erasure and retention -------------------------------------------------------------------------


def delete_about(session: Session, case_ids: Collection[str], sighting_ids: Collection[str]) -> int:
    """Delete the notifications about the cases among ``case_ids`` or the sightings among
    ``sighting_ids``, whatever their status; returns how many."""
    return _rowcount(
        session.execute(
            delete(Notification)
            .where(
                or_(
                    Notification.case_id.in_(case_ids),
                    Notification.sighting_id.in_(sighting_ids),
                )
            )
            .execution_options(synchronize_session=False)
        )
    )


def delete_finished(session: Session, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest sent or failed notifications made before
    ``cutoff`` (select the ids, then delete by id: the same on SQLite and PostgreSQL);
    returns how many."""
    ids = list(
        session.scalars(
            select(Notification.id)
            .where(
                Notification.status.in_(("sent", "failed")),
                Notification.created_at < cutoff,
            )
            .order_by(Notification.id)
            .limit(limit)
        )
    )
    if ids:
        session.execute(
            delete(Notification)
            .where(Notification.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    return len(ids)
