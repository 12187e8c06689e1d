"""``/api/v1/cameras``: roles, validation, live status, runtime changes, and the live view
(``frame.jpg`` and the MJPEG stream) of a camera playing a labelled clip."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

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


def audit_actions(client: TestClient, action: str) -> list[tuple[str, str]]:
    entries = client.get("/api/v1/audit", params={"action": action}).json()
    return [(e["action"], e["subject"]) for e in entries]


def test_an_admin_restarts_a_file_camera_that_ended(
    server: OneEyeApp, client_for: ClientFor, clip: LabelledClip
) -> None:
    admin = client_for("admin")
    body = {"id": "door", "source": str(clip.path), "pace": False, "min_face_px": 80}
    assert admin.post("/api/v1/cameras", json=body).status_code == 201
    first = server.services.cameras.worker("door")
    assert first is not None
    wait_for(lambda: not first.alive)  # played to the end, its last frame done
    assert camera_state(admin, "door") == "ended"
    assert first.status().frames > 0
    # Nobody below admin may restart it, and asking leaves it ended.
    for role in ("viewer", "teller", "coordinator"):
        assert client_for(role).post("/api/v1/cameras/door/restart").status_code == 403
    assert server.services.cameras.worker("door") is first
    assert admin.post("/api/v1/cameras/nope/restart").status_code == 404

    restarted = admin.post("/api/v1/cameras/door/restart")
    assert restarted.status_code == 200, restarted.text
    second = server.services.cameras.worker("door")
    assert second is not None
    assert second is not first
    wait_for(lambda: not second.alive)
    assert camera_state(admin, "door") == "ended"
    assert second.status().frames == first.status().frames  # the whole file played again
    assert audit_actions(admin, "camera.restart") == [("camera.restart", "door")]

    # A disabled camera is not started behind the admin's back: enabling it is the way.
    assert admin.patch("/api/v1/cameras/door", json={"enabled": False}).status_code == 200
    refused = admin.post("/api/v1/cameras/door/restart")
    assert refused.status_code == 409
    assert "enable it" in refused.json()["error"]["message"]
    assert camera_state(admin, "door") == "disabled"
    assert server.services.cameras.worker("door") is None


@pytest.mark.parametrize("camera_id", ["Front Door", "door/1", "x" * 65, "", "tür"])
def test_a_bad_camera_id_is_refused_with_the_rule_in_words(
    server: OneEyeApp, client_for: ClientFor, camera_id: str
) -> None:
    response = client_for("admin").post("/api/v1/cameras", json={"id": camera_id, "source": "0"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert [f["field"] for f in error["fields"]] == ["id"]
    assert (
        "a camera id is 1-64 lower-case letters (a-z), digits (0-9), hyphens (-) or "
        "underscores (_)" in error["message"]
    )
    assert "pattern" not in error["message"]
    assert server.services.cameras.configs() == []


def test_a_camera_keeps_its_own_scan_rate_and_detector_threads(
    server: OneEyeApp, client_for: ClientFor, clip: LabelledClip
) -> None:
    admin = client_for("admin")
    body = {
        "id": "door",
        "source": str(clip.path),
        "loop": True,
        "scan_every": 5,
        "detect_threads": 2,
    }
    created = admin.post("/api/v1/cameras", json=body)
    assert created.status_code == 201, created.text
    assert (created.json()["scan_every"], created.json()["detect_threads"]) == (5, 2)
    running = server.services.cameras.worker_config("door")
    assert running is not None
    settings = running.pipeline_settings()
    assert (settings.scan_every, settings.detect_threads) == (5, 2)

    changed = admin.patch("/api/v1/cameras/door", json={"scan_every": 30})
    assert (changed.json()["scan_every"], changed.json()["detect_threads"]) == (30, 2)
    running = server.services.cameras.worker_config("door")
    assert running is not None
    assert running.pipeline_settings().scan_every == 30

    # null: back to the server's video settings (the defaults here: 12 frames, 1 thread).
    reset = admin.patch("/api/v1/cameras/door", json={"scan_every": None, "detect_threads": None})
    assert (reset.json()["scan_every"], reset.json()["detect_threads"]) == (None, None)
    running = server.services.cameras.worker_config("door")
    assert running is not None
    assert (running.pipeline_settings().scan_every, running.detect_threads) == (12, 1)
    assert admin.get("/api/v1/cameras/door").json()["scan_every"] is None  # stored as unset


def test_a_camera_keeps_its_own_face_detector(
    server: OneEyeApp, client_for: ClientFor, clip: LabelledClip
) -> None:
    admin = client_for("admin")
    body = {"id": "door", "source": str(clip.path), "loop": True, "detector": "auto"}
    created = admin.post("/api/v1/cameras", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["detector"] == "auto"
    running = server.services.cameras.worker_config("door")
    assert running is not None
    assert running.pipeline_settings().detector == "auto"
    assert server.services.cameras.config("door").detector == "auto"  # stored

    # null: back to the server's video settings (hog here).
    reset = admin.patch("/api/v1/cameras/door", json={"detector": None})
    assert reset.json()["detector"] is None
    running = server.services.cameras.worker_config("door")
    assert running is not None
    assert running.pipeline_settings().detector == "hog"

    refused = admin.patch("/api/v1/cameras/door", json={"detector": "fast"})
    assert refused.status_code == 422
    assert [f["field"] for f in refused.json()["error"]["fields"]] == ["detector"]
    assert server.services.cameras.config("door").detector is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scan_every": 0}, "scan_every"),
        ({"scan_every": 1001}, "scan_every"),
        ({"scan_every": "often"}, "scan_every"),
        ({"detect_threads": 0}, "detect_threads"),
        ({"detect_threads": 17}, "detect_threads"),
        ({"detect_threads": 2.5}, "detect_threads"),
    ],
)
def test_scan_rate_and_threads_out_of_their_limits_change_nothing(
    server: OneEyeApp, client_for: ClientFor, change: dict[str, object], field: str
) -> None:
    admin = client_for("admin")
    body = {"id": "door", "source": "0", "enabled": False, "scan_every": 6, "detect_threads": 2}
    assert admin.post("/api/v1/cameras", json=body).status_code == 201
    response = admin.patch("/api/v1/cameras/door", json=change)
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]
    created = admin.post("/api/v1/cameras", json={**body, "id": "hall", **change})
    assert created.status_code == 422
    stored = server.services.cameras.config("door")
    assert (stored.scan_every, stored.detect_threads) == (6, 2)
    assert [c.id for c in server.services.cameras.configs()] == ["door"]


def test_the_frames_a_camera_dropped_show_on_its_tile(
    server: OneEyeApp,
    client_for: ClientFor,
    tmp_path: Path,
    face_engine: FaceEngine,
    load_photo: PhotoLoader,
) -> None:
    # 80 frames paced at 500 frames/s: the pipeline cannot keep up, so the worker drops frames.
    fast = make_clip(tmp_path / "fast", face_engine, load_photo, fps=500.0)
    admin = client_for("admin")
    body = {"id": "door", "source": str(fast.path), "min_face_px": 80}
    assert admin.post("/api/v1/cameras", json=body).status_code == 201
    worker = server.services.cameras.worker("door")
    assert worker is not None
    wait_for(lambda: not worker.alive)
    assert camera_state(admin, "door") == "ended"
    dropped = admin.get("/api/v1/cameras/door").json()["status"]["dropped"]
    assert dropped > 0
    # The dashboard's live tiles hear it with the camera's status...
    wait_for(
        lambda: (server.services.sightings.statuses.latest("door") or {}).get("dropped") == dropped
    )
    # ... and the server renders it on the tile.
    page = admin.get("/admin/cameras")
    assert f"{dropped} dropped</span>" in page.text
