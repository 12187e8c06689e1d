"""The channel registry (every sender by name, built from settings) and the alert payload the
alert service and the senders share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from oneeye.services.notify import CHANNELS, SENDERS, AddressError, AlertPayload, LinkSigner
from oneeye.services.notify.base import SenderContext
from oneeye.services.notify.email import EmailSender
from oneeye.services.notify.senders import (
    check_address,
    check_configured,
    configured_channels,
    make_senders,
    mask_address,
)
from oneeye.store.db import Database
from oneeye.store.models import Notification
from oneeye.store.photos import LocalPhotoStore
from tests.services.notify.receivers import (
    LOOPBACK_ALLOWED,
    PUBLIC_URL,
    SECRET_KEY,
    HttpReceiver,
    add_notifications,
    add_subscription,
    make_service,
    payload,
    rows,
    settings_for,
)


def test_every_channel_is_built_from_the_settings(photos: LocalPhotoStore) -> None:
    settings = settings_for(smtp_port=2525)
    context = SenderContext(settings, photos, LinkSigner(SECRET_KEY, PUBLIC_URL), LOOPBACK_ALLOWED)
    senders = make_senders(context)
    assert set(senders) == set(CHANNELS) >= {"email", "sms", "webhook", "slack"}
    for name, sender in senders.items():
        assert isinstance(sender, SENDERS[name])
        assert sender.channel == name
    email = senders["email"]
    assert isinstance(email, EmailSender)
    assert email.settings.port == 2525
    mine = EmailSender(settings.smtp, photos, context.links)
    assert make_senders(context, {"email": mine})["email"] is mine


@pytest.mark.parametrize(
    ("channel", "address", "masked"),
    [
        ("email", "desk@example.org", "d***@example.org"),
        ("sms", "+442079460958", "+44*******958"),
        ("webhook", "https://hooks.example.org/secret/path", "hooks.example.org"),
        ("slack", "https://hooks.slack.com/services/T0/B0/x", "hooks.slack.com"),
        ("pigeon", "coop 3", "***"),
    ],
)
def test_addresses_are_masked_by_their_channel(channel: str, address: str, masked: str) -> None:
    assert mask_address(channel, address) == masked


def test_an_unknown_channel_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(AddressError, match="email, sms, webhook, slack"):
        check_address("pigeon", "coop 3")
    with pytest.raises(AddressError, match="control characters"):
        check_address("email", "desk@example.org\r\nBcc: x@example.org")


def test_the_payload_is_stored_as_written_and_read_back() -> None:
    seen = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
    alert = AlertPayload(
        case_id="c" * 32,
        case_name="Ana Example",
        camera_id="lobby",
        seen_at=seen,
        distance=0.412,
        sighting_id="s" * 32,
        kind="live",
    )
    stored = alert.to_json()
    assert stored["seen_at"] == "2026-11-26T08:30:00+00:00"
    assert set(stored) == set(payload())
    assert AlertPayload.from_json(stored) == alert


def test_a_row_whose_payload_is_not_an_alert_fails_without_being_sent(
    http_receiver: HttpReceiver, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    subscription = add_subscription(sqlite_db, "slack", http_receiver.url)
    [row_id] = add_notifications(sqlite_db, subscription, "slack", http_receiver.url)
    with sqlite_db.session() as session:
        session.execute(
            update(Notification)
            .where(Notification.id == row_id)
            .values(payload={"seen_at": "the day before yesterday"})
        )
    service = make_service(sqlite_db, photos, settings_for())
    assert service.deliver_due() == 0
    service.stop()
    assert http_receiver.requests == []
    row = rows(sqlite_db)[row_id]
    assert row.status == "failed"
    assert "not an alert" in (row.last_error or "")


@pytest.mark.parametrize(
    ("smtp_port", "sms_url", "offered", "refused"),
    [
        (None, None, ("webhook", "slack"), {"email": "SMTP__HOST", "sms": "SMS__URL"}),
        (2525, None, ("email", "webhook", "slack"), {"sms": "SMS__URL"}),
        (None, "https://sms.example.org/send", ("sms", "webhook", "slack"), {"email": "SMTP"}),
        (2525, "https://sms.example.org/send", ("email", "sms", "webhook", "slack"), {}),
    ],
)
def test_a_channel_that_cannot_send_is_refused(
    smtp_port: int | None, sms_url: str | None, offered: tuple[str, ...], refused: dict[str, str]
) -> None:
    settings = settings_for(smtp_port=smtp_port, sms_url=sms_url)
    assert configured_channels(settings) == offered
    for channel in CHANNELS:
        if channel in refused:
            with pytest.raises(AddressError, match=refused[channel]):
                check_configured(channel, settings)
        else:
            check_configured(channel, settings)
    with pytest.raises(AddressError, match="one of"):
        check_configured("pigeon", settings)
