"""The outbox's activity lines: sent, retried, given up; each with the channel and the address
masked, never the address itself."""

from __future__ import annotations

import logging

import pytest

from oneeye.store.db import Database
from oneeye.store.photos import LocalPhotoStore
from tests.conftest import free_port, wait_until
from tests.services.notify.receivers import (
    MailServer,
    add_notifications,
    add_subscription,
    make_service,
    rows,
    settings_for,
)

ADDRESS = "duty-desk@example.org"


def test_a_sent_notification_is_logged_with_its_address_masked(
    mail_server: MailServer,
    photos: LocalPhotoStore,
    sqlite_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="oneeye")
    subscription = add_subscription(sqlite_db, "email", ADDRESS)
    [row_id] = add_notifications(sqlite_db, subscription, "email", ADDRESS)
    service = make_service(sqlite_db, photos, settings_for(smtp_port=mail_server.port))
    service.start()
    try:
        service.wake()
        assert wait_until(lambda: rows(sqlite_db)[row_id].status == "sent", timeout=10.0)
    finally:
        service.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith(f"notification {row_id} sent (email to ") for line in lines), lines
    assert not any(ADDRESS in line for line in lines)


def test_retries_and_giving_up_are_logged_with_the_address_masked(
    photos: LocalPhotoStore, sqlite_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oneeye")
    subscription = add_subscription(sqlite_db, "email", ADDRESS)
    [row_id] = add_notifications(sqlite_db, subscription, "email", ADDRESS)
    settings = settings_for(smtp_port=free_port(), max_attempts=2, backoff_initial=0.01)
    service = make_service(sqlite_db, photos, settings)
    service.start()
    try:
        service.wake()
        assert wait_until(lambda: rows(sqlite_db)[row_id].status == "failed", timeout=10.0)
    finally:
        service.stop()
    lines = [r.getMessage() for r in caplog.records]
    mine = [line for line in lines if line.startswith(f"notification {row_id} (email to ")]
    assert any("attempt 1 of 2" in line for line in mine), lines
    assert any("gave up" in line for line in mine), lines
    assert not any(ADDRESS in line for line in lines)
