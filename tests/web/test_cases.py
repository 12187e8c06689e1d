"""The cases and subscriptions API on a started server: filing from real photos, the face
live for identification at once and gone on resolve (SQLite and PostgreSQL), bad uploads
refused with the reason and nothing stored, the instant photo check, and who may do what."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from oneeye.app import OneEyeApp
from oneeye.config import ServeSettings
from oneeye.services.alerts import AlertService
from oneeye.services.enrolment import encode_jpeg
from oneeye.store.models import AlertCase, FaceTemplate, Person, Subscription
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader, side_by_side
from tests.web.conftest import PASSWORD, ClientFor, login
from tests.web.helpers import alerts_of, key_client

API = "/api/v1"
CASES = f"{API}/cases"
SUBSCRIPTIONS = f"{API}/subscriptions"


@pytest.fixture
def alerts(server: OneEyeApp) -> Iterator[AlertService]:
    service = alerts_of(server)
    yield service
    service.stop()


def files(*photos: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart files: the first as ``photo``, the rest as ``photos``."""
    return [
        ("photo" if i == 0 else "photos", (name, data, "image/jpeg"))
        for i, (name, data) in enumerate(photos)
    ]


def real(face_photos: Path, name: str) -> tuple[str, bytes]:
    return name, (face_photos / name).read_bytes()


def stored(app: OneEyeApp) -> tuple[int, int, int, int]:
    """(cases, persons, templates, photo files)."""
    with app.services.db.session() as session:
        counts = tuple(
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (AlertCase, Person, FaceTemplate)
        )
    root = app.settings.resolved_photos_dir()
    files = sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0
    return counts[0], counts[1], counts[2], files


def identified(client: TestClient, face_photos: Path, name: str) -> str | None:
    response = client.post(f"{API}/identify", files={"file": real(face_photos, name)})
    assert response.status_code == 200, response.text
    [face] = response.json()["faces"]
    person: str | None = face["person_id"]
    return person


def error_of(response: Any) -> str:
    message: str = response.json()["error"]["message"]
    return message


@pytest.mark.slow
def test_a_filed_case_is_live_at_once_and_gone_when_resolved(
    server_any_db: OneEyeApp, face_photos: Path
) -> None:
    service = alerts_of(server_any_db)
    for name, role in (("rita", "reporter"), ("vic", "viewer")):
        server_any_db.services.auth.create_user(name, PASSWORD, role)
    with TestClient(server_any_db.web) as reporter, TestClient(server_any_db.web) as viewer:
        login(reporter, "rita")
        login(viewer, "vic")
        searcher = key_client(server_any_db, "teller")  # a face search needs teller
        assert identified(searcher, face_photos, "obama.jpg") is None
        response = reporter.post(
            CASES,
            data={"name": "Barack Obama", "description": "grey suit", "contact": "+15551234567"},
            files=files(real(face_photos, "obama2.jpg"), real(face_photos, "obama3.jpg")),
        )
        assert response.status_code == 201, response.text
        case = response.json()
        assert case["status"] == "active"
        assert case["reporter"] == "user:rita"
        assert len(case["photo_urls"]) == 2
        assert case["timeline"] == []
        expires = datetime.fromisoformat(case["expires_at"])
        assert expires - datetime.now(UTC) == pytest.approx(
            timedelta(hours=72), abs=timedelta(minutes=1)
        )
        # Every camera's gallery knows the face now (another photo of the person).
        assert identified(searcher, face_photos, "obama.jpg") == case["person_id"]

        listed = viewer.get(CASES, params={"status": "active"})
        assert [c["id"] for c in listed.json()] == [case["id"]]
        assert viewer.get(CASES, params={"status": "resolved"}).json() == []
        one = viewer.get(f"{CASES}/{case['id']}")
        assert one.status_code == 200
        assert one.json()["description"] == "grey suit"

        resolved = reporter.post(f"{CASES}/{case['id']}/resolve")
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["status"] == "resolved"
        assert resolved.json()["closed_by"] == "user:rita"
        assert identified(searcher, face_photos, "obama.jpg") is None
        again = reporter.post(f"{CASES}/{case['id']}/resolve")
        assert again.status_code == 409
        assert "already resolved" in error_of(again)
        missing = viewer.get(f"{CASES}/{'0' * 32}")
        assert missing.status_code == 404
        assert "no case with id" in error_of(missing)
    service.stop()


