"""Edge + central over the real Mosquitto and PostgreSQL.

A run in separate processes: one ``oneeye serve`` (PostgreSQL, the MQTT bus) and two ``oneeye
edge`` processes, each playing a labelled clip made from real photos into its camera. An
enrolment on the server reaches both edges, both cameras' sightings reach the server's database
and dashboard events, a SIGKILLed edge turns offline (its retained status by the broker's last
will, its camera by the monitor), a server that is stopped and started again loses nothing of
what the edges published meanwhile, and malformed or oversized messages on the sightings topic
are dropped while the server goes on.

Two servers on one database and broker: each sighting stored and announced once; one server
SIGKILLed under a stream of sightings and started again: none lost, none stored twice, no
action left unfinished.

Also the edge's disk queue on a broker of its own that is stopped and started: nothing lost.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from oneeye.bus.base import (
    ALL_EDGE_CAMERA_STATUS,
    ALL_SIGHTINGS,
    EDGE_CAMERA_STATUS,
    EDGE_SIGHTINGS,
    SIGHTINGS,
    Message,
)
from oneeye.bus.broker import parse_broker_url
from oneeye.bus.mqtt import MqttBus
from oneeye.cli import main
from oneeye.config import MqttSettings
from oneeye.edge_app import EdgeRuntime
from oneeye.gallery import GalleryIndex
from oneeye.services.cameras import CameraConfig
from oneeye.services.edge.monitor import ALL_EDGE_STATUS, EdgeMonitor
from oneeye.services.edge.outbox import (
    EdgeOutbox,
    OutboxSender,
    SnapshotRefusedError,
    SpoolPhotoStore,
)
from oneeye.services.edge.registry import CameraRegistry
from oneeye.services.edge.runtime import EdgeError, EdgeSettings, parse_camera
from oneeye.store.db import Database
from oneeye.store.models import new_id
from oneeye.vision.engine import FaceEngine
from tests.bus.helpers import Inbox, Note, PrivateBroker, sighting
from tests.conftest import free_port
from tests.edge_site import (
    START_TIMEOUT,
    Site,
    edge_sighting,
    json_object,
    start_second_server,
    wait_for,
)
from tests.services.helpers import LabelledClip

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres, pytest.mark.slow]


def raw_publish(broker_url: str, topic: str, payloads: list[bytes]) -> None:
    """Publish bytes as they are (not through the bus, which would refuse them)."""
    address = parse_broker_url(broker_url)
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_two_edges_and_a_server_in_separate_processes(
    site: Site, clip: LabelledClip, face_photos: Path
) -> None:
    site.start_server()
    first = site.start_edge("door", clip.path)
    second = site.start_edge("lobby", clip.path)
    for edge in (first, second):
        wait_for(
            lambda: site.gallery_version(edge) is not None,  # noqa: B023 (waited for at once)
            START_TIMEOUT,
            f"edge {edge} online with the gallery",
        )

    # An enrolment on the server reaches both edges.
    with site.admin() as admin:
        person = admin.post("/api/v1/people", json={"name": "Barack Obama", "account_id": "ACC-1"})
        assert person.status_code == 201, person.text
        person_id = person.json()["id"]
        photo = admin.post(
            f"/api/v1/people/{person_id}/photos",
            files={"file": ("obama2.jpg", (face_photos / "obama2.jpg").read_bytes(), "image/jpeg")},
        )
        assert photo.status_code == 201, photo.text
        version = admin.get("/api/v1/gallery").json()["version"]
    for edge in (first, second):
        wait_for(
            lambda: (site.gallery_version(edge) or 0) >= version,  # noqa: B023
            10,
            f"edge {edge} to apply gallery version {version}",
        )

    # Sightings of the enrolled person from both cameras reach the database and the dashboard.
    def seen_on_both() -> bool:
        rows = site.stored(
            "SELECT DISTINCT camera_id FROM sightings WHERE person_id = :p", p=person_id
        )
        return {r[0] for r in rows} == {"door-cam", "lobby-cam"}

    wait_for(seen_on_both, 60, "sightings of the enrolled person from both edges")

    def on_the_dashboard() -> bool:
        events = site.stored("SELECT payload FROM dashboard_events WHERE type = 'sighting'")
        payloads = [json_object(e[0]) for e in events]
        cameras = {p["camera_id"] for p in payloads if p["person_id"] == person_id}
        return cameras == {"door-cam", "lobby-cam"}

    wait_for(on_the_dashboard, 10, "sighting events of both cameras on the dashboard")
    snapshot = site.stored(
        "SELECT snapshot_key FROM sightings WHERE person_id = :p AND snapshot_key IS NOT NULL",
        p=person_id,
    )
    assert snapshot, "sightings name their snapshots"
    with site.admin() as admin:
        wait_for(
            lambda: admin.get(f"/api/v1/photos/{snapshot[0][0]}").status_code == 200,
            10,
            "the edge's snapshot on the server",
        )

    # What the edges keep on disk is owner-only, and their key is in no log line (finding 9).
    for edge in (first, second):
        folder = site.tmp / edge
        assert mode_of(folder) == 0o700
        for name in ("outbox.sqlite3", "outbox.sqlite3-wal", "gallery.json"):
            assert mode_of(folder / name) == 0o600, name
    for log_file in site.logs.iterdir():
        text = log_file.read_text(errors="replace")
        assert not [key for key in site.edge_keys if key in text], log_file.name

    # A SIGKILLed edge turns offline: its own status by the broker's will, its camera by the
    # monitor, and the dashboard hears it.
    site.edges[second].process.kill()
    wait_for(
        lambda: (site.edge_status(second) or {}).get("state") == "offline",
        15,
        "the killed edge's last will",
    )

    def camera_offline_on_dashboard() -> bool:
        rows = site.stored("SELECT payload FROM dashboard_events WHERE type = 'camera.status'")
        return any(
            json_object(r[0])["camera_id"] == "lobby-cam"
            and json_object(r[0])["state"] == "offline"
            for r in rows
        )

    wait_for(camera_offline_on_dashboard, 15, "camera.status offline of the killed edge's camera")

    # A server stopped and started again loses nothing the edges published meanwhile.
    assert site.server is not None
    assert site.server.stop() == 0, site.server.log()
    down_at = len(site.sightings.bodies())
    wait_for(
        lambda: any(p["event"] == "sighting" for p in site.sightings.bodies()[down_at:]),
        30,
        "a sighting published while the server is down",
    )
    site.start_server()

    # Malformed and oversized messages on the sightings topic are dropped; the server goes on.
    topic = f"{site.prefix}/{EDGE_SIGHTINGS.format(edge=first, camera='door-cam')}"
    raw_publish(
        site.broker_url,
        topic,
        [
            b"not json",
            b"\xff\xfe",
            b"[1, 2]",
            b'{"id": "x"}',
            json.dumps({"v": 1, "id": "nothex", "event": "sighting"}).encode(),
            b'{"v": 1, "pad": "' + b"x" * 1_100_000 + b'"}',
        ],
    )
    probe = new_id()
    site.bus.publish(
        EDGE_SIGHTINGS.format(edge=first, camera="door-cam"),
        Note.model_validate(
            {
                "id": probe,
                "event": "sighting",
                "camera": "door-cam",
                "track": 1,
                "person": None,
                "watchlist": None,
                "distance": None,
                "quality": 0.5,
                "frame": 1,
                "t": 0.1,
                "box": [1, 2, 3, 4],
                "seen_at": datetime.now(UTC).isoformat(),
                "snapshot_key": None,
                "embedding": None,
            }
        ),
    )

    def published() -> set[str]:
        sightings = [p for p in site.sightings.bodies() if p.get("event") == "sighting"]
        return {p["id"] for p in sightings if re.fullmatch(r"[0-9a-f]{32}", str(p["id"]))}

    def missing() -> set[str]:
        stored = {r[0] for r in site.stored("SELECT id FROM sightings")}
        return (published() | {probe}) - stored

    def which_are_missing() -> str:
        # Each missing id with what the edges said about it and whether a server log names it
        # (the first server's log covers the clean stop).
        events: dict[str, list[str]] = {}
        for body in site.sightings.bodies():
            events.setdefault(str(body.get("id")), []).append(str(body.get("event")))
        logs = "".join(f.read_text(errors="replace") for f in site.logs.glob("server-*.err"))
        lost = sorted(missing())
        return f"{len(lost)} not stored: " + "; ".join(
            f"{ident} (published: {', '.join(events.get(ident, ['probe']))}; "
            f"{'named' if ident in logs else 'not named'} in a server log)"
            for ident in lost
        )

    wait_for(
        lambda: not missing(),
        60,
        "every published sighting stored after the restart",
        which_are_missing,
    )
    assert site.server.alive()
    log = site.server.log()
    # Six bad messages from one source: one line, naming no content.
    source = EDGE_SIGHTINGS.format(edge=first, camera="door-cam")
    assert log.count(f"dropped a message on {source}") == 1
    assert "nothex" not in log
    ids = [r[0] for r in site.stored("SELECT id FROM sightings")]
    assert len(ids) == len(set(ids))


def mode_of(path: Path) -> int:
    """The permission bits of ``path``."""
    return path.stat().st_mode & 0o777


# The disk queue through a broker outage ---------------------------------------------------


class EdgeQueue:
    """An edge's disk queue of sightings and what a server heard of them: the two broker
    tests below share it."""

    def __init__(self, path: Path) -> None:
        self.outbox = EdgeOutbox(path)
        self.sent: list[str] = []
        self.received: list[str] = []
        self._lock = threading.Lock()

    def keep(self, message: Message) -> None:
        """A server's handler: note the sighting's id."""
        with self._lock:
            self.received.append(message.payload["id"])

    def queue(self, count: int) -> None:
        """Queue ``count`` new sightings at the edge."""
        for _ in range(count):
            ident = new_id()
            self.sent.append(ident)
            self.outbox.add_sighting(SIGHTINGS.format(camera="cam"), sighting(id=ident))

    def all_arrived(self) -> None:
        """Every queued sighting reached the server, and the queue is empty."""
        total = len(self.sent)
        wait_for(lambda: len(set(self.received)) == total, 30, "the sightings queued in the outage")
        wait_for(lambda: self.outbox.counts()[0] == 0, 10, "the queue emptied")
        assert sorted(set(self.received)) == sorted(self.sent)


def test_the_edge_queue_keeps_sightings_through_a_broker_outage(tmp_path: Path) -> None:
    broker = PrivateBroker(tmp_path)
    broker.start()
    edge = EdgeQueue(tmp_path / "edge" / "outbox.sqlite3")
    consumer = MqttBus(broker.url(), client_id="server-1", session_expiry=300)
    consumer.subscribe(ALL_SIGHTINGS, edge.keep)
    consumer.start()
    edge_bus = MqttBus(broker.url(), client_id="edge-1", session_expiry=300, reconnect_max=1)
    edge_bus.start()
    uploads: dict[str, bytes] = {}
    sender = OutboxSender(edge.outbox, edge_bus, uploads.__setitem__, poll=0.05)
    sender.start()
    try:
        edge.queue(50)
        wait_for(lambda: len(edge.received) == 50, 10, "the first 50")
        broker.stop()
        edge.queue(50)
        time.sleep(1.0)
        assert edge.outbox.counts()[0] == 50, "kept on disk while the broker is away"
        broker.start()
        edge.all_arrived()
        assert sender.sent == 100
    finally:
        sender.stop(drain=0)
        edge_bus.stop()
        consumer.stop()
        edge.outbox.close()
        broker.stop()


def test_the_edge_queue_keeps_sightings_until_a_server_subscribed_after_a_broker_restart(
    tmp_path: Path,
) -> None:
    # Mosquitto 2.0 does not restore shared subscriptions (the servers') from its persistence
    # file: after a restart it acknowledges an edge's backlog with "no matching subscribers"
    # and drops it, unless the edge keeps it until a server has subscribed again.
    broker = PrivateBroker(tmp_path)
    broker.start()
    edge = EdgeQueue(tmp_path / "edge" / "outbox.sqlite3")

    def server() -> MqttBus:
        bus = MqttBus(broker.url(), client_id="server-1", share_group="servers")
        bus.subscribe(ALL_SIGHTINGS, edge.keep)
        bus.start()
        return bus

    consumer = server()
    edge_bus = MqttBus(broker.url(), client_id="edge-1", session_expiry=300, reconnect_max=1)
    edge_bus.start()
    sender = OutboxSender(edge.outbox, edge_bus, lambda key, data: None, poll=0.05, retry_first=0.2)
    sender.start()
    try:
        edge.queue(50)
        wait_for(lambda: len(edge.received) == 50, 10, "the first 50")
        consumer.stop()  # back only after the edge sent its backlog to the restarted broker
        broker.stop()
        edge.queue(50)
        broker.start()
        assert edge_bus.wait_connected(10)
        time.sleep(1.5)
        assert edge.outbox.counts()[0] == 50, "kept on disk while no server is subscribed"
        assert sender.unrouted > 0
        consumer = server()
        edge.all_arrived()
        assert sender.sent == 100
    finally:
        sender.stop(drain=0)
        edge_bus.stop()
        consumer.stop()
        edge.outbox.close()
        broker.stop()


# Two central servers on one database and one broker ----------------------------------------


def test_two_servers_store_and_announce_each_sighting_once(site: Site) -> None:
    site.start_server()
    start_second_server(site, "server-b", free_port())
    cameras = [(f"cam-{n}", f"Camera {n}") for n in range(4)]
    CameraRegistry(site.db).register("e1", cameras)
    sent = [new_id() for _ in range(200)]
    for number, ident in enumerate(sent):
        camera = f"cam-{number % 4}"
        site.bus.publish(
            EDGE_SIGHTINGS.format(edge="e1", camera=camera), edge_sighting(ident, number, camera)
        )

    def all_announced() -> bool:
        rows = site.stored("SELECT payload FROM dashboard_events WHERE type = 'sighting'")
        return len(rows) >= len(sent)

    wait_for(all_announced, 60, "a dashboard event for every sighting")
    time.sleep(1.0)  # a repeat would come now
    stored = [r[0] for r in site.stored("SELECT id FROM sightings")]
    assert sorted(stored) == sorted(sent)
    events = [
        json_object(r[0])["sighting_id"]
        for r in site.stored("SELECT payload FROM dashboard_events WHERE type = 'sighting'")
    ]
    assert sorted(events) == sorted(sent), "each sighting announced once, by one server"


def test_a_server_killed_under_load_loses_and_repeats_no_sighting(site: Site) -> None:
    # Two servers share the sightings; one is SIGKILLed while they stream in, then started
    # again (its broker session holds its share meanwhile). Every sighting is stored once and
    # acted on (a dashboard event); none is left with its action unfinished.
    site.start_server()
    port = free_port()
    victim = start_second_server(site, "server-b", port)
    cameras = [(f"cam-{n}", f"Camera {n}") for n in range(4)]
    CameraRegistry(site.db).register("e1", cameras)
    sent: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        number = 0
        while not stop.is_set() and number < 2000:
            ident = new_id()
            camera = f"cam-{number % 4}"
            site.bus.publish(
                EDGE_SIGHTINGS.format(edge="e1", camera=camera),
                edge_sighting(ident, number, camera),
            )
            sent.append(ident)
            number += 1
            time.sleep(0.01)

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        wait_for(
            lambda: len(site.stored("SELECT id FROM sightings")) >= 100,
            60,
            "the servers storing sightings",
        )
        victim.process.kill()
        victim.process.wait(10)
        wait_for(lambda: len(sent) >= 600, 60, "more sightings after the kill")
    finally:
        stop.set()
        streamer.join(10)
    assert site.bus.flush(10)
    start_second_server(site, "server-b", port)

    def stored() -> set[str]:
        return {r[0] for r in site.stored("SELECT id FROM sightings")}

    def lost() -> str:
        missing = sorted(set(sent) - stored())
        return f"{len(missing)} of {len(sent)} not stored, e.g. {missing[:10]}"

    wait_for(lambda: set(sent) <= stored(), 90, "every sighting stored", lost)
    ids = [r[0] for r in site.stored("SELECT id FROM sightings")]
    assert len(ids) == len(set(ids)) == len(sent)

    # An action the killed server left unfinished: as if its lease (60 s) had run out, for
    # a survivor's sweeper (every 5 s) to take it over.
    left = site.take_over_unfinished_actions()
    print(f"actions the kill left unfinished: {left}")
    wait_for(
        lambda: set(sent) <= set(site.announced()),
        30,
        "a dashboard event for every sighting",
        lambda: f"{len(set(sent) - set(site.announced()))} never announced",
    )
    announced = site.announced()
    repeats = len(announced) - len(set(announced))
    print(f"sightings {len(sent)}, stored once each, announced twice: {repeats}")
    assert repeats <= left, "only an action cut short by the kill runs twice"


# The command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--camera", "Front Door=0"], "a camera id is 1-64"),
        (["--camera", "door"], "a camera is ID=SOURCE"),
        (["--camera", "door=0", "--camera", "door=1"], "camera ids must differ"),
        (["--camera", "door=0", "--bus", "memory"], "through a broker"),
        (["--camera", "door=0", "--server", "oneeye.local"], "http:// or https://"),
        (["--camera", "door=0", "--edge-id", "Edge 1"], "an edge id is 1-64"),
    ],
)
def test_edge_refuses_bad_arguments_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = {"--server": "http://127.0.0.1:9", "--bus": "mqtt://127.0.0.1:9", "--api-key": "k"}
    for name, value in base.items():
        if name not in args:
            args = [*args, name, value]
    assert main(["edge", "--data-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("oneeye: error: ")
    assert message in err


# The monitor and the snapshot uploads, on the shared broker under a prefix of their own ---------


def test_the_monitor_turns_a_dead_edge_s_cameras_offline(broker_url: str, tmp_path: Path) -> None:
    prefix = f"oneeye-test/{uuid.uuid4().hex[:8]}"
    db = Database(f"sqlite:///{tmp_path / 'oneeye.db'}")
    db.migrate()
    registry = CameraRegistry(db)
    registry.register("e1", [("door", "Door"), ("lobby", "Lobby")])
    registry.register("e2", [("x", "X")])
    server_bus = MqttBus(broker_url, topic_prefix=prefix)
    statuses = Inbox()
    server_bus.subscribe(ALL_EDGE_CAMERA_STATUS, statuses)
    EdgeMonitor(server_bus, None, registry).start()
    server_bus.start()
    edge_bus = MqttBus(broker_url, topic_prefix=prefix)
    edge_bus.start()
    status = "oneeye/v1/edges/e1/status"
    try:
        edge_bus.publish(
            status,
            Note.model_validate({"edge": "e1", "cameras": ["door", "lobby"], "state": "online"}),
        )
        edge_bus.publish(
            status, Note.model_validate({"edge": "e2", "cameras": ["x"], "state": "offline"})
        )  # not e1
        edge_bus.publish(
            status, Note.model_validate({"edge": "e1", "cameras": "door", "state": "offline"})
        )  # bad
        # No sleep to prove those gave nothing: the monitor handles one edge's messages in
        # order, so anything they gave would arrive before what the next one gives.
        edge_bus.publish(
            status,
            Note.model_validate(
                {
                    "edge": "e1",
                    "cameras": ["door", "lobby", "x"],  # x is e2's: e1's will cannot touch it
                    "state": "offline",
                    "error": "lost",
                }
            ),
            retain=True,
        )
        wait_for(lambda: len(statuses.bodies()) >= 2, 30, "two camera statuses")
        assert len(statuses.messages) == 2, statuses.messages
        assert {(m.topic, m.payload["state"]) for m in statuses.messages} == {
            ("oneeye/v1/edges/e1/cameras/door/status", "offline"),
            ("oneeye/v1/edges/e1/cameras/lobby/status", "offline"),
        }
        assert all(p["error"] == "edge e1: lost" for p in statuses.bodies())
    finally:
        for topic in (
            status,
            EDGE_CAMERA_STATUS.format(edge="e1", camera="door"),
            EDGE_CAMERA_STATUS.format(edge="e1", camera="lobby"),
        ):
            edge_bus.clear_retained(topic)
        edge_bus.stop()
        server_bus.stop()
        db.close()


def test_snapshots_wait_for_the_server_and_refused_ones_are_dropped(
    broker_url: str, tmp_path: Path
) -> None:
    outbox = EdgeOutbox(tmp_path / "outbox.sqlite3")
    photos = SpoolPhotoStore(outbox)
    stored: dict[str, bytes] = {}
    server_up = threading.Event()

    def upload(key: str, data: bytes) -> None:
        if not server_up.is_set():
            raise ConnectionError("server unreachable")
        if data == b"refused":
            raise SnapshotRefusedError("another snapshot is stored under this key")
        stored[key] = data

    bus = MqttBus(broker_url, topic_prefix=f"oneeye-test/{uuid.uuid4().hex[:8]}")
    bus.start()
    sender = OutboxSender(outbox, bus, upload, poll=0.05, retry_first=0.1, retry_max=0.2)
    sender.start()
    try:
        good = photos.add("snapshots", b"\xff\xd8\xff jpeg")
        bad = photos.add("snapshots", b"refused")
        time.sleep(0.5)
        assert photos.exists(good), "kept while the server is away"
        assert photos.exists(bad)
        server_up.set()
        wait_for(lambda: outbox.counts()[1] == 0, 5, "the snapshot queue emptied")
        assert stored == {good: b"\xff\xd8\xff jpeg"}
        assert (sender.uploaded, sender.refused) == (1, 1)
    finally:
        sender.stop(drain=0)
        bus.stop()
        outbox.close()


def test_an_edge_starts_with_its_cached_gallery_while_the_server_is_unreachable(
    broker_url: str, tmp_path: Path, face_engine: FaceEngine
) -> None:
    prefix = f"oneeye-test/{uuid.uuid4().hex[:8]}"
    data = tmp_path / "edge"
    data.mkdir()
    embedding = [1.0] + [0.0] * 127
    cache = {
        "version": 7,
        "margin": 0.05,
        "default_threshold": 0.32,
        "thresholds": {"customers": 0.3},
        "entries": [
            {
                "id": "t1@customers",
                "person": "p1",
                "watchlist": "customers",
                "quality": 0.9,
                "embedding": embedding,
            }
        ],
    }
    (data / "gallery.json").write_text(json.dumps(cache))
    clip = tmp_path / "blank.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"mp4v"), 5.0, (160, 120))
    for _ in range(5):
        writer.write(np.zeros((120, 160, 3), dtype=np.uint8))
    writer.release()
    settings = EdgeSettings(
        edge_id=f"cache-{uuid.uuid4().hex[:6]}",
        server_url=f"http://127.0.0.1:{free_port()}",  # nobody listens
        api_key="oek_unused",
        bus_url=broker_url,
        cameras=(CameraConfig(id="cam", name="cam", source=str(clip), loop=True),),
        data_dir=data,
        mqtt=MqttSettings(topic_prefix=prefix, session_expiry=60),
    )
    listener = MqttBus(broker_url, topic_prefix=prefix)
    statuses = Inbox()
    listener.subscribe(ALL_EDGE_STATUS, statuses)
    listener.start()
    runtime = EdgeRuntime(settings, face_engine, GalleryIndex())
    runtime.start()
    try:
        assert runtime.sync.version == 7
        assert "t1@customers" in runtime.gallery
        assert runtime.gallery.threshold("customers") == pytest.approx(0.3)
        wait_for(
            lambda: any(p.get("gallery_version") == 7 for p in statuses.bodies()),
            10,
            "the edge's status with the cached version",
        )
    finally:
        runtime.stop()
    wait_for(lambda: statuses.bodies()[-1].get("state") == "offline", 5, "offline after stop")
    assert statuses.bodies()[-1]["error"] == "stopped"
    cleaner = MqttBus(broker_url, topic_prefix=prefix)
    cleaner.start()
    cleaner.clear_retained(f"oneeye/v1/edges/{settings.edge_id}/status")
    cleaner.clear_retained(EDGE_CAMERA_STATUS.format(edge=settings.edge_id, camera="cam"))
    cleaner.stop()
    listener.stop()


def test_a_sighting_too_large_for_the_bus_is_dropped_not_blocking_the_queue(
    broker_url: str, tmp_path: Path
) -> None:
    prefix = f"oneeye-test/{uuid.uuid4().hex[:8]}"
    received = Inbox()
    consumer = MqttBus(broker_url, topic_prefix=prefix)
    consumer.subscribe(ALL_SIGHTINGS, received)
    consumer.start()
    bus = MqttBus(broker_url, topic_prefix=prefix, max_payload=1_000)
    bus.start()
    outbox = EdgeOutbox(tmp_path / "outbox.sqlite3")
    topic = SIGHTINGS.format(camera="cam")
    unit = [1.0 / 128**0.5] * 128  # a unit embedding: ~3 KB of JSON, over this bus's 1 KB
    outbox.add_sighting(topic, sighting(id="b" * 32, embedding=unit))
    outbox.add_sighting(topic, sighting(id="5" * 32))
    sender = OutboxSender(outbox, bus, lambda key, data: None, poll=0.05)
    sender.start()
    try:
        wait_for(lambda: [p["id"] for p in received.bodies()] == ["5" * 32], 5, "the small one")
        assert outbox.counts() == (0, 0)
        assert sender.oversized == 1
    finally:
        sender.stop(drain=0)
        bus.stop()
        consumer.stop()
        outbox.close()


def test_an_edge_camera_spec_carries_how_hard_the_camera_works() -> None:
    config = parse_camera(
        "door=rtsp://10.0.0.5/live", detect_every=2, scan_every=6, detect_threads=2, light="lift"
    )
    assert (config.id, config.source) == ("door", "rtsp://10.0.0.5/live")
    settings = config.pipeline_settings()
    assert (settings.detect_every, settings.scan_every, settings.detect_threads) == (2, 6, 2)
    assert settings.light == "lift"
    with pytest.raises(EdgeError, match="ID=SOURCE"):
        parse_camera("door")
