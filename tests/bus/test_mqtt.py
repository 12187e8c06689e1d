"""MqttBus against a real Mosquitto (127.0.0.1:1883; ``ONEEYE_TEST_MQTT`` overrides): wildcards,
retained status, persistent sessions, last will, malformed payloads, shared subscriptions.

Each test works under its own topic prefix and client ids, so runs in parallel do not meet.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from oneeye.bus import Message
from oneeye.bus.base import (
    ALL_SIGHTINGS,
    ALL_STATUS,
    GALLERY_CHANGES,
    SIGHTINGS,
    STATUS,
    Announcement,
)
from oneeye.bus.broker import MqttError, parse_broker_url
from oneeye.bus.messages import Rejections
from oneeye.bus.mqtt import MqttBus
from tests.bus.helpers import Inbox, Note, PrivateBroker, drained
from tests.conftest import BROKER_URL, wait_until

pytestmark = pytest.mark.mqtt

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own."""
    return f"oneeye-test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_bus(broker_url: str, prefix: str) -> Iterator[Callable[..., MqttBus]]:
    """Builds MqttBus objects on the test broker under the test's prefix; stops them after."""
    made: list[MqttBus] = []

    def make(**options: object) -> MqttBus:
        options.setdefault("topic_prefix", prefix)
        options.setdefault("session_expiry", 120)  # do not leave sessions on the broker
        bus = MqttBus(broker_url, **options)  # type: ignore[arg-type]
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.stop()


def raw_client(broker_url: str) -> paho.Client:
    """A plain paho client, connected, for publishing what MqttBus never would."""
    address = parse_broker_url(broker_url)
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect(address.host, address.port)
    client.loop_start()
    return client


def unique_id(name: str) -> str:
    return f"test-{name}-{uuid.uuid4().hex[:10]}"


# Round trips -------------------------------------------------------------------------------


def test_round_trip_with_wildcards(make_bus: Callable[..., MqttBus]) -> None:
    sightings, everything, gallery = Inbox(), Inbox(), Inbox()
    consumer = make_bus()
    consumer.subscribe(ALL_SIGHTINGS, sightings)
    consumer.subscribe("oneeye/v1/#", everything)
    consumer.subscribe(GALLERY_CHANGES, gallery)
    consumer.start()
    assert consumer.connected
    producer = make_bus()
    producer.start()
    producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": 1, "name": "Zoë"}))
    producer.publish(STATUS.format(camera="door"), Note.model_validate({"n": 2, "state": "online"}))
    producer.publish(SIGHTINGS.format(camera="vault"), Note.model_validate({"n": 3}))
    producer.publish(GALLERY_CHANGES, Note.model_validate({"n": 4, "version": 7}))
    assert producer.flush(5)
    assert wait_until(lambda: len(everything) == 4)
    assert sightings.payloads() == [1, 3]
    assert [m.topic for m in sightings.messages] == [
        "oneeye/v1/cameras/door/sightings",
        "oneeye/v1/cameras/vault/sightings",
    ]
    assert sightings.messages[0].payload == {"v": 1, "n": 1, "name": "Zoë"}
    assert gallery.payloads("version") == [7]
    assert everything.payloads() == [1, 2, 3, 4]
    assert not any(m.retained for m in everything.messages)


def test_order_is_kept(make_bus: Callable[..., MqttBus]) -> None:
    inbox = Inbox()
    consumer = make_bus()
    consumer.subscribe(ALL_SIGHTINGS, inbox)
    consumer.start()
    producer = make_bus()
    producer.start()
    for n in range(300):
        producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": n}))
    assert wait_until(lambda: len(inbox) == 300, timeout=10)
    assert inbox.payloads() == list(range(300))


