"""EnrolmentService on real photos: people, enrolment (all or nothing), deletion, identify,
and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from oneeye.bus.memory import MemoryBus
from oneeye.config import DEFAULT_THRESHOLD
from oneeye.errors import FaceError, ImageError
from oneeye.gallery import GalleryIndex
from oneeye.services.auth import AuthService
from oneeye.services.enrolment import (
    EnrolmentError,
    EnrolmentService,
    NotFoundError,
    UploadTooLargeError,
    encode_jpeg,
)
from oneeye.services.gallery import GalleryService
from oneeye.store.db import Database
from oneeye.store.models import FaceTemplate
from oneeye.store.photos import LocalPhotoStore
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader, side_by_side

ACTOR = "user:tester"


class Parts:
    def __init__(self, url: str, root: Path, engine: FaceEngine, max_upload: int) -> None:
        self.db = Database(url)
        self.db.migrate()
        self.photos = LocalPhotoStore(root / "photos")
        self.gallery = GalleryIndex(DEFAULT_THRESHOLD)
        self.bus = MemoryBus()
        self.auth = AuthService(self.db)
        self.gallery_service = GalleryService(self.db, self.gallery, self.bus)
        self.gallery_service.load()
        self.enrolment = EnrolmentService(
            self.db, self.photos, engine, self.gallery_service, self.auth, max_upload
        )

    def stored(self) -> tuple[int, int, int]:
        """Template rows, photo files and gallery entries."""
        with self.db.session() as session:
            rows = session.scalar(select(func.count()).select_from(FaceTemplate)) or 0
        files = sum(1 for p in self.photos.root.rglob("*") if p.is_file())
        return rows, files, len(self.gallery)

    def actions(self) -> list[str]:
        return [e.action for e in reversed(self.auth.audit_entries(limit=100))]


@pytest.fixture
def parts(database_url: str, tmp_path: Path, face_engine: FaceEngine) -> Iterator[Parts]:
    made = Parts(database_url, tmp_path, face_engine, max_upload=2_000_000)
    try:
        yield made
    finally:
        made.db.close()


@pytest.fixture
def sqlite_parts(tmp_path: Path, face_engine: FaceEngine) -> Iterator[Parts]:
    made = Parts(f"sqlite:///{tmp_path / 'e.db'}", tmp_path, face_engine, max_upload=2_000_000)
    try:
        yield made
    finally:
        made.db.close()


def photo_bytes(face_photos: Path, name: str) -> bytes:
    return (face_photos / name).read_bytes()


@pytest.mark.slow
def test_enrol_and_identify_a_person(parts: Parts, face_photos: Path) -> None:
    service = parts.enrolment
    obama = service.create_person("Barack Obama", ["customers"], actor=ACTOR, account_id="ACC-1")
    biden = service.create_person("Joe Biden", ["customers", "amber-alert"], actor=ACTOR)
    template = service.enrol_photo(
        obama.id, photo_bytes(face_photos, "obama.jpg"), "obama.jpg", actor=ACTOR
    )
    assert template.person_id == obama.id
    assert template.box.size >= 100
    assert 0.0 < template.quality <= 1.0
    assert template.frontalness > 0.5
    assert parts.photos.exists(template.photo_key)
    assert template.photo_key.startswith("templates/")
    service.enrol_photo(biden.id, photo_bytes(face_photos, "biden.jpg"), actor=ACTOR)
    assert parts.stored() == (2, 2, 3)  # Biden is on two watchlists
    assert service.person(obama.id).templates == 1
    assert [t.id for t in service.templates(obama.id)] == [template.id]

    faces = service.identify(photo_bytes(face_photos, "obama2.jpg"))
    assert len(faces) == 1
    face = faces[0]
    assert (face.person_id, face.name, face.watchlist) == (obama.id, "Barack Obama", "customers")
    assert face.distance is not None
    assert face.distance < DEFAULT_THRESHOLD
    assert face.matches[0].matched
    assert face.matches[0].person_id == obama.id
    assert not any(m.matched for m in face.matches[1:])
    assert parts.stored() == (2, 2, 3)  # identify stores nothing

    assert parts.actions()[-4:] == [
        "person.create", "person.create", "template.enrol", "template.enrol",
    ]  # fmt: skip


@pytest.mark.slow
def test_bad_uploads_change_nothing(
    sqlite_parts: Parts, face_photos: Path, load_photo: PhotoLoader, face_engine: FaceEngine
) -> None:
    service = sqlite_parts.enrolment
    person = service.create_person("Someone", ["customers"], actor=ACTOR)
    two = encode_jpeg(side_by_side(load_photo("obama.jpg"), load_photo("biden.jpg")))
    blank = encode_jpeg(np.full((400, 400, 3), 128, dtype=np.uint8))
    big = b"\xff\xd8" + bytes(2_000_001)
    cases: list[tuple[bytes, type[Exception], str]] = [
        (b"hello, I am not a photo", ImageError, "x.jpg: not an image"),
        (b"", ImageError, "empty file"),
        (photo_bytes(face_photos, "obama.jpg")[:5000], ImageError, "truncated"),
        (big, UploadTooLargeError, "the limit is 2,000,000 bytes"),
        (blank, FaceError, "x.jpg: no face found in the 400x400 photo"),
        (two, FaceError, "found 2 faces"),
    ]
    before = sqlite_parts.stored()
    audit_before = len(sqlite_parts.actions())
    for data, error, message in cases:
        with pytest.raises(error, match=message):
            service.enrol_photo(person.id, data, "x.jpg", actor=ACTOR)
        assert sqlite_parts.stored() == before
    assert len(sqlite_parts.actions()) == audit_before
    with pytest.raises(NotFoundError, match="no person with id 'nope'"):
        service.enrol_photo("nope", photo_bytes(face_photos, "obama.jpg"), actor=ACTOR)
    assert sqlite_parts.stored() == before


@pytest.mark.slow
def test_a_failing_gallery_leaves_no_photo_and_no_row(
    sqlite_parts: Parts, face_photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = sqlite_parts.enrolment
    person = service.create_person("Someone", ["customers"], actor=ACTOR)

    def broken(*args: object) -> int:
        raise RuntimeError("gallery is down")

    monkeypatch.setattr(sqlite_parts.gallery_service, "add_templates", broken)
    with pytest.raises(RuntimeError, match="gallery is down"):
        service.enrol_photo(person.id, photo_bytes(face_photos, "obama.jpg"), actor=ACTOR)
    assert sqlite_parts.stored() == (0, 0, 0)


@pytest.mark.slow
def test_deleting_removes_rows_photos_and_gallery_entries(
    sqlite_parts: Parts, face_photos: Path
) -> None:
    service = sqlite_parts.enrolment
    person = service.create_person("Barack Obama", ["customers"], actor=ACTOR)
    first = service.enrol_photo(person.id, photo_bytes(face_photos, "obama.jpg"), actor=ACTOR)
    second = service.enrol_photo(person.id, photo_bytes(face_photos, "obama2.jpg"), actor=ACTOR)
    assert sqlite_parts.stored() == (2, 2, 2)

    service.delete_template(person.id, first.id, actor=ACTOR)
    assert sqlite_parts.stored() == (1, 1, 1)
    assert not sqlite_parts.photos.exists(first.photo_key)
    with pytest.raises(NotFoundError, match="has no template"):
        service.delete_template(person.id, first.id, actor=ACTOR)

    # Moving the person to another watchlist moves their gallery entries with them.
    service.update_person(person.id, watchlists=["amber-alert", "customers"], actor=ACTOR)
    assert sorted(t.watchlist for t in sqlite_parts.gallery.templates(person.id)) == [
        "amber-alert",
        "customers",
    ]
    renamed = service.update_person(person.id, name="B. Obama", account_id=None, actor=ACTOR)
    assert renamed.name == "B. Obama"
    assert renamed.watchlists == ("amber-alert", "customers")

    service.delete_person(person.id, actor=ACTOR)
    assert sqlite_parts.stored() == (0, 0, 0)
    assert not sqlite_parts.photos.exists(second.photo_key)
    with pytest.raises(NotFoundError):
        service.person(person.id)
    assert sqlite_parts.actions()[-4:] == [
        "template.delete", "person.update", "person.update", "person.delete",
    ]  # fmt: skip


def test_people_are_listed_filtered_and_validated(parts: Parts) -> None:
    service = parts.enrolment
    service.create_person("Alice Customer", ["customers"], actor=ACTOR, account_id="A-1")
    service.create_person("Bob Missing", ["amber-alert"], actor=ACTOR)
    service.create_person("carol", ["customers", "amber-alert"], actor=ACTOR)
    names = [p.name for p in service.people()]
    assert names == sorted(names, key=str)
    assert {p.name for p in service.people(watchlist="customers")} == {"Alice Customer", "carol"}
    assert [p.name for p in service.people(q="BOB")] == ["Bob Missing"]
    assert [p.name for p in service.people(q="a-1")] == ["Alice Customer"]
    assert len(service.people(limit=2)) == 2
    assert len(service.people(limit=2, offset=2)) == 1

    with pytest.raises(EnrolmentError, match="no watchlist named 'vip'"):
        service.create_person("X", ["vip"], actor=ACTOR)
    with pytest.raises(EnrolmentError, match="a person's name is"):
        service.create_person("   ", ["customers"], actor=ACTOR)
    with pytest.raises(EnrolmentError, match="an account id is"):
        service.create_person("X", ["customers"], actor=ACTOR, account_id="a b")
    with pytest.raises(NotFoundError):
        service.update_person("nope", name="X", actor=ACTOR)
    assert len(service.people()) == 3
