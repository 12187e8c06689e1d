"""Sightings: ``/sightings`` (filter by camera, person, watchlist and time) and
``/sightings/{id}``. Viewer and above; embeddings of unknown faces are never returned.

A reporter does not learn where or when an Amber Alert case's person was seen unless it filed
that case and the case is approved (``oneeye.services.alerts.CaseScope``): such sightings are
left out of its lists and are "not found" to it, like an unknown id."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from oneeye.services.sightings import SightingView, photo_url
from oneeye.web.deps import ServicesDep, Viewer

router = APIRouter(prefix="/sightings", tags=["sightings"])


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
    )


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
    )
    return [_public(view) for view in views]


@router.get("/{sighting_id}", response_model=SightingPublic)
def get_sighting(sighting_id: str, services: ServicesDep, principal: Viewer) -> SightingPublic:
    """One sighting."""
    view = services.sightings.get(sighting_id)
    scope = services.alerts.scope_of(principal) if view is not None else None
    if view is None or (
        scope is not None and not scope.sighting_visible(view.sighting.id, view.sighting.person_id)
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no sighting {sighting_id!r}")
    return _public(view)