def test_retained_status_reaches_a_late_subscriber(make_bus: Callable[..., MqttBus]) -> None:
    producer = make_bus()
    producer.start()
    topic = STATUS.format(camera="door")
    producer.publish(topic, Note.model_validate({"state": "online"}), retain=True)
    producer.publish(topic, Note.model_validate({"state": "offline"}), retain=True)
    producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": 1}))  # not retained
    assert producer.flush(5)
    try:
        late = Inbox()
        consumer = make_bus()
        consumer.subscribe("oneeye/v1/cameras/#", late)
        consumer.start()
        before_marker = drained(lambda note: producer.publish(topic, note), late)
        assert before_marker == [Message(topic, {"v": 1, "state": "offline"}, retained=True)]
    finally:
        producer.clear_retained(topic)
        producer.flush(5)
    cleared = Inbox()
    after = make_bus()
    after.subscribe(ALL_STATUS, cleared)
    after.start()
    assert drained(lambda note: producer.publish(topic, note), cleared) == []


def test_failing_handler_does_not_stop_delivery(
    make_bus: Callable[..., MqttBus], caplog: pytest.LogCaptureFixture
) -> None:
    good = Inbox()

    def broken(message: Message) -> None:
        raise RuntimeError("handler broke")

    consumer = make_bus()
    consumer.subscribe(ALL_SIGHTINGS, broken)
    consumer.subscribe(ALL_SIGHTINGS, good)
    consumer.start()
    producer = make_bus()
    producer.start()
    for n in range(3):
        producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": n}))
    assert wait_until(lambda: len(good) == 3)
    assert good.payloads() == [0, 1, 2]
    assert "bus handler failed on oneeye/v1/cameras/door/sightings" in caplog.text


# Persistent sessions ------------------------------------------------------------------------


def test_persistent_consumer_gets_what_it_missed(make_bus: Callable[..., MqttBus]) -> None:
    client_id = unique_id("server")
    first = make_bus(client_id=client_id)
    inbox = Inbox()
    first.subscribe(ALL_SIGHTINGS, inbox)
    first.start()
    producer = make_bus()
    producer.start()
    producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": 0}))
    assert wait_until(lambda: len(inbox) == 1)
    first.stop()  # a clean stop: the broker keeps the session

    for n in range(1, 6):
        producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": n}))
    assert producer.flush(5)

    again = Inbox()
    second = make_bus(client_id=client_id)
    second.subscribe(ALL_SIGHTINGS, again)
    second.start()
    assert wait_until(lambda: len(again) == 5)
    time.sleep(0.3)
    assert again.payloads() == [1, 2, 3, 4, 5]
    assert inbox.payloads() == [0]


def test_what_arrives_after_the_intake_closed_waits_for_the_next_session(
    make_bus: Callable[..., MqttBus],
) -> None:
    # A server stopping: its bus takes nothing more in while the consumers are still there,
    # so a message arriving now is neither handled nor acknowledged; the broker gives it to
    # the server's next session. (A consumer that stopped before its bus, and ignored what
    # came meanwhile, had it acknowledged and lost: the test_edge flake.)
    client_id = unique_id("server")
    group = f"servers-{uuid.uuid4().hex[:8]}"
    first = make_bus(client_id=client_id, share_group=group)
    inbox = Inbox()
    first.subscribe(ALL_SIGHTINGS, inbox)
    first.start()
    producer = make_bus()
    producer.start()
    producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": 0}))
    assert wait_until(lambda: len(inbox) == 1)

    assert first.close_intake(5)
    for n in range(1, 4):
        producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": n}))
    assert producer.flush(5)
    first.publish(STATUS.format(camera="door"), Note.model_validate({"still": "publishing"}))
    assert first.flush(5), "publishing goes on after the intake closed"
    first.stop()
    assert inbox.payloads() == [0]

    again = Inbox()
    second = make_bus(client_id=client_id, share_group=group)
    second.subscribe(ALL_SIGHTINGS, again)
    second.start()
    assert wait_until(lambda: len(again) == 3), again.payloads()
    assert set(again.payloads()) == {1, 2, 3}


