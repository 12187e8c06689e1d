"""``/api/v1/cameras``: roles, validation, live status, runtime changes, and the live view
(``frame.jpg`` and the MJPEG stream) of a camera playing a labelled clip."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader
from tests.services.helpers import LabelledClip, make_clip
from tests.web.conftest import ClientFor

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def clip(
    tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, load_photo: PhotoLoader
) -> LabelledClip:
    return make_clip(tmp_path_factory.mktemp("webclip"), face_engine, load_photo)


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def camera_state(client: TestClient, camera: str) -> str:
    response = client.get(f"/api/v1/cameras/{camera}")
    assert response.status_code == 200, response.text
    state: str = response.json()["status"]["state"]
    return state


def test_only_admins_change_cameras_and_everyone_logged_in_reads(
    client_for: ClientFor, anonymous: TestClient
) -> None:
    body = {
        "id": "door",
        "name": "Door",
        "source": "rtsp://cam:s3cret@10.0.0.5/live",
        "enabled": False,
    }
    for role in ("viewer", "reporter", "teller"):
        client = client_for(role)
        assert client.post("/api/v1/cameras", json=body).status_code == 403
    assert anonymous.get("/api/v1/cameras").status_code == 401
    assert anonymous.post("/api/v1/cameras", json=body).status_code == 401
    admin = client_for("admin")
    created = admin.post("/api/v1/cameras", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["source"] == body["source"]
    assert created.json()["status"]["state"] == "disabled"
    viewer = client_for("viewer")
    listed = viewer.get("/api/v1/cameras").json()
    assert [c["id"] for c in listed] == ["door"]
    assert listed[0]["source"] == "rtsp://***@10.0.0.5/live"  # credentials hidden
    assert listed[0]["stream_url"] == "/api/v1/cameras/door/stream"
    for method in ("patch", "delete"):
        kwargs = {"json": {"name": "x"}} if method == "patch" else {}
        assert getattr(viewer, method)("/api/v1/cameras/door", **kwargs).status_code == 403
    assert admin.patch("/api/v1/cameras/door", json={"name": "Front door"}).json()["name"] == (
        "Front door"
    )
    assert admin.delete("/api/v1/cameras/door").status_code == 204
    assert viewer.get("/api/v1/cameras/door").status_code == 404
    assert admin.delete("/api/v1/cameras/door").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"id": "Front Door", "source": "0"}, 422, "id"),
        ({"id": "door", "source": ""}, 422, "source"),
        ({"id": "door", "source": "   "}, 422, None),
        ({"id": "door"}, 422, "source"),
        ({"id": "door", "source": "0", "detect_every": 0}, 422, "detect_every"),
    ],
)
def test_bad_cameras_are_refused_with_the_field(
    client_for: ClientFor, body: dict[str, object], status: int, field: str | None
) -> None:
    response = client_for("admin").post("/api/v1/cameras", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status
    if field is not None:
        assert field in [f["field"] for f in error["fields"]]


def test_a_duplicate_is_a_conflict(client_for: ClientFor) -> None:
    admin = client_for("admin")
    body = {"id": "door", "source": "/nowhere.mp4", "enabled": False}
    assert admin.post("/api/v1/cameras", json=body).status_code == 201
    response = admin.post("/api/v1/cameras", json=body)
    assert response.status_code == 409
    assert "exists already" in response.json()["error"]["message"]


def test_a_bad_source_shows_offline_with_its_error_and_the_server_keeps_going(
    client_for: ClientFor, clip: LabelledClip
) -> None:
    admin = client_for("admin")
    assert (
        admin.post("/api/v1/cameras", json={"id": "bad", "source": "/nowhere/door.mp4"}).status_code
        == 201
    )
    wait_for(lambda: camera_state(admin, "bad") == "offline")
    status = admin.get("/api/v1/cameras/bad").json()["status"]
    assert "file not found" in status["error"]
    good = {"id": "good", "source": str(clip.path), "loop": True, "min_face_px": 80}
    assert admin.post("/api/v1/cameras", json=good).status_code == 201
    wait_for(lambda: camera_state(admin, "good") == "online")
    assert {c["id"]: c["status"]["state"] for c in admin.get("/api/v1/cameras").json()} == {
        "bad": "offline",
        "good": "online",
    }
    # Disable and enable at runtime.
    assert admin.patch("/api/v1/cameras/good", json={"enabled": False}).status_code == 200
    assert camera_state(admin, "good") == "disabled"
    assert admin.patch("/api/v1/cameras/good", json={"enabled": True}).status_code == 200
    wait_for(lambda: camera_state(admin, "good") == "online")


def test_the_live_view_is_a_jpeg_and_an_mjpeg_stream(
    server: OneEyeApp, client_for: ClientFor, clip: LabelledClip
) -> None:
    admin, viewer = client_for("admin"), client_for("viewer")
    body = {"id": "door", "source": str(clip.path), "loop": True, "min_face_px": 80}
    assert admin.post("/api/v1/cameras", json=body).status_code == 201
    wait_for(lambda: server.services.cameras.latest_jpeg("door") is not None)
    frame = viewer.get("/api/v1/cameras/door/frame.jpg")
    assert frame.status_code == 200
    assert frame.headers["content-type"] == "image/jpeg"
    assert frame.content[:2] == b"\xff\xd8"
    stream = viewer.get("/api/v1/cameras/door/stream", params={"frames": 2, "fps": 15})
    assert stream.status_code == 200
    assert stream.headers["content-type"] == "multipart/x-mixed-replace; boundary=oneeyeframe"
    assert stream.content.count(b"--oneeyeframe\r\nContent-Type: image/jpeg") == 2
    assert viewer.get("/api/v1/cameras/nope/frame.jpg").status_code == 404
    assert viewer.get("/api/v1/cameras/nope/stream").status_code == 404
    admin.patch("/api/v1/cameras/door", json={"enabled": False})
    missing = viewer.get("/api/v1/cameras/door/frame.jpg")
    assert missing.status_code == 404
    assert "no frame yet" in missing.json()["error"]["message"]
