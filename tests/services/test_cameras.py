"""CameraManager with real workers: a labelled clip made from real photos is played into a
camera (file source, not paced), and the sightings come out on a real in-process bus with
snapshots, stable ids and embeddings for strangers; a bad source is an offline camera, not a
crash; cameras are added, changed, disabled and removed while others keep running."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from oneeye.bus.base import ALL_SIGHTINGS, ALL_STATUS, Message
from oneeye.bus.memory import MemoryBus
from oneeye.config import Settings, VideoSettings
from oneeye.gallery import GalleryIndex
from oneeye.services.cameras import (
    CameraConfig,
    CameraError,
    CameraExistsError,
    CameraManager,
    CameraNotFoundError,
    PersonNames,
)
from oneeye.store.db import Database
from oneeye.store.models import Person, Sighting, new_id
from oneeye.store.photos import LocalPhotoStore
from oneeye.video.pipeline_io import EventKind, PipelineSettings, SightingEvent
from oneeye.video.source import Frame
from oneeye.video.worker import CameraWorker
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader
from tests.services.helpers import (
    FPS,
    LabelledClip,
    enrol_customer,
    make_clip,
    played_to_the_end,
    wait_for,
)


@pytest.fixture(scope="module")
def clip(
    tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, load_photo: PhotoLoader
) -> LabelledClip:
    return make_clip(tmp_path_factory.mktemp("clip"), face_engine, load_photo)


class Rig:
    def __init__(self, tmp_path: Path, engine: FaceEngine) -> None:
        self.db = Database(f"sqlite:///{tmp_path / 'oneeye.db'}")
        self.db.migrate()
        self.photos = LocalPhotoStore(tmp_path / "photos")
        self.gallery = GalleryIndex()
        self.bus = MemoryBus()
        self.sightings: list[dict[str, object]] = []
        self.statuses: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self.bus.subscribe(ALL_SIGHTINGS, self._collect(self.sightings))
        self.bus.subscribe(ALL_STATUS, self._collect(self.statuses))
        self.bus.start()
        self.manager = CameraManager(self.db, engine, self.gallery, self.bus, self.photos)
        self.manager.start()

    def _collect(self, into: list[dict[str, object]]) -> Callable[[Message], None]:
        def handler(message: Message) -> None:
            with self._lock:
                into.append(message.payload)

        return handler

    def status_of(self, camera: str) -> dict[str, object] | None:
        with self._lock:
            mine = [s for s in self.statuses if s["camera"] == camera]
        return mine[-1] if mine else None

    def close(self) -> None:
        self.manager.stop()
        self.bus.stop()
        self.db.close()


@pytest.fixture
def rig(tmp_path: Path, face_engine: FaceEngine) -> Iterator[Rig]:
    made = Rig(tmp_path, face_engine)
    try:
        yield made
    finally:
        made.close()


def test_a_clip_gives_one_sighting_per_visit_on_the_bus(
    rig: Rig, clip: LabelledClip, face_engine: FaceEngine, load_photo: PhotoLoader
) -> None:
    customer = enrol_customer(rig.db, rig.gallery, face_engine, load_photo)
    started = time.time()
    rig.manager.add(
        CameraConfig(
            id="door", name="Front door", source=str(clip.path), pace=False, min_face_px=80
        )
    )
    wait_for(lambda: played_to_the_end(rig.manager, "door"), what="the clip to end")
    status = rig.manager.status("door")
    assert status.error == "the video ended"
    assert status.fps == 0.0
    assert status.frames == clip.truth.frames
    rig.bus.stop()  # delivers what is queued
    sightings = [s for s in rig.sightings if s["event"] == "sighting"]
    known = [s for s in sightings if s["person"] is not None]
    unknown = [s for s in sightings if s["person"] is None]
    assert len(known) == 1, sightings
    assert len(unknown) == 1, sightings
    arrival = known[0]
    assert arrival["person"] == customer.person_id
    assert arrival["watchlist"] == "customers"
    assert arrival["camera"] == "door"
    assert arrival["v"] == 1
    assert isinstance(arrival["id"], str)
    assert len(arrival["id"]) == 32
    assert arrival["embedding"] is None
    first_visible = int(clip.truth.visits[0]["first_frame"])
    assert isinstance(arrival["frame"], int)
    assert arrival["frame"] - first_visible <= FPS, "sighted within a second of entering"
    seen_at = datetime.fromisoformat(str(arrival["seen_at"])).timestamp()
    assert started - 1 <= seen_at <= time.time()
    key = arrival["snapshot_key"]
    assert isinstance(key, str)
    assert key.startswith("snapshots/")
    assert rig.photos.get(key)[:2] == b"\xff\xd8"  # a JPEG
    # One id per track visit: its updates and its departure carry the sighting's id.
    same_track = [s for s in rig.sightings if s["track"] == arrival["track"]]
    assert {s["id"] for s in same_track} == {arrival["id"]}
    assert same_track[-1]["event"] == "left"
    # The stranger keeps an embedding for searching the past.
    embedding = unknown[0]["embedding"]
    assert isinstance(embedding, list)
    assert len(embedding) == 128
    assert unknown[0]["id"] != arrival["id"]
    # Status went out on the bus, retained, ending "ended" (not "online 0.0 fps").
    last = rig.status_of("door")
    assert last is not None
    assert (last["state"], last["fps"], last["error"]) == ("ended", 0.0, "the video ended")


def test_a_bad_source_is_an_offline_camera_with_the_error(
    rig: Rig, clip: LabelledClip, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.mp4"
    rig.manager.add(CameraConfig(id="broken", name="Broken", source=str(missing), pace=False))
    wait_for(lambda: rig.manager.status("broken").state == "offline", what="offline")
    status = rig.manager.status("broken")
    assert status.error is not None
    assert "file not found" in status.error
    wait_for(lambda: rig.status_of("broken") is not None, what="a status message")
    published = rig.status_of("broken")
    assert published is not None
    assert "file not found" in str(published["error"])
    rig.manager.add(CameraConfig(id="odd", name="Odd", source="ftp://host/stream", pace=False))
    wait_for(lambda: rig.manager.status("odd").state == "offline", what="offline")
    assert "unsupported URL scheme" in str(rig.manager.status("odd").error)
    # Pointing the broken camera at a good file brings it up.
    rig.manager.update("broken", source=str(clip.path))
    wait_for(lambda: rig.manager.status("broken").frames > 0, what="frames")


def test_cameras_change_at_runtime_without_touching_the_others(
    rig: Rig, clip: LabelledClip
) -> None:
    rig.manager.add(CameraConfig(id="lobby", name="Lobby", source=str(clip.path), loop=True))
    rig.manager.add(CameraConfig(id="door", name="Door", source=str(clip.path), loop=True))
    lobby = rig.manager.worker("lobby")
    assert lobby is not None
    wait_for(lambda: rig.manager.status("door").state == "online", what="door online")
    wait_for(lambda: rig.manager.latest_jpeg("door") is not None, what="a frame")
    latest = rig.manager.latest_jpeg("door")
    assert latest is not None
    assert latest[1][:2] == b"\xff\xd8"

    rig.manager.disable("door")
    assert rig.manager.status("door").state == "disabled"
    assert rig.manager.worker("door") is None
    assert rig.manager.latest_jpeg("door") is None
    wait_for(lambda: (rig.status_of("door") or {}).get("state") == "disabled", what="disabled")
    rig.manager.enable("door")
    wait_for(lambda: rig.manager.status("door").state == "online", what="door back online")
    rig.manager.update("door", name="Front door", detect_every=2)
    assert rig.manager.config("door").name == "Front door"
    assert rig.manager.config("door").detect_every == 2
    rig.manager.remove("door")
    with pytest.raises(CameraNotFoundError):
        rig.manager.status("door")
    wait_for(lambda: bool((rig.status_of("door") or {}).get("removed")), what="removed")
    assert rig.manager.worker("lobby") is lobby, "the other camera's worker was not restarted"
    assert lobby.alive
    assert [c.id for c in rig.manager.configs()] == ["lobby"]


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        (CameraConfig(id="Front Door", name="x", source="0"), CameraError, "camera id"),
        (CameraConfig(id="door", name="x", source="  "), CameraError, "needs a source"),
    ],
)
def test_bad_cameras_are_refused(
    rig: Rig, config: CameraConfig, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        rig.manager.add(config)


def test_duplicates_and_unknown_cameras_are_refused(rig: Rig, tmp_path: Path) -> None:
    rig.manager.add(
        CameraConfig(id="door", name="x", source=str(tmp_path / "a.mp4"), enabled=False)
    )
    with pytest.raises(CameraExistsError, match="exists already"):
        rig.manager.add(CameraConfig(id="door", name="x", source="0"))
    with pytest.raises(CameraNotFoundError):
        rig.manager.update("nope", name="y")
    with pytest.raises(CameraNotFoundError):
        rig.manager.remove("nope")
    with pytest.raises(CameraError, match="cannot change id"):
        rig.manager.update("door", id="other")


def test_a_paced_file_drops_the_frames_a_busy_pipeline_is_late_for(
    rig: Rig, face_engine: FaceEngine, load_photo: PhotoLoader, tmp_path: Path
) -> None:
    # 80 frames declared at 400 frames/s: no pipeline keeps up, as with a busy machine.
    fast = make_clip(tmp_path / "fast", face_engine, load_photo, fps=400.0)
    rig.manager.add(
        CameraConfig(id="fast", name="Fast", source=str(fast.path), pace=True, min_face_px=80)
    )
    wait_for(lambda: played_to_the_end(rig.manager, "fast"), what="the clip to end")
    status = rig.manager.status("fast")
    assert status.dropped > 0
    assert status.frames + status.dropped == fast.truth.frames


def test_person_names_are_read_once_and_fall_back_to_the_id(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'names.db'}")
    db.migrate()
    with db.session() as session:
        person = Person(name="Ada Lovelace")
        session.add(person)
        session.flush()
        person_id = person.id
    names = PersonNames(db)
    assert names(person_id) == "Ada Lovelace"
    with db.session() as session:
        session.get(Person, person_id).name = "Renamed"  # type: ignore[union-attr]
    assert names(person_id) == "Ada Lovelace"  # cached for a minute
    assert names("f" * 32) == "ffffffff"


def test_a_looping_file_stays_online_at_its_end(rig: Rig, clip: LabelledClip) -> None:
    rig.manager.add(
        CameraConfig(id="loop", name="Loop", source=str(clip.path), pace=False, loop=True)
    )
    wait_for(
        lambda: rig.manager.status("loop").frames > clip.truth.frames + 5,
        what="the clip to play again",
    )
    assert rig.manager.status("loop").state != "ended"
    rig.manager.stop()
    rig.bus.stop()  # delivers what is queued
    states = {s["state"] for s in rig.statuses if s["camera"] == "loop"}
    assert "online" in states
    assert "ended" not in states


def test_a_track_that_becomes_a_person_ends_its_unknown_sighting(
    rig: Rig, face_engine: FaceEngine
) -> None:
    # The pipeline's events for one track: a stranger at first, then (confirmed) a person.
    worker = CameraWorker(
        CameraConfig(id="door", name="Door", source="unused.mp4"),
        face_engine,
        rig.gallery,
        rig.bus,
        rig.photos,
    )
    person, box = new_id(), (100, 220, 220, 100)
    image = np.zeros((320, 320, 3), np.uint8)
    named_at = time.time()

    def event(kind: EventKind, person_id: str | None, frame: int) -> SightingEvent:
        return SightingEvent(
            event=kind,
            camera="door",
            track=7,
            person=person_id,
            watchlist="customers" if person_id else None,
            distance=0.3 if person_id else None,
            frame=frame,
            t=frame / 10,
            box=box,
            quality=0.8,
        )

    worker._emit(event("sighting", None, 5), Frame(5, 0.5, image, named_at - 0.7), 5)
    worker._emit(event("sighting", person, 12), Frame(12, 1.2, image, named_at), 12)
    worker._emit(event("sighting_update", person, 15), Frame(15, 1.5, image, named_at + 0.3), 15)
    worker._emit(event("left", person, 30), None, 30)
    rig.bus.stop()  # delivers what is queued
    track = [(s["event"], s["id"], s["person"]) for s in rig.sightings if s["track"] == 7]
    unknown, named = track[0][1], track[2][1]
    assert unknown != named
    assert track == [
        ("sighting", unknown, None),
        ("left", unknown, None),  # before the named sighting opens
        ("sighting", named, person),
        ("sighting_update", named, person),
        ("left", named, person),
    ]
    left = next(s for s in rig.sightings if s["event"] == "left" and s["id"] == unknown)
    assert datetime.fromisoformat(str(left["seen_at"])) == datetime.fromtimestamp(named_at, UTC)
    assert left["frame"] == 12


def open_sighting(db: Database, camera: str, last_seen: datetime) -> str:
    """An open sighting row, as a worker that never said ``left`` leaves it."""
    sighting_id = new_id()
    with db.session() as session:
        session.add(
            Sighting(
                id=sighting_id,
                camera_id=camera,
                track=1,
                frame=0,
                t=0.0,
                top=10,
                right=60,
                bottom=60,
                left=10,
                first_seen=last_seen - timedelta(seconds=3),
                last_seen=last_seen,
            )
        )
    return sighting_id


def left_at(db: Database, sighting_id: str) -> datetime | None:
    with db.session() as session:
        row = session.get(Sighting, sighting_id)
        assert row is not None
        return row.left_at


def test_open_sightings_are_closed_when_a_camera_starts_or_stops(rig: Rig, tmp_path: Path) -> None:
    # Left open by a server that was killed: closed when the camera comes up, as last seen.
    seen = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    stale, elsewhere = open_sighting(rig.db, "door", seen), open_sighting(rig.db, "lobby", seen)
    missing = str(tmp_path / "missing.mp4")
    rig.manager.add(CameraConfig(id="door", name="Door", source=missing, enabled=False))
    assert left_at(rig.db, stale) == seen
    assert left_at(rig.db, elsewhere) is None, "another camera's sightings are its own"
    # Open while the worker runs: closed when it stops (its "left" may come too late).
    rig.manager.enable("door")
    assert rig.manager.worker("door") is not None
    running = open_sighting(rig.db, "door", datetime.now(UTC))
    before = datetime.now(UTC)
    rig.manager.disable("door")
    closed = left_at(rig.db, running)
    assert closed is not None
    assert closed >= before
    rig.manager.enable("door")
    on_stop = open_sighting(rig.db, "door", datetime.now(UTC))
    before = datetime.now(UTC)
    rig.manager.stop()
    closed = left_at(rig.db, on_stop)
    assert closed is not None
    assert closed >= before


def test_every_camera_works_as_the_video_settings_say(
    tmp_path: Path, face_engine: FaceEngine, clip: LabelledClip
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'oneeye.db'}")
    db.migrate()
    bus = MemoryBus()
    bus.start()
    manager = CameraManager(
        db,
        face_engine,
        GalleryIndex(),
        bus,
        LocalPhotoStore(tmp_path / "photos"),
        VideoSettings(scan_every=5, detect_threads=2, light="lift", light_encode=True),
    )
    manager.start()
    try:
        manager.add(CameraConfig(id="door", name="Door", source=str(clip.path), loop=True))
        running = manager.worker_config("door")
        assert running is not None
        settings = running.pipeline_settings()
        assert (settings.scan_every, settings.detect_threads) == (5, 2)
        assert (settings.light, settings.light_encode) == ("lift", True)
        assert settings.detect_every == 3  # the camera's own settings stay its own
        assert manager.config("door").scan_every is None  # the camera sets none of its own
        # A camera's own setting wins over the process's; the one it leaves unset does not.
        manager.update("door", scan_every=20)
        running = manager.worker_config("door")
        assert running is not None
        settings = running.pipeline_settings()
        assert (settings.scan_every, settings.detect_threads) == (20, 2)
        assert (manager.config("door").scan_every, manager.config("door").detect_threads) == (
            20,
            None,
        )
        with pytest.raises(CameraError, match="detector threads are 1 to 16"):
            manager.update("door", detect_threads=17)
        assert manager.config("door").detect_threads is None
    finally:
        manager.stop()
        bus.stop()
        db.close()


def test_the_server_s_detector_runs_every_camera_that_does_not_choose_its_own(
    tmp_path: Path, face_engine: FaceEngine, clip: LabelledClip
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'oneeye.db'}")
    db.migrate()
    bus = MemoryBus()
    bus.start()
    manager = CameraManager(
        db,
        face_engine,
        GalleryIndex(),
        bus,
        LocalPhotoStore(tmp_path / "photos"),
        VideoSettings(detector="auto", cnn_ms_per_s=50.0),
    )
    manager.start()
    try:
        manager.add(CameraConfig(id="door", name="Door", source=str(clip.path), loop=True))
        running = manager.worker_config("door")
        assert running is not None
        settings = running.pipeline_settings()
        assert (settings.detector, settings.cnn_ms_per_s) == ("auto", 50.0)
        assert manager.config("door").detector is None
        assert manager.video_defaults()[2] == "auto"
        manager.update("door", detector="hog")
        running = manager.worker_config("door")
        assert running is not None
        assert running.pipeline_settings().detector == "hog"
        with pytest.raises(CameraError, match="detector is one of hog, cnn, auto"):
            manager.update("door", detector="fast")
        assert manager.config("door").detector == "hog"
    finally:
        manager.stop()
        bus.stop()
        db.close()


def test_a_camera_without_video_settings_runs_the_pipeline_defaults() -> None:
    settings = CameraConfig(id="door", name="Door", source="0").pipeline_settings()
    assert settings.scan_every == PipelineSettings().scan_every
    assert settings.detect_threads == 1
    assert (settings.light, settings.light_encode) == ("off", False)
    assert settings.detector == "hog"


def test_video_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEEYE_VIDEO__SCAN_EVERY", "6")
    monkeypatch.setenv("ONEEYE_VIDEO__DETECT_THREADS", "2")
    monkeypatch.setenv("ONEEYE_VIDEO__LIGHT", "lift")
    assert Settings().video == VideoSettings(scan_every=6, detect_threads=2, light="lift")
    monkeypatch.setenv("ONEEYE_VIDEO__LIGHT", "gamma")
    with pytest.raises(ValidationError, match="light"):
        Settings()
    monkeypatch.setenv("ONEEYE_VIDEO__LIGHT", "off")
    monkeypatch.setenv("ONEEYE_VIDEO__DETECT_THREADS", "0")
    with pytest.raises(ValidationError, match="detect_threads"):
        Settings()


def test_watch_names_every_camera_servers_and_edges_and_which_are_looking(rig: Rig) -> None:
    rig.manager.add(CameraConfig(id="vault", name="Vault", source="/none.mp4", enabled=False))
    rig.manager.registry.register("edge-1", [("back", "Back door"), ("yard", "Yard")])
    reported = {"back": {"state": "online"}}
    watch = rig.manager.watch(reported.get)
    assert [(c.id, c.state, c.edge) for c in watch.cameras] == [
        ("back", "online", "edge-1"),
        ("vault", "disabled", None),
        ("yard", "offline", "edge-1"),  # it said nothing since this server started
    ]
    assert [c.name for c in watch.running] == ["Back door"]
    assert [c.name for c in watch.stopped] == ["Vault", "Yard"]
    assert watch.as_json()[0] == {
        "id": "back",
        "name": "Back door",
        "state": "online",
        "edge": "edge-1",
    }
    assert rig.manager.watch(lambda camera: None).running == []
