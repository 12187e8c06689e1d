"""A file camera that played to its end stays ended when the server starts again, and one
stopped part-way resumes where it stopped: its file is not replayed as new arrivals.
Restarting the camera (or changing it) plays it again from its start. Real workers, a real clip
with faces, the database kept across the "servers"."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from oneeye.bus.base import ALL_SIGHTINGS, ALL_STATUS, Message
from oneeye.bus.memory import MemoryBus
from oneeye.gallery import GalleryIndex
from oneeye.services.cameras import CameraConfig, CameraManager
from oneeye.store.db import Database
from oneeye.store.photos import LocalPhotoStore
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader
from tests.services.helpers import make_clip, played_to_the_end, wait_for


class Server:
    """The camera part of one server run: its own bus and manager over a shared database."""

    def __init__(self, db: Database, tmp_path: Path, engine: FaceEngine) -> None:
        self.bus = MemoryBus()
        self.sightings: list[dict[str, object]] = []
        self.statuses: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self.bus.subscribe(ALL_SIGHTINGS, self._keep(self.sightings))
        self.bus.subscribe(ALL_STATUS, self._keep(self.statuses))
        self.bus.start()
        photos = LocalPhotoStore(tmp_path / "photos")
        self.manager = CameraManager(db, engine, GalleryIndex(), self.bus, photos)
        self.manager.start()

    def _keep(self, into: list[dict[str, object]]) -> Callable[[Message], None]:
        def handler(message: Message) -> None:
            with self._lock:
                into.append(message.payload)

        return handler

    def arrivals(self) -> int:
        self.bus.drain(10.0)
        with self._lock:
            return sum(1 for s in self.sightings if s["event"] == "sighting")

    def stop(self) -> None:
        self.manager.stop()
        self.bus.stop()


def test_a_file_camera_that_ended_is_not_replayed_after_a_restart(
    tmp_path: Path,
    face_engine: FaceEngine,
    load_photo: PhotoLoader,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    clip = make_clip(tmp_path_factory.mktemp("clip"), face_engine, load_photo)
    db = Database(f"sqlite:///{tmp_path / 'oneeye.db'}")
    db.migrate()
    first = Server(db, tmp_path, face_engine)
    try:
        first.manager.add(
            CameraConfig(id="door", name="Door", source=str(clip.path), pace=False, min_face_px=80)
        )
        wait_for(lambda: played_to_the_end(first.manager, "door"), what="the clip to end")
        arrivals = first.arrivals()
        assert arrivals >= 2, first.sightings  # the two people of the clip
    finally:
        first.stop()

    second = Server(db, tmp_path, face_engine)
    try:
        # No worker at all: nothing can be replayed; the camera says it ended.
        assert second.manager.worker("door") is None
        assert second.manager.status("door").state == "ended"
        assert second.manager.status("door").error == "the video ended"
        second.bus.drain(10.0)
        assert [s["state"] for s in second.statuses if s["camera"] == "door"] == ["ended"]
        assert second.arrivals() == 0
        # An operator's restart plays the file again, as asked.
        second.manager.restart("door")
        assert second.manager.worker("door") is not None
        wait_for(lambda: played_to_the_end(second.manager, "door"), what="the replay to end")
        assert second.arrivals() == arrivals
    finally:
        second.stop()

    third = Server(db, tmp_path, face_engine)
    try:
        assert third.manager.status("door").state == "ended"
        # Changing the camera's source (or enabling it again) starts it afresh too.
        third.manager.update("door", min_face_px=60)
        assert third.manager.worker("door") is not None
    finally:
        third.stop()
        db.close()


def test_a_file_camera_stopped_part_way_resumes_where_it_stopped(
    tmp_path: Path,
    face_engine: FaceEngine,
    load_photo: PhotoLoader,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    clip = make_clip(tmp_path_factory.mktemp("clip"), face_engine, load_photo)
    total = clip.truth.frames
    db = Database(f"sqlite:///{tmp_path / 'oneeye.db'}")
    db.migrate()
    first = Server(db, tmp_path, face_engine)
    try:
        # Paced: it plays as long as the clip lasts, so it can be stopped part-way.
        first.manager.add(CameraConfig(id="hall", name="Hall", source=str(clip.path), pace=True))
        worker = first.manager.worker("hall")
        assert worker is not None
        wait_for(lambda: worker.position >= total // 4, what="a quarter of the clip")
    finally:
        first.stop()
    stopped_at = worker.position
    assert total // 4 <= stopped_at < total

    second = Server(db, tmp_path, face_engine)
    try:
        resumed = second.manager.worker("hall")
        assert resumed is not None
        wait_for(lambda: played_to_the_end(second.manager, "hall"), what="the rest of the clip")
        status = second.manager.status("hall")
        # Only the frames after the stop were played: processed or dropped, none before.
        assert status.frames + status.dropped == total - stopped_at
        second.bus.drain(10.0)
        assert all(int(str(s["frame"])) >= stopped_at for s in second.sightings)
    finally:
        second.stop()
        db.close()
