"""The outbox worker against a real SMTP server: exactly once through an outage, across a
restart and with two workers on one database (SQLite and PostgreSQL); backoff, give-up,
cancelled subscriptions, expired leases, and the dashboard's view."""

from __future__ import annotations

import random
import socket
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from oneeye.services.events import EventHub
from oneeye.services.notify.outbox import backoff_delay
from oneeye.store.db import Database
from oneeye.store.models import Notification, Subscription, utcnow
from oneeye.store.photos import LocalPhotoStore
from tests.conftest import free_port, wait_until
from tests.services.notify.receivers import (
    HttpReceiver,
    MailServer,
    add_notifications,
    add_subscription,
    make_service,
    rows,
    settings_for,
)


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(1)
    for attempts, base in [(1, 2.0), (2, 4.0), (3, 8.0), (8, 256.0), (9, 300.0), (30, 300.0)]:
        delays = [backoff_delay(attempts, 2.0, 300.0, rng) for _ in range(200)]
        assert all(0.75 * base <= d <= 1.25 * base for d in delays)
        assert max(delays) - min(delays) > 0.2 * base  # jittered, not one instant


def test_wake_sends_at_once(
    mail_server: MailServer, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    subscription = add_subscription(sqlite_db, "email", "a@example.org")
    service = make_service(
        sqlite_db, photos, settings_for(smtp_port=mail_server.port), poll_interval=30.0
    )
    service.start()
    try:
        time.sleep(0.2)  # the first look found nothing; the next poll is 30 s away
        [row_id] = add_notifications(sqlite_db, subscription, "email", "a@example.org")
        started = time.monotonic()
        service.wake()
        assert wait_until(lambda: len(mail_server.handler.messages) == 1, timeout=5.0)
        assert time.monotonic() - started < 2.0
        assert wait_until(lambda: rows(sqlite_db)[row_id].status == "sent", timeout=10.0)
    finally:
        service.stop()
    row = rows(sqlite_db)[row_id]
    assert row.attempts == 1
    assert row.sent_at is not None
    assert row.lease_until is None
    assert service.stats().as_dict() == {"pending": 0, "sent": 1, "failed": 0, "retrying": 0}


def test_outage_then_every_notification_exactly_once(photos: LocalPhotoStore, db: Database) -> None:
    port = free_port()  # nothing listens yet: the SMTP server is down
    server = MailServer(port)
    subscription = add_subscription(db, "email", "desk@example.org")
    service = make_service(db, photos, settings_for(smtp_port=port))
    service.start()
    try:
        ids = add_notifications(db, subscription, "email", "desk@example.org", count=30)
        service.wake()
        assert wait_until(lambda: service.stats().retrying == 30, timeout=10.0)
        time.sleep(0.5)  # several retries each, all refused
        down = rows(db)
        assert all(r.status == "pending" for r in down.values())
        assert all(r.last_error and "Connection refused" in r.last_error for r in down.values())
        more = add_notifications(db, subscription, "email", "desk@example.org", count=10)
        service.wake()
        server.start()  # the server comes back
        assert wait_until(lambda: service.stats().sent == 40, timeout=20.0)
    finally:
        service.stop()
        server.stop()
    received = server.handler.per_notification()
    assert received == dict.fromkeys(ids + more, 1)
    assert all(r.status == "sent" for r in rows(db).values())


def test_restart_delivers_the_rest_without_duplicates(
    mail_server: MailServer, photos: LocalPhotoStore, db: Database
) -> None:
    subscription = add_subscription(db, "email", "desk@example.org")
    ids = add_notifications(db, subscription, "email", "desk@example.org", count=40)
    settings = settings_for(smtp_port=mail_server.port)
    first = make_service(db, photos, settings, batch_size=5, concurrency=1)
    first.start()
    assert wait_until(lambda: len(mail_server.handler.messages) >= 8, timeout=10.0)
    first.stop()  # mid-way: some sent, the rest pending and not leased
    sent_before = len(mail_server.handler.messages)
    assert 8 <= sent_before < 40
    assert all(r.lease_until is None for r in rows(db).values())

    second_db = Database(str(db.url.render_as_string(hide_password=False)))
    second = make_service(second_db, photos, settings)
    second.start()
    try:
        assert wait_until(lambda: second.stats().sent == 40, timeout=10.0)
    finally:
        second.stop()
        second_db.close()
    assert mail_server.handler.per_notification() == dict.fromkeys(ids, 1)


def test_two_workers_never_send_one_row_twice(
    mail_server: MailServer, photos: LocalPhotoStore, db: Database
) -> None:
    subscription = add_subscription(db, "email", "desk@example.org")
    settings = settings_for(smtp_port=mail_server.port)
    other_db = Database(str(db.url.render_as_string(hide_password=False)))
    workers = [
        make_service(db, photos, settings, batch_size=4),
        make_service(other_db, photos, settings, batch_size=4),
    ]
    for worker in workers:
        worker.start()
    try:
        ids: list[int] = []
        for _ in range(6):
            ids += add_notifications(db, subscription, "email", "desk@example.org", count=10)
            for worker in workers:
                worker.wake()
        assert wait_until(lambda: workers[0].stats().sent == 60, timeout=30.0)
    finally:
        for worker in workers:
            worker.stop()
        other_db.close()
    assert mail_server.handler.per_notification() == dict.fromkeys(ids, 1)


def test_two_workers_race_for_the_same_rows(
    mail_server: MailServer, photos: LocalPhotoStore, db: Database
) -> None:
    """Both call deliver_due at the same moment over the same due rows."""
    subscription = add_subscription(db, "email", "desk@example.org")
    ids = add_notifications(db, subscription, "email", "desk@example.org", count=30)
    settings = settings_for(smtp_port=mail_server.port)
    other_db = Database(str(db.url.render_as_string(hide_password=False)))
    workers = [make_service(db, photos, settings), make_service(other_db, photos, settings)]
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def run(index: int) -> None:
        barrier.wait()
        counts.append(workers[index].deliver_due())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for worker in workers:
        worker.stop()
    other_db.close()
    assert sum(counts) == 30
    assert mail_server.handler.per_notification() == dict.fromkeys(ids, 1)


def test_gives_up_after_max_attempts(photos: LocalPhotoStore, db: Database) -> None:
    events = EventHub(db, 100)
    subscription = add_subscription(db, "email", "desk@example.org")
    [row_id] = add_notifications(db, subscription, "email", "desk@example.org")
    settings = settings_for(smtp_port=free_port(), max_attempts=3, backoff_initial=0.01)
    service = make_service(db, photos, settings, events=events)
    service.start()
    try:
        service.wake()
        assert wait_until(lambda: rows(db)[row_id].status == "failed", timeout=10.0)
    finally:
        service.stop()
    row = rows(db)[row_id]
    assert row.attempts == 3
    assert row.sent_at is None
    assert row.last_error is not None
    assert "Connection refused" in row.last_error
    [failure] = service.failures()
    assert (failure.id, failure.status, failure.attempts) == (row_id, "failed", 3)
    assert failure.next_attempt_at is None
    assert "Connection refused" in failure.last_error
    assert service.stats().as_dict() == {"pending": 0, "sent": 0, "failed": 1, "retrying": 0}
    [event] = [e for e in events.since(0, "viewer") if e.type == "notify.failed"]
    assert event.payload["notification_id"] == row_id
    assert event.payload["attempts"] == 3


def test_a_removed_subscription_is_not_notified(
    mail_server: MailServer, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    paused = add_subscription(sqlite_db, "email", "paused@example.org")
    gone = add_subscription(sqlite_db, "email", "gone@example.org")
    [paused_row] = add_notifications(sqlite_db, paused, "email", "paused@example.org")
    [gone_row] = add_notifications(sqlite_db, gone, "email", "gone@example.org")
    with sqlite_db.session() as session:
        session.execute(update(Subscription).where(Subscription.id == paused).values(active=False))
        session.delete(session.get(Subscription, gone))
    service = make_service(sqlite_db, photos, settings_for(smtp_port=mail_server.port))
    assert service.deliver_due() == 0
    service.stop()
    assert mail_server.handler.messages == []
    for row_id in (paused_row, gone_row):
        row = rows(sqlite_db)[row_id]
        assert row.status == "failed"
        assert "removed or paused" in (row.last_error or "")


def test_a_dead_workers_lease_ends_and_the_row_is_sent(
    mail_server: MailServer, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    subscription = add_subscription(sqlite_db, "email", "desk@example.org")
    [held, expired] = add_notifications(sqlite_db, subscription, "email", "x@example.org", 2)
    with sqlite_db.session() as session:
        now = utcnow()
        session.execute(
            update(Notification)
            .where(Notification.id == held)
            .values(lease_until=now + timedelta(seconds=60))
        )
        session.execute(
            update(Notification)
            .where(Notification.id == expired)
            .values(lease_until=now - timedelta(seconds=1))
        )
    service = make_service(sqlite_db, photos, settings_for(smtp_port=mail_server.port))
    assert service.deliver_due() == 1
    service.stop()
    assert mail_server.handler.per_notification() == {expired: 1}
    assert rows(sqlite_db)[held].status == "pending"


def test_an_unknown_channel_fails_for_good(photos: LocalPhotoStore, sqlite_db: Database) -> None:
    subscription = add_subscription(sqlite_db, "pigeon", "loft 3")
    [row_id] = add_notifications(sqlite_db, subscription, "pigeon", "loft 3")
    service = make_service(sqlite_db, photos, settings_for())
    assert service.deliver_due() == 0
    service.stop()
    row = rows(sqlite_db)[row_id]
    assert row.status == "failed"
    assert "no sender for channel 'pigeon'" in (row.last_error or "")


@pytest.mark.parametrize("count", [0, 3])
def test_deliver_due_returns_the_number_sent(
    mail_server: MailServer, photos: LocalPhotoStore, sqlite_db: Database, count: int
) -> None:
    subscription = add_subscription(sqlite_db, "email", "desk@example.org")
    add_notifications(sqlite_db, subscription, "email", "desk@example.org", count)
    service = make_service(sqlite_db, photos, settings_for(smtp_port=mail_server.port))
    assert service.deliver_due() == count
    assert service.deliver_due() == 0
    service.stop()


def test_a_stopped_service_starts_again(
    mail_server: MailServer, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    subscription = add_subscription(sqlite_db, "email", "desk@example.org")
    service = make_service(sqlite_db, photos, settings_for(smtp_port=mail_server.port))
    service.start()
    service.stop()
    service.stop()  # twice is harmless
    [row_id] = add_notifications(sqlite_db, subscription, "email", "desk@example.org")
    service.start()
    try:
        service.wake()
        assert wait_until(lambda: rows(sqlite_db)[row_id].status == "sent", timeout=10.0)
    finally:
        service.stop()
    assert mail_server.handler.per_notification() == {row_id: 1}


def test_when_the_server_is_back_the_waiting_rows_go_at_once(
    photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    """The first retry that succeeds pulls the other waiting rows forward: the backlog of an
    outage drains without waiting out each row's backoff."""
    port = free_port()
    server = MailServer(port)
    subscription = add_subscription(sqlite_db, "email", "desk@example.org")
    ids = add_notifications(sqlite_db, subscription, "email", "desk@example.org", count=10)
    settings = settings_for(smtp_port=port, backoff_initial=60.0, backoff_max=60.0)
    first = make_service(sqlite_db, photos, settings)
    assert first.deliver_due() == 0  # down: every row waits about a minute now
    assert first.stats().retrying == 10
    first.stop()  # a restart forgets that the server was failing; the rows still wait
    service = make_service(sqlite_db, photos, settings)
    server.start()
    try:
        with sqlite_db.session() as session:  # the first row's backoff ends first
            session.execute(
                update(Notification)
                .where(Notification.id == ids[0])
                .values(next_attempt_at=utcnow())
            )
        service.start()
        assert wait_until(lambda: service.stats().sent == 10, timeout=5.0)
    finally:
        service.stop()
        server.stop()
    assert server.handler.per_notification() == dict.fromkeys(ids, 1)


def test_a_silent_smtp_server_does_not_hold_up_webhooks(
    photos: LocalPhotoStore, sqlite_db: Database, http_receiver: HttpReceiver
) -> None:
    """A server that accepts connections and never answers costs a timeout per attempt; once
    it has failed, its other rows are held back instead of each spending a timeout, so other
    channels go out at once. Proved by counting, not by the clock: the webhook row comes after
    20 email rows, so without holding back it would go out only once all 20 had timed out."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete, nobody ever answers
        port = silent.getsockname()[1]
        # A long backoff: no email row is tried twice during the test, so the attempts counted
        # at the end are the ones made before the webhook went out.
        settings = settings_for(smtp_port=port, backoff_initial=60.0, backoff_max=60.0)
        settings.smtp.timeout = 0.5
        email = add_subscription(sqlite_db, "email", "desk@example.org")
        hook = add_subscription(sqlite_db, "webhook", http_receiver.url, secret="s" * 20)
        emails = add_notifications(sqlite_db, email, "email", "desk@example.org", count=20)
        [webhook] = add_notifications(sqlite_db, hook, "webhook", http_receiver.url)
        service = make_service(sqlite_db, photos, settings, concurrency=4)
        service.start()
        try:
            assert wait_until(lambda: len(http_receiver.requests) == 1, timeout=60.0)
        finally:
            service.stop()  # lets the sends in flight finish
    state = rows(sqlite_db)
    assert state[webhook].status == "sent"
    attempts = sum(state[i].attempts for i in emails)
    # At most one timeout per sending thread before the outage is known, and one probe each.
    assert 1 <= attempts <= 8, f"{attempts} email attempts: the rows were not held back"
    held = [state[i] for i in emails if state[i].attempts == 0]
    assert held
    assert all("not tried yet: email is failing" in (r.last_error or "") for r in held)
    assert service.stats().retrying == 20
