"""Sightings: ``/sightings`` (filter by camera, person, watchlist and time) and
``/sightings/{id}``. Viewer and above; embeddings of unknown faces are never returned.

A reporter does not learn where or when an Amber Alert case's person was seen unless it filed
that case and the case is approved (``oneeye.services.alerts.CaseScope``): such sightings are
left out of its lists and are "not found" to it, like an unknown id."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from oneeye.services.history import (
    EXPORT_MAX_ROWS,
    Cursor,
    HistoryQuery,
    csv_lines,
    export,
)
from oneeye.services.sightings import SightingView, photo_url
from oneeye.web.deps import ServicesDep, Teller, Viewer, audit_access

router = APIRouter(prefix="/sightings", tags=["sightings"])


class DecisionPublic(BaseModel):
    """Who a sighting was said to be, from ``decided_at`` until the next decision."""

    person_id: str | None
    person_name: str | None
    watchlist: str | None
    distance: float | None
    decided_at: datetime


class SightingPublic(BaseModel):
    """One sighting: a track of one face on one camera (a visit, not a frame)."""

    id: str
    camera_id: str
    track: int
    person_id: str | None
    """``None``: an unknown face."""
    person_name: str | None
    watchlist: str | None
    distance: float | None
    quality: float | None
    frame: int
    box: tuple[int, int, int, int]
    """(top, right, bottom, left) in the frame."""
    first_seen: datetime
    last_seen: datetime
    left_at: datetime | None
    snapshot_url: str | None
    revised: bool = False
    """Whether an earlier decision (shown to the dashboards) was replaced; see ``decisions``."""
    decisions: list[DecisionPublic] = []
    """The decision trail, oldest first; the last is the current one."""


def _public(view: SightingView) -> SightingPublic:
    row = view.sighting
    return SightingPublic(
        id=row.id,
        camera_id=row.camera_id,
        track=row.track,
        person_id=row.person_id,
        person_name=view.person_name,
        watchlist=row.watchlist,
        distance=row.distance,
        quality=row.quality,
        frame=row.frame,
        box=(row.top, row.right, row.bottom, row.left),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        left_at=row.left_at,
        snapshot_url=photo_url(row.snapshot_key),
        revised=view.revised,
        decisions=[
            DecisionPublic(
                person_id=d.person_id,
                person_name=d.person_name,
                watchlist=d.watchlist,
                distance=d.distance,
                decided_at=d.decided_at,
            )
            for d in view.decisions
        ],
    )


CURSOR_SEPARATOR = "~"


def cursor_text(cursor: Cursor) -> str:
    """A page cursor as the ``after`` query value: ``<first_seen ISO>~<sighting id>``."""
    return f"{cursor[0].isoformat()}{CURSOR_SEPARATOR}{cursor[1]}"


class HistoryFilter(BaseModel):
    """The history's filters (page and CSV): every one given must match. Days are UTC, both
    ends included; ``after`` is the cursor of the previous page's last sighting."""

    model_config = ConfigDict(extra="forbid")

    person: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    """Decided to be this person, now or before a revision."""
    camera: str | None = Field(default=None, max_length=64)
    watchlist: str | None = Field(default=None, max_length=64)
    unknown: bool = False
    """Only faces that are unknown now."""
    since: date | None = None
    until: date | None = None
    after: str | None = Field(default=None, max_length=80)

    @field_validator("after")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            cls.parse_cursor(value)
        return value

    @staticmethod
    def parse_cursor(value: str) -> Cursor:
        """``after`` as a cursor; ``ValueError`` saying what is wrong."""
        when, _, ident = value.rpartition(CURSOR_SEPARATOR)
        try:
            at = datetime.fromisoformat(when)
        except ValueError:
            at = None
        if at is None or at.tzinfo is None or len(ident) != 32 or not ident.isalnum():
            raise ValueError("after must be a page cursor (<time>~<sighting id>) from a page")
        return (at, ident)

    def query(self) -> HistoryQuery:
        """The filters for the history service."""
        return HistoryQuery(
            person=self.person,
            camera=self.camera,
            watchlist=self.watchlist,
            unknown=self.unknown,
            since=self.since,
            until=self.until,
        )

    def cursor(self) -> Cursor | None:
        """Where the page starts (``None``: the newest)."""
        return None if self.after is None else self.parse_cursor(self.after)

    def audit_detail(self) -> dict[str, object]:
        """The filters as the audit log keeps them."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{name} needs a time zone, e.g. 2026-01-31T09:00:00Z",
        )
    return value


@router.get("", response_model=list[SightingPublic])
def list_sightings(
    services: ServicesDep,
    principal: Viewer,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    person: Annotated[str | None, Query(max_length=32)] = None,
    watchlist: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        datetime | None, Query(description="first seen at or after (ISO-8601)")
    ] = None,
    until: Annotated[datetime | None, Query(description="first seen before (ISO-8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    unknown: Annotated[bool, Query(description="only faces that are unknown now")] = False,
) -> list[SightingPublic]:
    """Sightings, newest first."""
    scope = services.alerts.scope_of(principal)
    views = services.sightings.query(
        camera=camera,
        person=person,
        watchlist=watchlist,
        since=_aware(since, "since"),
        until=_aware(until, "until"),
        limit=limit,
        exclude_people=scope.held_people if scope is not None else (),
        exclude_sightings=scope.held_sightings if scope is not None else (),
        unknown=unknown,
    )
    return [_public(view) for view in views]


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_sightings(
    request: Request,
    services: ServicesDep,
    principal: Teller,
    filters: Annotated[HistoryFilter, Query()],
) -> StreamingResponse:
    """The history as CSV (teller and above): the sightings the filters find, newest first,
    each with its decision trail, at most ``EXPORT_MAX_ROWS`` rows; streamed. Every export
    is written to the audit log before it starts."""
    audit_access(
        services,
        principal,
        request,
        "sighting.export",
        filters.person or "*",
        {**filters.audit_detail(), "max_rows": EXPORT_MAX_ROWS},
    )
    # A sync iterator: Starlette reads it on a worker thread, so the paging queries never run
    # on the event loop.
    rows = csv_lines(export(services.sightings, filters.query()))
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="oneeye-sightings.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/{sighting_id}", response_model=SightingPublic)
def get_sighting(sighting_id: str, services: ServicesDep, principal: Viewer) -> SightingPublic:
    """One sighting."""
    view = services.sightings.get(sighting_id)
    scope = services.alerts.scope_of(principal) if view is not None else None
    if view is None or (
        scope is not None
        and not all(
            scope.sighting_visible(view.sighting.id, person)
            for person in {view.sighting.person_id, *(d.person_id for d in view.decisions)}
        )
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no sighting {sighting_id!r}")
    return _public(view)
