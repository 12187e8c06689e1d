"""The per-camera loop's publishing (``video.worker``): an unknown face's sighting carries the
embedding the pipeline judged it by, not one encoded again; a named face carries none. A real
in-process bus and a real photo folder."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from oneeye.bus.base import ALL_SIGHTINGS, Message
from oneeye.bus.memory import MemoryBus
from oneeye.bus.messages import SightingPayload
from oneeye.gallery import GalleryIndex
from oneeye.store.photos import LocalPhotoStore
from oneeye.video.pipeline_io import SightingEvent
from oneeye.video.source import Frame, FrameReader
from oneeye.video.worker import CameraConfig, CameraWorker
from oneeye.vision.engine import FaceEngine


def test_an_unknown_sighting_carries_the_pipelines_embedding(
    face_engine: FaceEngine, tmp_path: Path
) -> None:
    bus = MemoryBus()
    heard: list[Message] = []
    bus.subscribe(ALL_SIGHTINGS, heard.append)
    bus.start()
    photos = LocalPhotoStore(tmp_path / "photos")
    worker = CameraWorker(
        CameraConfig(id="door", name="Door", source="unused.mp4"),
        face_engine,
        GalleryIndex(),
        bus,
        photos,
    )
    # A unit vector no encoder would give for a black frame: only the event could carry it.
    judged = np.zeros(128, np.float32)
    judged[[3, 70]] = np.float32(np.sqrt(0.5))
    image = np.zeros((240, 240, 3), np.uint8)
    box = (60, 160, 160, 60)

    def event(person: str | None, track: int) -> SightingEvent:
        return SightingEvent(
            event="sighting",
            camera="door",
            track=track,
            person=person,
            watchlist="customers" if person else None,
            distance=0.3 if person else None,
            frame=4,
            t=0.4,
            box=box,
            quality=0.9,
            snapshot=image[60:160, 60:160].copy(),
            embedding=judged,
        )

    now = time.time()
    worker._emit(event(None, 1), Frame(4, 0.4, image, now), 4)
    worker._emit(event("a" * 32, 2), Frame(4, 0.4, image, now), 4)
    bus.stop()
    unknown, named = (SightingPayload.model_validate(m.payload) for m in heard)
    assert unknown.embedding is not None
    assert np.allclose(unknown.embedding, judged)
    assert named.embedding is None  # a person's sighting needs none
    assert unknown.snapshot_key is not None
    assert unknown.snapshot_key.startswith("snapshots/door/")
    assert photos.get(unknown.snapshot_key)[:2] == b"\xff\xd8"  # the snapshot, as a JPEG


def blank_clip(path: Path, frames: int) -> Path:
    """A black 160x120 clip of ``frames`` frames at 25 frames/s."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, (160, 120))
    for _ in range(frames):
        writer.write(np.zeros((120, 160, 3), np.uint8))
    writer.release()
    return path


def test_a_looped_file_reuses_its_detectors(face_engine: FaceEngine, tmp_path: Path) -> None:
    """Each play of a looped file gets a new pipeline, but not new detectors: making dlib's
    HOG detector costs 0.3-0.8 s of CPU, which a short looped clip paid on every loop (about
    14% of a core for an idle edge camera playing a 2-second clip)."""
    clip = blank_clip(tmp_path / "blank.mp4", 5)
    bus = MemoryBus()
    bus.start()
    config = CameraConfig(id="loop", name="Loop", source=str(clip), pace=False, loop=True)
    worker = CameraWorker(config, face_engine, GalleryIndex(), bus, LocalPhotoStore(tmp_path))
    worker.start()
    try:
        deadline = time.monotonic() + 30.0
        while worker.status().frames < 5 * 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        bus.stop()
    assert worker.status().frames >= 5 * 4, "the clip did not loop four times"
    assert worker._detectors.made == 1


def test_a_paced_file_keeps_real_time_and_an_unpaced_one_does_not(
    face_engine: FaceEngine, tmp_path: Path
) -> None:
    """``auto`` spends its CNN only from time to spare on a camera that must keep real time:
    a paced file plays as a live camera would; a file read as fast as it decodes need not."""
    clip = blank_clip(tmp_path / "blank.mp4", 3)
    bus = MemoryBus()
    for pace in (True, False):
        config = CameraConfig(id="c", name="C", source=str(clip), pace=pace, detector="auto")
        worker = CameraWorker(config, face_engine, GalleryIndex(), bus, LocalPhotoStore(tmp_path))
        with FrameReader(str(clip), pace=pace) as reader:
            settings = worker.settings_for(reader)
        assert (settings.detector, settings.real_time) == ("auto", pace)
