"""Cameras: ``/cameras`` (list with live status, add), ``/cameras/{id}`` (read, change,
remove), ``/cameras/{id}/restart``, and the live view: ``/cameras/{id}/frame.jpg`` and
``/cameras/{id}/stream`` (MJPEG).

Anyone logged in may look (viewer+); adding, changing, restarting (a file camera that ended
plays again) and removing need ``admin`` and are audited. A source may hold credentials
(``rtsp://user:pass@...``): only admins see it whole, everyone else sees it masked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from oneeye.bus.base import SLUG_PATTERN, is_slug
from oneeye.services.auth import Principal
from oneeye.services.cameras import (
    CAMERA_ID_RULE,
    DETECT_THREADS_MAX,
    SCAN_EVERY_MAX,
    CameraConfig,
    CameraState,
    CameraStatus,
)
from oneeye.types import CameraDetector
from oneeye.video.annotate import MJPEG_BOUNDARY
from oneeye.video.source import mask_credentials
from oneeye.web.deps import Admin, ServicesDep, Viewer

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/cameras", tags=["cameras"])

STREAM_POLL = 0.05
"""Seconds between two looks for a new frame in the MJPEG stream."""
STREAM_MAX_FPS = 15.0


class CameraCreate(BaseModel):
    """A new camera."""

    id: str = Field(
        max_length=200,
        examples=["front-door"],
        description=f"the camera's id: {CAMERA_ID_RULE}",
        json_schema_extra={"pattern": SLUG_PATTERN},
    )
    name: str = Field(default="", max_length=200, examples=["Front door"])
    location: str = Field(default="", max_length=200)
    source: str = Field(
        min_length=1,
        max_length=2000,
        examples=["rtsp://user:pass@10.0.0.5/stream", "0", "/videos/door.mp4"],
    )
    enabled: bool = True
    min_face_px: int = Field(default=40, ge=8, le=4096)
    detect_every: int = Field(default=3, ge=1, le=100)
    pace: bool = True
    loop: bool = False
    scan_every: int | None = Field(default=None, ge=1, le=SCAN_EVERY_MAX)
    """Scan for newcomers every Nth frame; ``None``: the server's video settings."""
    detect_threads: int | None = Field(default=None, ge=1, le=DETECT_THREADS_MAX)
    """Detector threads for this camera; ``None``: the server's video settings."""
    detector: CameraDetector | None = None
    """``hog``, ``cnn`` or ``auto``; ``None``: the server's video settings."""

    @field_validator("id")
    @classmethod
    def _id_rule(cls, value: str) -> str:
        # Said in words: "should match pattern '^[a-z0-9_-]{1,64}$'" teaches nobody.
        if not is_slug(value):
            raise ValueError(f"a camera id is {CAMERA_ID_RULE}, e.g. front-door")
        return value


NULLABLE = frozenset({"scan_every", "detect_threads", "detector"})
"""The changes that may be ``null``: back to the server's video settings."""


class CameraUpdate(BaseModel):
    """Changes to a camera: any of its fields but the id."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, min_length=1, max_length=2000)
    enabled: bool | None = None
    min_face_px: int | None = Field(default=None, ge=8, le=4096)
    detect_every: int | None = Field(default=None, ge=1, le=100)
    pace: bool | None = None
    loop: bool | None = None
    scan_every: int | None = Field(default=None, ge=1, le=SCAN_EVERY_MAX)
    """``null``: back to the server's video settings."""
    detect_threads: int | None = Field(default=None, ge=1, le=DETECT_THREADS_MAX)
    """``null``: back to the server's video settings."""
    detector: CameraDetector | None = None
    """``hog``, ``cnn`` or ``auto``; ``null``: back to the server's video settings."""


class CameraStatusPublic(BaseModel):
    """A camera's live status. ``ended``: a file camera (not looping) played its file to the
    end; its ``fps`` is 0 and its ``error`` says the video ended."""

    state: CameraState
    fps: float
    last_frame_at: datetime | None
    error: str | None
    frames: int
    dropped: int
    sightings: int


class CameraPublic(BaseModel):
    """A camera with its live status."""

    id: str
    name: str
    location: str
    source: str
    """Masked (``rtsp://***@host/...``) unless you are an admin."""
    enabled: bool
    min_face_px: int
    detect_every: int
    pace: bool
    loop: bool
    scan_every: int | None
    """``None``: the server's video settings decide."""
    detect_threads: int | None
    """``None``: the server's video settings decide."""
    detector: CameraDetector | None
    """``hog``, ``cnn`` or ``auto``; ``None``: the server's video settings decide."""
    status: CameraStatusPublic
    stream_url: str
    frame_url: str


def _public(config: CameraConfig, live: CameraStatus, principal: Principal) -> CameraPublic:
    return CameraPublic(
        id=config.id,
        name=config.name,
        location=config.location,
        source=config.source if principal.allows("admin") else mask_credentials(config.source),
        enabled=config.enabled,
        min_face_px=config.min_face_px,
        detect_every=config.detect_every,
        pace=config.pace,
        loop=config.loop,
        scan_every=config.scan_every,
        detect_threads=config.detect_threads,
        detector=config.detector,
        status=CameraStatusPublic(
            state=live.state,
            fps=round(live.fps, 2),
            last_frame_at=(
                None
                if live.last_frame_at is None
                else datetime.fromtimestamp(live.last_frame_at, UTC)
            ),
            error=live.error,
            frames=live.frames,
            dropped=live.dropped,
            sightings=live.sightings,
        ),
        stream_url=f"/api/v1/cameras/{config.id}/stream",
        frame_url=f"/api/v1/cameras/{config.id}/frame.jpg",
    )


