"""Watchlists and their match thresholds: ``/watchlists``.

Reading needs ``viewer``; adding and changing need ``admin``. A new threshold takes effect in
the live gallery at once (and is announced to the workers on the bus).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from oneeye.services.gallery import WatchlistInfo
from oneeye.web.deps import Admin, ServicesDep, Viewer

router = APIRouter(prefix="/watchlists", tags=["watchlists"])


class WatchlistCreate(BaseModel):
    """A new watchlist."""

    name: str = Field(min_length=1, max_length=64, examples=["vip"])
    action: Literal["customers", "amber-alert", "none"] = "none"
    threshold: float | None = Field(default=None, gt=0.0, le=2.0)
    """The largest accepted face distance; ``null`` uses the server's default."""
    description: str = Field(default="", max_length=2000)


class WatchlistUpdate(BaseModel):
    """Changes to a watchlist: only the fields sent change (``threshold: null`` goes back to
    the server's default)."""

    threshold: float | None = Field(default=None, gt=0.0, le=2.0)
    description: str | None = Field(default=None, max_length=2000)


class WatchlistPublic(BaseModel):
    """A watchlist as the API shows it."""

    name: str
    action: str
    description: str
    threshold: float | None
    """The watchlist's own threshold, ``null`` when it uses the default."""
    effective_threshold: float
    """The threshold the live gallery uses now."""
    persons: int
    created_at: datetime


def watchlist_public(info: WatchlistInfo) -> WatchlistPublic:
    """A watchlist as its JSON schema."""
    return WatchlistPublic(
        name=info.name,
        action=info.action,
        description=info.description,
        threshold=info.threshold,
        effective_threshold=info.effective_threshold,
        persons=info.persons,
        created_at=info.created_at,
    )


@router.get("", response_model=list[WatchlistPublic], summary="List watchlists")
def list_watchlists(services: ServicesDep, viewer: Viewer) -> list[WatchlistPublic]:
    """Every watchlist with its threshold and how many people are on it."""
    return [watchlist_public(w) for w in services.gallery_service.watchlists()]


@router.post(
    "",
    response_model=WatchlistPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Add a watchlist",
)
def create_watchlist(body: WatchlistCreate, services: ServicesDep, admin: Admin) -> WatchlistPublic:
    """Add a watchlist (a slug name: lower-case letters, digits, ``-``, ``_``). A name already
    taken answers 409 (``WatchlistExistsError``), any other refusal 400 (``WatchlistError``)."""
    info = services.gallery_service.create_watchlist(
        body.name, action=body.action, threshold=body.threshold, description=body.description
    )
    services.auth.audit(admin.actor, "watchlist.create", body.name, body.model_dump())
    return watchlist_public(info)


@router.get("/{name}", response_model=WatchlistPublic, summary="One watchlist")
def get_watchlist(name: str, services: ServicesDep, viewer: Viewer) -> WatchlistPublic:
    """The watchlist with this name."""
    return watchlist_public(services.gallery_service.watchlist(name))


@router.patch("/{name}", response_model=WatchlistPublic, summary="Change a watchlist")
def update_watchlist(
    name: str, body: WatchlistUpdate, services: ServicesDep, admin: Admin
) -> WatchlistPublic:
    """Change a watchlist's threshold or description; the live gallery uses a new threshold
    from the next face on."""
    sent = body.model_fields_set
    info = services.gallery_service.update_watchlist(
        name,
        threshold=body.threshold,
        clear_threshold="threshold" in sent and body.threshold is None,
        description=body.description,
    )
    services.auth.audit(admin.actor, "watchlist.update", name, body.model_dump(include=sent))
    return watchlist_public(info)
