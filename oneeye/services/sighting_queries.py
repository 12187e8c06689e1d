"""Stored sightings, read: the sightings API and the history (``services.history``) find them
here, each with its decision trail (the decisions a revision replaced, oldest first), apart
from the service that writes them (``services.sightings``), which this needs nothing of.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from oneeye.store.db import Database
from oneeye.store.repos import sightings as rows
from oneeye.store.repos.sightings import Cursor, Decision, SightingRecord

__all__ = ["MAX_LIMIT", "SightingQueries", "SightingView"]

MAX_LIMIT = 1000
"""The most sightings one query returns."""


@dataclass(frozen=True, slots=True)
class SightingView:
    """A stored sighting for the API, with the person's name."""

    sighting: SightingRecord
    person_name: str | None
    decisions: tuple[Decision, ...] = ()
    """The decision trail, oldest first, the current decision last."""

    @property
    def revised(self) -> bool:
        """Whether an earlier decision about this sighting was replaced."""
        return self.sighting.revised


class SightingQueries:
    """Finds stored sightings, newest first, with the person's name and decision trail."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def query(
        self,
        camera: str | None = None,
        person: str | None = None,
        watchlist: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        exclude_people: Collection[str] = (),
        exclude_sightings: Collection[str] = (),
        *,
        unknown: bool = False,
        after: Cursor | None = None,
    ) -> list[SightingView]:
        """Stored sightings, newest first, each with its decision trail.

        Args:
            camera: only this camera's.
            person: only those decided to be this person (person id), now or before a
                revision: what the dashboards showed as them.
            watchlist: only matches on this watchlist (now or before a revision).
            since: first seen at or after this time.
            until: first seen before this time.
            limit: at most this many (1..1000).
            exclude_people: not these people's (what a reporter may not know of).
            exclude_sightings: not these sightings.
            unknown: only those that are unknown faces now.
            after: only those after this one in the order (the previous page's last).
        """
        limit = max(1, min(limit, MAX_LIMIT))
        with self.db.session() as session:
            found = rows.find(
                session,
                camera=camera,
                person=person,
                watchlist=watchlist,
                unknown=unknown,
                since=since,
                until=until,
                limit=limit,
                after=after,
                exclude_people=exclude_people,
                exclude_sightings=exclude_sightings,
            )
            trails = rows.decisions(session, found)
        return [SightingView(record, name, tuple(trails[record.id])) for record, name in found]

    def get(self, sighting_id: str) -> SightingView | None:
        """One stored sighting with its decision trail, or ``None``."""
        with self.db.session() as session:
            found = rows.get(session, sighting_id)
            if found is None:
                return None
            trail = rows.decisions(session, [found])[found[0].id]
        return SightingView(found[0], found[1], tuple(trail))
