"""The shipped broker configuration (``deploy/mosquitto/``) on a real Mosquitto: nobody logs
in without a password, an edge publishes only under its own prefix (its cameras' sightings
and statuses, its own status) and reads only the gallery, and only the servers publish gallery
changes. What the broker refuses never reaches a server's subscriber."""

from __future__ import annotations

import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from oneeye.app import make_bus
from oneeye.bus.base import (
    EDGE_CAMERA_STATUS,
    EDGE_SIGHTINGS,
    GALLERY_CHANGES,
    GALLERY_VERSION,
    SIGHTINGS,
    STATUS,
)
from oneeye.bus.broker import MqttError
from oneeye.bus.mqtt import MqttBus
from oneeye.config import MqttSettings, ServeSettings
from tests.bus.helpers import Inbox, Note, ShippedBroker
from tests.conftest import wait_until

pytestmark = pytest.mark.mqtt

USERS = {"oneeye-server": "server pass 1", "edge-a": "edge a pass", "edge-b": "edge b pass"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ShippedBroker]:
    started = ShippedBroker(tmp_path, USERS)
    started.start()
    yield started
    started.stop()


def login(broker: ShippedBroker, user: str, password: str | None = None) -> MqttBus:
    """A bus logged in as ``user`` (not started)."""
    return MqttBus(
        broker.url(),
        username=user,
        password=USERS[user] if password is None else password,
        client_id=f"test-{user}",
        connect_timeout=5,
    )


def test_an_edge_writes_only_its_own_topics(broker: ShippedBroker) -> None:
    server = login(broker, "oneeye-server")
    heard = Inbox()
    server.subscribe("oneeye/v1/#", heard)
    server.start()
    edge = login(broker, "edge-a")
    edge.start()
    try:
        forbidden: list[tuple[str, dict[str, Any], bool]] = [
            (GALLERY_CHANGES, {"n": 1, "version": 2, "op": "add"}, False),
            (GALLERY_VERSION, {"n": 2, "version": 99}, True),
            (EDGE_SIGHTINGS.format(edge="edge-b", camera="b-door"), {"n": 3}, False),
            (EDGE_CAMERA_STATUS.format(edge="edge-b", camera="b-door"), {"n": 4}, True),
            (SIGHTINGS.format(camera="a-door"), {"n": 5}, False),
            (STATUS.format(camera="a-door"), {"n": 6}, True),
            ("oneeye/v1/edges/edge-b/status", {"n": 7, "state": "offline"}, True),
        ]
        for topic, payload, retain in forbidden:
            edge.publish(topic, Note.model_validate(payload), retain=retain)
        allowed: list[tuple[str, dict[str, Any], bool]] = [
            (EDGE_SIGHTINGS.format(edge="edge-a", camera="a-door"), {"n": 8}, False),
            (EDGE_CAMERA_STATUS.format(edge="edge-a", camera="a-door"), {"n": 9}, True),
            ("oneeye/v1/edges/edge-a/status", {"n": 10, "state": "online"}, True),
        ]
        for topic, payload, retain in allowed:
            edge.publish(topic, Note.model_validate(payload), retain=retain)
        assert edge.flush(5)
        # One client's messages reach a subscriber in the order they were published: once the
        # allowed ones are here, the refused ones would have been too.
        assert wait_until(lambda: len(heard) >= 3)
        time.sleep(0.3)
        assert sorted(m.topic for m in heard.messages) == sorted(t for t, _, _ in allowed)
        assert heard.payloads() == [8, 9, 10]
    finally:
        edge.stop()
        server.stop()
    # Nor was anything refused kept as retained: a new subscriber gets the edge's own only.
    late = login(broker, "oneeye-server")
    retained = Inbox()
    late.subscribe("oneeye/v1/#", retained)
    late.start()
    try:
        assert wait_until(lambda: len(retained) >= 2)
        time.sleep(0.3)
        assert sorted(int(str(n)) for n in retained.payloads()) == [9, 10]
    finally:
        late.stop()


