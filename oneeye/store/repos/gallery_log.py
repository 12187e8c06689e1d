"""The gallery's versions and its log of changes, shared by every central server.

One row of ``gallery_state`` holds the epoch and the newest version. :func:`append` bumps
that row and logs the change in one transaction: the bump locks the row until the commit,
so a second server's change waits and takes the next version, and the log never shows a
version before the ones below it have committed (PostgreSQL row lock; SQLite has one writer).
A reader that has applied version ``v`` reads what came after with :func:`since`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from oneeye.store.models import GalleryLogEntry, GalleryState

STATE_ID = 1


@dataclass(frozen=True, slots=True)
class State:
    """The epoch the versions count in, and the newest version logged."""

    epoch: str
    version: int


@dataclass(frozen=True, slots=True)
class Logged:
    """One logged change."""

    version: int
    change: dict[str, Any]


def state(session: Session) -> State | None:
    """The state row, or ``None`` before the first server made it."""
    row = session.get(GalleryState, STATE_ID)
    return None if row is None else State(row.epoch, row.version)


def create(session: Session) -> None:
    """Make the state row (version 0, a new epoch); when another server made it first, the
    transaction fails with ``IntegrityError`` as it commits (that row stands)."""
    session.add(GalleryState(id=STATE_ID, epoch=uuid.uuid4().hex, version=0))


def ensure(open_session: Callable[[], AbstractContextManager[Session]]) -> State:
    """The state row, made if missing: ``open_session`` is ``Database.session``."""
    with open_session() as session:
        found = state(session)
    if found is not None:
        return found
    try:
        with open_session() as session:
            create(session)
    except IntegrityError:
        pass  # another server made it at the same moment: that one stands
    with open_session() as session:
        made = state(session)
    assert made is not None
    return made


def append(session: Session, change: dict[str, Any]) -> int:
    """Log ``change`` under the next version and return it (commits with ``session``).

    Raises:
        LookupError: there is no state row (``ensure`` was not called).
    """
    bumped = session.execute(
        update(GalleryState)
        .where(GalleryState.id == STATE_ID)
        .values(version=GalleryState.version + 1)
        .returning(GalleryState.version)
    ).scalar_one_or_none()
    if bumped is None:
        raise LookupError("the gallery_state row is missing")
    session.add(GalleryLogEntry(version=bumped, change=change))
    return int(bumped)


def since(session: Session, version: int, limit: int) -> list[Logged]:
    """Up to ``limit`` changes after ``version``, oldest first."""
    rows = session.execute(
        select(GalleryLogEntry.version, GalleryLogEntry.change)
        .where(GalleryLogEntry.version > version)
        .order_by(GalleryLogEntry.version)
        .limit(limit)
    ).all()
    return [Logged(int(v), dict(c)) for v, c in rows]


def prune(session: Session, before: datetime, keep: int) -> int:
    """Delete changes logged before ``before``, always keeping the newest ``keep``; returns
    how many went."""
    newest = session.execute(
        select(GalleryLogEntry.version).order_by(GalleryLogEntry.version.desc()).offset(keep)
    ).first()
    if newest is None:
        return 0
    result = session.execute(
        delete(GalleryLogEntry).where(
            GalleryLogEntry.created_at < before, GalleryLogEntry.version <= newest[0]
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