@pytest.mark.slow
def test_bad_uploads_are_refused_with_the_reason_and_store_nothing(
    server: OneEyeApp,
    alerts: AlertService,
    client_for: ClientFor,
    face_photos: Path,
    load_photo: PhotoLoader,
) -> None:
    reporter = client_for("reporter")
    good = real(face_photos, "obama2.jpg")
    two = encode_jpeg(side_by_side(load_photo("obama.jpg"), load_photo("biden.jpg")))
    blank = encode_jpeg(np.full((300, 300, 3), 200, dtype=np.uint8))
    bad = [
        ([("notes.txt", b"just some text")], 400, "notes.txt: not an image"),
        ([("cut.jpg", good[1][:4000])], 400, "truncated"),
        ([real(face_photos, "obama.jpg")], 413, "the limit is 250,000 bytes"),
        ([("blank.jpg", blank)], 422, "blank.jpg: no face found"),
        ([("two.jpg", two)], 422, "two.jpg: found 2 faces; an enrolment photo must show"),
        ([good, ("two.jpg", two)], 422, "two.jpg: found 2 faces"),
        ([good] * 11, 400, "at most 10 photos"),
    ]
    before = stored(server)
    assert before == (0, 0, 0, 0)
    limit = alerts.enrolment.max_upload_bytes
    for photos, status, message in bad:
        big = photos[0][0] == "obama.jpg"
        alerts.enrolment.max_upload_bytes = 250_000 if big else limit
        response = reporter.post(CASES, data={"name": "Someone"}, files=files(*photos))
        assert response.status_code == status, (photos[-1][0], response.text)
        assert message in error_of(response)
        assert stored(server) == before, photos[-1][0]
    alerts.enrolment.max_upload_bytes = limit
    no_photo = reporter.post(CASES, data={"name": "Someone"})
    assert no_photo.status_code == 422
    no_name = reporter.post(CASES, data={"name": ""}, files=files(good))
    assert no_name.status_code == 422
    assert stored(server) == before
    assert len(server.services.gallery) == 0


@pytest.mark.slow
def test_check_photo_answers_at_once_and_stores_nothing(
    server: OneEyeApp,
    alerts: AlertService,
    client_for: ClientFor,
    face_photos: Path,
    load_photo: PhotoLoader,
) -> None:
    reporter = client_for("reporter")
    ok = reporter.post(f"{CASES}/check-photo", files=files(real(face_photos, "obama.jpg")))
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["usable"] is True
    assert body["reason"] is None
    assert body["box"]["bottom"] > body["box"]["top"]
    assert 0.0 < body["quality"] <= 1.0
    two = encode_jpeg(side_by_side(load_photo("obama.jpg"), load_photo("biden.jpg")))
    refused = reporter.post(f"{CASES}/check-photo", files=files(("two.jpg", two)))
    assert refused.json() == {
        "usable": False,
        "reason": "two.jpg: found 2 faces; an enrolment photo must show exactly one person",
        "box": None,
        "quality": None,
        "advice": "This photo shows more than one person. Please choose a photo where only "
        "your child's face is visible.",
    }
    text = reporter.post(f"{CASES}/check-photo", files=files(("a.txt", b"hello")))
    assert text.json()["usable"] is False
    assert "not an image" in text.json()["reason"]
    assert stored(server) == (0, 0, 0, 0)


