"""``/healthz``, ``/readyz`` and ``/metrics`` on a running server, and the deploy files
(Prometheus alert rules, the Grafana dashboard) checked against what the server exports."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.services.cameras import CameraConfig
from tests.web.conftest import ClientFor
from tests.web.helpers import key_client, publish, sighting, wait_for

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "oneeye.json"
METRIC = re.compile(r"\boneeye_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def blank_clip(path: Path, frames: int = 20) -> Path:
    """A short grey video with no face in it (a camera that plays and finds nobody)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(frames):
        writer.write(np.full((120, 160, 3), 90 + i, dtype=np.uint8))
    writer.release()
    return path


def exported(text: str) -> set[str]:
    """The metric family names an exposition declares (``# TYPE name kind``; a counter's
    declared with its ``_total``)."""
    return {family(line.split()[2]) for line in text.splitlines() if line.startswith("# TYPE ")}


def family(sample: str) -> str:
    """A sample name as its family: ``oneeye_x_total`` -> ``oneeye_x``."""
    for suffix in SUFFIXES:
        if sample.endswith(suffix):
            return sample[: -len(suffix)]
    return sample


def used_in_deploy_files() -> set[str]:
    """Every metric the alert rules and the dashboard query."""
    rules = yaml.safe_load(RULES.read_text())
    expressions = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    expressions += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return {m for e in expressions for m in METRIC.findall(e)}


def metrics_text(server: OneEyeApp) -> str:
    client = key_client(server, "metrics")
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_metrics_need_an_admin_or_a_metrics_key(
    server: OneEyeApp, anonymous: TestClient, client_for: ClientFor
) -> None:
    assert anonymous.get("/metrics").status_code == 401
    assert client_for("viewer").get("/metrics").status_code == 403
    assert client_for("admin").get("/metrics").status_code == 200
    reader = key_client(server, "metrics")
    assert reader.get("/metrics").status_code == 200
    # The metrics key reads metrics and nothing else.
    assert reader.get("/api/v1/people").status_code == 403
    assert reader.get("/api/v1/sightings").status_code == 403


def test_metrics_export_every_family_with_no_person_in_a_label(
    server: OneEyeApp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oneeye.video.worker")
    server.services.cameras.add(
        CameraConfig(id="lobby", name="Lobby", source=str(blank_clip(tmp_path / "c.mp4")))
    )
    wait_for(lambda: server.services.cameras.status("lobby").state == "ended", "the clip to end")
    wait_for(
        lambda: any("camera lobby: ended" in r.getMessage() for r in caplog.records),
        "the camera's last activity line",
    )
    activity = [r.getMessage() for r in caplog.records if r.getMessage().startswith("camera lobby")]
    assert "camera lobby: started" in activity
    ended = re.search(
        r"camera lobby: ended: (\d+) frames, (\d+) dropped, 0 sightings", "\n".join(activity)
    )
    assert ended is not None, activity
    assert int(ended[1]) + int(ended[2]) == 20  # every frame of the clip processed or dropped
    person = "p" * 32
    message = sighting("door", person, datetime.now(UTC))
    publish(server, message)
    queries = server.services.sighting_queries
    wait_for(lambda: queries.get(message["id"]) is not None, "the sighting")
    admin = key_client(server, "admin")
    assert admin.get(f"/api/v1/people/{person}").status_code == 404
    text = metrics_text(server)
    names = exported(text)
    expected = {
        "oneeye_camera_fps",
        "oneeye_camera_frames",
        "oneeye_camera_dropped_frames",
        "oneeye_camera_tracks",
        "oneeye_camera_state",
        "oneeye_detection_seconds",
        "oneeye_encoding_seconds",
        "oneeye_sightings",
        "oneeye_bus_lag_seconds",
        "oneeye_bus_dropped_payloads",
        "oneeye_gallery_entries",
        "oneeye_gallery_version",
        "oneeye_edge_online",
        "oneeye_edge_gallery_version",
        "oneeye_outbox_notifications",
        "oneeye_outbox_retrying",
        "oneeye_outbox_oldest_pending_age_seconds",
        "oneeye_notification_attempts",
        "oneeye_websocket_clients",
        "oneeye_websocket_dropped_clients",
        "oneeye_http_request_seconds",
        "oneeye_retro_search_seconds",
    }
    assert expected <= names, f"missing: {sorted(expected - names)}"
    assert 'oneeye_camera_state{camera="lobby",edge="",state="ended"} 1.0' in text
    assert re.search(r'oneeye_camera_frames_total\{camera="lobby",edge=""\} [1-9]', text)
    assert re.search(r'oneeye_detection_seconds_count\{camera="lobby"\} [1-9]', text)
    assert re.search(r"oneeye_bus_lag_seconds_count [1-9]", text)
    # Routes by template: the person's id is in no label.
    assert 'route="/api/v1/people/{person_id}"' in text
    assert person not in text
    assert message["id"] not in text


def test_healthz_and_readyz(server: OneEyeApp, anonymous: TestClient) -> None:
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200, ready.text
    checks = {c["name"]: c["ok"] for c in ready.json()["checks"]}
    assert checks == {"database": True, "bus": True, "photos": True, "cameras": True}
    # An enabled camera whose worker is gone (it crashed, or was stopped behind the
    # manager's back) makes the server unready, and the answer names the camera.
    server.services.cameras.add(CameraConfig(id="desk", name="Desk", source="/nonexistent.mp4"))
    assert anonymous.get("/readyz").status_code == 200
    worker = server.services.cameras.worker("desk")
    assert worker is not None
    worker.stop()
    unready = anonymous.get("/readyz")
    assert unready.status_code == 503
    cameras = next(c for c in unready.json()["checks"] if c["name"] == "cameras")
    assert cameras == {"name": "cameras", "ok": False, "detail": "no running worker for desk"}


def test_readyz_fails_when_the_photo_store_cannot_write(
    server: OneEyeApp, anonymous: TestClient
) -> None:
    photos = server.services.settings.resolved_photos_dir()
    shutil.rmtree(photos)
    photos.write_bytes(b"not a folder")  # every write under it fails now
    try:
        response = anonymous.get("/readyz")
        assert response.status_code == 503
        failed = [c for c in response.json()["checks"] if not c["ok"]]
        assert [c["name"] for c in failed] == ["photos"]
        assert str(photos) not in response.text  # details go to the log, not to anyone
    finally:
        photos.unlink()
        photos.mkdir()
    assert anonymous.get("/readyz").status_code == 200


def test_deploy_files_use_only_metrics_the_server_exports(server: OneEyeApp) -> None:
    names = exported(metrics_text(server))
    used = used_in_deploy_files()
    assert len(used) >= 15, sorted(used)
    unknown = sorted(m for m in used if family(m) not in names)
    assert not unknown, f"the deploy files query metrics the server does not export: {unknown}"


def test_alert_rules_load_in_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert {
        "OneEyeCameraOffline",
        "OneEyeOutboxBacklog",
        "OneEyeEdgeOffline",
        "OneEyeGalleryVersionLagging",
    } <= alerts
