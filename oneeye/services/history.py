"""The sightings history: pages of sightings under one set of filters, newest first, and the
same as CSV.

Pages are keyset-paged on ``(first_seen, id)`` (a page never shifts when new sightings come
in, and an old page costs what a new one does); a page holds at most ``PAGE_SIZE`` rows. The
CSV export walks the same order a chunk at a time and stops after ``EXPORT_MAX_ROWS`` rows,
so neither its memory nor its time grows with the table. Each row carries its decision trail:
a sighting whose decision was revised is found under every person it was shown as.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from oneeye.services.actions import photo_url
from oneeye.services.sighting_queries import SightingQueries, SightingView
from oneeye.store.repos.sightings import Cursor, Decision

__all__ = [
    "CSV_COLUMNS",
    "EXPORT_MAX_ROWS",
    "PAGE_SIZE",
    "Cursor",
    "HistoryPage",
    "HistoryQuery",
    "csv_lines",
    "cursor_of",
    "export",
    "page",
]

PAGE_SIZE = 50
"""Sightings on one page of the history (the most a page may ask for)."""
EXPORT_MAX_ROWS = 10_000
"""Rows in one CSV export at most; narrow the filters (dates) for more."""
EXPORT_CHUNK = 500
"""Rows read from the database at a time while exporting."""
CSV_COLUMNS = (
    "sighting_id",
    "first_seen",
    "last_seen",
    "left_at",
    "camera_id",
    "person_id",
    "person_name",
    "watchlist",
    "distance",
    "revised",
    "decisions",
    "snapshot_url",
)


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """The history's filters (all optional; days are UTC and both ends are included)."""

    person: str | None = None
    camera: str | None = None
    watchlist: str | None = None
    unknown: bool = False
    since: date | None = None
    until: date | None = None

    def window(self) -> tuple[datetime | None, datetime | None]:
        """The filter's days as ``[since, until)`` times (UTC)."""
        start = None if self.since is None else datetime.combine(self.since, time(), UTC)
        end = None
        if self.until is not None:
            end = datetime.combine(self.until + timedelta(days=1), time(), UTC)
        return start, end


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page: its sightings, and where the next (older) page starts (``None``: the last)."""

    sightings: list[SightingView]
    next_after: Cursor | None


def cursor_of(view: SightingView) -> Cursor:
    """Where a page ending with ``view`` continues."""
    return (view.sighting.first_seen, view.sighting.id)


def page(
    sightings: SightingQueries,
    query: HistoryQuery,
    *,
    after: Cursor | None = None,
    size: int = PAGE_SIZE,
    exclude_people: Collection[str] = (),
) -> HistoryPage:
    """One page of the history, newest first.

    Args:
        sightings: what reads them.
        query: the filters.
        after: the previous page's ``next_after`` (``None``: the newest page).
        size: rows on the page (1..``PAGE_SIZE``).
        exclude_people: people whose sightings are left out.
    """
    return _page(sightings, query, after, max(1, min(size, PAGE_SIZE)), exclude_people)


def _page(
    sightings: SightingQueries,
    query: HistoryQuery,
    after: Cursor | None,
    size: int,
    exclude_people: Collection[str] = (),
) -> HistoryPage:
    since, until = query.window()
    found = sightings.query(
        camera=query.camera,
        person=query.person,
        watchlist=query.watchlist,
        since=since,
        until=until,
        limit=size + 1,
        exclude_people=exclude_people,
        unknown=query.unknown,
        after=after,
    )
    more = len(found) > size
    found = found[:size]
    return HistoryPage(found, cursor_of(found[-1]) if more and found else None)


def export(
    sightings: SightingQueries, query: HistoryQuery, max_rows: int = EXPORT_MAX_ROWS
) -> Iterator[SightingView]:
    """Every sighting the filters find, newest first, up to ``max_rows``, read a chunk at a
    time (blocking database work: iterate on a worker thread)."""
    after: Cursor | None = None
    left = max_rows
    while left > 0:
        chunk = _page(sightings, query, after, min(EXPORT_CHUNK, left))
        yield from chunk.sightings
        left -= len(chunk.sightings)
        if chunk.next_after is None:
            return
        after = chunk.next_after


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: one starting with ``= + - @`` (a formula) is
    quoted with a leading apostrophe (names come from whoever enrolled the person)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _trail(decisions: tuple[Decision, ...]) -> str:
    return " > ".join(
        f"{d.person_name or d.person_id or 'unknown'}"
        f"{'' if d.distance is None else f' ({d.distance:.3f})'} from {d.decided_at.isoformat()}"
        for d in decisions
    )


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat()


def csv_lines(views: Iterator[SightingView]) -> Iterator[str]:
    """The CSV text of ``views``, a header line first, then one line per sighting."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Collection[object]) -> str:
        writer.writerow([_cell(cell) for cell in cells])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(CSV_COLUMNS)
    for view in views:
        row = view.sighting
        yield line(
            (
                row.id,
                _iso(row.first_seen),
                _iso(row.last_seen),
                _iso(row.left_at),
                row.camera_id,
                row.person_id,
                view.person_name,
                row.watchlist,
                None if row.distance is None else f"{row.distance:.4f}",
                "yes" if view.revised else "no",
                _trail(view.decisions),
                photo_url(row.snapshot_key),
            )
        )
