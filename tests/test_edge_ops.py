"""An edge's ``/healthz``, ``/readyz`` and ``/metrics`` (``oneeye edge --ops-address``): a real
edge runtime against a server in this process and the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from oneeye.app import OneEyeApp
from oneeye.bus.base import EDGE_CAMERA_STATUS
from oneeye.bus.mqtt import MqttBus
from oneeye.config import MqttSettings
from oneeye.edge_app import EdgeRuntime
from oneeye.errors import OneEyeError
from oneeye.gallery import GalleryIndex
from oneeye.services.cameras import CameraConfig
from oneeye.services.edge.ops import parse_address
from oneeye.services.edge.runtime import EdgeSettings
from oneeye.vision.engine import FaceEngine
from tests.conftest import free_port, wait_until
from tests.web.browser import serve
from tests.web.conftest import make_server

PREFIX = f"oneeye-test/{uuid.uuid4().hex[:8]}"


@pytest.fixture
def server(tmp_path: Path, face_engine: FaceEngine) -> Iterator[OneEyeApp]:
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        yield app
    finally:
        app.stop()


def blank_clip(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(10):
        writer.write(np.full((120, 160, 3), 80 + i, dtype=np.uint8))
    writer.release()
    return path


def edge_settings(tmp_path: Path, key: str, server_url: str, bus_url: str) -> EdgeSettings:
    return EdgeSettings(
        edge_id="edge-ops",
        server_url=server_url,
        api_key=key,
        bus_url=bus_url,
        cameras=(
            CameraConfig(id="till", name="Till", source=str(blank_clip(tmp_path / "till.mp4"))),
        ),
        data_dir=tmp_path / "edge",
        mqtt=MqttSettings(topic_prefix=PREFIX, session_expiry=10),
        ops_address="127.0.0.1:0",
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        ("[::1]:0", ("::1", 0)),
        ("9108", None),
        ("host:port", None),
        (":9108", None),
        ("127.0.0.1:70000", None),
    ],
)
def test_ops_addresses(address: str, expected: tuple[str, int] | None) -> None:
    if expected is None:
        with pytest.raises(OneEyeError, match="host:port"):
            parse_address(address)
    else:
        assert parse_address(address) == expected


def test_an_edge_without_its_broker_is_alive_but_not_ready(
    server: OneEyeApp, tmp_path: Path, face_engine: FaceEngine
) -> None:
    key = server.services.auth.create_api_key("edge-ops", "edge", edge_id="edge-ops")[1]
    unreachable = f"mqtt://127.0.0.1:{free_port()}"
    with serve(server.web) as url:
        runtime = EdgeRuntime(
            edge_settings(tmp_path, key, url, unreachable), face_engine, GalleryIndex()
        )
        runtime.start()
        try:
            assert runtime.ops is not None
            ops = f"http://127.0.0.1:{runtime.ops.port}"
            assert httpx.get(f"{ops}/healthz").json() == {"status": "ok"}
            # The gallery comes over HTTP: in force without the broker.
            assert wait_until(lambda: runtime.sync.version is not None, 20.0)
            ready = httpx.get(f"{ops}/readyz")
            assert ready.status_code == 503
            checks = {c["name"]: c["ok"] for c in ready.json()["checks"]}
            assert checks == {
                "bus": False,
                "gallery": True,
                "registration": True,
                "cameras": True,
            }
            assert httpx.get(f"{ops}/nothing").status_code == 404
        finally:
            runtime.stop()


@pytest.mark.mqtt
def test_a_connected_edge_is_ready_and_exports_its_metrics(
    server: OneEyeApp, tmp_path: Path, face_engine: FaceEngine, broker_url: str
) -> None:
    key = server.services.auth.create_api_key("edge-ops", "edge", edge_id="edge-ops")[1]
    with serve(server.web) as url:
        runtime = EdgeRuntime(
            edge_settings(tmp_path, key, url, broker_url), face_engine, GalleryIndex()
        )
        runtime.start()
        try:
            assert runtime.wait_ready(20.0)
            assert runtime.ops is not None
            ops = f"http://127.0.0.1:{runtime.ops.port}"
            assert wait_until(lambda: httpx.get(f"{ops}/readyz").status_code == 200, 20.0), (
                httpx.get(f"{ops}/readyz").text
            )
            assert wait_until(lambda: runtime.workers[0].status().state == "ended", 20.0)
            text = httpx.get(f"{ops}/metrics").text
        finally:
            runtime.stop()
            cleaner = MqttBus(broker_url, topic_prefix=PREFIX)
            cleaner.start()
            cleaner.clear_retained("oneeye/v1/edges/edge-ops/status")
            cleaner.clear_retained(EDGE_CAMERA_STATUS.format(edge="edge-ops", camera="till"))
            cleaner.stop()
    assert 'oneeye_camera_state{camera="till",edge="",state="ended"} 1.0' in text
    assert 'oneeye_gallery_version{process="edge"}' in text
    assert 'oneeye_edge_outbox_depth{kind="sighting"}' in text
    assert "oneeye_detection_seconds_bucket" in text
