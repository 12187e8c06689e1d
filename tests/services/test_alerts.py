"""AlertService with its real collaborators: real photos, the real gallery, SQLite and
PostgreSQL, and real camera workers playing a labelled clip made from real photos.

Cases are filed all-or-nothing, go live in the shared gallery at once and leave it at once
on resolve or expiry; a case filed while a camera shows the person gets live matches with
one notification per subscription, once per (case, camera) within the cooldown; a case filed
after the person passed a camera finds them in the kept embeddings of unknown faces
(retro-search); retention deletes a closed case's photos, templates, person and snapshots, and
old unknown faces' embeddings. The notifier is not under test: a counter stands in for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from oneeye.bus.base import SIGHTINGS
from oneeye.bus.memory import MemoryBus
from oneeye.config import AlertSettings, CustomerDirectorySettings
from oneeye.errors import FaceError, ImageError
from oneeye.gallery import GalleryIndex
from oneeye.services.alerts import (
    AlertError,
    AlertService,
    CaseClosedError,
    Notifier,
    check_address,
    nearest_distances,
)
from oneeye.services.auth import AuthService
from oneeye.services.cameras import CameraConfig, CameraManager
from oneeye.services.customers import make_directory
from oneeye.services.enrolment import EnrolmentService, UploadTooLargeError, encode_jpeg
from oneeye.services.events import EventHub
from oneeye.services.gallery import GalleryService
from oneeye.services.notify import NotifyService
from oneeye.services.notify.webhook import verify_signature
from oneeye.services.outbound import OutboundGuard
from oneeye.services.sightings import SightingService
from oneeye.store.db import Database
from oneeye.store.models import (
    AlertCase,
    Camera,
    CaseMatch,
    FaceTemplate,
    Notification,
    Person,
    Sighting,
    new_id,
)
from oneeye.store.photos import LocalPhotoStore, snapshot_kind
from oneeye.types import UNKNOWN
from oneeye.vision.engine import FaceEngine
from tests.bus.helpers import Note
from tests.conftest import PhotoLoader, WakeCounter, side_by_side
from tests.services.helpers import (
    LabelledClip,
    enrol_customer,
    make_clip,
    played_to_the_end,
    wait_for,
)
from tests.services.notify.receivers import HttpReceiver, make_service, settings_for

REPORTER = "user:rita"


class Rig:
    """The alert service with real collaborators on one database."""

    def __init__(
        self,
        url: str,
        tmp_path: Path,
        engine: FaceEngine,
        *,
        settings: AlertSettings | None = None,
        cooldown: float = 300.0,
        sweep_every: float = 2.0,
        notifier: Callable[[Database, LocalPhotoStore], Notifier] | None = None,
    ) -> None:
        self.db = Database(url)
        self.db.migrate()
        self.photo_dir = tmp_path / "photos"
        self.photos = LocalPhotoStore(self.photo_dir)
        self.engine = engine
        self.index = GalleryIndex()
        self.bus = MemoryBus()
        self.gallery = GalleryService(self.db, self.index, self.bus)
        self.gallery.load()
        self.auth = AuthService(self.db)
        self.enrolment = EnrolmentService(
            self.db, self.photos, engine, self.gallery, self.auth, 5_000_000
        )
        self.hub = EventHub(self.db)
        self.sightings = SightingService(
            self.db,
            self.photos,
            self.bus,
            self.hub,
            make_directory(CustomerDirectorySettings(), self.db),
            self.auth,
        )
        self.counter = WakeCounter()
        self.notifier: Notifier = (
            notifier(self.db, self.photos) if notifier is not None else self.counter
        )
        self.alerts = AlertService(
            self.db,
            self.photos,
            self.enrolment,
            self.gallery,
            self.hub,
            self.sightings,
            self.notifier,
            settings or AlertSettings(),
            cooldown=cooldown,
            public_url="https://oneeye.example.org/",
            sweep_every=sweep_every,
            outbound=OutboundGuard(["127.0.0.1"]),  # the test receivers listen on loopback
        )
        self.sightings.start()
        self.bus.start()
        self.cameras: CameraManager | None = None

    def camera_manager(self) -> CameraManager:
        if self.cameras is None:
            self.cameras = CameraManager(self.db, self.engine, self.index, self.bus, self.photos)
            self.cameras.start()
        return self.cameras

    def publish(self, message: dict[str, Any]) -> None:
        """Publish a sighting as the server's camera ``message["camera"]`` would (made one of
        the server's cameras first: sightings are accepted only from a camera's owner)."""
        camera = message["camera"]
        if self.sightings.registry.owner(camera) is None:
            with self.db.session() as session:
                session.add(Camera(id=camera, name=camera, source="0", enabled=False))
            self.sightings.registry.reload()
        self.bus.publish(SIGHTINGS.format(camera=camera), Note.model_validate(message))

    def settle(self) -> None:
        """Wait until the bus has delivered everything published so far."""
        self.bus.stop()
        self.bus.start()

    def count(self, model: type[Any]) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def stored(self) -> tuple[int, int, int, int]:
        """(cases, persons, templates, photo files)."""
        files = len([p for p in self.photo_dir.rglob("*") if p.is_file()])
        return self.count(AlertCase), self.count(Person), self.count(FaceTemplate), files

    def events(self, type: str) -> list[dict[str, Any]]:
        return [e.payload for e in self.hub.since(0, "viewer", 10_000) if e.type == type]

    def close(self) -> None:
        self.alerts.stop()
        if self.cameras is not None:
            self.cameras.stop()
        self.bus.stop()
        self.sightings.stop()
        self.db.close()


def photo(face_photos: Path, name: str) -> tuple[bytes, str]:
    return (face_photos / name).read_bytes(), name


def identify_person(rig: Rig, face_photos: Path, name: str) -> str:
    """Who the live gallery says is in a photo (``UNKNOWN`` for nobody)."""
    faces = rig.enrolment.identify((face_photos / name).read_bytes(), name)
    assert len(faces) == 1
    return faces[0].person_id or UNKNOWN


def sighting_message(person: str | None, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "v": 1,
        "id": new_id(),
        "event": "sighting",
        "camera": "door",
        "track": 1,
        "person": person,
        "watchlist": "amber-alert" if person else None,
        "distance": 0.2 if person else None,
        "quality": 0.8,
        "frame": 12,
        "t": 1.2,
        "box": [10, 60, 60, 10],
        "seen_at": datetime.now(UTC).isoformat(),
        "snapshot_key": None,
        "embedding": None,
    }
    payload.update(changes)
    return payload


@pytest.fixture
def rig(tmp_path: Path, face_engine: FaceEngine) -> Iterator[Rig]:
    made = Rig(f"sqlite:///{tmp_path / 'oneeye.db'}", tmp_path, face_engine)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def rig_any_db(database_url: str, tmp_path: Path, face_engine: FaceEngine) -> Iterator[Rig]:
    made = Rig(database_url, tmp_path, face_engine)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def clip(
    tmp_path_factory: pytest.TempPathFactory, face_engine: FaceEngine, load_photo: PhotoLoader
) -> LabelledClip:
    """A clip from real photos: obama (obama.jpg) crosses the frame, then biden does."""
    return make_clip(tmp_path_factory.mktemp("clip"), face_engine, load_photo)


# filing, checking, resolving ------------------------------------------------------------------


def test_a_case_is_live_at_once_and_leaves_the_gallery_when_resolved(
    rig_any_db: Rig, face_photos: Path
) -> None:
    rig = rig_any_db
    assert identify_person(rig, face_photos, "obama.jpg") == UNKNOWN
    case = rig.alerts.create_case(
        "Barack Obama",
        "Last seen in a grey suit",
        "+15551234567",
        [photo(face_photos, "obama2.jpg"), photo(face_photos, "obama3.jpg")],
        actor=REPORTER,
        approved=True,
    )
    assert case.status == "active"
    assert case.reporter == REPORTER
    assert len(case.photo_keys) == 2
    assert all(key.startswith("cases/") for key in case.photo_keys)
    assert case.person_id is not None
    hours = (case.expires_at - case.created_at).total_seconds() / 3600
    assert hours == pytest.approx(72.0, abs=0.01)
    # Live at once: the gallery every camera worker shares names the person in another photo.
    assert identify_person(rig, face_photos, "obama.jpg") == case.person_id
    assert identify_person(rig, face_photos, "biden.jpg") == UNKNOWN
    assert [c.id for c in rig.alerts.cases("active")] == [case.id]
    assert rig.events("case.created")[0]["case_id"] == case.id

    resolved = rig.alerts.resolve(case.id, actor="user:officer")
    assert resolved.status == "resolved"
    assert resolved.closed_by == "user:officer"
    assert resolved.closed_at is not None
    assert identify_person(rig, face_photos, "obama.jpg") == UNKNOWN
    assert rig.events("case.resolved")[0]["case_id"] == case.id
    with pytest.raises(CaseClosedError, match="already resolved"):
        rig.alerts.resolve(case.id, actor="user:officer")
    assert rig.alerts.cases("active") == []
    actions = [e.action for e in rig.auth.audit_entries(action="case.")]
    assert sorted(actions) == ["case.approve", "case.create", "case.resolve"]


def test_check_photo_says_why_a_photo_cannot_be_used(
    rig: Rig, face_photos: Path, load_photo: PhotoLoader
) -> None:
    good = rig.alerts.check_photo(*photo(face_photos, "obama.jpg"))
    assert good.usable
    assert good.reason is None
    assert good.box is not None
    assert good.quality is not None
    assert good.quality > 0.3
    two = encode_jpeg(side_by_side(load_photo("obama.jpg"), load_photo("biden.jpg")))
    bad = rig.alerts.check_photo(two, "two.jpg")
    assert not bad.usable
    assert bad.reason == "two.jpg: found 2 faces; an enrolment photo must show exactly one person"
    assert bad.box is None
    assert not rig.alerts.check_photo(b"hello", "notes.txt").usable
    assert rig.stored() == (0, 0, 0, 0)


def test_a_bad_photo_among_good_ones_stores_nothing(
    rig_any_db: Rig, face_photos: Path, load_photo: PhotoLoader
) -> None:
    rig = rig_any_db
    good = photo(face_photos, "obama2.jpg")
    two = encode_jpeg(side_by_side(load_photo("obama.jpg"), load_photo("biden.jpg")))
    blank = encode_jpeg(np.full((300, 300, 3), 200, dtype=np.uint8))
    bad_uploads: list[tuple[tuple[bytes, str], type[Exception], str]] = [
        ((b"just some text", "notes.txt"), ImageError, "notes.txt: not an image"),
        ((blank, "blank.jpg"), FaceError, "blank.jpg: no face found"),
        ((two, "two.jpg"), FaceError, "two.jpg: found 2 faces"),
        ((b"\xff" * 5_000_001, "huge.jpg"), UploadTooLargeError, "the limit is 5,000,000"),
    ]
    before = rig.stored()
    for upload, error, message in bad_uploads:
        with pytest.raises(error, match=message):
            rig.alerts.create_case("Someone", "", "", [good, upload], actor=REPORTER, approved=True)
        assert rig.stored() == before, upload[1]
    assert len(rig.index) == 0
    for fields, message in [
        (("", "", ""), "needs a name"),
        (("x" * 201, "", ""), "at most 200"),
    ]:
        with pytest.raises(AlertError, match=message):
            rig.alerts.create_case(*fields, [good], actor=REPORTER, approved=True)
    with pytest.raises(AlertError, match="at least one photo"):
        rig.alerts.create_case("Someone", "", "", [], actor=REPORTER, approved=True)
    with pytest.raises(AlertError, match="in the future"):
        rig.alerts.create_case(
            "Someone", "", "", [good], actor=REPORTER, expires_at=datetime.now(UTC), approved=True
        )
    assert rig.stored() == before
    assert rig.events("case.created") == []


def test_an_expired_case_leaves_the_gallery_and_stops_matching(
    tmp_path: Path, face_engine: FaceEngine, face_photos: Path
) -> None:
    rig = Rig(f"sqlite:///{tmp_path / 'oneeye.db'}", tmp_path, face_engine, sweep_every=0.05)
    try:
        case = rig.alerts.create_case(
            "Barack Obama",
            "",
            "",
            [photo(face_photos, "obama2.jpg")],
            actor=REPORTER,
            expires_at=datetime.now(UTC) + timedelta(seconds=1),
            approved=True,
        )
        rig.alerts.add_subscription("email", "desk@example.org", case_id=case.id, actor=REPORTER)
        assert identify_person(rig, face_photos, "obama.jpg") == case.person_id
        rig.alerts.start()
        wait_for(lambda: rig.alerts.case(case.id).status == "expired", 10, "the case to expire")
        assert identify_person(rig, face_photos, "obama.jpg") == UNKNOWN
        expired = rig.alerts.case(case.id)
        assert expired.closed_by == "system"
        assert rig.events("case.expired")[0]["case_id"] == case.id
        # A worker that saw the face a moment before the gallery changed: no match, no alert.
        rig.publish(sighting_message(case.person_id))
        rig.settle()
        assert rig.count(Sighting) == 1
        assert rig.count(CaseMatch) == 0
        assert rig.count(Notification) == 0
        assert rig.counter.wakes == 0
    finally:
        rig.close()


# matching -------------------------------------------------------------------------------------


def test_a_live_sighting_notifies_every_subscription_once_per_camera_and_cooldown(
    rig_any_db: Rig, face_photos: Path
) -> None:
    rig = rig_any_db
    case = rig.alerts.create_case(
        "Barack Obama",
        "grey suit",
        "",
        [photo(face_photos, "obama2.jpg")],
        actor=REPORTER,
        approved=True,
    )
    assert case.person_id is not None
    mine = rig.alerts.add_subscription("email", "desk@example.org", case_id=case.id, actor=REPORTER)
    every = rig.alerts.add_subscription(
        "webhook", "https://hooks.example.org/oneeye", actor="user:admin"
    )
    assert every.secret is not None
    assert len(every.secret) >= 32
    assert rig.alerts.subscription(every.id).secret is None  # shown once only
    now = datetime.now(UTC)
    first = sighting_message(case.person_id, seen_at=now.isoformat())
    again = sighting_message(case.person_id, seen_at=(now + timedelta(seconds=20)).isoformat())
    other = sighting_message(case.person_id, camera="lobby", seen_at=now.isoformat())
    for message in (first, first, again, other):  # ``first`` twice: a retried publish
        rig.publish(message)
    rig.settle()

    matches = rig.alerts.matches(case.id)
    assert {m.kind for m in matches} == {"live"}
    assert sorted((m.camera_id, m.notified, m.sighting_id) for m in matches) == [
        ("door", False, again["id"]),  # within the cooldown of the first on this camera
        ("door", True, first["id"]),
        ("lobby", True, other["id"]),
    ]
    with rig.db.session() as session:
        rows = list(session.scalars(select(Notification).order_by(Notification.id)))
    assert sorted((n.sighting_id, n.subscription_id) for n in rows) == sorted(
        (s["id"], sub.id) for s in (first, other) for sub in (mine, every)
    )
    assert all(n.status == "pending" and n.attempts == 0 for n in rows)
    payload = next(n.payload for n in rows if n.sighting_id == first["id"])
    assert payload == {
        "case_id": case.id,
        "case_name": "Barack Obama",
        "description": "grey suit",
        "person_id": case.person_id,
        "camera_id": "door",
        "camera_name": "door",
        "location": "",
        "seen_at": now.isoformat(),
        "distance": 0.2,
        "likeness": "a very close likeness",  # 0.2 of the default 0.32 threshold
        "sighting_id": first["id"],
        "snapshot_key": None,
        "kind": "live",
        "case_url": f"https://oneeye.example.org/cases/{case.id}",
    }
    assert rig.counter.wakes == 2
    alerts = rig.events("alert.sighting")
    assert len(alerts) == 3
    assert {a["kind"] for a in alerts} == {"live"}
    assert alerts[0]["case_photo_url"] == f"/api/v1/photos/{case.photo_keys[0]}"
    assert rig.alerts.case(case.id).matches == 3

    # After resolving, sightings of the person notify nobody.
    rig.alerts.resolve(case.id, actor=REPORTER)
    late = sighting_message(case.person_id, camera="lobby")
    rig.publish(late)
    rig.settle()
    assert rig.count(CaseMatch) == 3
    assert rig.count(Notification) == 4


@pytest.mark.slow
def test_a_live_match_reaches_a_webhook_through_the_real_notifier(
    tmp_path: Path, face_engine: FaceEngine, face_photos: Path
) -> None:
    receiver = HttpReceiver()
    notifiers: list[NotifyService] = []

    def notifier(db: Database, photos: LocalPhotoStore) -> NotifyService:
        service = make_service(db, photos, settings_for(), poll_interval=30.0)
        notifiers.append(service)
        return service

    rig = Rig(f"sqlite:///{tmp_path / 'oneeye.db'}", tmp_path, face_engine, notifier=notifier)
    notifiers[0].start()
    try:
        case = rig.alerts.create_case(
            "Barack Obama",
            "grey suit",
            "",
            [photo(face_photos, "obama2.jpg")],
            actor=REPORTER,
            approved=True,
        )
        hook = rig.alerts.add_subscription(
            "webhook", f"{receiver.url}/hook", case_id=case.id, actor=REPORTER
        )
        assert hook.secret is not None
        message = sighting_message(case.person_id)
        rig.publish(message)
        # Woken by the match, the notifier sends well before its 30 s poll.
        wait_for(lambda: len(receiver.requests) == 1, 10, "the webhook post")
        [request] = receiver.requests
        assert verify_signature(
            hook.secret,
            request.headers.get("x-oneeye-timestamp"),
            request.body,
            request.headers.get("x-oneeye-signature"),
        )
        body = json.loads(request.body)
        assert body["case_id"] == case.id
        assert body["sighting_id"] == message["id"]
        assert body["kind"] == "live"
        wait_for(lambda: notifiers[0].stats().sent == 1, 10, "the row marked sent")
    finally:
        notifiers[0].stop()
        rig.close()
        receiver.close()


@pytest.mark.slow
def test_a_case_filed_while_cameras_show_the_person_gets_live_matches(
    rig: Rig, clip: LabelledClip, face_photos: Path
) -> None:
    path = clip.path
    rig.alerts.add_subscription("sms", "+1 (555) 123-4567", actor="user:admin")
    manager = rig.camera_manager()
    for camera in ("door", "lobby"):
        manager.add(
            CameraConfig(
                id=camera,
                name=camera.title(),
                location=f"{camera} of branch 1",
                source=str(path),
                pace=False,
                loop=True,
                min_face_px=80,
            )
        )
    # The clip has played (obama unknown then) before the case is filed.
    wait_for(lambda: rig.count(Sighting) >= 2, 60.0, what="the cameras' first sightings")
    case = rig.alerts.create_case(
        "Barack Obama", "", "", [photo(face_photos, "obama2.jpg")], actor=REPORTER, approved=True
    )
    subscription = rig.alerts.add_subscription(
        "email", "desk@example.org", case_id=case.id, actor=REPORTER
    )

    def live_on_both() -> bool:
        cameras = {m.camera_id for m in rig.alerts.matches(case.id) if m.kind == "live"}
        return cameras == {"door", "lobby"}

    wait_for(live_on_both, 60.0, what="live matches on both cameras")

    def two_matches_each_one_since_the_email() -> bool:
        # A camera can match twice before the email subscribes (the retro search of its earlier
        # plays, and the clip plays as fast as it decodes): wait for a live match the email can
        # be told of.
        matches = rig.alerts.matches(case.id)
        return all(
            sum(m.camera_id == c for m in matches) >= 2
            and any(
                m.camera_id == c and m.kind == "live" and m.found_at > subscription.created_at
                for m in matches
            )
            for c in ("door", "lobby")
        )

    wait_for(
        two_matches_each_one_since_the_email,
        60.0,
        what="a second match per camera, one since the email subscribed (the clip loops)",
    )
    manager.stop()
    rig.settle()
    matches = rig.alerts.matches(case.id)
    for camera in ("door", "lobby"):
        mine = [m for m in matches if m.camera_id == camera]
        # Each subscriber is told once per (case, camera) in its cooldown: the SMS of the first
        # match, the email (subscribed after filing) of the first one after it subscribed.
        assert 1 <= sum(m.notified for m in mine) <= 2, mine
        live = [m for m in mine if m.kind == "live"]
        assert live
        assert live[0].camera_name == camera.title()
        assert live[0].location == f"{camera} of branch 1"
        assert live[0].distance <= rig.index.threshold("amber-alert")
        assert live[0].snapshot_key is not None
    with rig.db.session() as session:
        rows = list(session.scalars(select(Notification)))
    notified = {m.sighting_id for m in matches if m.notified}
    # One row per subscriber per camera within the cooldown (the cooldown is each
    # subscriber's own since issue 12: the email, subscribed after filing, is told of the next
    # match on each camera even though the SMS was told of an earlier one there), and the
    # email only of matches found after it was added.
    assert {n.sighting_id for n in rows} == notified
    per_subscriber = sorted((n.channel, n.payload["camera_id"]) for n in rows)
    assert per_subscriber == [
        ("email", "door"),
        ("email", "lobby"),
        ("sms", "door"),
        ("sms", "lobby"),
    ]
    found = {m.sighting_id: m.found_at for m in matches}
    assert all(found[n.sighting_id] > subscription.created_at for n in rows if n.channel == "email")
    assert {n.address for n in rows} <= {"desk@example.org", "+15551234567"}
    assert subscription.case_id == case.id


@pytest.mark.slow
def test_retro_search_finds_the_person_among_earlier_unknown_faces(
    rig: Rig, clip: LabelledClip, face_photos: Path
) -> None:
    path = clip.path
    manager = rig.camera_manager()
    started = datetime.now(UTC)
    manager.add(
        CameraConfig(id="door", name="Front door", source=str(path), pace=False, min_face_px=80)
    )
    wait_for(lambda: played_to_the_end(manager, "door"), 60.0, what="the clip to end")
    rig.settle()
    with rig.db.session() as session:
        unknown = list(session.scalars(select(Sighting).where(Sighting.person_id.is_(None))))
    assert len(unknown) == 2  # obama and biden, both strangers then
    assert all(s.embedding is not None for s in unknown)
    rig.alerts.add_subscription("email", "desk@example.org", actor="user:admin")

    case = rig.alerts.create_case(
        "Barack Obama", "", "", [photo(face_photos, "obama2.jpg")], actor=REPORTER, approved=True
    )
    assert case.matches == 1
    [match] = rig.alerts.matches(case.id)
    assert match.kind == "retro"
    assert match.camera_id == "door"
    assert match.camera_name == "Front door"
    assert started <= match.seen_at <= datetime.now(UTC)
    assert match.notified
    assert match.snapshot_key is not None
    obama = next(s for s in unknown if s.id == match.sighting_id)
    assert obama.first_seen == match.seen_at
    with rig.db.session() as session:
        [row] = session.scalars(select(Notification))
    assert row.payload["kind"] == "retro"
    assert row.payload["camera_name"] == "Front door"
    assert row.payload["sighting_id"] == obama.id
    assert rig.counter.wakes == 1
    [event] = rig.events("alert.sighting")
    assert event["kind"] == "retro"
    assert event["camera_id"] == "door"
    # A second search finds nothing new.
    assert rig.alerts.retro_search(case.id) == []


def test_retro_search_only_looks_back_retro_hours(
    tmp_path: Path, face_engine: FaceEngine, face_photos: Path
) -> None:
    rig = Rig(
        f"sqlite:///{tmp_path / 'oneeye.db'}",
        tmp_path,
        face_engine,
        settings=AlertSettings(retro_hours=1.0),
    )
    try:
        face = face_engine.enrolment_face(
            rig.enrolment.decode_upload((face_photos / "obama.jpg").read_bytes())
        )
        now = datetime.now(UTC)
        for hours in (0.5, 2.0):
            message = sighting_message(
                None,
                seen_at=(now - timedelta(hours=hours)).isoformat(),
                embedding=[float(v) for v in face.embedding],
            )
            rig.publish(message)
        rig.settle()
        case = rig.alerts.create_case(
            "Barack Obama",
            "",
            "",
            [photo(face_photos, "obama2.jpg")],
            actor=REPORTER,
            approved=True,
        )
        [match] = rig.alerts.matches(case.id)
        assert (now - match.seen_at).total_seconds() == pytest.approx(1800, abs=1)
    finally:
        rig.close()


def test_retro_search_finds_a_customer_who_is_also_the_missing_person(
    rig: Rig, face_photos: Path, load_photo: PhotoLoader
) -> None:
    # Issue 12, bug 1, in the past: the customer's template (the same photo as the case's)
    # must not make the case's person "not sure" when the retro-search confirms a face.
    face = rig.engine.enrolment_face(load_photo("obama.jpg"))
    rig.publish(sighting_message(None, embedding=[float(v) for v in face.embedding]))
    rig.settle()
    enrol_customer(rig.db, rig.index, rig.engine, load_photo, photo="obama2.jpg")
    case = rig.alerts.create_case(
        "Barack Obama", "", "", [photo(face_photos, "obama2.jpg")], actor=REPORTER, approved=True
    )
    assert [m.kind for m in rig.alerts.matches(case.id)] == ["retro"]


def test_nearest_distances_is_the_euclidean_minimum() -> None:
    rng = np.random.default_rng(1)
    probes = rng.normal(size=(7, 128)).astype(np.float32)
    templates = rng.normal(size=(3, 128)).astype(np.float32)
    expected = np.linalg.norm(probes[:, None, :] - templates[None, :, :], axis=2).min(axis=1)
    assert np.allclose(nearest_distances(probes, templates), expected, atol=1e-4)
    assert nearest_distances(probes[:0], templates).shape == (0,)


# retention -----------------------------------------------------------------------------------


def test_retention_deletes_closed_cases_and_old_unknown_embeddings(
    rig_any_db: Rig, face_photos: Path
) -> None:
    rig = rig_any_db
    case = rig.alerts.create_case(
        "Barack Obama", "", "", [photo(face_photos, "obama2.jpg")], actor=REPORTER, approved=True
    )
    other = rig.alerts.create_case(
        "Joe Biden", "", "", [photo(face_photos, "biden.jpg")], actor=REPORTER, approved=True
    )
    assert case.person_id is not None
    snapshot = rig.photos.add(snapshot_kind("door"), b"\xff\xd8 a snapshot")
    seen = sighting_message(case.person_id, snapshot_key=snapshot)
    now = datetime.now(UTC)
    old_unknown = sighting_message(
        None,
        seen_at=(now - timedelta(hours=30)).isoformat(),
        embedding=[0.01] * 128,
    )
    new_unknown = sighting_message(
        None, seen_at=(now - timedelta(hours=1)).isoformat(), embedding=[0.02] * 128
    )
    for message in (seen, old_unknown, new_unknown):
        rig.publish(message)
    rig.settle()
    assert rig.count(CaseMatch) == 1
    rig.alerts.resolve(case.id, actor=REPORTER)
    assert rig.photos.exists(case.photo_keys[0])

    # Unknown faces' embeddings go after unknown_retention_hours (24 h); the case stays.
    report = rig.alerts.purge()
    assert (report.cases, report.embeddings) == (0, 1)
    with rig.db.session() as session:
        kept = {
            s.id: s.embedding is not None
            for s in session.scalars(select(Sighting).where(Sighting.person_id.is_(None)))
        }
    assert kept == {old_unknown["id"]: False, new_unknown["id"]: True}
    assert rig.alerts.case(case.id).purged_at is None

    # 30 days after closing, the case's photos, templates, person and snapshots go.
    later = now + timedelta(days=31)
    report = rig.alerts.purge(later)
    assert (report.cases, report.photos, report.snapshots) == (1, 1, 1)
    purged = rig.alerts.case(case.id)
    assert purged.purged_at == later
    assert purged.person_id is None
    assert purged.photo_keys == ()
    assert purged.status == "resolved"
    assert not rig.photos.exists(case.photo_keys[0])
    assert not rig.photos.exists(snapshot)
    with rig.db.session() as session:
        assert session.get(Person, case.person_id) is None
        row = session.get(Sighting, seen["id"])
        assert row is not None
        assert row.snapshot_key is None
        assert (
            session.scalar(
                select(func.count())
                .select_from(FaceTemplate)
                .where(FaceTemplate.person_id == case.person_id)
            )
            == 0
        )
    # The active case is untouched, and a second sweep has nothing to do.
    assert rig.alerts.case(other.id).photo_keys
    assert rig.photos.exists(other.photo_keys[0])
    assert rig.alerts.purge(later).cases == 0
    assert rig.alerts.matches(case.id)[0].snapshot_key is None


# subscriptions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "address", "expected"),
    [
        ("email", " desk@example.org ", "desk@example.org"),
        ("email", "not-an-address", AlertError),
        ("email", "a@b", AlertError),
        ("sms", "+44 20 7946 0958", "+442079460958"),
        ("sms", "5551234", AlertError),
        ("webhook", "https://hooks.example.org/x?y=1", "https://hooks.example.org/x?y=1"),
        ("webhook", "ftp://hooks.example.org", AlertError),
        ("webhook", "https://", AlertError),
        ("pigeon", "coop 3", AlertError),
    ],
)
def test_addresses_are_checked_per_channel(
    channel: str, address: str, expected: str | type[Exception]
) -> None:
    if isinstance(expected, str):
        assert check_address(channel, address) == expected
    else:
        with pytest.raises(expected):
            check_address(channel, address)


def test_subscriptions_are_listed_per_case_and_deleted(rig: Rig, face_photos: Path) -> None:
    case = rig.alerts.create_case(
        "Barack Obama", "", "", [photo(face_photos, "obama2.jpg")], actor=REPORTER, approved=True
    )
    mine = rig.alerts.add_subscription(
        "webhook", "https://h.example.org", case_id=case.id, actor=REPORTER, secret="s" * 20
    )
    assert mine.secret == "s" * 20
    every = rig.alerts.add_subscription("email", "all@example.org", actor="user:admin")
    assert [s.id for s in rig.alerts.subscriptions(case.id)] == [mine.id]
    assert [s.id for s in rig.alerts.subscriptions()] == [every.id]
    rig.alerts.delete_subscription(mine.id, actor=REPORTER)
    assert rig.alerts.subscriptions(case.id) == []
    rig.alerts.resolve(case.id, actor=REPORTER)
    with pytest.raises(CaseClosedError):
        rig.alerts.add_subscription("email", "x@example.org", case_id=case.id, actor=REPORTER)


def test_a_customer_who_is_also_a_missing_person_gets_the_card_and_the_case_match(
    rig: Rig, clip: LabelledClip, face_photos: Path, load_photo: PhotoLoader
) -> None:
    # Issue 12, bug 1: a customer enrolled from a photo, then a case filed with the same
    # photo. The margin made each the other's rival (the same distance), so every face of
    # them was "unknown": neither the arrival card nor the case match happened.
    customer = enrol_customer(rig.db, rig.index, rig.engine, load_photo, photo="obama2.jpg")
    case = rig.alerts.create_case(
        "Barack Obama", "", "", [photo(face_photos, "obama2.jpg")], actor=REPORTER, approved=True
    )
    manager = rig.camera_manager()
    manager.add(
        CameraConfig(id="door", name="Door", source=str(clip.path), pace=False, min_face_px=80)
    )
    wait_for(lambda: played_to_the_end(manager, "door"), 60.0, what="the clip to end")
    rig.settle()
    arrivals = [
        e.payload for e in rig.hub.since(0, "teller", 10_000) if e.type == "customer.arrived"
    ]
    assert [e["person_id"] for e in arrivals] == [customer.person_id]
    live = [m for m in rig.alerts.matches(case.id) if m.kind == "live"]
    assert [m.camera_id for m in live] == ["door"]
    with rig.db.session() as session:
        rows = list(session.scalars(select(Sighting).order_by(Sighting.first_seen)))
    # The same track is two sightings, one per watchlist, both closed when it left; biden is
    # a stranger.
    named = sorted((s.watchlist, s.person_id) for s in rows if s.person_id is not None)
    assert named == [("amber-alert", case.person_id), ("customers", customer.person_id)]
    assert len({s.track for s in rows if s.person_id is not None}) == 1
    assert all(s.left_at is not None for s in rows)
    assert sum(s.person_id is None for s in rows) == 1