@pytest.mark.slow
def test_roles_and_subscriptions(
    server: OneEyeApp,
    alerts: AlertService,
    client_for: ClientFor,
    anonymous: TestClient,
    face_photos: Path,
) -> None:
    viewer, reporter, admin = client_for("viewer"), client_for("reporter"), client_for("admin")
    photo = files(real(face_photos, "obama2.jpg"))
    refused = viewer.post(CASES, data={"name": "Barack Obama"}, files=photo)
    assert refused.status_code == 403
    assert "needs the reporter role" in error_of(refused)
    assert viewer.post(f"{CASES}/check-photo", files=photo).status_code == 403
    assert anonymous.get(CASES).status_code == 401
    assert stored(server)[0] == 0

    filed = reporter.post(CASES, data={"name": "Barack Obama", "expires_hours": "2"}, files=photo)
    assert filed.status_code == 201, filed.text
    case = filed.json()
    expires = datetime.fromisoformat(case["expires_at"])
    assert expires - datetime.now(UTC) == pytest.approx(
        timedelta(hours=2), abs=timedelta(minutes=1)
    )
    assert viewer.get(f"{CASES}/{case['id']}").status_code == 200
    assert viewer.post(f"{CASES}/{case['id']}/resolve").status_code == 403

    # A reporter subscribes to the case; a webhook's secret is shown once.
    hook = reporter.post(
        f"{CASES}/{case['id']}/subscriptions",
        json={"channel": "webhook", "address": "https://hooks.example.org/oneeye"},
    )
    assert hook.status_code == 201, hook.text
    assert len(hook.json()["secret"]) >= 32
    assert hook.json()["case_id"] == case["id"]
    email = reporter.post(
        f"{CASES}/{case['id']}/subscriptions",
        json={"channel": "email", "address": "desk@example.org"},
    )
    assert email.json()["secret"] is None
    listed = reporter.get(f"{CASES}/{case['id']}/subscriptions").json()
    assert [s["channel"] for s in listed] == ["webhook", "email"]
    assert all("secret" not in s for s in listed)
    assert viewer.get(f"{CASES}/{case['id']}/subscriptions").status_code == 403
    bad = reporter.post(
        f"{CASES}/{case['id']}/subscriptions", json={"channel": "sms", "address": "call me"}
    )
    assert bad.status_code == 400
    assert "E.164" in error_of(bad)

    # Every case: admin only.
    payload = {"channel": "sms", "address": "+15551234567"}
    assert reporter.post(SUBSCRIPTIONS, json=payload).status_code == 403
    assert reporter.get(SUBSCRIPTIONS).status_code == 403
    everyone = admin.post(SUBSCRIPTIONS, json=payload)
    assert everyone.status_code == 201, everyone.text
    assert everyone.json()["case_id"] is None
    assert [s["id"] for s in admin.get(SUBSCRIPTIONS).json()] == [everyone.json()["id"]]
    removed = reporter.delete(f"{SUBSCRIPTIONS}/{everyone.json()['id']}")
    assert removed.status_code == 403
    assert "admin role" in error_of(removed)
    assert admin.delete(f"{SUBSCRIPTIONS}/{everyone.json()['id']}").status_code == 204
    assert reporter.delete(f"{SUBSCRIPTIONS}/{email.json()['id']}").status_code == 204
    assert reporter.delete(f"{SUBSCRIPTIONS}/{email.json()['id']}").status_code == 404
    with server.services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Subscription)) == 1

    assert reporter.post(f"{CASES}/{case['id']}/resolve").status_code == 200
    closed = reporter.post(
        f"{CASES}/{case['id']}/subscriptions",
        json={"channel": "email", "address": "late@example.org"},
    )
    assert closed.status_code == 409
    assert "resolved" in error_of(closed)


