"""An edge registers its cameras with the server at start, over HTTP with its key.

The server runs in this process and serves HTTP on loopback; the edge runtime is the one
``oneeye edge`` runs. A camera id that is another edge's, or a key that belongs to another
edge, stops the edge at start with the server's reason, before it touches the broker. A
registered edge sends at once and remembers it, so it sends at once after a restart while the
server is away.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from oneeye.app import OneEyeApp
from oneeye.bus.base import EDGE_CAMERA_STATUS
from oneeye.bus.mqtt import MqttBus
from oneeye.config import MqttSettings
from oneeye.edge_app import EdgeRuntime
from oneeye.gallery import GalleryIndex
from oneeye.services.cameras import CameraConfig
from oneeye.services.edge.runtime import (
    REGISTERED_FILE,
    EdgeSettings,
    RegistrationRefusedError,
)
from oneeye.vision.engine import FaceEngine
from tests.conftest import free_port
from tests.web.browser import serve
from tests.web.conftest import make_server


@pytest.fixture
def server(tmp_path: Path, face_engine: FaceEngine) -> Iterator[OneEyeApp]:
    app = make_server(tmp_path, f"sqlite:///{tmp_path / 'oneeye.db'}", face_engine)
    try:
        yield app
    finally:
        app.stop()


PREFIX = f"oneeye-test/{uuid.uuid4().hex[:8]}"


def settings(
    tmp_path: Path, edge: str, camera: str, key: str, server_url: str, bus_url: str
) -> EdgeSettings:
    return EdgeSettings(
        edge_id=edge,
        server_url=server_url,
        api_key=key,
        bus_url=bus_url,
        cameras=(CameraConfig(id=camera, name=camera, source=str(tmp_path / "none.mp4")),),
        data_dir=tmp_path / edge,
        mqtt=MqttSettings(topic_prefix=PREFIX, session_expiry=10),
    )


@pytest.mark.parametrize(
    ("edge", "key_of", "camera", "reason"),
    [
        ("edge-b", "edge-b", "door", "edge edge-a"),  # a camera id another edge has
        ("edge-b", "edge-b", "hall", "a server camera"),  # a camera id the server has
        ("edge-b", "edge-a", "lobby", "belongs to edge edge-a"),  # another edge's key
    ],
)
def test_an_edge_with_another_s_camera_or_key_does_not_start(
    server: OneEyeApp,
    tmp_path: Path,
    face_engine: FaceEngine,
    edge: str,
    key_of: str,
    camera: str,
    reason: str,
) -> None:
    s = server.services
    s.registry.register("edge-a", [("door", "Door")])
    s.cameras.add(CameraConfig(id="hall", name="Hall", source="0", enabled=False))
    key = s.auth.create_api_key(key_of, "edge", edge_id=key_of)[1]
    unreachable = f"mqtt://127.0.0.1:{free_port()}"
    with serve(server.web) as url:
        runtime = EdgeRuntime(
            settings(tmp_path, edge, camera, key, url, unreachable), face_engine, GalleryIndex()
        )
        with pytest.raises(RegistrationRefusedError, match=reason):
            runtime.start()
        runtime.stop()
    assert s.registry.owner("door") == "edge-a"
    assert s.registry.cameras_of("edge-b") == []
    assert not (tmp_path / edge / REGISTERED_FILE).exists()


@pytest.mark.mqtt
def test_a_registered_edge_sends_at_once_even_when_the_server_is_away_later(
    server: OneEyeApp, tmp_path: Path, face_engine: FaceEngine, broker_url: str
) -> None:
    s = server.services
    key = s.auth.create_api_key("edge-c", "edge", edge_id="edge-c")[1]
    with serve(server.web) as url:
        first = EdgeRuntime(
            settings(tmp_path, "edge-c", "porch", key, url, broker_url), face_engine, GalleryIndex()
        )
        first.start()
        try:
            assert first.registered.is_set()
        finally:
            first.stop()
    assert s.registry.cameras_of("edge-c") == ["porch"]
    away = f"http://127.0.0.1:{free_port()}"
    again = EdgeRuntime(
        settings(tmp_path, "edge-c", "porch", key, away, broker_url), face_engine, GalleryIndex()
    )
    again.start()
    try:
        assert again.registered.is_set(), "the registration was remembered"
    finally:
        again.stop()
        cleaner = MqttBus(broker_url, topic_prefix=PREFIX)
        cleaner.start()
        cleaner.clear_retained("oneeye/v1/edges/edge-c/status")
        cleaner.clear_retained(EDGE_CAMERA_STATUS.format(edge="edge-c", camera="porch"))
        cleaner.stop()