def test_an_edge_reads_only_the_gallery_and_only_servers_write_it(broker: ShippedBroker) -> None:
    edge = login(broker, "edge-a")
    heard = Inbox()
    edge.subscribe("oneeye/v1/gallery/#", heard)
    edge.subscribe("oneeye/v1/edges/+/cameras/+/sightings", heard)  # refused by the broker
    edge.subscribe("oneeye/v1/cameras/+/sightings", heard)  # refused by the broker
    edge.start()
    server = login(broker, "oneeye-server")
    server.start()
    try:
        server.publish(
            EDGE_SIGHTINGS.format(edge="edge-b", camera="b-door"), Note.model_validate({"n": 1})
        )
        server.publish(SIGHTINGS.format(camera="hall"), Note.model_validate({"n": 2}))
        server.publish(GALLERY_CHANGES, Note.model_validate({"n": 3}))
        assert wait_until(lambda: len(heard) >= 1)
        time.sleep(0.3)
        assert heard.payloads() == [3]
    finally:
        server.stop()
        edge.stop()


@pytest.mark.parametrize(
    ("user", "password"),
    [(None, None), ("edge-a", "wrong password"), ("nobody", "edge a pass")],
)
def test_no_login_without_a_known_user_and_its_password(
    broker: ShippedBroker, user: str | None, password: str | None
) -> None:
    bus = MqttBus(broker.url(), username=user, password=password, connect_timeout=5)
    with pytest.raises(MqttError, match="refused us"):
        bus.start()
    assert not bus.connected


def test_an_edge_cannot_take_over_the_servers_session(
    broker: ShippedBroker, tmp_path: Path
) -> None:
    """Issue 11, finding 1 (#17): the broker lets a connection with a client id in use throw
    the other one off, and the server's id was ``oneeye-serve-<hostname>``, which any edge
    could guess. Now it carries a random part made at first start and kept owner-only in the
    data folder: stable across restarts (the persistent session survives), unguessable."""
    settings = ServeSettings(
        data_dir=tmp_path / "server",
        bus=broker.url(),
        mqtt=MqttSettings(username="oneeye-server", password=SecretStr(USERS["oneeye-server"])),
    )
    guessable = f"oneeye-serve-{socket.gethostname()}"
    server = make_bus(settings)
    assert isinstance(server, MqttBus)
    assert server.client_id.startswith(f"{guessable}-")
    assert len(server.client_id) == len(guessable) + 25
    again = make_bus(settings)
    assert isinstance(again, MqttBus)
    assert again.client_id == server.client_id, "the same id after a restart"
    stored = tmp_path / "server" / "mqtt-client-id-serve"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    other = make_bus(settings.model_copy(update={"data_dir": tmp_path / "other"}))
    assert isinstance(other, MqttBus)
    assert other.client_id != server.client_id, "each server its own"

    heard = Inbox()
    server.subscribe("oneeye/v1/#", heard)
    server.start()
    intruders: list[MqttBus] = []

    def intrude(client_id: str) -> None:
        intruder = MqttBus(
            broker.url(),
            username="edge-a",
            password=USERS["edge-a"],
            client_id=client_id,
            persistent=False,
            connect_timeout=5,
        )
        intruders.append(intruder)
        intruder.start()

    try:
        assert server.wait_ready(5)
        intrude(guessable)  # what an edge could guess: no longer the server's id
        assert intruders[0].wait_connected(5)
        assert not wait_until(lambda: not server.connected, timeout=1.5)
        intruders[0].publish(
            EDGE_SIGHTINGS.format(edge="edge-a", camera="c1"), Note.model_validate({"n": 1})
        )
        assert wait_until(lambda: heard.payloads() == [1])
        # The broker would still let the real id take the session over: hence it is secret.
        intrude(server.client_id)
        assert wait_until(lambda: not server.connected, timeout=5)
    finally:
        for intruder in intruders:
            intruder.stop()
        server.stop()
