"""Issue 12, section 2: confirm or reject a match, enrol a sighting's face, name an unknown
face, and the rejections by pair; with the role checks (teller for arrivals, coordinator for
case sightings), the audit rows, the dashboard withdrawing a rejected card, and an admin
removing a template that came from a sighting."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from oneeye.app import OneEyeApp
from oneeye.services.feedback import WITHDRAWN
from oneeye.store.models import AuditEntry
from oneeye.store.photos import snapshot_kind
from oneeye.vision.engine import FaceEngine
from tests.web.conftest import ClientFor
from tests.web.helpers import API, PEOPLE, enrol, key_client, publish, sighting, wait_for
from tests.web.test_alert_pages import case_with_sightings

CAMERA = "lobby"
SIGHTINGS = f"{API}/sightings"


def _audit(app: OneEyeApp, action: str) -> list[AuditEntry]:
    with app.services.db.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _seen(
    app: OneEyeApp, face_photos: Path, photo: str, person: str | None, watchlist: str | None
) -> str:
    """A stored sighting of ``person`` (``None``: an unknown face) whose snapshot is
    ``photo``; its id."""
    key = app.services.photos.add(snapshot_kind(CAMERA), (face_photos / photo).read_bytes())
    message = sighting(CAMERA, person, datetime.now(UTC), snapshot_key=key, watchlist=watchlist)
    publish(app, message)
    wait_for(lambda: app.services.sighting_queries.get(message["id"]) is not None, "the sighting")
    return str(message["id"])


def _person(admin: TestClient, name: str, watchlist: str, **more: Any) -> str:
    created = admin.post(PEOPLE, json={"name": name, "watchlists": [watchlist], **more})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.mark.slow
def test_teller_confirms_enrols_rejects_and_names_an_arrival(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    admin, teller = key_client(server, "admin"), key_client(server, "teller")
    obama = _person(admin, "Barack Obama", "customers", account_id="ACC-1")
    enrol(admin, obama, face_photos, "obama.jpg")
    seen = _seen(server, face_photos, "obama2.jpg", obama, "customers")

    # Roles: viewers and reporters judge nothing; a teller judges a customer's arrival.
    for role in ("viewer", "reporter"):
        refused = key_client(server, role).post(
            f"{SIGHTINGS}/{seen}/verdict", json={"verdict": "confirm"}
        )
        assert refused.status_code == 403, refused.text
    assert teller.post(f"{SIGHTINGS}/nope/verdict", json={"verdict": "confirm"}).status_code == 404
    bad = teller.post(f"{SIGHTINGS}/{seen}/verdict", json={"verdict": "maybe"})
    assert bad.status_code == 422

    # Enrolling needs a confirmed match first.
    early = teller.post(f"{SIGHTINGS}/{seen}/enrol", json={})
    assert early.status_code == 409, early.text
    assert "confirm the match first" in early.json()["error"]["message"]

    confirmed = teller.post(f"{SIGHTINGS}/{seen}/verdict", json={"verdict": "confirm"})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["verdict"] == "confirm"
    [row] = _audit(server, "sighting.confirm")
    assert row.subject == seen
    assert row.role == "teller"
    assert row.detail["person"] == obama

    enrolled = teller.post(f"{SIGHTINGS}/{seen}/enrol", json={})
    assert enrolled.status_code == 201, enrolled.text
    template = enrolled.json()["template"]
    assert template["source_sighting_id"] == seen
    assert template["same_face"]["own_templates"] == 1
    assert template["same_face"]["suspicious"] is False
    listed = admin.get(f"{PEOPLE}/{obama}/templates").json()
    assert [t["source_sighting_id"] for t in listed] == [None, seen]
    [enrol_row] = [r for r in _audit(server, "template.enrol") if r.detail.get("sighting")]
    assert enrol_row.detail["sighting"] == seen
    assert enrol_row.detail["template"] == template["id"]

    # Reversible by an admin (a teller may not delete templates).
    path = f"{PEOPLE}/{obama}/templates/{template['id']}"
    assert teller.delete(path).status_code == 403
    assert admin.delete(path).status_code == 204
    assert len(admin.get(f"{PEOPLE}/{obama}/templates").json()) == 1

    # Biden's face matched to Obama: rejected, withdrawn from the dashboards.
    wrong = _seen(server, face_photos, "biden.jpg", obama, "customers")
    last_event = server.services.events.latest_id()
    rejected = teller.post(f"{SIGHTINGS}/{wrong}/verdict", json={"verdict": "reject"})
    assert rejected.status_code == 200, rejected.text
    withdrawn = [
        e for e in server.services.events.since(last_event, "viewer") if e.type == WITHDRAWN
    ]
    assert [e.payload for e in withdrawn] == [{"sighting_id": wrong, "reason": "rejected"}]
    assert _audit(server, "sighting.reject")[0].subject == wrong
    page = client_for("teller").get("/")
    assert page.status_code == 200
    assert wrong not in page.text  # the dashboard's first render leaves it out too
    assert seen in page.text

    # A rejected match is not enrolled into the person it was matched to.
    refused = teller.post(f"{SIGHTINGS}/{wrong}/enrol", json={})
    assert refused.status_code == 409, refused.text

    # ... but it can be named: "this is customer Biden".
    biden = _person(admin, "Joe Biden", "customers", account_id="ACC-2")
    named = teller.post(f"{SIGHTINGS}/{wrong}/enrol", json={"person_id": biden})
    assert named.status_code == 201, named.text
    assert named.json()["person_id"] == biden
    assert named.json()["template"]["same_face"]["own_templates"] == 0

    # The admins see the pair (and only the admins).
    assert teller.get(f"{SIGHTINGS}/rejections").status_code == 403
    pairs = admin.get(f"{SIGHTINGS}/rejections").json()
    assert [(p["person_id"], p["actual_person_id"], p["rejections"]) for p in pairs] == [
        (obama, biden, 1)
    ]
    assert pairs[0]["person_name"] == "Barack Obama"
    assert pairs[0]["actual_name"] == "Joe Biden"
    assert _audit(server, "sighting.rejections")
    page = client_for("admin").get("/admin/feedback")
    assert page.status_code == 200
    assert 'data-testid="feedback-pair"' in page.text
    assert "Joe Biden" in page.text
    assert client_for("teller").get("/admin/feedback").status_code == 403


@pytest.mark.slow
def test_case_sightings_are_for_coordinators_and_unknown_faces_are_named(
    server: OneEyeApp, face_photos: Path
) -> None:
    admin = key_client(server, "admin")
    teller, coordinator = key_client(server, "teller"), key_client(server, "coordinator")
    missing = _person(admin, "Missing Person", "amber-alert")
    enrol(admin, missing, face_photos, "obama.jpg")
    seen = _seen(server, face_photos, "obama2.jpg", missing, "amber-alert")

    refused = teller.post(f"{SIGHTINGS}/{seen}/verdict", json={"verdict": "reject"})
    assert refused.status_code == 403, refused.text
    assert "coordinator" in refused.json()["error"]["message"]
    done = coordinator.post(f"{SIGHTINGS}/{seen}/verdict", json={"verdict": "reject"})
    assert done.status_code == 200, done.text
    [row] = _audit(server, "sighting.reject")
    assert row.role == "coordinator"

    # An unknown face: nothing to judge, and naming needs the person.
    unknown = _seen(server, face_photos, "obama3.jpg", None, None)
    nothing = coordinator.post(f"{SIGHTINGS}/{unknown}/verdict", json={"verdict": "confirm"})
    assert nothing.status_code == 400, nothing.text
    anonymous = coordinator.post(f"{SIGHTINGS}/{unknown}/enrol", json={})
    assert anonymous.status_code == 400, anonymous.text
    # A teller may not enrol a case's person; a coordinator may.
    assert (
        teller.post(f"{SIGHTINGS}/{unknown}/enrol", json={"person_id": missing}).status_code == 403
    )
    named = coordinator.post(f"{SIGHTINGS}/{unknown}/enrol", json={"person_id": missing})
    assert named.status_code == 201, named.text
    assert named.json()["template"]["source_sighting_id"] == unknown

    # A face of someone else is refused by the same-face check, unless forced.
    stranger = _seen(server, face_photos, "biden.jpg", None, None)
    other = coordinator.post(f"{SIGHTINGS}/{stranger}/enrol", json={"person_id": missing})
    assert other.status_code == 409, other.text
    assert other.json()["error"]["same_face"]["far"] is True
    forced = coordinator.post(
        f"{SIGHTINGS}/{stranger}/enrol", json={"person_id": missing, "force": True}
    )
    assert forced.status_code == 201, forced.text
    [row] = _audit(server, "template.enrol.forced")
    assert row.detail["sighting"] == stranger


@pytest.mark.slow
def test_a_rejected_case_sighting_leaves_the_case_page_and_the_banner(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path, face_engine: FaceEngine
) -> None:
    case, alerts = case_with_sightings(server, face_photos, face_engine)
    live = next(m for m in alerts.matches(case.id) if m.kind == "live")
    coordinator, viewer = client_for("coordinator"), client_for("viewer")
    page = coordinator.get(f"/cases/{case.id}").text
    assert page.count('data-testid="timeline-entry"') == 2
    assert page.count('data-testid="timeline-reject"') == 2  # coordinators judge
    assert 'data-testid="timeline-reject"' not in viewer.get(f"/cases/{case.id}").text
    dashboard = viewer.get("/").text
    assert dashboard.count('data-testid="alert-banner"') == 1
    assert f'data-sighting-id="{live.sighting_id}"' in dashboard  # its card

    rejected = coordinator.post(
        f"{SIGHTINGS}/{live.sighting_id}/verdict", json={"verdict": "reject"}
    )
    assert rejected.status_code == 200, rejected.text
    page = coordinator.get(f"/cases/{case.id}").text
    assert page.count('data-testid="timeline-entry"') == 1
    assert live.sighting_id not in page
    assert 'data-testid="rejected-sightings"' in page
    dashboard = viewer.get("/").text
    assert dashboard.count('data-testid="alert-banner"') == 0  # it showed the rejected one
    assert live.sighting_id not in dashboard


@pytest.mark.slow
def test_a_rejected_case_sighting_leaves_the_case_api(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path, face_engine: FaceEngine
) -> None:
    case, alerts = case_with_sightings(server, face_photos, face_engine)
    live = next(m for m in alerts.matches(case.id) if m.kind == "live")
    coordinator = client_for("coordinator")
    before = coordinator.get(f"{API}/cases/{case.id}").json()
    assert len(before["timeline"]) == 2
    assert before["rejected_matches"] == 0

    rejected = coordinator.post(
        f"{SIGHTINGS}/{live.sighting_id}/verdict", json={"verdict": "reject"}
    )
    assert rejected.status_code == 200, rejected.text
    for role in ("viewer", "coordinator"):
        after = client_for(role).get(f"{API}/cases/{case.id}")
        assert after.status_code == 200, after.text
        assert [m["sighting_id"] for m in after.json()["timeline"]] == [
            m["sighting_id"] for m in before["timeline"] if m["sighting_id"] != live.sighting_id
        ]
        assert after.json()["rejected_matches"] == 1


@pytest.mark.slow
def test_sightings_and_history_carry_the_verdict_and_keep_rejections(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    admin, teller = key_client(server, "admin"), key_client(server, "teller")
    customer = _person(admin, "Barack Obama", "customers")
    enrol(admin, customer, face_photos, "obama.jpg")
    good = _seen(server, face_photos, "obama2.jpg", customer, "customers")
    wrong = _seen(server, face_photos, "biden.jpg", customer, "customers")
    plain = _seen(server, face_photos, "obama3.jpg", customer, "customers")
    unknown = _seen(server, face_photos, "obama3.jpg", None, None)
    for seen, verdict in ((good, "confirm"), (wrong, "reject")):
        done = teller.post(f"{SIGHTINGS}/{seen}/verdict", json={"verdict": verdict})
        assert done.status_code == 200, done.text

    listed = {s["id"]: s["verdict"] for s in teller.get(SIGHTINGS).json()}
    assert listed == {good: "confirmed", wrong: "rejected", plain: "none", unknown: "none"}
    assert teller.get(f"{SIGHTINGS}/{wrong}").json()["verdict"] == "rejected"
    assert teller.get(f"{SIGHTINGS}/{good}").json()["verdict"] == "confirmed"

    # The history is the record: it keeps the rejected match, marked.
    for url in ("/history", f"/people/{customer}"):
        page = client_for("teller").get(url)
        assert page.status_code == 200, page.text
        assert f'data-sighting-id="{wrong}" data-verdict="rejected"' in page.text
        assert f'data-sighting-id="{good}" data-verdict="confirmed"' in page.text
        assert f'data-sighting-id="{plain}" data-verdict="none"' in page.text
        assert page.text.count('data-testid="history-rejected"') == 1
