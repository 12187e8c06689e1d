"""The Amber Alert pages on a started server (TestClient): who may open the report page, the
cases list and a case's page with its timeline (a retro match and a live one, from real photos
through the sightings consumer), contact details and subscribers only for tellers and above and
the filer, the resolve button and subscription controls only for the filer, coordinators and
admins, the Approve button for coordinators, a reporter's own cases only, the dashboard's banner
for a recent match, and notifications that could not be delivered."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from oneeye.app import OneEyeApp
from oneeye.services.alerts import AlertService, CaseInfo
from oneeye.services.cameras import CameraConfig
from oneeye.store.models import CaseMatch, Notification, Sighting, new_id
from oneeye.store.photos import snapshot_kind
from oneeye.vision.engine import FaceEngine
from oneeye.web.pages import cases as pages
from tests.web.conftest import ClientFor
from tests.web.helpers import alerts_of, publish, sighting, wait_for

API = "/api/v1"


def count(app: OneEyeApp, model: type[Any]) -> int:
    with app.services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def count_testid(html: str, name: str) -> int:
    return len(re.findall(rf'data-testid="{re.escape(name)}"', html))


def case_with_sightings(
    app: OneEyeApp, face_photos: Path, engine: FaceEngine, filer: str | None = None
) -> tuple[CaseInfo, AlertService]:
    """Obama filed as a case (obama2.jpg) after an unknown face of his was seen at the front
    door 20 minutes earlier (a retro match), then seen live there (a live match, with a
    snapshot). Filed by the user named ``filer`` if given (else by "rita", who has no
    account: only coordinators and admins may act on it)."""
    alerts = alerts_of(app)
    s = app.services
    s.cameras.add(CameraConfig(id="door", name="Front door", source=str(face_photos / "none")))
    photo = (face_photos / "obama2.jpg").read_bytes()
    embedding = engine.enrolment_face(s.enrolment.decode_upload(photo, "obama2.jpg")).embedding
    earlier = datetime.now(UTC) - timedelta(minutes=20, seconds=30)
    snapshot = s.photos.add(snapshot_kind("door"), photo, "jpg")
    publish(
        app,
        sighting(
            "door",
            None,
            earlier,
            embedding=[float(x) for x in embedding],
            snapshot_key=snapshot,
        ),
    )
    wait_for(lambda: count(app, Sighting) == 1, "the unknown face to be stored")
    filed_by = None if filer is None else f"user:{s.auth.user_named(filer).id}"
    case = alerts.create_case(
        "Barack Obama",
        "grey suit, blue tie",
        "+15551234567",
        [(photo, "obama2.jpg")],
        actor=f"user:{filer or 'rita'}",
        filed_by=filed_by,
    )
    assert case.matches == 1, "the retro-search found the earlier unknown face"
    assert case.person_id is not None
    live = s.photos.add(snapshot_kind("door"), photo, "jpg")
    publish(app, sighting("door", case.person_id, datetime.now(UTC), snapshot_key=live))
    wait_for(lambda: count(app, CaseMatch) == 2, "the live match")
    return alerts.case(case.id), alerts


# words ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (0, "less than a minute"),
        (1, "1 minute"),
        (20, "20 minutes"),
        (119, "119 minutes"),
        (120, "2 hours"),
        (135, "2 h 15 min"),
    ],
)
def test_span_says_how_long(minutes: int, expected: str) -> None:
    assert pages.span(minutes) == expected


def test_a_retro_match_says_how_long_before_the_case_was_filed() -> None:
    filed = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    seen = filed - timedelta(minutes=20, seconds=40)
    assert pages.sighting_label("retro", "Lobby", seen, filed) == (
        "seen at Lobby, 20 minutes before the case was filed"
    )
    assert pages.sighting_label("live", "Lobby", filed, filed) == "seen at Lobby"
    # A naive time from the database is UTC.
    naive = seen.replace(tzinfo=None)
    assert pages.sighting_label("retro", "Lobby", naive, filed).endswith(
        "20 minutes before the case was filed"
    )


# who may see what ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "can_report"),
    [("viewer", False), ("reporter", True), ("teller", True), ("admin", True)],
)
def test_the_nav_links_to_cases_and_to_report_for_reporters(
    server: OneEyeApp, client_for: ClientFor, role: str, can_report: bool
) -> None:
    alerts_of(server)
    page = client_for(role).get("/")
    assert page.status_code == 200
    assert count_testid(page.text, "nav-cases") == 1
    assert count_testid(page.text, "nav-report") == int(can_report)


def test_the_report_page_is_for_reporters_and_opens_the_camera(
    server: OneEyeApp, client_for: ClientFor, anonymous: TestClient
) -> None:
    alerts_of(server)
    away = anonymous.get("/report", follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=%2Freport"

    refused = client_for("viewer").get("/report")
    assert refused.status_code == 403
    assert "needs the <strong>reporter</strong> role" in refused.text

    for role in ("reporter", "teller", "admin"):
        page = client_for(role).get("/report")
        assert page.status_code == 200, role
        html = page.text
        assert re.search(
            r'<input[^>]*type="file"[^>]*accept="image/\*"[^>]*capture="environment"'
            r'[^>]*data-testid="report-photo"',
            html,
        )
        assert re.search(r'<button[^>]*disabled[^>]*data-testid="report-submit"', html)
        for field in ("report-name", "report-description", "report-contact", "report-extra"):
            assert count_testid(html, field) == 1
        assert 'placeholder="72"' in html  # the default expiry, in hours
        assert '<script src="/static/report.js" defer></script>' in html
        assert "<script>" not in html  # no inline code (the CSP would block it)
        assert "script-src 'self'" in page.headers["content-security-policy"]
        token = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
        assert token is not None
        assert token.group(1)


def test_a_case_page_shows_every_sighting_newest_first_and_resolve_only_for_its_filer(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path, face_engine: FaceEngine
) -> None:
    viewer, reporter = client_for("viewer"), client_for("reporter")
    other, teller = client_for("reporter"), client_for("teller")
    case, alerts = case_with_sightings(server, face_photos, face_engine, filer="reporter-1")

    page = viewer.get(f"/cases/{case.id}")
    assert page.status_code == 200
    html = page.text
    assert '<h1 data-testid="case-name">Barack Obama</h1>' in html
    assert "grey suit, blue tie" in html
    # Contact details are for tellers and above and the filer (failed on main: a viewer saw
    # the contact's phone number and the reporter's name).
    assert "+15551234567" not in html
    assert count_testid(html, "case-contact") == 0
    assert count_testid(html, "case-reporter") == 0
    assert 'data-testid="case-approval" data-approved="no"' in html
    assert 'data-testid="case-status">active<' in html
    assert count_testid(html, "case-photo") == 1
    assert f'src="/api/v1/photos/{case.photo_keys[0]}"' in html
    kinds = re.findall(
        r'data-testid="timeline-entry" data-match-id="\d+"\s+'
        r'data-sighting-id="\w+" data-kind="(\w+)"',
        html,
    )
    assert kinds == ["live", "retro"]  # newest first
    labels = re.findall(r'data-testid="timeline-label">([^<]+)<', html)
    assert labels == [
        "seen at Front door",
        "seen at Front door, 20 minutes before the case was filed",
    ]
    assert count_testid(html, "timeline-snapshot") == 2
    # The distance in words for a parent; the number stays in an attribute.
    assert re.findall(r'data-distance="([0-9.]+)"', html)[0] == "0.310"
    assert "a possible likeness" in html  # 0.310 of a 0.32 threshold
    assert "distance 0.310<" not in html
    # A viewer reads; the resolve button, subscriptions and failures are not for it.
    for hidden in (
        "case-resolve",
        "case-approve",
        "subscriptions",
        "subscribe-form",
        "delivery-failures",
    ):
        assert count_testid(html, hidden) == 0, hidden
    assert '<script src="/static/case.js" defer></script>' in html

    html = reporter.get(f"/cases/{case.id}").text
    assert 'data-testid="case-contact">+15551234567<' in html
    assert 'data-testid="case-reporter">reporter-1<' in html
    # The filer learns how many sightings wait for approval, not where or when.
    assert count_testid(html, "timeline-entry") == 0
    assert 'data-testid="held-sightings" data-held="2"' in html
    assert count_testid(html, "case-resolve") == 1
    assert count_testid(html, "case-approve") == 0
    assert count_testid(html, "subscribe-form") == 1
    assert count_testid(html, "no-subscriptions") == 1
    alerts.add_subscription("email", "desk@example.org", case_id=case.id, actor="user:rita")
    html = reporter.get(f"/cases/{case.id}").text
    assert 'data-testid="subscription-address">d***@example.org<' in html
    assert count_testid(html, "subscription-remove") == 1

    # Another reporter: no such case (failed on main: it had the resolve button and the
    # subscriptions). A teller: the contact and the subscribers, but no controls.
    page = other.get(f"/cases/{case.id}")
    assert page.status_code == 404
    assert "There is no case with id" in page.text
    assert "Barack Obama" not in page.text
    assert count_testid(other.get("/cases").text, "case-row") == 0
    html = teller.get(f"/cases/{case.id}").text
    assert 'data-testid="case-contact">+15551234567<' in html
    assert 'data-testid="subscription-address">d***@example.org<' in html
    for hidden in ("case-resolve", "case-approve", "subscribe-form", "subscription-remove"):
        assert count_testid(html, hidden) == 0, hidden
    coordinator = client_for("coordinator")
    html = coordinator.get(f"/cases/{case.id}").text
    assert count_testid(html, "case-approve") == 1
    assert count_testid(html, "case-resolve") == 1

    resolved = reporter.post(f"{API}/cases/{case.id}/resolve")
    assert resolved.status_code == 200, resolved.text
    html = reporter.get(f"/cases/{case.id}").text
    assert 'data-testid="case-status">resolved<' in html
    assert count_testid(html, "case-resolve") == 0
    assert count_testid(viewer.get(f"/cases/{case.id}").text, "timeline-entry") == 2  # kept


def test_the_cases_list_filters_by_status(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    alerts = alerts_of(server)
    viewer = client_for("viewer")
    empty = viewer.get("/cases")
    assert empty.status_code == 200
    assert count_testid(empty.text, "no-cases") == 1
    assert count_testid(empty.text, "cases-report") == 0  # a viewer cannot report
    photo = (face_photos / "obama2.jpg").read_bytes()
    case = alerts.create_case("Barack Obama", "", "", [(photo, "obama2.jpg")], actor="user:rita")
    html = viewer.get("/cases").text
    assert re.search(rf'href="/cases/{case.id}" data-testid="case-row"', html)
    assert 'data-testid="case-row-status">active<' in html
    assert count_testid(viewer.get("/cases?status=resolved").text, "case-row") == 0
    assert count_testid(viewer.get("/cases?status=active").text, "case-row") == 1
    assert count_testid(viewer.get("/cases?status=bogus").text, "case-row") == 1  # ignored
    assert count_testid(client_for("reporter").get("/cases").text, "cases-report") == 1


def test_an_unknown_case_is_a_404_page(server: OneEyeApp, client_for: ClientFor) -> None:
    alerts_of(server)
    page = client_for("viewer").get("/cases/0123456789abcdef0123456789abcdef")
    assert page.status_code == 404
    assert "There is no case with id" in page.text


def test_the_dashboard_opens_with_a_banner_for_a_recent_match(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path, face_engine: FaceEngine
) -> None:
    case, alerts = case_with_sightings(server, face_photos, face_engine)
    viewer = client_for("viewer")
    html = viewer.get("/").text
    assert count_testid(html, "alert-banner") == 1
    banner = html[html.index('data-testid="alert-banner"') :]
    assert f'data-case-id="{case.id}"' in html
    assert f'href="/cases/{case.id}"' in banner
    assert 'data-testid="alert-camera">Front door<' in banner
    assert 'data-testid="alert-label">seen at Front door<' in banner  # the newest: live
    assert count_testid(banner, "alert-case-photo") == 1
    assert count_testid(banner, "alert-snapshot") == 1
    assert count_testid(html, "alert-sound") == 1
    assert html.index("/static/alerts.js") < html.index("/static/dashboard.js")
    # Resolved: no more banner.
    alerts.resolve(case.id, actor="user:rita")
    assert count_testid(viewer.get("/").text, "alert-banner") == 0


def test_undelivered_notifications_are_shown_to_tellers_and_admins(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    alerts = alerts_of(server)
    photo = (face_photos / "obama2.jpg").read_bytes()
    case = alerts.create_case("Barack Obama", "", "", [(photo, "obama2.jpg")], actor="user:rita")
    with server.services.db.session() as session:
        session.add(
            Notification(
                case_id=case.id,
                sighting_id=new_id(),
                channel="email",
                address="desk@example.org",
                payload={},
                status="failed",
                attempts=8,
                last_error="SMTP 550: mailbox unavailable",
            )
        )
    teller_page = client_for("teller").get(f"/cases/{case.id}").text
    assert count_testid(teller_page, "failure") == 1
    assert "SMTP 550: mailbox unavailable" in teller_page
    assert "gave up after 8 attempts" in teller_page
    viewer_page = client_for("viewer").get(f"/cases/{case.id}").text
    assert "desk@example.org" not in viewer_page
    admin_list = client_for("admin").get("/cases").text
    assert count_testid(admin_list, "failure") == 1
    assert count_testid(client_for("reporter").get("/cases").text, "delivery-failures") == 0


def test_every_viewer_can_load_a_case_photo(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    alerts = alerts_of(server)
    photo = (face_photos / "obama2.jpg").read_bytes()
    case = alerts.create_case("Barack Obama", "", "", [(photo, "obama2.jpg")], actor="user:rita")
    answer = client_for("viewer").get(f"{API}/photos/{case.photo_keys[0]}")
    assert answer.status_code == 200, answer.text


def test_the_case_page_says_who_was_told_what(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    """Issue 12, bug 2: the case page said "Every notification for this case went out" while
    nobody was subscribed (failed on d82f336). Now it says nobody is, and per subscriber
    (masked) what it was told: sent, waiting, retrying, undelivered."""
    alerts = alerts_of(server)
    teller, admin = client_for("teller"), client_for("admin")
    photo = (face_photos / "obama2.jpg").read_bytes()
    case = alerts.create_case(
        "Barack Obama", "", "", [(photo, "obama2.jpg")], actor="user:cora", approved=True
    )
    html = teller.get(f"/cases/{case.id}").text
    assert re.search(r'data-testid="no-subscriptions" >Nobody is subscribed', html)
    assert "Nothing was sent: nobody is subscribed." in html
    assert "went out" not in html
    assert "(nobody is subscribed yet)" in html

    mine = alerts.add_subscription(
        "email", "parent@example.org", actor="user:cora", case_id=case.id
    )
    every = alerts.add_subscription("sms", "+447700900958", actor="user:admin")
    now = datetime.now(UTC)

    def row(subscription: int, status: str, error: str | None = None) -> Notification:
        return Notification(
            case_id=case.id,
            sighting_id=new_id(),
            subscription_id=subscription,
            channel="email",
            address="x",
            payload={},
            status=status,
            last_error=error,
            sent_at=now if status == "sent" else None,
        )

    with server.services.db.session() as session:
        session.add_all(
            [
                row(mine.id, "sent"),
                row(mine.id, "sent"),
                row(mine.id, "pending"),
                row(every.id, "failed", "SMS gateway answered HTTP 400"),
                row(every.id, "pending", "SMS gateway unreachable"),
            ]
        )
    html = teller.get(f"/cases/{case.id}").text
    assert re.search(r'data-testid="no-subscriptions" hidden', html)
    items = re.findall(
        r'data-channel="(\w+)" data-every-case="(\w+)"\s+data-sent="(\d+)" data-pending="(\d+)" '
        r'data-retrying="(\d+)" data-failed="(\d+)"',
        html,
    )
    assert items == [("email", "no", "2", "1", "0", "0"), ("sms", "yes", "0", "0", "1", "1")]
    told = re.findall(r'data-testid="subscription-told">([^<]*)</span>', html)
    assert [t.strip() for t in told] == [
        "told of 2 sightings, 1 waiting to be sent",
        "1 failing, being retried, 1 could not be delivered",
    ]
    addresses = re.findall(r'data-testid="subscription-address">([^<]*)<', html)
    assert addresses == ["p***@example.org", "+44*******958"]
    assert "parent@example.org" not in html
    assert "(nobody is subscribed yet)" not in html
    # Only an admin may remove the every-case subscription from here.
    assert count_testid(html, "subscription-remove") == 0
    html = admin.get(f"/cases/{case.id}").text
    assert count_testid(html, "subscription-remove") == 2
