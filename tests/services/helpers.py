"""Helpers for the tests that play camera clips: a labelled clip made from real photos (the
customer walks through, then a stranger), a customer enrolled straight into the database and
the gallery, and a wait for a condition that fails the test on timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.lib.synth import Actor, GroundTruth, Movement, write_clip
from oneeye.gallery import GalleryIndex
from oneeye.services.cameras import CameraManager
from oneeye.store.db import Database
from oneeye.store.models import FaceTemplate, Person, Watchlist, new_id
from oneeye.store.repos.templates import embedding_to_bytes
from oneeye.types import Template
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader

FPS = 10.0
WIDTH, HEIGHT = 640, 480
FACE = 96


@dataclass(frozen=True)
class LabelledClip:
    """A clip on disk: the customer (``obama``) walks through, then a stranger (``biden``)."""

    path: Path
    truth: GroundTruth


def make_clip(
    folder: Path, engine: FaceEngine, load_photo: PhotoLoader, fps: float = FPS
) -> LabelledClip:
    """Write the clip: obama crosses the frame in 3 s, then biden (never enrolled) does (at
    ``fps`` frames per second: 80 frames)."""
    actors = []
    for person, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg")):
        image = load_photo(photo)
        actors.append(Actor(person, image, engine.enrolment_face(image).box))
    mid = HEIGHT / 2
    movements = [
        Movement(0, 0, 30, (WIDTH * 0.1, mid), (WIDTH * 0.9, mid), FACE),
        Movement(1, 40, 70, (WIDTH * 0.9, mid), (WIDTH * 0.1, mid), FACE),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"door-{fps:g}.mp4"
    truth = write_clip(
        path, actors, movements, width=WIDTH, height=HEIGHT, frames=80, fps=fps, seed=3
    )
    return LabelledClip(path, truth)


@dataclass(frozen=True)
class Customer:
    person_id: str
    template_id: str


def enrol_customer(
    db: Database,
    gallery: GalleryIndex,
    engine: FaceEngine,
    load_photo: PhotoLoader,
    *,
    name: str = "Barack Obama",
    account_id: str | None = "ACC-1",
    photo: str = "obama2.jpg",
) -> Customer:
    """Enrol a person on the ``customers`` watchlist straight into the database and the
    gallery (from another photo than the clip's)."""
    face = engine.enrolment_face(load_photo(photo))
    person_id, template_id = new_id(), new_id()
    with db.session() as session:
        watchlist = session.query(Watchlist).filter_by(name="customers").one_or_none()
        if watchlist is None:
            watchlist = Watchlist(name="customers", action="customers")
            session.add(watchlist)
        person = Person(id=person_id, name=name, account_id=account_id, watchlists=[watchlist])
        session.add(person)
        session.add(
            FaceTemplate(
                id=template_id,
                person=person,
                photo_key="templates/aa/aa.jpg",
                embedding=embedding_to_bytes(face.embedding),
                top=face.box.top,
                right=face.box.right,
                bottom=face.box.bottom,
                left=face.box.left,
                quality=face.quality.score,
            )
        )
    gallery.add(Template(f"{template_id}@customers", person_id, "customers", face.embedding))
    return Customer(person_id, template_id)


def played_to_the_end(manager: CameraManager, camera: str) -> bool:
    """Whether a file camera's video ended and its worker finished (all its events out)."""
    worker = manager.worker(camera)
    return manager.status(camera).state == "ended" and (worker is None or not worker.alive)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``condition`` until it holds (fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")
