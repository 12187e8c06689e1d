"""One sighting from the bus to every channel, through the real server parts: the sighting is
stored (SightingService), matched to an active case (AlertService) with its outbox rows, and the
notifier delivers an email (aiosmtpd, snapshot attached), an SMS and a webhook (a local HTTP
server; the webhook checked with its secret); the signed snapshot link in the webhook opens
without a login."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from oneeye.app import OneEyeApp
from oneeye.bus.base import SIGHTINGS
from oneeye.config import OutboundSettings, ServeSettings
from oneeye.services.notify import verify_signature
from oneeye.store.models import new_id
from oneeye.store.photos import snapshot_kind
from oneeye.vision.engine import FaceEngine
from tests.bus.helpers import Note
from tests.conftest import wait_until
from tests.services.notify.receivers import HttpReceiver, MailServer, settings_for
from tests.web.helpers import ensure_camera


@pytest.fixture
def server(
    tmp_path: Path,
    face_engine: FaceEngine,
    mail_server: MailServer,
    http_receiver: HttpReceiver,
) -> Iterator[OneEyeApp]:
    """A started server whose notifier sends to the test receivers, with no cooldown."""
    notify = settings_for(
        smtp_port=mail_server.port, sms_url=http_receiver.url + "/sms", cooldown=0.0
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


def test_a_sighting_reaches_every_channel(
    server: OneEyeApp,
    mail_server: MailServer,
    http_receiver: HttpReceiver,
    face_photos: Path,
) -> None:
    s = server.services
    case = s.alerts.create_case(
        "Barack Example",
        "last seen near the station",
        "desk +1 555 0100",
        [((face_photos / "obama.jpg").read_bytes(), "obama.jpg")],
        actor="user:reporter",
        approved=True,
    )
    s.alerts.add_subscription("email", "desk@example.org", actor="user:admin")
    s.alerts.add_subscription("sms", "+15557654321", actor="user:admin", case_id=case.id)
    hook = s.alerts.add_subscription(
        "webhook", http_receiver.url + "/hook", actor="user:admin", case_id=case.id
    )
    assert hook.secret is not None
    snapshot = (face_photos / "obama2.jpg").read_bytes()
    key = s.photos.add(snapshot_kind("lobby"), snapshot)
    ensure_camera(server, "lobby")
    sighting = new_id()
    s.bus.publish(
        SIGHTINGS.format(camera="lobby"),
        Note.model_validate(
            {
                "v": 1,
                "id": sighting,
                "event": "sighting",
                "camera": "lobby",
                "track": 1,
                "person": case.person_id,
                "watchlist": "amber-alert",
                "distance": 0.31,
                "quality": 1.0,
                "frame": 10,
                "t": 0.4,
                "box": [10, 110, 110, 10],
                "seen_at": datetime.now(UTC).isoformat(),
                "snapshot_key": key,
                "embedding": None,
            }
        ),
    )
    assert wait_until(lambda: len(mail_server.handler.messages) == 1, timeout=10.0)
    assert wait_until(lambda: len(http_receiver.requests) == 2, timeout=10.0)
    assert wait_until(lambda: s.notifier.stats().sent == 3, timeout=10.0)

    [email] = mail_server.handler.messages
    assert "Barack Example" in str(email["Subject"])
    [attachment] = list(email.iter_attachments())
    assert attachment.get_content() == snapshot

    by_path = {request.path: request for request in http_receiver.requests}
    sms = parse_qs(by_path["/sms"].body.decode())
    assert sms["To"] == ["+15557654321"]
    assert "Barack Example seen at lobby" in sms["Body"][0]

    webhook = by_path["/hook"]
    assert verify_signature(
        hook.secret,
        webhook.headers["x-oneeye-timestamp"],
        webhook.body,
        webhook.headers["x-oneeye-signature"],
    )
    data = json.loads(webhook.body)
    assert data["sighting_id"] == sighting
    assert data["case_id"] == case.id
    assert data["kind"] == "live"

    link = urlsplit(data["snapshot_url"])
    with TestClient(server.web) as anonymous:
        response = anonymous.get(
            link.path, params={k: v[0] for k, v in parse_qs(link.query).items()}
        )
    assert response.status_code == 200
    assert response.content == snapshot
    assert s.notifier.failures() == []