def test_persistent_session_on_mqtt_3_1_1(make_bus: Callable[..., MqttBus]) -> None:
    client_id = unique_id("v311")
    first = make_bus(client_id=client_id, protocol="3.1.1")
    first.subscribe(GALLERY_CHANGES, Inbox())
    first.start()
    first.stop()
    producer = make_bus(protocol="3.1.1")
    producer.start()
    for n in range(3):
        producer.publish(GALLERY_CHANGES, Note.model_validate({"n": n}))
    assert producer.flush(5)
    inbox = Inbox()
    second = make_bus(client_id=client_id, protocol="3.1.1")
    second.subscribe(GALLERY_CHANGES, inbox)
    second.start()
    assert wait_until(lambda: len(inbox) == 3)
    time.sleep(0.3)
    assert inbox.payloads() == [0, 1, 2]
    # v3.1.1 sessions do not expire by themselves: end this one.
    cleanup = MqttBus(BROKER_URL, client_id=client_id, persistent=False, protocol="3.1.1")
    cleanup.start()
    cleanup.stop()


def test_clean_session_consumer_does_not_get_old_messages(
    make_bus: Callable[..., MqttBus],
) -> None:
    first = make_bus()
    first.subscribe(ALL_SIGHTINGS, Inbox())
    first.start()
    first.stop()
    producer = make_bus()
    producer.start()
    producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": 1}))
    assert producer.flush(5)
    inbox = Inbox()
    second = make_bus(client_id=first.client_id, persistent=False)
    second.subscribe(ALL_SIGHTINGS, inbox)
    second.start()
    topic = SIGHTINGS.format(camera="door")
    assert drained(lambda note: producer.publish(topic, note), inbox) == []


def test_message_held_by_a_dead_consumer_is_delivered_again(
    broker_url: str, prefix: str, make_bus: Callable[..., MqttBus]
) -> None:
    """A consumer killed while a message waits for its handler never acknowledged it; the same
    client id, back again, gets it."""
    client_id = unique_id("crash")
    script = _bus_script(
        broker_url,
        prefix,
        f"""
        bus = MqttBus(url, client_id={client_id!r}, topic_prefix=prefix, session_expiry=120)
        def stuck(message):
            print("got", message.payload["n"], flush=True)
            time.sleep(3600)
        bus.subscribe("oneeye/v1/cameras/+/sightings", stuck)
        bus.start()
        print("ready", flush=True)
        time.sleep(3600)
        """,
    )
    with _Child(script) as process:
        assert _read_line(process) == "ready"
        producer = make_bus()
        producer.start()
        producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": 1}))
        producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": 2}))
        assert producer.flush(5)
        assert _read_line(process) == "got 1"
        process.send_signal(signal.SIGKILL)
        process.wait(5)
    inbox = Inbox()
    back = make_bus(client_id=client_id)
    back.subscribe(ALL_SIGHTINGS, inbox)
    back.start()
    assert wait_until(lambda: len(inbox) == 2)
    time.sleep(0.3)
    assert inbox.payloads() == [1, 2]


# Last will ----------------------------------------------------------------------------------


def _bus_script(broker_url: str, prefix: str, body: str) -> str:
    head = f"""
        import sys, time
        from oneeye.bus.mqtt import Announcement, MqttBus
        from tests.bus.helpers import Note
        url, prefix = {broker_url!r}, {prefix!r}
        """
    return textwrap.dedent(head) + textwrap.dedent(body)


