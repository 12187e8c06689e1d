"""Watchlists and their match thresholds: ``/watchlists``.

Reading needs ``viewer``; adding and changing need ``admin``. A new threshold takes effect in
the live gallery at once (and is announced to the workers on the bus).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from oneeye.gallery.calibration import TARGET_RANGE, Calibration
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
    threshold_mode: Literal["fixed", "auto"] = "fixed"
    """``fixed``: ``threshold`` (or the default); ``auto``: calibrated for ``target_fpir`` on
    the watchlist's own people, again after every enrolment and erasure."""
    target_fpir: float | None = Field(default=None, ge=TARGET_RANGE[0], le=TARGET_RANGE[1])
    """The share of strangers the automatic mode may name wrongly; ``null``: 1%."""


class WatchlistUpdate(BaseModel):
    """Changes to a watchlist: only the fields sent change (``threshold: null`` goes back to
    the server's default)."""

    threshold: float | None = Field(default=None, gt=0.0, le=2.0)
    description: str | None = Field(default=None, max_length=2000)
    threshold_mode: Literal["fixed", "auto"] | None = None
    target_fpir: float | None = Field(default=None, ge=TARGET_RANGE[0], le=TARGET_RANGE[1])


class CalibrationPublic(BaseModel):
    """How an automatic threshold was found."""

    threshold: float
    target_fpir: float
    method: Literal["model", "floor", "ceiling", "fallback"]
    """``model``: read from the curve; ``floor``/``ceiling``: clipped to the safe range;
    ``fallback``: too few people to calibrate, the default threshold is kept."""
    persons: int
    templates: int
    margin: float
    expected_fpir_at_threshold: float | None
    note: str


class CalibrationCurve(CalibrationPublic):
    """The calibration with its curve: expected FPIR at each threshold."""

    thresholds: list[float]
    expected_fpir: list[float]


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
    threshold_mode: Literal["fixed", "auto"]
    target_fpir: float
    calibration: CalibrationPublic | None
    """The newest calibration in ``auto`` mode; ``null`` in fixed mode or until the first."""


def calibration_public(calibration: Calibration) -> CalibrationPublic:
    """A calibration without its curve, as its JSON schema."""
    return CalibrationPublic.model_validate(_calibration_fields(calibration))


def _calibration_fields(c: Calibration) -> dict[str, object]:
    return {
        "threshold": c.threshold,
        "target_fpir": c.target_fpir,
        "method": c.method,
        "persons": c.persons,
        "templates": c.templates,
        "margin": c.margin,
        "expected_fpir_at_threshold": c.expected_at_threshold,
        "note": c.note,
    }


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
        threshold_mode="auto" if info.threshold_mode == "auto" else "fixed",
        target_fpir=info.target_fpir,
        calibration=calibration_public(info.calibration) if info.calibration else None,
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
        body.name,
        action=body.action,
        threshold=body.threshold,
        description=body.description,
        threshold_mode=body.threshold_mode,
        target_fpir=body.target_fpir,
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
        threshold_mode=body.threshold_mode,
        target_fpir=body.target_fpir,
    )
    services.auth.audit(admin.actor, "watchlist.update", name, body.model_dump(include=sent))
    return watchlist_public(info)


@router.get(
    "/{name}/calibration",
    response_model=CalibrationCurve,
    summary="The automatic threshold's curve",
)
def get_calibration(name: str, services: ServicesDep, viewer: Viewer) -> CalibrationCurve:
    """Expected FPIR against threshold for an ``auto`` watchlist, and the chosen point. 404
    when the watchlist is in fixed mode or not calibrated yet."""
    info = services.gallery_service.watchlist(name)
    if info.calibration is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"watchlist {name!r} has no calibration (fixed mode, or not calibrated yet)",
        )
    c = info.calibration
    return CalibrationCurve.model_validate(
        _calibration_fields(c)
        | {"thresholds": list(c.thresholds), "expected_fpir": list(c.expected_fpir)}
    )