def _config_or_404(services: ServicesDep, camera_id: str) -> CameraConfig:
    return services.cameras.config(camera_id)


@router.get("", response_model=list[CameraPublic])
def list_cameras(services: ServicesDep, principal: Viewer) -> list[CameraPublic]:
    """Every camera, with its live status."""
    manager = services.cameras
    return [_public(c, manager.status(c.id), principal) for c in manager.configs()]


@router.post("", response_model=CameraPublic, status_code=status.HTTP_201_CREATED)
def add_camera(body: CameraCreate, services: ServicesDep, principal: Admin) -> CameraPublic:
    """Add a camera; its worker starts at once if it is enabled."""
    if not body.source.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a camera needs a source")
    config = services.cameras.add(
        CameraConfig(
            id=body.id,
            name=body.name.strip() or body.id,
            location=body.location,
            source=body.source,
            enabled=body.enabled,
            min_face_px=body.min_face_px,
            detect_every=body.detect_every,
            pace=body.pace,
            loop=body.loop,
            scan_every=body.scan_every,
            detect_threads=body.detect_threads,
            detector=body.detector,
        )
    )
    services.auth.audit(principal.actor, "camera.create", config.id, {"name": config.name})
    return _public(config, services.cameras.status(config.id), principal)


@router.get("/{camera_id}", response_model=CameraPublic)
def get_camera(camera_id: str, services: ServicesDep, principal: Viewer) -> CameraPublic:
    """One camera, with its live status."""
    config = _config_or_404(services, camera_id)
    return _public(config, services.cameras.status(camera_id), principal)


@router.patch("/{camera_id}", response_model=CameraPublic)
def update_camera(
    camera_id: str, body: CameraUpdate, services: ServicesDep, principal: Admin
) -> CameraPublic:
    """Change a camera; only its worker restarts."""
    changes = {
        name: value
        for name, value in body.model_dump(exclude_unset=True).items()
        if value is not None or name in NULLABLE
    }
    if "source" in changes and not changes["source"].strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a camera needs a source")
    config = services.cameras.update(camera_id, **changes)
    services.auth.audit(principal.actor, "camera.update", camera_id, {"fields": sorted(changes)})
    return _public(config, services.cameras.status(camera_id), principal)


@router.post("/{camera_id}/restart", response_model=CameraPublic)
def restart_camera(camera_id: str, services: ServicesDep, principal: Admin) -> CameraPublic:
    """Start an enabled camera's worker again: a file camera that ended plays its file again
    (409 for a disabled camera: enable it instead)."""
    config = services.cameras.restart(camera_id)
    services.auth.audit(principal.actor, "camera.restart", camera_id)
    return _public(config, services.cameras.status(camera_id), principal)


@router.delete("/{camera_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_camera(camera_id: str, services: ServicesDep, principal: Admin) -> Response:
    """Stop and remove a camera (its sightings are kept)."""
    services.cameras.remove(camera_id)
    services.auth.audit(principal.actor, "camera.delete", camera_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{camera_id}/frame.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def camera_frame(camera_id: str, services: ServicesDep, principal: Viewer) -> Response:
    """The camera's newest frame, with boxes and names drawn on it."""
    await run_in_threadpool(_config_or_404, services, camera_id)
    latest = await run_in_threadpool(services.cameras.latest_jpeg, camera_id)
    if latest is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"camera {camera_id!r} has no frame yet (is it online?)"
        )
    return Response(latest[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get(
    "/{camera_id}/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}": {}}}},
)
async def camera_stream(
    camera_id: str,
    request: Request,
    services: ServicesDep,
    principal: Viewer,
    frames: Annotated[int | None, Query(ge=1, description="stop after this many frames")] = None,
    fps: Annotated[float, Query(gt=0, le=STREAM_MAX_FPS)] = 10.0,
) -> StreamingResponse:
    """The camera's live view with boxes and names, as MJPEG (``<img src=...>`` shows it)."""
    await run_in_threadpool(_config_or_404, services, camera_id)

    async def parts() -> AsyncIterator[bytes]:
        sent, last = 0, -1
        interval = 1.0 / fps
        while frames is None or sent < frames:
            if await request.is_disconnected():
                return
            latest = await run_in_threadpool(services.cameras.latest_jpeg, camera_id)
            if latest is None or latest[0] == last:
                await asyncio.sleep(STREAM_POLL)
                continue
            last, jpeg = latest
            yield (
                (
                    f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n"
                ).encode("ascii")
                + jpeg
                + b"\r\n"
            )
            sent += 1
            await asyncio.sleep(interval)

    return StreamingResponse(
        parts(),
        media_type=f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}",
        headers={"Cache-Control": "no-store"},
    )