class _Child:
    """A Python child process running ``script``, killed on exit if still alive."""

    def __init__(self, script: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def __enter__(self) -> subprocess.Popen[str]:
        return self.process

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _read_line(process: subprocess.Popen[str], timeout: float = 15.0) -> str:
    assert process.stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    assert result, f"no line from the child process in {timeout} s"
    return result[0].strip()


def test_last_will_marks_a_killed_edge_offline(
    broker_url: str, prefix: str, make_bus: Callable[..., MqttBus]
) -> None:
    topic = STATUS.format(camera="door")
    statuses = Inbox()
    observer = make_bus()
    observer.subscribe(ALL_STATUS, statuses)
    observer.start()
    script = _bus_script(
        broker_url,
        prefix,
        f"""
        bus = MqttBus(
            url,
            client_id="edge-" + prefix.replace("/", "-"),
            topic_prefix=prefix,
            session_expiry=60,
            will=Announcement(
                {topic!r}, Note.model_validate({{"state": "offline", "reason": "lost"}})
            ),
            birth=Announcement({topic!r}, Note.model_validate({{"state": "online"}})),
        )
        bus.start()
        print("ready" if bus.connected else "no broker", flush=True)
        time.sleep(3600)
        """,
    )
    try:
        with _Child(script) as edge:
            assert _read_line(edge) == "ready"
            assert wait_until(lambda: statuses.payloads("state") == ["online"])
            edge.send_signal(signal.SIGKILL)
            edge.wait(5)
            assert wait_until(lambda: statuses.payloads("state") == ["online", "offline"])
        assert statuses.messages[-1].payload == {"v": 1, "state": "offline", "reason": "lost"}
        late = Inbox()
        dashboard = make_bus()
        dashboard.subscribe(ALL_STATUS, late)
        dashboard.start()
        assert wait_until(lambda: len(late) == 1)
        assert late.messages[0].retained
        assert late.messages[0].payload["state"] == "offline"
    finally:
        observer.clear_retained(topic)
        observer.flush(5)


def test_no_last_will_on_a_clean_stop(make_bus: Callable[..., MqttBus]) -> None:
    topic = STATUS.format(camera="lobby")
    statuses = Inbox()
    observer = make_bus()
    observer.subscribe(ALL_STATUS, statuses)
    observer.start()
    try:
        for count, protocol in enumerate(("5", "3.1.1"), start=1):
            edge = make_bus(
                client_id=unique_id("edge"),
                protocol=protocol,
                will=Announcement(topic, Note.model_validate({"state": "offline"})),
                birth=Announcement(topic, Note.model_validate({"state": "online"})),
            )
            edge.start()
            assert wait_until(
                lambda: statuses.payloads("state") == ["online"] * count  # noqa: B023
            )
            edge.stop()
        time.sleep(1.0)
        assert statuses.payloads("state") == ["online", "online"]
    finally:
        observer.clear_retained(topic)
        observer.flush(5)


# Malformed messages -------------------------------------------------------------------------


def test_malformed_and_oversized_messages_are_dropped(
    broker_url: str,
    prefix: str,
    make_bus: Callable[..., MqttBus],
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox = Inbox()
    rejections = Rejections()
    consumer = make_bus(max_payload=2_000, rejections=rejections)
    consumer.subscribe("oneeye/v1/#", inbox)
    consumer.start()
    topic = f"{prefix}/{SIGHTINGS.format(camera='door')}"
    bad = [
        b"not json at all",
        b"\xff\xfe\x00 binary",
        b"[1, 2, 3]",
        b'"a string"',
        b'{"camera": "door"}',
        b'{"v": 99, "camera": "door"}',
        b'{"v": "1", "camera": "door"}',
        b'{"v": true, "camera": "door"}',
        json.dumps({"v": 1, "blob": "x" * 5_000}).encode(),
        b'{"v": 1, "truncated": ',
        b"[" * 1_900,  # nested deeper than the JSON parser recurses
    ]
    raw = raw_client(broker_url)
    try:
        for data in bad:
            raw.publish(topic, data, qos=1).wait_for_publish(5)
        raw.publish(topic, b'{"v": 1, "n": "good"}', qos=1).wait_for_publish(5)
    finally:
        raw.loop_stop()
        raw.disconnect()
    assert wait_until(lambda: len(inbox) == 1)
    assert wait_until(lambda: consumer.dropped == len(bad))
    assert inbox.payloads() == ["good"]
    kind = "oneeye/v1/cameras/+/sightings"
    assert rejections.counts() == {
        (kind, "not_json"): 6,
        (kind, "version"): 4,
        (kind, "too_large"): 1,
    }
    # One source, so one line however many it sends; none of their content.
    dropped = [r.getMessage() for r in caplog.records if "dropped a message" in r.getMessage()]
    assert dropped == [
        "bus: dropped a message on oneeye/v1/cameras/door/sightings: not_json: "
        "not UTF-8 JSON (JSONDecodeError)"
    ]
    assert "not json at all" not in caplog.text
    # Still running: a later good message arrives too.
    producer = make_bus()
    producer.start()
    producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": "later"}))
    assert wait_until(lambda: len(inbox) == 2)


def test_oversized_publish_is_refused(make_bus: Callable[..., MqttBus]) -> None:
    producer = make_bus(max_payload=1_000)
    with pytest.raises(MqttError, match="over the bus limit of 1000"):
        producer.publish(GALLERY_CHANGES, Note.model_validate({"blob": "x" * 2_000}))


# Shared subscriptions -----------------------------------------------------------------------


def test_shared_subscription_consumes_each_message_once(
    make_bus: Callable[..., MqttBus], prefix: str
) -> None:
    group = "servers-" + prefix.rsplit("/", 1)[-1]
    first, second = Inbox(), Inbox()
    gallery_first, gallery_second = Inbox(), Inbox()
    for inbox, gallery in ((first, gallery_first), (second, gallery_second)):
        server = make_bus(client_id=unique_id("server"), share_group=group)
        server.subscribe(ALL_SIGHTINGS, inbox)
        server.subscribe(GALLERY_CHANGES, gallery)  # not shared: every server applies changes
        server.start()
    producer = make_bus()
    producer.start()
    for n in range(40):
        producer.publish(SIGHTINGS.format(camera=f"cam{n % 4}"), Note.model_validate({"n": n}))
    producer.publish(GALLERY_CHANGES, Note.model_validate({"n": "change"}))
    assert producer.flush(5)
    assert wait_until(lambda: len(first) + len(second) == 40)
    time.sleep(0.3)
    both = first.payloads() + second.payloads()
    assert sorted(both) == list(range(40))  # type: ignore[type-var]
    assert len(first) > 0
    assert len(second) > 0
    assert wait_until(lambda: len(gallery_first) == 1 and len(gallery_second) == 1)


# Settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user", "password"),
    [
        ("mqtt://broker", "broker", 1883, False, None, None),
        ("mqtt://broker:1884", "broker", 1884, False, None, None),
        ("mqtts://broker", "broker", 8883, True, None, None),
        ("mqtts://edge:p%40ss%3Aword@broker.example:8884/", "broker.example", 8884, True,
         "edge", "p@ss:word"),
        ("mqtt://[::1]:1883", "::1", 1883, False, None, None),
    ],
)  # fmt: skip
def test_parse_broker_url(
    url: str, host: str, port: int, tls: bool, user: str | None, password: str | None
) -> None:
    address = parse_broker_url(url)
    assert (address.host, address.port, address.tls) == (host, port, tls)
    assert (address.username, address.password) == (user, password)
    if password:
        assert password not in address.redacted()
        assert password not in repr(address)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://broker:1883", "starts with mqtt:// or mqtts://"),
        ("broker:1883", "starts with mqtt:// or mqtts://"),
        ("mqtt://", "needs a host"),
        ("mqtt://broker:notaport", "not an MQTT URL"),
        ("mqtt://broker:99999", "not an MQTT URL"),
        ("mqtt://broker/oneeye", "no path or query"),
        ("mqtt://broker?x=1", "no path or query"),
    ],
)
def test_bad_broker_urls_refused(url: str, error: str) -> None:
    with pytest.raises(MqttError, match=error):
        MqttBus(url)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"persistent": True}, "needs a client id"),
        ({"share_group": "a/b"}, "share group"),
        ({"share_group": ""}, "share group"),
        ({"topic_prefix": "test/+"}, "no wildcards"),
        ({"ca_file": "/nonexistent/ca.pem"}, "cannot set up TLS"),
    ],
)
def test_bad_options_refused(options: dict[str, object], error: str) -> None:
    with pytest.raises(MqttError, match=error):
        MqttBus("mqtts://user:hunter2@broker", **options)  # type: ignore[arg-type]


