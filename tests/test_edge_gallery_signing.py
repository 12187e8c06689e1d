"""A forged gallery change on the broker changes no edge (issue 11, finding 1: signing).

The server runs in this process on the real Mosquitto (a topic prefix of its own) and serves
HTTP on loopback; the edge runtime fetches the gallery, and with it the public key changes are
verified with, over HTTP with its API key, then follows the changes over MQTT, as ``oneeye
edge`` does.
An attacker is a plain MQTT client. The review found that a forged ``add`` at the next version
made an edge name the attacker's face as a customer at distance 0.0, and the genuine change of
that version was then dropped as a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as paho
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from oneeye.app import OneEyeApp
from oneeye.bus.base import GALLERY_CHANGES, GALLERY_VERSION
from oneeye.bus.broker import parse_broker_url
from oneeye.bus.messages import (
    REJECTIONS,
    AddChange,
    GalleryTemplate,
    _signed_bytes,
    new_signing_key,
    sign,
)
from oneeye.bus.mqtt import MqttBus
from oneeye.config import MqttSettings, ServeSettings
from oneeye.edge_app import EdgeRuntime
from oneeye.gallery import GalleryIndex
from oneeye.services.cameras import CameraConfig
from oneeye.services.edge.runtime import EdgeSettings
from oneeye.vision.engine import FaceEngine
from tests.web.browser import serve
from tests.web.helpers import wait_for

pytestmark = pytest.mark.mqtt


def attacker(broker_url: str, prefix: str, payloads: list[dict[str, Any]]) -> None:
    """Anything that can publish on the broker: a plain client, payloads of its choosing."""
    address = parse_broker_url(broker_url)
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        for payload in payloads:
            data = json.dumps(payload).encode()
            client.publish(f"{prefix}/{GALLERY_CHANGES}", data, qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def test_a_forged_gallery_change_is_dropped_and_the_genuine_one_still_applies(
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
    customer = s.enrolment.create_person("Barack Obama", ["customers"], actor="user:test")
    photo = (face_photos / "obama2.jpg").read_bytes()
    s.enrolment.enrol_photo(customer.id, photo, "obama2.jpg", actor="user:test")
    edge_key = s.auth.create_api_key("edges", "edge", edge_id=f"sign-{run}")[1]
    # The attacker's own face (Biden's photo stands in for it), as an edge would encode it.
    face = face_engine.enrolment_face(
        s.enrolment.decode_upload((face_photos / "biden.jpg").read_bytes())
    )
    attacker_embedding = [float(v) for v in face.embedding]
    blank = tmp_path / "blank.mp4"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter.fourcc(*"mp4v"), 5.0, (160, 120))
    for _ in range(5):
        writer.write(np.zeros((120, 160, 3), dtype=np.uint8))
    writer.release()
    runtime: EdgeRuntime | None = None
    try:
        with serve(server.web) as url:
            edge = EdgeSettings(
                edge_id=f"sign-{run}",
                server_url=url,
                api_key=edge_key,
                bus_url=broker_url,
                cameras=(CameraConfig(id=f"cam-{run}", name="cam", source=str(blank)),),
                data_dir=tmp_path / "edge",
                mqtt=MqttSettings(topic_prefix=prefix, session_expiry=60),
            )
            runtime = EdgeRuntime(edge, face_engine, GalleryIndex())
            runtime.start()
            assert runtime.wait_ready(30), "the edge connected and fetched the gallery"
            version = s.gallery_service.version
            assert runtime.sync.version == version
            assert not runtime.gallery.identify(attacker_embedding).is_known

            forged = AddChange(
                version=version + 1,
                epoch=s.gallery_service.epoch,
                templates=[
                    GalleryTemplate(
                        id=f"{uuid.uuid4().hex}@customers",
                        person=customer.id,
                        watchlist="customers",
                        quality=1.0,
                        embedding=attacker_embedding,
                    )
                ],
            )
            unsigned = json.loads(forged.model_dump_json(exclude={"sig"}))
            wrong_key = json.loads(sign(new_signing_key(), forged).model_dump_json())
            # A genuine signature of another change, pasted onto the forged one.
            pasted = {
                **unsigned,
                "sig": sign(
                    s.gallery_service.signing_key,
                    forged.model_copy(update={"version": version + 7}),
                ).sig,
            }
            # Issue 11, finding 1 (#16): everything the edge keeps in its gallery.json, used
            # as a key (the HMAC key of old, or an Ed25519 private key), signs nothing.
            held = json.loads((tmp_path / "edge" / "gallery.json").read_text())
            material = [
                bytes.fromhex(v) for v in held.values() if isinstance(v, str) and len(v) == 64
            ]
            assert material, "the edge keeps the server's key to verify with"
            body = _signed_bytes(forged)
            from_edge = [
                {**unsigned, "sig": sig}
                for raw in material
                for sig in (
                    hmac.new(raw, body, hashlib.sha256).hexdigest(),
                    Ed25519PrivateKey.from_private_bytes(raw).sign(body).hex(),
                )
            ]
            forgeries = [unsigned, wrong_key, pasted, *from_edge]
            before = REJECTIONS.total()
            attacker(broker_url, prefix, forgeries)
            wait_for(
                lambda: REJECTIONS.total() - before >= len(forgeries),
                "the edge to drop every forged change",
            )
            assert not runtime.gallery.identify(attacker_embedding).is_known
            assert runtime.sync.version == version, "a dropped change takes no version"

            # The server's own change of that version still comes into force on the edge.
            other = s.enrolment.create_person("Joe Biden", ["customers"], actor="user:test")
            s.enrolment.enrol_photo(
                other.id, (face_photos / "biden.jpg").read_bytes(), "biden.jpg", actor="user:test"
            )
            wait_for(
                lambda: runtime is not None and runtime.sync.version == s.gallery_service.version,
                "the edge to apply the genuine changes",
            )
            assert runtime.gallery.identify(attacker_embedding).person == other.id
            assert runtime.sync.resyncs == 1, "signed changes in order need no fetch"
    finally:
        if runtime is not None:
            runtime.stop()
        server.stop()
        cleaner = MqttBus(broker_url, topic_prefix=prefix)
        cleaner.start()
        cleaner.clear_retained(f"oneeye/v1/edges/sign-{run}/status")
        cleaner.clear_retained(f"oneeye/v1/edges/sign-{run}/cameras/cam-{run}/status")
        cleaner.clear_retained(GALLERY_VERSION)
        cleaner.stop()
