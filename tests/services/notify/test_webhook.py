"""Signed webhooks to a real local HTTP server that checks them with ``verify_signature``."""

from __future__ import annotations

import json
import time

import pytest

from oneeye.services.notify import verify_signature
from oneeye.services.notify.webhook import sign
from oneeye.store.db import Database
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

SECRET = "whsec_9f8e7d6c5b4a"


def test_the_receiver_verifies_the_signature(
    http_receiver: HttpReceiver,
    photos: LocalPhotoStore,
    sqlite_db: Database,
    snapshot: tuple[str, bytes],
) -> None:
    url = http_receiver.url + "/hooks/oneeye"
    subscription = add_subscription(sqlite_db, "webhook", url, secret=SECRET)
    [row_id] = add_notifications(sqlite_db, subscription, "webhook", url, snapshot_key=snapshot[0])
    service = make_service(sqlite_db, photos, settings_for())
    assert service.deliver_due() == 1
    service.stop()

    [request] = http_receiver.requests
    timestamp = request.headers["x-oneeye-timestamp"]
    signature = request.headers["x-oneeye-signature"]
    assert signature.startswith("sha256=")
    assert abs(int(timestamp) - time.time()) < 60
    assert verify_signature(SECRET, timestamp, request.body, signature)
    assert not verify_signature("another secret", timestamp, request.body, signature)
    assert not verify_signature(SECRET, timestamp, request.body + b" ", signature)
    assert not verify_signature(SECRET, str(int(timestamp) + 1), request.body, signature)

    data = json.loads(request.body)
    assert data["notification_id"] == row_id
    assert data["event"] == "alert.sighting"
    assert data["case_name"] == "Ana Example"
    assert data["camera_name"] == "Lobby"
    assert data["snapshot_key"] == snapshot[0]
    assert data["snapshot_url"].startswith(PUBLIC_URL + "/api/v1/links/snapshot?key=")
    assert request.headers["x-oneeye-notification"] == str(row_id)
    assert rows(sqlite_db)[row_id].status == "sent"


def test_a_receiver_error_is_retried_with_the_same_notification_id(
    http_receiver: HttpReceiver, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    http_receiver.statuses = [500]
    url = http_receiver.url + "/hook"
    subscription = add_subscription(sqlite_db, "webhook", url, secret=SECRET)
    [row_id] = add_notifications(sqlite_db, subscription, "webhook", url)
    service = make_service(sqlite_db, photos, settings_for(backoff_initial=0.0001))
    assert deliver_until(service, 1) == 1
    service.stop()
    [request] = http_receiver.requests
    assert request.headers["x-oneeye-notification"] == str(row_id)
    row = rows(sqlite_db)[row_id]
    assert row.status == "sent"
    assert row.attempts == 2


def test_without_a_secret_nothing_is_sent(
    http_receiver: HttpReceiver, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    subscription = add_subscription(sqlite_db, "webhook", http_receiver.url)
    [row_id] = add_notifications(sqlite_db, subscription, "webhook", http_receiver.url)
    service = make_service(sqlite_db, photos, settings_for())
    assert service.deliver_due() == 0
    service.stop()
    assert http_receiver.requests == []
    row = rows(sqlite_db)[row_id]
    assert row.status == "failed"
    assert "no secret" in (row.last_error or "")


@pytest.mark.parametrize(
    ("timestamp", "header", "now", "expected"),
    [
        ("1000", sign(SECRET, "1000", "{}"), 1000.0, True),
        ("1000", sign(SECRET, "1000", "{}"), 1300.0, True),
        ("1000", sign(SECRET, "1000", "{}"), 1301.0, False),  # too old: a replay
        ("1000", sign(SECRET, "1000", "{}"), 699.0, False),  # from the future
        ("1000", sign(SECRET, "1000", "{}").removeprefix("sha256="), 1000.0, False),
        (None, sign(SECRET, "1000", "{}"), 1000.0, False),
        ("1000", None, 1000.0, False),
        ("soon", sign(SECRET, "soon", "{}"), 1000.0, False),
    ],
)
def test_verify_signature(
    timestamp: str | None, header: str | None, now: float, expected: bool
) -> None:
    assert verify_signature(SECRET, timestamp, b"{}", header, 300.0, now=now) is expected
