"""Alert text messages posted to a real local HTTP gateway: Twilio's form shape with basic
auth, the JSON shape, the body template with a signed link, retries and refusals."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from oneeye.services.notify import LinkSigner
from oneeye.services.notify.sms import render
from oneeye.services.outbound import OutboundGuard
from oneeye.store.db import Database
from oneeye.store.photos import LocalPhotoStore
from tests.services.notify.receivers import (
    PUBLIC_URL,
    SECRET_KEY,
    HttpReceiver,
    add_notifications,
    add_subscription,
    basic_auth,
    deliver_until,
    make_service,
    rows,
    settings_for,
)

PHONE = "+15557654321"


def test_twilio_form_post_with_basic_auth_and_a_signed_link(
    http_receiver: HttpReceiver,
    photos: LocalPhotoStore,
    sqlite_db: Database,
    snapshot: tuple[str, bytes],
) -> None:
    url = http_receiver.url + "/2010-04-01/Accounts/AC123/Messages.json"
    subscription = add_subscription(sqlite_db, "sms", PHONE)
    [row_id] = add_notifications(sqlite_db, subscription, "sms", PHONE, snapshot_key=snapshot[0])
    service = make_service(sqlite_db, photos, settings_for(sms_url=url))
    assert service.deliver_due() == 1
    service.stop()

    [request] = http_receiver.requests
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert basic_auth(request.headers["authorization"]) == ("AC123", "tw-token")
    assert request.headers["x-oneeye-notification"] == str(row_id)
    form = parse_qs(request.body.decode())
    assert form["To"] == [PHONE]
    assert form["From"] == ["+15550001111"]
    [body] = form["Body"]
    assert body.startswith("OneEye alert: Ana Example seen at Lobby (Main St branch) at ")
    link = body.split()[-1]
    assert link.startswith(PUBLIC_URL + "/api/v1/links/snapshot?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["key"] == snapshot[0]
    LinkSigner(SECRET_KEY, PUBLIC_URL).verify(query["key"], int(query["exp"]), query["sig"])
    assert rows(sqlite_db)[row_id].status == "sent"


def test_json_format_and_a_custom_template(
    http_receiver: HttpReceiver, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    settings = settings_for(sms_url=http_receiver.url + "/send")
    settings.sms.format = "json"
    settings.sms.body_template = "{person} @ {camera}, {time}; see {case_url} {unknown}"
    subscription = add_subscription(sqlite_db, "sms", PHONE)
    add_notifications(sqlite_db, subscription, "sms", PHONE)
    service = make_service(sqlite_db, photos, settings)
    assert service.deliver_due() == 1
    service.stop()

    [request] = http_receiver.requests
    assert request.headers["content-type"] == "application/json"
    data = json.loads(request.body)
    assert data["to"] == PHONE
    assert data["from"] == "+15550001111"
    assert data["body"] == (
        f"Ana Example @ Lobby, 2026-11-26 08:30:00 UTC; see {PUBLIC_URL}/cases/{'c' * 32} "
        "{unknown}"
    )


def test_a_gateway_error_is_retried_then_delivered_once(
    http_receiver: HttpReceiver, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    http_receiver.statuses = [503, 429]
    subscription = add_subscription(sqlite_db, "sms", PHONE)
    [row_id] = add_notifications(sqlite_db, subscription, "sms", PHONE)
    service = make_service(sqlite_db, photos, settings_for(sms_url=http_receiver.url))
    assert service.deliver_due() == 0  # 503
    row = rows(sqlite_db)[row_id]
    assert row.status == "pending"
    assert row.attempts == 1
    assert "HTTP 503" in (row.last_error or "")
    assert deliver_until(service, 1) == 1
    service.stop()
    assert len(http_receiver.requests) == 1
    row = rows(sqlite_db)[row_id]
    assert row.status == "sent"
    assert row.attempts == 3


def test_a_rejected_request_is_not_retried(
    http_receiver: HttpReceiver, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    http_receiver.statuses = [400]
    subscription = add_subscription(sqlite_db, "sms", "not-a-number")
    [row_id] = add_notifications(sqlite_db, subscription, "sms", "not-a-number")
    service = make_service(sqlite_db, photos, settings_for(sms_url=http_receiver.url))
    assert service.deliver_due() == 0
    service.stop()
    row = rows(sqlite_db)[row_id]
    assert row.status == "failed"
    assert row.attempts == 1
    assert "HTTP 400" in (row.last_error or "")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{person} at {camera}", "Ana at Lobby"),
        ("{person} {nope}", "Ana {nope}"),
        ("unpaired { brace {person}", "unpaired { brace {person}"),
        ("{person!r}", "'Ana'"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, {"person": "Ana", "camera": "Lobby"}) == expected


def test_a_gateway_inside_the_network_is_used_only_when_allowed(
    http_receiver: HttpReceiver, photos: LocalPhotoStore, sqlite_db: Database
) -> None:
    """The gateway listens on loopback (standing in for an internal host): without the
    operator's allow-list every message fails at once with the reason, nothing is posted;
    with it, the message goes out."""
    url = http_receiver.url + "/send"
    subscription = add_subscription(sqlite_db, "sms", PHONE)
    [refused] = add_notifications(sqlite_db, subscription, "sms", PHONE)
    strict = make_service(sqlite_db, photos, settings_for(sms_url=url), outbound=OutboundGuard())
    assert strict.deliver_due() == 0
    strict.stop()
    assert http_receiver.requests == []
    row = rows(sqlite_db)[refused]
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error is not None
    assert row.last_error.startswith("SMS gateway refused: 127.0.0.1 is a loopback address")
    assert "ONEEYE_OUTBOUND__ALLOW_INTERNAL" in row.last_error

    [allowed] = add_notifications(sqlite_db, subscription, "sms", PHONE)
    guard = OutboundGuard(["127.0.0.1/32"])
    service = make_service(sqlite_db, photos, settings_for(sms_url=url), outbound=guard)
    assert service.deliver_due() == 1
    service.stop()
    assert len(http_receiver.requests) == 1
    assert rows(sqlite_db)[allowed].status == "sent"
