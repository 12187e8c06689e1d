"""Log lines people can use: JSON lines from a real ``oneeye serve`` (``ONEEYE_LOG__FORMAT=
json``) with no credential in them, a camera's state changes and an edge's comings and goings
as activity lines."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from oneeye.bus import make_bus
from oneeye.bus.base import edge_status_topic
from oneeye.bus.messages import EdgeStatusPayload
from oneeye.logs import JsonFormatter
from oneeye.services.edge.monitor import EdgeMonitor
from oneeye.services.edge.registry import CameraRegistry
from oneeye.store.db import Database
from oneeye.video.worker import CameraConfig, CameraStatus, CameraWorker
from tests.conftest import free_port, wait_until

SERVE_TIMEOUT = 90.0


def test_json_formatter_writes_one_object_per_line() -> None:
    record = logging.LogRecord(
        "oneeye.x", logging.WARNING, __file__, 1, "camera %s: %s", ("a", "b"), None
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "WARNING"
    assert parsed["logger"] == "oneeye.x"
    assert parsed["message"] == "camera a: b"
    assert datetime.fromisoformat(parsed["time"]).tzinfo is not None
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exception"]


def test_a_real_server_logs_json_lines_without_credentials(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEEYE_")}
    env["ONEEYE_LOG__FORMAT"] = "json"
    err = tmp_path / "serve.err"
    with err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "oneeye.cli", "-v", "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "data")],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            cwd=tmp_path,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT
        while True:
            assert process.poll() is None, err.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)
        assert httpx.get(f"{url}/readyz?api_key=oek_not_for_logs", timeout=10).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, err.read_text()
    text = err.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines, "no log lines"
    loggers = {line["logger"] for line in lines}
    assert "uvicorn.access" in loggers, loggers  # uvicorn's own lines are JSON too
    assert any("gallery loaded" in line["message"] for line in lines)
    assert any("/readyz?[redacted]" in line["message"] for line in lines)
    assert "oek_not_for_logs" not in text


def test_camera_state_changes_are_activity_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="oneeye.video.worker")
    worker = CameraWorker.__new__(CameraWorker)
    worker.config = CameraConfig(id="gate", name="Gate", source="rtsp://cam/1")
    worker._logged_state = None
    worker._was_online = False
    for state, error in [
        ("reconnecting", "connecting"),
        ("online", None),
        ("reconnecting", "no frame for 10 s"),
        ("online", None),
        ("offline", "cannot open the source"),
    ]:
        worker._log_change(CameraStatus("gate", "Gate", state, error=error))  # type: ignore[arg-type]
    worker._log_change(CameraStatus("gate", "Gate", "ended", frames=12, sightings=2))
    assert [r.getMessage() for r in caplog.records] == [
        "camera gate: started",
        "camera gate: stalled, reconnecting: no frame for 10 s",
        "camera gate: reconnected",
        "camera gate: offline: cannot open the source",
        "camera gate: ended: 12 frames, 0 dropped, 2 sightings",
    ]


def test_edges_joining_resyncing_and_leaving_are_activity_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oneeye.services.edge.monitor")
    db = Database(f"sqlite:///{tmp_path / 'oneeye.db'}")
    db.migrate()
    bus = make_bus("memory")
    monitor = EdgeMonitor(bus, None, CameraRegistry(db))
    monitor.start()
    bus.start()
    topic = edge_status_topic("branch-7")
    try:
        for state, version, resyncs in [("online", 4, 0), ("online", 5, 0), ("online", 9, 1)]:
            bus.publish(
                topic,
                EdgeStatusPayload(
                    edge="branch-7",
                    cameras=["door"],
                    state=state,  # type: ignore[arg-type]
                    gallery_version=version,
                    resyncs=resyncs,
                    at=datetime.now(UTC),
                ),
            )
        bus.publish(
            topic,
            EdgeStatusPayload(edge="branch-7", cameras=["door"], state="offline", error="gone"),
        )
        assert wait_until(lambda: len(caplog.records) >= 3, timeout=5.0)
    finally:
        bus.stop()
        db.close()
    assert [r.getMessage() for r in caplog.records] == [
        "edge branch-7 joined: 1 cameras, gallery version 4",
        "edge branch-7 resynced its gallery: version 9",
        "edge branch-7 left (gone): its 0 cameras are offline",
    ]