def test_unreachable_broker_does_not_block_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bus = MqttBus(f"mqtt://edge:hunter2@127.0.0.1:{port}", connect_timeout=0.5)
    started = time.monotonic()
    bus.start()
    try:
        assert time.monotonic() - started < 3
        assert not bus.connected
        bus.publish(
            GALLERY_CHANGES, Note.model_validate({"n": 1})
        )  # queued for when the broker comes
        assert "not reachable yet" in caplog.text
    finally:
        bus.stop()
    assert "stopping with 1 message(s) the MQTT broker" in caplog.text
    assert "hunter2" not in caplog.text


# A broker of the test's own: logins, TLS, a broker that goes away -------------------------


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Callable[..., PrivateBroker]]:
    """Starts brokers of the test's own; stops them after."""
    brokers: list[PrivateBroker] = []

    def start(extra: str = "", tls: bool = False) -> PrivateBroker:
        folder = tmp_path / f"broker{len(brokers)}"
        folder.mkdir()
        broker = PrivateBroker(folder, extra.replace("{folder}", str(folder)), tls)
        brokers.append(broker)
        broker.start()
        return broker

    yield start
    for broker in brokers:
        broker.stop()


def test_login_with_password(private_broker: Callable[..., PrivateBroker], tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    passwords.write_text("")
    subprocess.run(
        ["mosquitto_passwd", "-b", str(passwords), "edge-1", "s3cr:t@pw"],
        check=True,
        capture_output=True,
    )
    broker = private_broker(f"allow_anonymous false\npassword_file {passwords}\n")
    inbox = Inbox()
    good = MqttBus(broker.url("edge-1:s3cr%3At%40pw@"), topic_prefix="t")
    good.subscribe(GALLERY_CHANGES, inbox)
    good.start()
    try:
        assert good.connected
        good.publish(GALLERY_CHANGES, Note.model_validate({"n": 1}))
        assert wait_until(lambda: inbox.payloads() == [1])
    finally:
        good.stop()
    for url, options in [
        (broker.url("edge-1:wrong-password@"), {}),
        (broker.url(), {}),
        (broker.url("edge-1:wrong-password@"), {"password": "also-wrong"}),
    ]:
        bad = MqttBus(url, **options)  # type: ignore[arg-type]
        with pytest.raises(MqttError, match="refused us") as caught:
            bad.start()
        assert "wrong-password" not in str(caught.value)
        assert "also-wrong" not in str(caught.value)
        assert not bad.connected
    explicit = MqttBus(broker.url(), username="edge-1", password="s3cr:t@pw")
    explicit.start()
    assert explicit.connected
    explicit.stop()


def _make_tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 and localhost signed by it."""
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("OneEye test CA"))
        .issuer_name(name("OneEye test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


def test_tls_broker(private_broker: Callable[..., PrivateBroker], tmp_path: Path) -> None:
    ca_file, cert_file, key_file = _make_tls_files(tmp_path)
    broker = private_broker(
        f"allow_anonymous true\ncafile {ca_file}\ncertfile {cert_file}\nkeyfile {key_file}\n",
        tls=True,
    )
    inbox = Inbox()
    verified = MqttBus(broker.url(), ca_file=str(ca_file), topic_prefix="t")
    verified.subscribe(ALL_SIGHTINGS, inbox)
    verified.start()
    try:
        assert verified.connected
        verified.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": 1}))
        assert wait_until(lambda: inbox.payloads() == [1])
    finally:
        verified.stop()
    # An unknown certificate is never connected to; the bus keeps trying in the background.
    unverified = MqttBus(broker.url(), connect_timeout=1.0)
    unverified.start()
    try:
        assert not unverified.connected
    finally:
        unverified.stop()
    insecure = MqttBus(broker.url(), insecure=True)
    insecure.start()
    try:
        assert insecure.connected
    finally:
        insecure.stop()


def test_subscriptions_made_again_after_the_broker_forgot_them(
    private_broker: Callable[..., PrivateBroker],
) -> None:
    broker = private_broker("persistence false\n")
    inbox = Inbox()
    options: dict[str, Any] = {"reconnect_min": 1, "reconnect_max": 1, "topic_prefix": "t"}
    consumer = MqttBus(broker.url(), client_id="server-1", **options)
    consumer.subscribe(GALLERY_CHANGES, inbox)
    consumer.start()
    producer = MqttBus(broker.url(), **options)
    producer.start()
    try:
        broker.stop()
        assert wait_until(lambda: not consumer.connected)
        broker.start()  # a new broker: no sessions, no subscriptions
        assert consumer.wait_ready(10)  # subscribed again
        assert producer.wait_connected(10)
        producer.publish(GALLERY_CHANGES, Note.model_validate({"n": 1}))
        assert wait_until(lambda: inbox.payloads() == [1])
    finally:
        producer.stop()
        consumer.stop()


def test_refused_start_leaves_nothing_running(
    private_broker: Callable[..., PrivateBroker],
) -> None:
    broker = private_broker("allow_anonymous false\n")
    before = {t.name for t in threading.enumerate()}
    bus = MqttBus(broker.url())
    with pytest.raises(MqttError, match="refused us"):
        bus.start()
    assert wait_until(lambda: {t.name for t in threading.enumerate()} <= before)


def test_nothing_lost_while_the_broker_is_down(
    private_broker: Callable[..., PrivateBroker],
) -> None:
    broker = private_broker()
    inbox = Inbox()
    options: dict[str, Any] = {"reconnect_min": 1, "reconnect_max": 1, "topic_prefix": "t"}
    consumer = MqttBus(broker.url(), client_id="server-1", **options)
    consumer.subscribe(ALL_SIGHTINGS, inbox)
    consumer.start()
    producer = MqttBus(broker.url(), client_id="edge-1", **options)
    producer.start()
    try:
        producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": 0}))
        assert wait_until(lambda: inbox.payloads() == [0])
        broker.stop()
        assert wait_until(lambda: not consumer.connected and not producer.connected)
        for n in range(1, 11):
            producer.publish(SIGHTINGS.format(camera="door"), Note.model_validate({"n": n}))
        assert not producer.flush(0.2)
        broker.start()
        assert producer.wait_connected(10)
        assert consumer.wait_connected(10)
        assert producer.flush(10)
        assert wait_until(lambda: len(inbox) >= 11, timeout=10)
        time.sleep(0.3)
        assert inbox.payloads() == list(range(11))
    finally:
        producer.stop()
        consumer.stop()


def test_publishes_that_reached_no_subscriber_are_counted(
    make_bus: Callable[..., MqttBus],
) -> None:
    # The broker acknowledges a message no subscription matched and drops it (MQTT 5 says so
    # in the PUBACK); an edge must know, to keep its sightings until a server subscribed.
    consumer = make_bus()
    consumer.subscribe(SIGHTINGS.format(camera="door"), Inbox())
    consumer.start()
    producer = make_bus()
    producer.start()
    door, vault = SIGHTINGS.format(camera="door"), SIGHTINGS.format(camera="vault")
    for n in range(3):
        producer.publish(door, Note.model_validate({"n": n}))
        producer.publish(vault, Note.model_validate({"n": n}))
    producer.publish(STATUS.format(camera="vault"), Note.model_validate({"n": 9}), retain=True)
    assert producer.flush(5)
    assert producer.take_unrouted() == {vault: 3}, "the retained one is kept by the broker"
    assert producer.take_unrouted() == {}, "counted once"
    producer.publish(door, Note.model_validate({"n": 4}))
    assert producer.flush(5)
    assert producer.take_unrouted() == {}