def test_a_report_subscribes_the_reporters_email_and_phone_as_it_is_filed(
    server: OneEyeApp, alerts: AlertService, client_for: ClientFor, face_photos: Path
) -> None:
    """Issue 12, bug 2: the report takes the reporter's email and phone (failed on d82f336:
    the fields were ignored, and a parent had to find the case page to subscribe)."""
    reporter = client_for("reporter")
    photo = files(real(face_photos, "obama2.jpg"))

    # A bad address refuses the whole report: no case, no subscription, nothing stored.
    for fields, status, words in (
        ({"email": "not an address"}, 400, "name@example.org"),
        ({"phone": "call me"}, 400, "E.164"),
        ({"email": "a" * 250 + "@example.org"}, 422, "email"),
        ({"phone": "+1" + "5" * 40}, 422, "phone"),
    ):
        refused = reporter.post(CASES, data={"name": "Barack Obama", **fields}, files=photo)
        assert refused.status_code == status, refused.text
        assert words in error_of(refused)
        assert stored(server) == (0, 0, 0, 0)
        with server.services.db.session() as session:
            assert session.scalar(select(func.count()).select_from(Subscription)) == 0

    filed = reporter.post(
        CASES,
        data={"name": "Barack Obama", "email": " parent@example.org ", "phone": "+44 7700 900123"},
        files=photo,
    )
    assert filed.status_code == 201, filed.text
    case = filed.json()
    listed = reporter.get(f"{CASES}/{case['id']}/subscriptions").json()
    assert [(s["channel"], s["address"], s["masked_address"]) for s in listed] == [
        ("email", "parent@example.org", "p***@example.org"),
        ("sms", "+447700900123", "+44*******123"),
    ]
    assert {s["created_by"] for s in listed} == {case["reporter"]}
    audited = server.services.auth.audit_entries(action="subscription.create")
    assert sorted(a.subject for a in audited) == sorted(str(s["id"]) for s in listed)


def test_a_channel_the_server_has_not_set_up_is_refused(
    tmp_path: Path, face_engine: FaceEngine, face_photos: Path
) -> None:
    """Email without an SMTP server and SMS without a gateway cannot be subscribed to: a clear
    400, nothing stored (failed on d82f336: accepted, then never delivered)."""
    settings = ServeSettings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'oneeye.db'}"
    )
    app = OneEyeApp(settings, engine=face_engine)
    app.start()
    try:
        alerts_of(app)
        app.services.auth.create_user("rita", PASSWORD, "reporter")
        with TestClient(app.web) as reporter:
            login(reporter, "rita")
            photo = files(real(face_photos, "obama2.jpg"))
            refused = reporter.post(
                CASES, data={"name": "Barack Obama", "email": "parent@example.org"}, files=photo
            )
            assert refused.status_code == 400, refused.text
            assert "email is not set up on this server" in error_of(refused)
            assert stored(app) == (0, 0, 0, 0)
            case = reporter.post(CASES, data={"name": "Barack Obama"}, files=photo).json()
            for channel, address, words in (
                ("email", "parent@example.org", "ONEEYE_NOTIFY__SMTP__HOST"),
                ("sms", "+15551234567", "ONEEYE_NOTIFY__SMS__URL"),
            ):
                answer = reporter.post(
                    f"{CASES}/{case['id']}/subscriptions",
                    json={"channel": channel, "address": address},
                )
                assert answer.status_code == 400, answer.text
                assert words in error_of(answer)
            with app.services.db.session() as session:
                assert session.scalar(select(func.count()).select_from(Subscription)) == 0
            hook = reporter.post(
                f"{CASES}/{case['id']}/subscriptions",
                json={"channel": "webhook", "address": "https://hooks.example.org/oneeye"},
            )
            assert hook.status_code == 201, hook.text
            # The pages offer only what can be sent.
            report = reporter.get("/report").text
            assert 'data-testid="report-no-channels"' in report
            assert 'name="email"' not in report
            page = reporter.get(f"/cases/{case['id']}").text
            assert '<option value="email">' not in page
            assert '<option value="webhook">' in page
            assert 'data-testid="subscribe-unset"' in page
    finally:
        app.stop()
