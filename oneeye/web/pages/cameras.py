"""Cameras on the pages: the tiles the dashboard and ``/admin/cameras`` show, and that admin
page (add, edit, enable or disable, remove; live status)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from oneeye.services.cameras import (
    CAMERA_ID_RULE,
    DETECT_THREADS_MAX,
    SCAN_EVERY_MAX,
    CameraState,
    iso,
)
from oneeye.services.context import Services
from oneeye.types import CAMERA_DETECTORS
from oneeye.web.deps import AdminPage, ServicesDep
from oneeye.web.pages.render import render

router = APIRouter(include_in_schema=False)


@dataclass(slots=True)
class CameraTile:
    """A camera as the dashboard and the admin page show it."""

    id: str
    name: str
    location: str
    source: str
    enabled: bool
    pace: bool
    loop: bool
    min_face_px: int
    detect_every: int
    scan_every: int | None = None
    detect_threads: int | None = None
    detector: str | None = None
    state: CameraState = "offline"
    fps: float | None = None
    last_frame_at: str | None = None
    error: str | None = None
    dropped: int = 0
    """Frames the camera's worker skipped because it was late for them."""


def camera_tiles(services: Services) -> list[CameraTile]:
    """Every camera, with its worker's live status."""
    statuses = services.cameras.statuses()
    tiles = []
    for config in sorted(services.cameras.configs(), key=lambda c: (c.name, c.id)):
        live = statuses.get(config.id)
        tiles.append(
            CameraTile(
                id=config.id,
                name=config.name,
                location=config.location,
                source=config.source,
                enabled=config.enabled,
                pace=config.pace,
                loop=config.loop,
                min_face_px=config.min_face_px,
                detect_every=config.detect_every,
                scan_every=config.scan_every,
                detect_threads=config.detect_threads,
                detector=config.detector,
                state=live.state if live is not None else "offline",
                fps=live.fps if live is not None else None,
                last_frame_at=iso(live.last_frame_at) if live is not None else None,
                error=live.error if live is not None else None,
                dropped=live.dropped if live is not None else 0,
            )
        )
    return tiles


@router.get("/admin/cameras", response_class=HTMLResponse)
def admin_cameras_page(request: Request, services: ServicesDep, principal: AdminPage) -> Response:
    """Cameras: add, edit, enable or disable, remove; live status."""
    return render(
        request,
        "admin_cameras.html",
        principal,
        {
            "cameras": camera_tiles(services),
            "last_event_id": services.events.latest_id(),
            "id_rule": CAMERA_ID_RULE,
            "scan_every_max": SCAN_EVERY_MAX,
            "detect_threads_max": DETECT_THREADS_MAX,
            "detectors": CAMERA_DETECTORS,
            "video_defaults": services.cameras.video_defaults(),
        },
    )
