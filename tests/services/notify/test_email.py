"""Alert emails through a real SMTP server (aiosmtpd): the message's parts, STARTTLS and
implicit TLS with a self-signed certificate, AUTH PLAIN and LOGIN, refusals."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import SecretStr

from oneeye.config import SmtpSettings
from oneeye.services.notify import AlertPayload, DeliveryError, LinkSigner, Outgoing
from oneeye.services.notify.email import EmailSender
from oneeye.store.db import Database
from oneeye.store.photos import LocalPhotoStore
from tests.conftest import free_port
from tests.services.notify.receivers import (
    PUBLIC_URL,
    SECRET_KEY,
    SMTP_PASSWORD,
    SMTP_USER,
    Certificate,
    MailServer,
    add_notifications,
    add_subscription,
    authenticator,
    make_service,
    payload,
    rows,
    settings_for,
)

LINKS = LinkSigner(SECRET_KEY, PUBLIC_URL)


def outgoing(snapshot_key: str | None, **overrides: Any) -> Outgoing:
    """One email to send."""
    data = payload(snapshot_key, **overrides)
    return Outgoing(
        id=41,
        case_id=data["case_id"],
        sighting_id=data["sighting_id"],
        channel="email",
        address="officer@example.org",
        payload=AlertPayload.from_json(data),
    )


def parts(message: EmailMessage) -> tuple[str, str, list[EmailMessage]]:
    """The text body, the HTML body and the attachments of a received email."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    attachments = [part for part in message.iter_attachments() if isinstance(part, EmailMessage)]
    return str(text.get_content()), str(html.get_content()), attachments


def test_email_has_subject_text_html_and_the_snapshot(
    mail_server: MailServer, photos: LocalPhotoStore, snapshot: tuple[str, bytes]
) -> None:
    key, data = snapshot
    settings = SmtpSettings(host="127.0.0.1", port=mail_server.port, security="none")
    EmailSender(settings, photos, LINKS).send(outgoing(key))

    [message] = mail_server.handler.messages
    assert message["Subject"] == "OneEye alert: Ana Example seen at Lobby"
    assert message["To"] == "officer@example.org"
    assert message["X-OneEye-Notification"] == "41"
    assert message["Message-ID"] == "<oneeye-notification-41@oneeye.test>"
    text, html, attachments = parts(message)
    for body in (text, html):
        assert "Ana Example" in body
        assert "Lobby" in body
        assert "Main St branch" in body
        assert "2026-11-26 08:30:00 UTC" in body
        assert "0.412" in body
        assert "/cases/" + "c" * 32 in body
        assert "/api/v1/links/snapshot?" in body
    assert "red coat" in text
    assert "<h2>" in html
    [attachment] = attachments
    assert attachment.get_content_type() == "image/jpeg"
    assert attachment.get_content() == data


def test_html_is_escaped(mail_server: MailServer, photos: LocalPhotoStore) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=mail_server.port, security="none")
    evil = "<script>alert(1)</script>"
    EmailSender(settings, photos, LINKS).send(outgoing(None, case_name=evil, kind="retro"))

    [message] = mail_server.handler.messages
    text, html, attachments = parts(message)
    assert evil not in html
    assert "&lt;script&gt;" in html
    assert evil in text
    assert "seen earlier" in str(message["Subject"])
    assert attachments == []


def test_a_missing_snapshot_still_sends_the_email(
    mail_server: MailServer, photos: LocalPhotoStore
) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=mail_server.port, security="none")
    EmailSender(settings, photos, LINKS).send(outgoing("snapshots/ab/gone.jpg"))
    [message] = mail_server.handler.messages
    assert parts(message)[2] == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_and_auth(
    certificate: Certificate,
    photos: LocalPhotoStore,
    snapshot: tuple[str, bytes],
    mechanism: str,
) -> None:
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    server = MailServer(
        free_port(),
        kwargs={
            "tls_context": certificate.server_context(),
            "require_starttls": True,
            "auth_required": True,
            "authenticator": authenticator,
            "auth_exclude_mechanism": [other],
        },
    )
    server.start()
    try:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=server.port,
            security="starttls",
            username=SMTP_USER,
            password=SecretStr(SMTP_PASSWORD),
        )
        sender = EmailSender(settings, photos, LINKS, tls_context=certificate.client_context())
        sender.send(outgoing(snapshot[0]))
        assert len(server.handler.messages) == 1

        wrong = settings.model_copy(update={"password": SecretStr("wrong")})
        with pytest.raises(DeliveryError, match="535") as caught:
            EmailSender(wrong, photos, LINKS, tls_context=certificate.client_context()).send(
                outgoing(None)
            )
        assert not caught.value.permanent  # a fixed password makes the retry work

        # The default context trusts only real CAs: the self-signed server is refused.
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            EmailSender(settings, photos, LINKS).send(outgoing(None))
        assert len(server.handler.messages) == 1
    finally:
        server.stop()


