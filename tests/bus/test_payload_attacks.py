"""Hand-made payloads from anything that can publish on the broker (issue 11, finding 1), against
the real Mosquitto: a server's sighting consumer stores none of them, counts each, and goes on.

Before the payload models, each of these was stored: a 900 KB ``watchlist`` (40 of them grew
the database by 70 MB), a ``seen_at`` in the year 9999, and an embedding of NaNs.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from oneeye.bus.base import ALL_SIGHTINGS, SIGHTINGS
from oneeye.bus.broker import parse_broker_url
from oneeye.bus.messages import PayloadReader, Rejections
from oneeye.bus.mqtt import MqttBus
from oneeye.config import CustomerDirectorySettings
from oneeye.services.auth import AuthService
from oneeye.services.customers import make_directory
from oneeye.services.events import EventHub
from oneeye.services.sightings import SightingService
from oneeye.store.db import Database
from oneeye.store.models import Camera, Sighting
from oneeye.store.photos import LocalPhotoStore

pytestmark = pytest.mark.mqtt

UNIT = [1.0 / 128**0.5] * 128


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@dataclass
class Server:
    """A server's sighting consumer on the real broker, under a topic prefix of its own."""

    db: Database
    bus: MqttBus
    service: SightingService
    rejections: Rejections
    prefix: str

    def stored(self) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(Sighting)) or 0)


@pytest.fixture
def server(broker_url: str, tmp_path: Path) -> Iterator[Server]:
    db = Database(f"sqlite:///{tmp_path / 'oneeye.db'}")
    db.migrate()
    with db.session() as session:
        session.add(Camera(id="door", name="Front door", source="0"))
    prefix = f"oneeye-test/{uuid.uuid4().hex[:12]}"
    rejections = Rejections()
    bus = MqttBus(broker_url, topic_prefix=prefix, rejections=rejections)
    events = EventHub(db)
    service = SightingService(
        db,
        LocalPhotoStore(tmp_path / "photos"),
        bus,
        events,
        make_directory(CustomerDirectorySettings(), db),
        AuthService(db),
        PayloadReader(rejections=rejections),
    )
    service.start()
    bus.start()
    try:
        yield Server(db, bus, service, rejections, prefix)
    finally:
        bus.stop()
        service.stop()
        db.close()


def attacker_publishes(broker_url: str, topic: str, data: bytes) -> None:
    """A plain MQTT client, as anything on the broker is: bytes of its choosing."""
    address = parse_broker_url(broker_url)
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        client.publish(topic, data, qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def sighting(**changes: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "event": "sighting",
        "camera": "door",
        "track": 1,
        "person": None,
        "watchlist": None,
        "distance": None,
        "quality": 0.8,
        "frame": 1,
        "t": 0.1,
        "box": [10, 60, 60, 10],
        "seen_at": datetime.now(UTC).isoformat(),
        "snapshot_key": None,
        "embedding": None,
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"watchlist": "w" * 900_000}, "too_large", id="900KB-watchlist"),
        pytest.param({"seen_at": "9999-12-31T23:59:59+00:00"}, "future", id="year-9999"),
        pytest.param({"embedding": [float("nan"), *UNIT[1:]]}, "invalid", id="NaN-embedding"),
        pytest.param({"embedding": [float("inf")] * 128}, "invalid", id="inf-embedding"),
        pytest.param({"watchlist": "w" * 5_000}, "invalid", id="long-watchlist-under-the-cap"),
    ],
)
def test_a_hand_made_sighting_out_of_bounds_is_not_stored(
    broker_url: str, server: Server, changes: dict[str, Any], reason: str
) -> None:
    topic = f"{server.prefix}/{SIGHTINGS.format(camera='door')}"
    # json.dumps writes NaN and Infinity as bare words, as a hand-made payload may.
    attacker_publishes(broker_url, topic, json.dumps(sighting(**changes)).encode())
    assert wait_until(lambda: server.rejections.total() == 1)
    assert server.rejections.counts() == {(ALL_SIGHTINGS, reason): 1}
    assert server.stored() == 0
    # The consumer goes on: a good sighting right after is stored.
    attacker_publishes(broker_url, topic, json.dumps(sighting()).encode())
    assert wait_until(lambda: server.stored() == 1)
