"""Issue 12, bug 2: a parent who subscribes after filing is told of the next sighting.

Through the real server parts and a real SMTP server (aiosmtpd): a case is filed (approved)
after the person passed a camera, so the retro-search finds a match while nobody is subscribed;
that match notifies nobody and so starts no cooldown. The parent subscribes, the person is seen
at the same camera 50 s later, and the parent's email arrives. The cooldown then holds for that
subscriber (a sighting 20 s later sends nothing to them) but not for one who joins after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from oneeye.app import OneEyeApp
from oneeye.bus.base import SIGHTINGS
from oneeye.config import OutboundSettings, ServeSettings
from oneeye.store.models import Notification, new_id
from oneeye.vision.engine import FaceEngine
from tests.bus.helpers import Note
from tests.conftest import wait_until
from tests.services.notify.receivers import HttpReceiver, MailServer, settings_for
from tests.web.helpers import ensure_camera


@pytest.fixture
def server(
    tmp_path: Path, face_engine: FaceEngine, mail_server: MailServer, http_receiver: HttpReceiver
) -> Iterator[OneEyeApp]:
    """A started server sending to the test receivers, with the default 300 s cooldown."""
    notify = settings_for(
        smtp_port=mail_server.port, sms_url=http_receiver.url + "/sms", cooldown=300.0
    )
    settings = ServeSettings(
        data_dir=tmp_path / "data",
        notify=notify,
        outbound=OutboundSettings(allow_internal=["127.0.0.1"]),
    )
    app = OneEyeApp(settings, engine=face_engine)
    app.start()
    try:
        yield app
    finally:
        app.stop()


def sighting(camera: str, person: str | None, seen_at: datetime, **more: Any) -> tuple[str, Note]:
    """A sighting's id, and the bus message a camera worker publishes for it."""
    sighting_id = new_id()
    message: dict[str, Any] = {
        "v": 1,
        "id": sighting_id,
        "event": "sighting",
        "camera": camera,
        "track": 1,
        "person": person,
        "watchlist": "amber-alert" if person else None,
        "distance": 0.25 if person else None,
        "quality": 1.0,
        "frame": 10,
        "t": 0.4,
        "box": [10, 110, 110, 10],
        "seen_at": seen_at.isoformat(),
        "snapshot_key": None,
        "embedding": None,
    }
    message.update(more)
    return sighting_id, Note.model_validate(message)


def test_a_parent_who_subscribes_after_filing_gets_the_next_sighting(
    server: OneEyeApp,
    mail_server: MailServer,
    http_receiver: HttpReceiver,
    face_engine: FaceEngine,
    face_photos: Path,
) -> None:
    s = server.services
    ensure_camera(server, "lobby")
    topic = SIGHTINGS.format(camera="lobby")
    # The child passed the lobby camera a minute ago, a stranger then (its face kept).
    passed = datetime.now(UTC) - timedelta(seconds=60)
    face = face_engine.enrolment_face(
        s.enrolment.decode_upload((face_photos / "obama.jpg").read_bytes())
    )
    earlier, note = sighting("lobby", None, passed, embedding=[float(v) for v in face.embedding])
    s.bus.publish(topic, note)
    s.bus.drain()

    case = s.alerts.create_case(
        "Barack Example",
        "",
        "",
        [((face_photos / "obama2.jpg").read_bytes(), "obama2.jpg")],
        actor="user:cora",
        approved=True,
    )
    [retro] = s.alerts.matches(case.id)
    assert (retro.kind, retro.sighting_id) == ("retro", earlier)
    assert not retro.notified  # nobody was subscribed: nobody was told, no cooldown started

    parent = s.alerts.add_subscription(
        "email", "parent@example.org", actor="user:cora", case_id=case.id
    )
    live, note = sighting("lobby", case.person_id, passed + timedelta(seconds=50))
    s.bus.publish(topic, note)
    assert wait_until(lambda: len(mail_server.handler.messages) == 1, timeout=10.0)
    [email] = mail_server.handler.messages
    assert email["To"] == "parent@example.org"
    assert "Barack Example" in str(email["Subject"])
    body = email.get_body(("plain",))
    assert body is not None
    assert "Likeness: a close likeness (face distance 0.250" in body.get_content()
    assert wait_until(lambda: s.notifier.stats().sent == 1, timeout=10.0)

    # 20 s later: inside the parent's cooldown on this camera, so nothing more for them; an
    # SMS subscriber who joined meanwhile was told of nothing yet, so it is told of this one.
    phone = s.alerts.add_subscription("sms", "+15557654321", actor="user:cora", case_id=case.id)
    again, note = sighting("lobby", case.person_id, passed + timedelta(seconds=70))
    s.bus.publish(topic, note)
    assert wait_until(lambda: s.notifier.stats().sent == 2, timeout=10.0)
    with s.db.session() as session:
        rows = session.execute(
            select(Notification.sighting_id, Notification.subscription_id).order_by(Notification.id)
        ).all()
    assert [tuple(r) for r in rows] == [(live, parent.id), (again, phone.id)]
    assert len(mail_server.handler.messages) == 1
    assert [r.path for r in http_receiver.requests] == ["/sms"]
    notified = {m.sighting_id: m.notified for m in s.alerts.matches(case.id)}
    assert notified == {earlier: False, live: True, again: True}
