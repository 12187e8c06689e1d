"""Chat-room alerts (``slack``: Slack/Teams-compatible incoming webhooks) against a real HTTP
receiver on 127.0.0.1, reached because the outbound setting allows that address."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from oneeye.config import OutboundSettings
from oneeye.services.auth import AuthService
from oneeye.services.notify import CHANNELS, AddressError
from oneeye.services.notify.subscriptions import SubscriptionService
from oneeye.services.outbound import OutboundGuard
from oneeye.store.db import Database
from oneeye.store.models import Notification
from oneeye.store.photos import LocalPhotoStore
from tests.services.notify.receivers import (
    PUBLIC_URL,
    HttpReceiver,
    add_notifications,
    add_subscription,
    deliver_until,
    make_service,
    rows,
    settings_for,
)

ALLOW_LOOPBACK = OutboundGuard.from_settings(OutboundSettings(allow_internal=["127.0.0.1"]))


def test_the_alert_arrives_as_chat_text_with_its_links(
    http_receiver: HttpReceiver,
    photos: LocalPhotoStore,
    sqlite_db: Database,
    snapshot: tuple[str, bytes],
) -> None:
    url = http_receiver.url + "/services/T000/B000/XXXX"
    subscription = add_subscription(sqlite_db, "slack", url)
    [row_id] = add_notifications(sqlite_db, subscription, "slack", url, snapshot_key=snapshot[0])
    service = make_service(sqlite_db, photos, settings_for(), outbound=ALLOW_LOOPBACK)
    assert service.deliver_due() == 1
    service.stop()

    [request] = http_receiver.requests
    assert request.path == "/services/T000/B000/XXXX"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-oneeye-notification"] == str(row_id)
    assert "x-oneeye-signature" not in request.headers
    body = json.loads(request.body)
    assert list(body) == ["text"]
    text = body["text"]
    assert text.startswith("*OneEye alert: Ana Example seen at Lobby*")
    assert "Main St branch, 2026-11-26 08:30:00 UTC" in text
    assert "Description: 8 years old, red coat" in text
    assert "Match distance: 0.412" in text
    assert f"Case: {PUBLIC_URL}/cases/{'c' * 32}" in text
    [link] = [line for line in text.splitlines() if line.startswith("Snapshot: ")]
    assert link.startswith(f"Snapshot: {PUBLIC_URL}/api/v1/links/snapshot?key=")
    assert rows(sqlite_db)[row_id].status == "sent"


def test_names_cannot_become_links_or_mentions(
    http_receiver: HttpReceiver, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    subscription = add_subscription(sqlite_db, "slack", http_receiver.url)
    [row_id] = add_notifications(sqlite_db, subscription, "slack", http_receiver.url)
    payload = dict(rows(sqlite_db)[row_id].payload)
    payload["case_name"] = "<!channel> <https://evil.example|click> & co"
    with sqlite_db.session() as session:
        session.execute(
            update(Notification).where(Notification.id == row_id).values(payload=payload)
        )
    service = make_service(sqlite_db, photos, settings_for(), outbound=ALLOW_LOOPBACK)
    assert service.deliver_due() == 1
    service.stop()
    text = json.loads(http_receiver.requests[0].body)["text"]
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; co" in text
    assert "<" not in text
    assert ">" not in text


def test_a_hook_error_is_retried_and_an_internal_hook_is_refused(
    http_receiver: HttpReceiver, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    http_receiver.statuses = [503]
    subscription = add_subscription(sqlite_db, "slack", http_receiver.url)
    [row_id] = add_notifications(sqlite_db, subscription, "slack", http_receiver.url)
    service = make_service(
        sqlite_db, photos, settings_for(backoff_initial=0.0001), outbound=ALLOW_LOOPBACK
    )
    assert deliver_until(service, 1) == 1
    service.stop()
    assert len(http_receiver.requests) == 1
    assert rows(sqlite_db)[row_id].attempts == 2

    # Without the setting, the same receiver is an internal address: refused for good.
    [refused] = add_notifications(sqlite_db, subscription, "slack", http_receiver.url)
    strict = make_service(sqlite_db, photos, settings_for(), outbound=OutboundGuard())
    assert strict.deliver_due() == 0
    strict.stop()
    assert len(http_receiver.requests) == 1
    assert rows(sqlite_db)[refused].status == "failed"


@pytest.mark.parametrize(
    ("address", "guard", "expected"),
    [
        ("https://hooks.slack.com/services/T0/B0/x", OutboundGuard(), None),
        ("ftp://hooks.slack.com/x", OutboundGuard(), "http:// or https:// URL"),
        ("http://127.0.0.1:9/hook", OutboundGuard(), "cannot be used"),
        ("http://127.0.0.1:9/hook", ALLOW_LOOPBACK, None),
    ],
)
def test_subscribing_a_hook_checks_its_url(
    sqlite_db: Database, address: str, guard: OutboundGuard, expected: str | None
) -> None:
    assert "slack" in CHANNELS
    subscriptions = SubscriptionService(sqlite_db, AuthService(sqlite_db), guard)
    if expected is None:
        checked = subscriptions.check("slack", f" {address} ")
        assert (checked.address, checked.secret) == (address, None)
        made = subscriptions.add(checked, actor="user:admin")
        assert [s.id for s in subscriptions.of_case(None)] == [made.id]
    else:
        with pytest.raises(AddressError, match=expected):
            subscriptions.check("slack", address)
