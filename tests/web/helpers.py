"""Helpers shared by the web tests: the server's AlertService (built on its services until the
server wires one), bus sightings as a camera worker publishes them, waiting for a condition,
and API-key clients, uploads and enrolment through ``/api/v1/people``."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from oneeye.app import OneEyeApp
from oneeye.bus.base import SIGHTINGS
from oneeye.services.alerts import AlertService
from oneeye.services.cameras import CameraConfig
from oneeye.store.models import FaceTemplate, new_id
from oneeye.web.routes import cases
from tests.bus.helpers import Note
from tests.conftest import WakeCounter

API = "/api/v1"
PEOPLE = f"{API}/people"


def alerts_of(app: OneEyeApp) -> AlertService:
    """The server's AlertService; until the server wires one, one built on its services and
    put where the pages and the cases router look (``app.state.alerts``)."""
    wired = getattr(app.services, "alerts", None)
    if isinstance(wired, AlertService):
        return wired
    s = app.services
    service = AlertService(
        s.db,
        s.photos,
        s.enrolment,
        s.gallery_service,
        s.events,
        s.sightings,
        WakeCounter(),
        s.settings.alerts,
        cooldown=s.settings.notify.cooldown,
        public_url=s.settings.public_url,
    )
    if not any(getattr(r, "path", "").startswith(f"{API}/cases") for r in app.web.routes):
        app.web.include_router(cases.router, prefix=API)
    app.web.state.alerts = service
    return service


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def sighting(camera: str, person: str | None, seen_at: datetime, **more: Any) -> dict[str, Any]:
    """A bus sighting message as a camera worker publishes it."""
    message: dict[str, Any] = {
        "v": 1,
        "id": new_id(),
        "event": "sighting",
        "camera": camera,
        "track": 1,
        "person": person,
        "watchlist": "amber-alert" if person else None,
        "distance": 0.31 if person else None,
        "quality": 0.8,
        "frame": 12,
        "t": 1.2,
        "box": [10, 60, 60, 10],
        "seen_at": seen_at.isoformat(),
        "snapshot_key": None,
        "embedding": None,
    }
    message.update(more)
    return message


def ensure_camera(app: OneEyeApp, camera: str) -> None:
    """Make ``camera`` one of the server's own (not running) if it is nobody's yet: the
    server accepts sightings only of cameras registered to their sender."""
    if app.services.registry.owner(camera) is None:
        app.services.cameras.add(CameraConfig(id=camera, name=camera, source="0", enabled=False))


def publish(app: OneEyeApp, message: dict[str, Any]) -> None:
    """Publish a sighting as the server's camera ``message["camera"]`` would."""
    ensure_camera(app, message["camera"])
    app.services.bus.publish(
        SIGHTINGS.format(camera=message["camera"]), Note.model_validate(message)
    )


def key_client(app: OneEyeApp, role: str) -> TestClient:
    """A client that authenticates with a fresh API key of ``role`` (no CSRF needed)."""
    _, key = app.services.auth.create_api_key(f"test-{role}", role)
    client = TestClient(app.web)
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def upload(name: str, data: bytes) -> dict[str, Any]:
    """The ``files`` argument for one multipart file field ``file``."""
    return {"file": (name, data, "image/jpeg")}


def stored(app: OneEyeApp) -> tuple[int, int]:
    """Template rows and photo files."""
    with app.services.db.session() as session:
        rows = session.scalar(select(func.count()).select_from(FaceTemplate)) or 0
    root = app.settings.resolved_photos_dir()
    return rows, sum(1 for p in root.rglob("*") if p.is_file())


def enrol(client: TestClient, person_id: str, face_photos: Path, name: str) -> dict[str, Any]:
    response = client.post(
        f"{PEOPLE}/{person_id}/photos", files=upload(name, (face_photos / name).read_bytes())
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
