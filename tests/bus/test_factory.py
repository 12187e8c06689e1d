"""``oneeye.bus.make_bus``: a bus by name, the same way for the server and the edge; a real
in-process bus and a real broker behind it."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from oneeye.bus import BusOptions, UnknownBusError, make_bus, register_bus
from oneeye.bus.base import Bus
from oneeye.bus.factory import BUS_BACKENDS, bus_name, bus_user
from oneeye.bus.memory import MemoryBus
from oneeye.bus.mqtt import MqttBus
from tests.bus.helpers import Inbox, Note
from tests.conftest import wait_until


def test_memory_names_the_in_process_bus_and_it_delivers() -> None:
    bus = make_bus("memory")
    assert isinstance(bus, MemoryBus)
    heard = Inbox()
    bus.subscribe("oneeye/v1/test/#", heard)
    bus.start()
    try:
        bus.publish("oneeye/v1/test/a", Note.model_validate({"n": 1}))
        assert bus.flush(5.0)
        assert heard.payloads() == [1]
        assert bus.connected
        assert bus.wait_ready(0.1)
    finally:
        bus.stop()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("carrier-pigeon", "unknown bus 'carrier-pigeon'"),
        ("amqp://host:5672", "unknown bus 'amqp://host:5672'"),
    ],
)
def test_an_unknown_bus_is_refused_with_the_choices(url: str, expected: str) -> None:
    with pytest.raises(UnknownBusError, match=expected) as refused:
        make_bus(url)
    assert "memory, mqtt://host:port or mqtts://host:port" in str(refused.value)


def test_a_new_backend_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("oneeye.bus.factory.BUS_BACKENDS", dict(BUS_BACKENDS))
    made: list[tuple[str, BusOptions]] = []

    def loopback(url: str, options: BusOptions) -> Bus:
        made.append((url, options))
        return MemoryBus()

    register_bus("loop", loopback)
    options = BusOptions(identity_stem="oneeye-test")
    assert isinstance(make_bus("loop://anywhere", options), MemoryBus)
    assert made == [("loop://anywhere", options)]


def test_names_and_users_of_bus_urls() -> None:
    assert bus_name("memory") == "memory"
    assert bus_name("mqtts://edge-1:pw@broker:8883") == "mqtts"
    assert bus_user("mqtts://edge-1:pw@broker:8883") == "edge-1"
    assert bus_user("mqtt://broker") is None
    assert bus_user("mqtt://a%40b:pw@broker") == "a@b"


@pytest.mark.mqtt
def test_mqtt_names_a_broker_and_keeps_its_client_id(broker_url: str, tmp_path: Path) -> None:
    options = BusOptions(identity_file=tmp_path / "client-id", identity_stem="oneeye-factory")
    bus = make_bus(broker_url, options)
    assert isinstance(bus, MqttBus)
    assert bus.client_id.startswith("oneeye-factory-")
    assert stat.S_IMODE((tmp_path / "client-id").stat().st_mode) == 0o600
    again = make_bus(broker_url, options)
    assert isinstance(again, MqttBus)
    assert again.client_id == bus.client_id
    topic = f"oneeye-test/{uuid.uuid4().hex}/factory"
    heard = Inbox()
    bus.subscribe(topic, heard)
    bus.start()
    try:
        assert bus.wait_ready(10.0)
        bus.publish(topic, Note.model_validate({"n": 7}))
        assert bus.flush(10.0)
        assert wait_until(lambda: heard.payloads() == [7], timeout=10.0)
    finally:
        bus.stop()
