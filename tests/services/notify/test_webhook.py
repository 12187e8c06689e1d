"""Signed webhooks to a real local HTTP server that checks them with ``verify_signature``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest

from oneeye.services.events import EventHub
from oneeye.services.notify import verify_signature
from oneeye.services.notify.webhook import sign
from oneeye.services.outbound import OutboundGuard
from oneeye.store.db import Database
from oneeye.store.photos import LocalPhotoStore
from tests.services.internal import SECRET_REPLY, InternalService
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


# Outbound requests: internal services, rebinding, redirects, reply bodies --------------------


@pytest.fixture
def internal() -> Iterator[InternalService]:
    """A service inside the network that answers with a secret; it must receive nothing."""
    service = InternalService()
    yield service
    service.close()


def test_a_webhook_to_an_internal_service_fails_once_and_sends_nothing(
    internal: InternalService,
    photos: LocalPhotoStore,
    sqlite_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A subscription to an internal URL (made before subscriptions were checked): the row
    is refused at send time, for good, after one attempt; no byte reaches the service."""
    url = internal.url + "/internal-admin"
    subscription = add_subscription(sqlite_db, "webhook", url, secret=SECRET)
    [row_id] = add_notifications(sqlite_db, subscription, "webhook", url)
    service = make_service(sqlite_db, photos, settings_for(), outbound=OutboundGuard())
    assert service.deliver_due() == 0
    service.stop()
    assert internal.received() == []
    row = rows(sqlite_db)[row_id]
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == "refused: 127.0.0.1 is a loopback address"
    assert "internal-admin" not in caplog.text


def test_dns_rebinding_is_refused_when_the_webhook_is_sent(
    internal: InternalService, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    """The URL's name resolved to a public address when it was subscribed and resolves to
    127.0.0.1 when the notification goes out."""
    answers = iter([["93.184.215.14"]])
    guard = OutboundGuard(resolve=lambda host, port: next(answers, ["127.0.0.1"]))
    url = f"http://hooks.rebind.example:{internal.port}/internal-admin"
    assert guard.check_url(url).addresses == ("93.184.215.14",)  # what subscribing checks
    subscription = add_subscription(sqlite_db, "webhook", url, secret=SECRET)
    [row_id] = add_notifications(sqlite_db, subscription, "webhook", url)
    service = make_service(sqlite_db, photos, settings_for(), outbound=guard)
    assert service.deliver_due() == 0
    service.stop()
    assert internal.received() == []
    row = rows(sqlite_db)[row_id]
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error == (
        "refused: hooks.rebind.example resolves to 127.0.0.1, a loopback address"
    )


def test_a_redirect_to_an_internal_service_is_a_failure_not_a_request(
    internal: InternalService, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    """An allowed receiver (127.0.0.2 stands in for a public one) redirects to the internal
    service: the redirect is not followed and the row fails with the status only."""
    outside = InternalService("127.0.0.2", redirect_to=internal.url + "/internal-admin")
    try:
        url = outside.url + "/hook"
        subscription = add_subscription(sqlite_db, "webhook", url, secret=SECRET)
        [row_id] = add_notifications(sqlite_db, subscription, "webhook", url)
        guard = OutboundGuard(["127.0.0.2"])
        service = make_service(sqlite_db, photos, settings_for(), outbound=guard)
        assert service.deliver_due() == 0
        service.stop()
        assert len(outside.received()) == 1
        assert internal.received() == []
        row = rows(sqlite_db)[row_id]
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.last_error == "webhook 127.0.0.2 answered HTTP 302 (redirects are not followed)"
    finally:
        outside.close()


def test_a_reply_body_is_never_stored_logged_or_announced(
    photos: LocalPhotoStore, sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver that fails with a body: the row, the log and the dashboard event carry the
    status only; the path and query (tokens) stay out of the log."""
    failing = InternalService(status=500)
    try:
        url = failing.url + "/hook?token=tok-123"
        subscription = add_subscription(sqlite_db, "webhook", url, secret=SECRET)
        [row_id] = add_notifications(sqlite_db, subscription, "webhook", url)
        events = EventHub(sqlite_db, 100)
        service = make_service(
            sqlite_db, photos, settings_for(max_attempts=2, backoff_initial=0.01), events=events
        )
        caplog.set_level(logging.INFO)
        for _ in range(100):  # two attempts, 10 ms apart
            service.deliver_due()
            if rows(sqlite_db)[row_id].status == "failed":
                break
            time.sleep(0.02)
        service.stop()
        assert len(failing.received()) == 2
        row = rows(sqlite_db)[row_id]
        assert (row.status, row.attempts) == ("failed", 2)
        assert row.last_error == "webhook 127.0.0.1 answered HTTP 500"
        [event] = [e for e in events.since(0, "viewer") if e.type == "notify.failed"]
        assert event.payload["error"] == row.last_error
        # OneEye's own lines (the CLI keeps httpx's per-request URL lines out of the log).
        logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("oneeye"))
        assert "webhook 127.0.0.1 answered HTTP 500" in logged
        assert SECRET_REPLY.decode() not in logged
        assert "tok-123" not in logged
        assert "/hook" not in logged
    finally:
        failing.close()
