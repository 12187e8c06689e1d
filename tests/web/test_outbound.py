"""Issue 11, findings 2 and 10, on a started server: a reporter cannot point a webhook at a
service inside the network (a real HTTP listener on loopback that answers with a secret), a
stored one is refused when the sighting comes and the case page shows the reason, never a
reply; a line break in a case or camera name neither stops the email (real aiosmtpd) nor adds
a header, and an email that cannot be composed fails for good, shown on the case page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from oneeye.app import OneEyeApp
from oneeye.config import ServeSettings
from oneeye.services.cameras import CameraConfig
from oneeye.store.models import Notification, Subscription
from oneeye.vision.engine import FaceEngine
from tests.conftest import free_port
from tests.services.internal import SECRET_REPLY, InternalService
from tests.services.notify.receivers import MailServer, settings_for
from tests.web.conftest import ClientFor
from tests.web.helpers import publish, sighting, wait_for

API = "/api/v1"
CASES = f"{API}/cases"


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = MailServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def internal() -> Iterator[InternalService]:
    """The internal service: it must receive nothing."""
    service = InternalService()
    yield service
    service.close()


@pytest.fixture
def server(tmp_path: Path, face_engine: FaceEngine, mail_server: MailServer) -> Iterator[OneEyeApp]:
    """A started server with the default outbound settings (nothing internal allowed) and
    email through the test SMTP server."""
    settings = ServeSettings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'oneeye.db'}",
        notify=settings_for(smtp_port=mail_server.port, cooldown=0.0),
    )
    app = OneEyeApp(settings, engine=face_engine)
    app.start()
    try:
        yield app
    finally:
        app.stop()


def error_of(response: Any) -> str:
    message: str = response.json()["error"]["message"]
    return message


def notifications(app: OneEyeApp) -> list[Notification]:
    with app.services.db.session() as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


def subscriptions(app: OneEyeApp) -> int:
    with app.services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Subscription)) or 0)


def file_case(app: OneEyeApp, client: Any, face_photos: Path, name: str) -> dict[str, Any]:
    photo = (face_photos / "obama2.jpg").read_bytes()
    filed = client.post(
        CASES, data={"name": name}, files=[("photo", ("obama2.jpg", photo, "image/jpeg"))]
    )
    assert filed.status_code == 201, filed.text
    case: dict[str, Any] = filed.json()
    return case


def approve(admin: Any, case: dict[str, Any]) -> None:
    """A reporter's case sends to outside addresses only once approved (finding 3)."""
    approved = admin.post(f"{CASES}/{case['id']}/approve")
    assert approved.status_code == 200, approved.text


def stored_subscription(app: OneEyeApp, case_id: str, channel: str, address: str) -> None:
    """A subscription row written directly: one saved before addresses were checked, or a
    name that resolved outside then and inside now."""
    with app.services.db.session() as session:
        session.add(
            Subscription(
                case_id=case_id,
                channel=channel,
                address=address,
                secret="s" * 32 if channel == "webhook" else None,
                active=True,
                created_by="user:legacy",
            )
        )


def test_a_webhook_cannot_reach_an_internal_service(
    server: OneEyeApp, client_for: ClientFor, internal: InternalService, face_photos: Path
) -> None:
    server.services.cameras.add(
        CameraConfig(id="door", name="Front door", source=str(face_photos / "none"))
    )
    reporter = client_for("reporter")
    case = file_case(server, reporter, face_photos, "Barack Obama")
    approve(client_for("admin"), case)

    # Subscribing: refused with the reason, nothing stored.
    refusals = [
        (f"{internal.url}/internal-admin", "refused: 127.0.0.1 is a loopback address"),
        (
            f"http://localhost:{internal.port}/internal-admin",
            "refused: localhost resolves to 127.0.0.1, a loopback address",
        ),
        (f"http://[::ffff:127.0.0.1]:{internal.port}/", "(127.0.0.1 inside IPv6)"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "a cloud metadata service"),
        ("http://10.0.0.8/admin", "refused: 10.0.0.8 is a private address"),
        ("http://admin:pw@hooks.example.org/x", "must not carry a user name or password"),
    ]
    for url, reason in refusals:
        answer = reporter.post(
            f"{CASES}/{case['id']}/subscriptions", json={"channel": "webhook", "address": url}
        )
        assert answer.status_code == 400, (url, answer.text)
        assert reason in error_of(answer)
    assert subscriptions(server) == 0

    # Sending: a stored one is refused when the sighting comes, once, for good.
    stored_subscription(server, case["id"], "webhook", f"{internal.url}/internal-admin")
    publish(server, sighting("door", case["person_id"], datetime.now(UTC)))
    wait_for(lambda: [n.status for n in notifications(server)] == ["failed"], "the refused webhook")
    [row] = notifications(server)
    assert row.attempts == 1
    assert row.last_error == "refused: 127.0.0.1 is a loopback address"
    assert internal.received() == []

    page = reporter.get(f"/cases/{case['id']}")
    assert page.status_code == 200
    assert "refused: 127.0.0.1 is a loopback address" in page.text
    assert SECRET_REPLY.decode() not in page.text


def test_a_line_break_in_a_name_does_not_stop_the_email(
    server: OneEyeApp, client_for: ClientFor, mail_server: MailServer, face_photos: Path
) -> None:
    server.services.cameras.add(
        CameraConfig(id="door", name="Front\r\ndoor", source=str(face_photos / "none"))
    )
    reporter = client_for("reporter")
    case = file_case(server, reporter, face_photos, "Barack\r\nBcc: victim@evil.example")
    approve(client_for("admin"), case)
    subscribed = reporter.post(
        f"{CASES}/{case['id']}/subscriptions",
        json={"channel": "email", "address": "desk@example.org"},
    )
    assert subscribed.status_code == 201, subscribed.text
    broken = reporter.post(
        f"{CASES}/{case['id']}/subscriptions",
        json={"channel": "email", "address": "desk@example.org\nBcc: victim@evil.example"},
    )
    assert broken.status_code == 400
    assert "control characters" in error_of(broken)
    # A row saved before addresses were checked cannot be composed: it fails for good.
    stored_subscription(server, case["id"], "email", "old@example.org\r\nBcc: x@evil.example")

    publish(server, sighting("door", case["person_id"], datetime.now(UTC)))
    wait_for(lambda: len(mail_server.handler.messages) == 1, "the email")
    wait_for(
        lambda: sorted(n.status for n in notifications(server)) == ["failed", "sent"],
        "both rows settled",
    )
    [message] = mail_server.handler.messages
    assert message["Subject"] == (
        "OneEye alert: Barack Bcc: victim@evil.example seen at Front door"
    )
    assert message["Bcc"] is None
    assert mail_server.handler.envelopes == [("alerts@oneeye.test", ["desk@example.org"])]
    [failed] = [n for n in notifications(server) if n.status == "failed"]
    assert failed.attempts == 1
    reason = (
        "the email cannot be composed "
        "(ValueError: the recipient address contains control characters)"
    )
    assert failed.last_error == reason
    page = reporter.get(f"/cases/{case['id']}")
    assert reason in page.text
