"""Watchlists: the rows of ``watchlists`` as values, and how many people each holds.

Functions take the caller's ``Session`` and return ``StoredWatchlist`` values, never rows.
Which watchlists exist by default, what names and thresholds are valid and what the live
gallery does with a threshold is the gallery service's business; this module only knows how
the rows look. (Who is on which watchlist is written with the person, in ``people``.)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from oneeye.store.models import Watchlist, person_watchlists


@dataclass(frozen=True, slots=True)
class StoredWatchlist:
    """A stored watchlist."""

    name: str
    action: str
    description: str
    threshold: float | None
    """``None``: the gallery's default threshold."""
    created_at: datetime
    threshold_mode: str = "fixed"
    """``fixed`` or ``auto`` (calibrated for ``target_fpir``)."""
    target_fpir: float | None = None
    """``None``: the default target."""
    persons: int = 0
    """How many people are on it (``with_counts`` counts them; ``update`` leaves it 0)."""


def _stored(row: Watchlist, persons: int = 0) -> StoredWatchlist:
    return StoredWatchlist(
        name=row.name,
        action=row.action,
        description=row.description,
        threshold=row.threshold,
        created_at=row.created_at,
        threshold_mode=row.threshold_mode or "fixed",
        target_fpir=row.target_fpir,
        persons=persons,
    )


def names(session: Session) -> set[str]:
    """The names of every watchlist."""
    return set(session.scalars(select(Watchlist.name)))


def exists(session: Session, name: str) -> bool:
    """Whether a watchlist is named ``name``."""
    return session.scalar(select(Watchlist.id).where(Watchlist.name == name)) is not None


def with_counts(session: Session) -> list[StoredWatchlist]:
    """Every watchlist by name, with how many people are on it."""
    counted = session.execute(
        select(person_watchlists.c.watchlist_id, func.count()).group_by(
            person_watchlists.c.watchlist_id
        )
    )
    counts: dict[int, int] = dict(counted.all())
    rows = session.scalars(select(Watchlist).order_by(Watchlist.name))
    return [_stored(row, counts.get(row.id, 0)) for row in rows]


def add(
    session: Session,
    name: str,
    *,
    action: str,
    description: str,
    threshold: float | None = None,
    threshold_mode: str = "fixed",
    target_fpir: float | None = None,
) -> None:
    """Store a new watchlist (the name must be free: it is unique)."""
    session.add(
        Watchlist(
            name=name,
            action=action,
            threshold=threshold,
            description=description,
            threshold_mode=threshold_mode,
            target_fpir=target_fpir,
        )
    )


def update(
    session: Session,
    name: str,
    *,
    threshold: float | None = None,
    change_threshold: bool = False,
    description: str | None = None,
    threshold_mode: str | None = None,
    target_fpir: float | None = None,
) -> StoredWatchlist | None:
    """Set a watchlist's threshold (when ``change_threshold``; ``None`` is the default), its
    description, threshold mode and FPIR target (each when given); returns it as stored, or
    ``None`` when there is none by that name."""
    row = session.scalar(select(Watchlist).where(Watchlist.name == name))
    if row is None:
        return None
    if change_threshold:
        row.threshold = threshold
    if description is not None:
        row.description = description
    if threshold_mode is not None:
        row.threshold_mode = threshold_mode
    if target_fpir is not None:
        row.target_fpir = target_fpir
    return _stored(row)


def actions_of(session: Session, names: Collection[str]) -> set[str]:
    """The actions of the watchlists named (those that exist)."""
    if not names:
        return set()
    return set(session.scalars(select(Watchlist.action).where(Watchlist.name.in_(set(names)))))
