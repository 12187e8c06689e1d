"""Which cameras are looking, as the case page and the dashboard say it (issue 12, bug 4: "Not
seen yet. Every camera is looking" was shown while the only camera had ended). A file camera
plays a short clip to its end on a started server; an edge camera's status comes over the bus
as the edge publishes it."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from oneeye.app import OneEyeApp
from oneeye.bus.base import EDGE_CAMERA_STATUS
from oneeye.services.alerts import CaseInfo
from oneeye.services.cameras import CameraConfig
from tests.bus.helpers import Note
from tests.services.helpers import played_to_the_end, wait_for
from tests.web.conftest import ClientFor
from tests.web.helpers import alerts_of


def short_clip(path: Path, frames: int = 5) -> Path:
    """A few grey frames: a file camera that ends at once."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (160, 120))
    for _ in range(frames):
        writer.write(np.full((120, 160, 3), 128, np.uint8))
    writer.release()
    return path


def file_case(app: OneEyeApp, face_photos: Path) -> CaseInfo:
    """Obama filed as an Amber Alert case (no sighting yet)."""
    photo = (face_photos / "obama2.jpg").read_bytes()
    return alerts_of(app).create_case(
        "Barack Obama", "grey suit", "+15551234567", [(photo, "obama2.jpg")], actor="user:rita"
    )


def text_of(html: str, testid: str) -> str:
    """The text inside the element with ``data-testid=testid`` (tags stripped)."""
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(p|div|section)>', html, re.S)
    assert found is not None, f"no {testid} on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_a_case_page_does_not_say_every_camera_is_looking_when_the_only_one_ended(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path, tmp_path: Path
) -> None:
    cameras = server.services.cameras
    clip = short_clip(tmp_path / "door.mp4")
    cameras.add(CameraConfig(id="door", name="Front door", source=str(clip), pace=False))
    wait_for(lambda: played_to_the_end(cameras, "door"), what="the clip to end")
    case = file_case(server, face_photos)

    html = client_for("viewer").get(f"/cases/{case.id}").text
    assert "Every camera is looking" not in html
    warning = text_of(html, "no-camera-running")
    assert "No camera is running" in warning
    assert "Front door" in warning
    assert "ended" in warning


def test_a_case_page_names_the_running_cameras_and_warns_when_there_is_none(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    case = file_case(server, face_photos)
    viewer = client_for("viewer")
    html = viewer.get(f"/cases/{case.id}").text
    assert "No camera is running" in text_of(html, "no-camera-running")
    assert "no camera is set up" in text_of(html, "no-camera-running")

    # An edge's camera, online as its edge says over the bus.
    server.services.registry.register("edge-1", [("back-door", "Back door")])
    status = {"camera": "back-door", "name": "Back door", "state": "online", "error": None}
    server.services.bus.publish(
        EDGE_CAMERA_STATUS.format(edge="edge-1", camera="back-door"), Note.model_validate(status)
    )
    wait_for(
        lambda: server.services.sightings.statuses.latest("back-door") is not None,
        what="the edge camera's status",
    )
    html = viewer.get(f"/cases/{case.id}").text
    assert 'data-testid="no-camera-running"' not in html
    running = text_of(html, "cameras-running")
    assert "1 camera is looking" in running
    assert "Back door" in running
    assert "Every camera is looking" not in html


def test_the_dashboard_warns_when_no_camera_is_running(
    server: OneEyeApp, client_for: ClientFor, tmp_path: Path
) -> None:
    cameras = server.services.cameras
    cameras.add(CameraConfig(id="vault", name="Vault", source="/none.mp4", enabled=False))
    html = client_for("teller").get("/").text
    warning = text_of(html, "no-camera-running")
    assert "No camera is running" in warning
    assert "Vault" in warning
    assert "disabled" in warning