def test_implicit_tls_with_auth(certificate: Certificate, photos: LocalPhotoStore) -> None:
    server = MailServer(
        free_port(),
        kwargs={
            "ssl_context": certificate.server_context(),
            "auth_required": True,
            "authenticator": authenticator,
            # aiosmtpd only counts STARTTLS as TLS; this whole connection is TLS already.
            "auth_require_tls": False,
        },
    )
    server.start()
    try:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=server.port,
            security="ssl",
            username=SMTP_USER,
            password=SecretStr(SMTP_PASSWORD),
        )
        EmailSender(settings, photos, LINKS, tls_context=certificate.client_context()).send(
            outgoing(None)
        )
        [message] = server.handler.messages
        assert message["X-OneEye-Notification"] == "41"
    finally:
        server.stop()


def test_a_refused_recipient_fails_for_good(
    mail_server: MailServer, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    mail_server.handler.refuse.add("nobody@example.org")
    subscription = add_subscription(sqlite_db, "email", "nobody@example.org")
    [row_id] = add_notifications(sqlite_db, subscription, "email", "nobody@example.org")
    service = make_service(sqlite_db, photos, settings_for(smtp_port=mail_server.port))
    try:
        assert service.deliver_due() == 0
    finally:
        service.stop()
    row = rows(sqlite_db)[row_id]
    assert row.status == "failed"
    assert row.attempts == 1
    assert row.last_error is not None
    assert "550" in row.last_error
    assert mail_server.handler.messages == []


def test_no_smtp_host_is_an_error_not_a_crash(photos: LocalPhotoStore) -> None:
    with pytest.raises(DeliveryError, match="not configured"):
        EmailSender(SmtpSettings(), photos, LINKS).send(outgoing(None))


# Header values built from names ----------------------------------------------------------


@pytest.mark.parametrize(
    ("case_name", "camera_name", "subject"),
    [
        (
            "Ana\r\nBcc: victim@evil.example",
            "Lobby",
            "OneEye alert: Ana Bcc: victim@evil.example seen at Lobby",
        ),
        ("Ana", "Lobby\nX-Injected: yes", "OneEye alert: Ana seen at Lobby X-Injected: yes"),
        ("Ana\rExample", "Front\x00door", "OneEye alert: Ana Example seen at Front door"),
        (
            "Ana\x85Example\u2028",
            "Lobby\u2029\x1b[2J",
            "OneEye alert: Ana Example seen at Lobby [2J",
        ),
        ("Ana \u202eelpmaxE", "Lobby\t\t2", "OneEye alert: Ana elpmaxE seen at Lobby 2"),
    ],
)
def test_control_characters_in_names_neither_stop_the_email_nor_add_headers(
    mail_server: MailServer,
    photos: LocalPhotoStore,
    case_name: str,
    camera_name: str,
    subject: str,
) -> None:
    settings = SmtpSettings(
        host="127.0.0.1",
        port=mail_server.port,
        security="none",
        sender="OneEye\r\nBcc: also@evil.example <alerts@oneeye.test>",
    )
    EmailSender(settings, photos, LINKS).send(
        outgoing(None, case_name=case_name, camera_name=camera_name)
    )
    [message] = mail_server.handler.messages
    assert message["Subject"] == subject
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    assert mail_server.handler.envelopes[0][1] == ["officer@example.org"]
    assert "\n" not in str(message["From"])
    text, _, _ = parts(message)
    assert "Ana" in text


def test_an_email_that_cannot_be_composed_fails_for_good_with_a_short_reason(
    mail_server: MailServer,
    photos: LocalPhotoStore,
    sqlite_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A recipient with a line break (a row from before addresses were checked) cannot be
    put in a header: the row fails at once, says why, and nothing is sent; the log shows the
    address masked."""
    address = "officer@example.org\r\nBcc: victim@evil.example"
    subscription = add_subscription(sqlite_db, "email", address)
    [row_id] = add_notifications(sqlite_db, subscription, "email", address)
    service = make_service(sqlite_db, photos, settings_for(smtp_port=mail_server.port))
    try:
        assert service.deliver_due() == 0
    finally:
        service.stop()
    row = rows(sqlite_db)[row_id]
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == (
        "the email cannot be composed "
        "(ValueError: the recipient address contains control characters)"
    )
    assert mail_server.handler.messages == []
    assert "officer@example.org" not in caplog.text
    assert "(email to o***@" in caplog.text
