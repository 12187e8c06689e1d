"""An erased person leaves every edge: its memory and its cached ``gallery.json`` on disk.

The server runs in this process on the real Mosquitto (a topic prefix of its own) and serves
HTTP on loopback; the edge runtime fetches the gallery from it over HTTP and follows its
changes over MQTT, as ``oneeye edge`` does. The review found that an edge kept deleted people's
embeddings on disk: ``gallery.json`` was written only when the whole gallery was fetched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from oneeye.app import OneEyeApp
from oneeye.bus.mqtt import MqttBus
from oneeye.config import MqttSettings, ServeSettings
from oneeye.edge_app import EdgeRuntime
from oneeye.gallery import GalleryIndex
from oneeye.services.cameras import CameraConfig
from oneeye.services.edge.runtime import GALLERY_CACHE, EdgeSettings
from oneeye.vision.engine import FaceEngine
from tests.web.browser import serve
from tests.web.helpers import wait_for

pytestmark = pytest.mark.mqtt


def blank_clip(path: Path) -> Path:
    """A few black frames: the edge's camera runs, and sees nobody."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 5.0, (160, 120))
    for _ in range(5):
        writer.write(np.zeros((120, 160, 3), dtype=np.uint8))
    writer.release()
    return path


def cached(data: Path) -> Callable[[], str]:
    """Reads the edge's cached gallery as text ("" while there is none)."""

    def read() -> str:
        cache = data / GALLERY_CACHE
        return cache.read_text() if cache.is_file() else ""

    return read


def test_an_erased_person_leaves_the_edges_memory_and_its_gallery_file(
    tmp_path: Path, broker_url: str, face_engine: FaceEngine, face_photos: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    prefix = f"oneeye-test/{run}"
    settings = ServeSettings(
        data_dir=tmp_path / "server",
        database_url=f"sqlite:///{tmp_path / 'oneeye.db'}",
        bus=broker_url,
        mqtt=MqttSettings(
            topic_prefix=prefix,
            client_id=f"oneeye-serve-{run}",
            share_group=f"servers-{run}",
            session_expiry=60,
        ),
    )
    server = OneEyeApp(settings, engine=face_engine)
    server.start()
    s = server.services
    person = s.enrolment.create_person("Barack Obama", ["customers"], actor="user:test")
    photo = (face_photos / "obama2.jpg").read_bytes()
    s.enrolment.enrol_photo(person.id, photo, "obama2.jpg", actor="user:test")
    stays = s.enrolment.create_person("Joe Biden", ["customers"], actor="user:test")
    biden = (face_photos / "biden.jpg").read_bytes()
    s.enrolment.enrol_photo(stays.id, biden, "biden.jpg", actor="user:test")
    edge_key = s.auth.create_api_key("edges", "edge", edge_id=f"erase-{run}")[1]
    admin_key = s.auth.create_api_key("admin", "admin")[1]
    data = tmp_path / "edge"
    runtime: EdgeRuntime | None = None
    try:
        with serve(server.web) as url:
            edge = EdgeSettings(
                edge_id=f"erase-{run}",
                server_url=url,
                api_key=edge_key,
                bus_url=broker_url,
                cameras=(
                    CameraConfig(
                        id=f"cam-{run}", name="cam", source=str(blank_clip(tmp_path / "b.mp4"))
                    ),
                ),
                data_dir=data,
                mqtt=MqttSettings(topic_prefix=prefix, session_expiry=60),
            )
            runtime = EdgeRuntime(edge, face_engine, GalleryIndex())
            runtime.start()
            assert runtime.wait_ready(30), "the edge connected and fetched the gallery"
            read = cached(data)
            wait_for(lambda: person.id in read(), "the person in the edge's gallery.json")
            assert person.id in runtime.gallery.persons()

            with httpx.Client(base_url=url, timeout=30) as client:
                erased = client.post(
                    f"/api/v1/people/{person.id}/erase",
                    headers={"Authorization": f"Bearer {admin_key}"},
                )
            assert erased.status_code == 200, erased.text

            wait_for(
                lambda: person.id not in runtime.gallery.persons(),
                "the edge to drop the person from memory",
            )
            wait_for(lambda: person.id not in read(), "the edge to rewrite gallery.json")
            body = json.loads(read())
            assert {e["person"] for e in body["entries"]} == {stays.id}
            assert body["version"] == runtime.sync.version == s.gallery_service.version
    finally:
        if runtime is not None:
            runtime.stop()
        server.stop()
        cleaner = MqttBus(broker_url, topic_prefix=prefix)
        cleaner.start()
        cleaner.clear_retained(f"oneeye/v1/edges/erase-{run}/status")
        cleaner.clear_retained(f"oneeye/v1/edges/erase-{run}/cameras/cam-{run}/status")
        cleaner.clear_retained("oneeye/v1/gallery/version")
        cleaner.stop()
    # A restarted edge starts from the file: the person is not in it.
    restarted = json.loads((data / GALLERY_CACHE).read_text())
    assert person.id not in {e["person"] for e in restarted["entries"]}
