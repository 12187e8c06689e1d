"""MemoryBus: the in-process bus of the all-in-one server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from pydantic_core import PydanticSerializationError

from oneeye.bus import Message, topic_matches
from oneeye.bus.base import ALL_SIGHTINGS, SIGHTINGS, STATUS, encode_payload
from oneeye.bus.memory import MemoryBus
from tests.bus.helpers import Note
from tests.conftest import wait_until


@pytest.fixture
def bus() -> Iterator[MemoryBus]:
    running = MemoryBus()
    running.start()
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("oneeye/v1/cameras/+/sightings", "oneeye/v1/cameras/door/sightings", True),
        ("oneeye/v1/cameras/+/sightings", "oneeye/v1/cameras/door/status", False),
        ("oneeye/v1/cameras/+/sightings", "oneeye/v1/cameras/sightings", False),
        ("oneeye/v1/#", "oneeye/v1/gallery/changes", True),
        ("oneeye/v1/#", "oneeye/v2/gallery/changes", False),
        ("#", "anything/at/all", True),
        ("oneeye/v1/gallery/changes", "oneeye/v1/gallery/changes", True),
        ("oneeye/v1/gallery/changes", "oneeye/v1/gallery/changes/more", False),
        ("oneeye/+/gallery/+", "oneeye/v1/gallery/version", True),
    ],
)
def test_topic_matches(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected


def test_payload_carries_schema_version() -> None:
    assert encode_payload(Note.model_validate({"a": "é"})) == '{"v":1,"a":"é"}'.encode()


def test_wildcard_subscriptions_get_their_topics(bus: MemoryBus) -> None:
    sightings: list[Message] = []
    everything: list[Message] = []
    bus.subscribe(ALL_SIGHTINGS, sightings.append)
    bus.subscribe("oneeye/v1/#", everything.append)
    bus.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"id": "1"}))
    bus.publish(STATUS.format(camera="door"), Note.model_validate({"state": "online"}))
    bus.publish(SIGHTINGS.format(camera="vault"), Note.model_validate({"id": "2"}))
    assert wait_until(lambda: len(everything) == 3)
    assert [m.payload["id"] for m in sightings] == ["1", "2"]
    assert [m.topic for m in sightings] == [
        "oneeye/v1/cameras/door/sightings",
        "oneeye/v1/cameras/vault/sightings",
    ]
    assert all(m.payload["v"] == 1 for m in everything)


def test_messages_arrive_in_publish_order(bus: MemoryBus) -> None:
    seen: list[int] = []
    bus.subscribe(ALL_SIGHTINGS, lambda m: seen.append(m.payload["n"]))
    for n in range(500):
        bus.publish(SIGHTINGS.format(camera=f"c{n % 3}"), Note.model_validate({"n": n}))
    assert wait_until(lambda: len(seen) == 500)
    assert seen == list(range(500))


def test_retained_message_reaches_late_subscriber_only_once(bus: MemoryBus) -> None:
    early: list[Message] = []
    bus.subscribe("oneeye/v1/cameras/+/status", early.append)
    bus.publish(STATUS.format(camera="door"), Note.model_validate({"state": "online"}), retain=True)
    bus.publish(
        STATUS.format(camera="door"), Note.model_validate({"state": "offline"}), retain=True
    )
    assert wait_until(lambda: len(early) == 2)
    late: list[Message] = []
    bus.subscribe("oneeye/v1/cameras/#", late.append)
    assert wait_until(lambda: len(late) == 1)
    time.sleep(0.05)
    assert late == [Message("oneeye/v1/cameras/door/status", {"v": 1, "state": "offline"}, True)]
    assert len(early) == 2
    assert [m.retained for m in early] == [False, False]


def test_failing_handler_does_not_stop_delivery(
    bus: MemoryBus, caplog: pytest.LogCaptureFixture
) -> None:
    good: list[int] = []

    def broken(message: Message) -> None:
        raise RuntimeError(f"handler broke on {message.payload['n']}")

    bus.subscribe(ALL_SIGHTINGS, broken)
    bus.subscribe(ALL_SIGHTINGS, lambda m: good.append(m.payload["n"]))
    for n in range(3):
        bus.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": n}))
    assert wait_until(lambda: len(good) == 3)
    assert good == [0, 1, 2]
    assert "bus handler failed on oneeye/v1/cameras/door/sightings" in caplog.text


def test_handlers_get_their_own_copy(bus: MemoryBus) -> None:
    copies: list[dict[str, object]] = []

    def mutate(message: Message) -> None:
        message.payload["touched"] = True
        copies.append(message.payload)

    bus.subscribe(ALL_SIGHTINGS, mutate)
    bus.subscribe(ALL_SIGHTINGS, lambda m: copies.append(m.payload))
    bus.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": 1}))
    assert wait_until(lambda: len(copies) == 2)
    assert copies[1] == {"v": 1, "n": 1}


def test_unserialisable_payload_fails_at_publish(bus: MemoryBus) -> None:
    with pytest.raises(PydanticSerializationError):
        bus.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"when": object()}))


def test_stop_delivers_what_is_queued() -> None:
    bus = MemoryBus()
    seen: list[int] = []
    release = threading.Event()

    def slow(message: Message) -> None:
        release.wait(5)
        seen.append(message.payload["n"])

    bus.subscribe(ALL_SIGHTINGS, slow)
    bus.start()
    for n in range(5):
        bus.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": n}))
    release.set()
    bus.stop()
    assert seen == [0, 1, 2, 3, 4]


def test_drain_returns_once_everything_published_was_handled(bus: MemoryBus) -> None:
    handled: list[int] = []

    def slow(message: Message) -> None:
        time.sleep(0.002)
        handled.append(message.payload["n"])

    bus.subscribe("t/#", slow)
    for n in range(100):
        bus.publish("t/x", Note.model_validate({"n": n}))
    assert bus.drain(timeout=10)
    assert handled == list(range(100))


def test_drain_times_out_behind_a_stuck_handler(bus: MemoryBus) -> None:
    release = threading.Event()

    def stuck(message: Message) -> None:
        release.wait(5)

    bus.subscribe("t/#", stuck)
    bus.publish("t/x", Note.model_validate({}))
    try:
        assert not bus.drain(timeout=0.2)
    finally:
        release.set()
    assert bus.drain(timeout=5)
