"""Erasure and subject access through the real server on loopback (uvicorn, HTTP, the
dashboard WebSocket), as the review found them: after a person and their account were
deleted, their sightings were still listed under their id, a viewer fetched their snapshot,
and a teller replaying ``/ws?since=0`` received their name, address and balance again."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from oneeye.app import OneEyeApp
from oneeye.store.models import AlertCase, AuditEntry, DashboardEvent, Sighting
from oneeye.store.photos import snapshot_kind
from tests.web.browser import serve
from tests.web.helpers import publish, sighting, wait_for

API = "/api/v1"
ACCOUNT = {
    "name": "Barack Obama",
    "account_type": "checking",
    "address": "1600 Pennsylvania Avenue",
    "balance": "98765.43",
}
SECRETS = ("Barack Obama", "1600 Pennsylvania", "98765.43", "ACC-0044")
"""What must not come back about the person once they are erased."""


@dataclass
class Site:
    """The server on loopback and an HTTP client per role."""

    app: OneEyeApp
    url: str
    clients: dict[str, httpx.Client]
    keys: dict[str, str]

    def replay(self, role: str, quiet: float = 1.0) -> list[dict[str, Any]]:
        """Every frame ``/ws?since=0`` sends ``role`` until it has been quiet for a while."""
        frames: list[dict[str, Any]] = []
        ws_url = self.url.replace("http://", "ws://") + "/ws?since=0"
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        with connect(ws_url, additional_headers=headers, open_timeout=10) as socket:
            while True:
                try:
                    frames.append(json.loads(socket.recv(timeout=quiet)))
                except (TimeoutError, ConnectionClosed):
                    return frames


@contextmanager
def serving(server: OneEyeApp) -> Iterator[Site]:
    """``server`` on loopback with an API-key client per role."""
    with serve(server.web) as url:
        clients: dict[str, httpx.Client] = {}
        keys: dict[str, str] = {}
        for role in ("viewer", "teller", "admin"):
            keys[role] = server.services.auth.create_api_key(f"{role}-p", role)[1]
            clients[role] = httpx.Client(
                base_url=url, timeout=30, headers={"Authorization": f"Bearer {keys[role]}"}
            )
        try:
            yield Site(server, url, clients, keys)
        finally:
            for client in clients.values():
                client.close()


@pytest.fixture
def site(server: OneEyeApp) -> Iterator[Site]:
    """The server on SQLite, on loopback."""
    with serving(server) as made:
        yield made


@pytest.fixture
def site_any_db(server_any_db: OneEyeApp) -> Iterator[Site]:
    """The server on SQLite, then on PostgreSQL, on loopback."""
    with serving(server_any_db) as made:
        yield made


def seen_customer(site: Site, face_photos: Path) -> tuple[str, str, str]:
    """A customer with an account, an enrolled photo and a sighting with a snapshot that put
    their card on the tellers' dashboards; returns (person id, sighting id, snapshot key)."""
    admin = site.clients["admin"]
    assert admin.put(f"{API}/customers/ACC-0044", json=ACCOUNT).status_code == 200
    made = admin.post(f"{API}/people", json={"name": "Barack Obama", "account_id": "ACC-0044"})
    assert made.status_code == 201, made.text
    person_id = made.json()["id"]
    photo = (face_photos / "obama2.jpg").read_bytes()
    enrolled = admin.post(
        f"{API}/people/{person_id}/photos", files={"file": ("obama2.jpg", photo, "image/jpeg")}
    )
    assert enrolled.status_code == 201, enrolled.text
    snapshot = site.app.services.photos.add(snapshot_kind("door"), photo)
    message = sighting(
        "door", person_id, datetime.now(UTC), watchlist="customers", snapshot_key=snapshot
    )
    publish(site.app, message)

    def carded() -> bool:
        with site.app.services.db.session() as session:
            types = session.scalars(select(DashboardEvent.type)).all()
        return "customer.arrived" in types

    wait_for(carded, "the customer's card on the dashboard")
    return person_id, message["id"], snapshot


def test_erasure_leaves_nothing_behind_a_deleted_customer(
    site_any_db: Site, face_photos: Path
) -> None:
    site = site_any_db
    person_id, sighting_id, snapshot = seen_customer(site, face_photos)
    stranger = sighting("door", None, datetime.now(UTC))
    publish(site.app, stranger)
    admin, viewer = site.clients["admin"], site.clients["viewer"]
    template_url = admin.get(f"{API}/people/{person_id}/templates").json()[0]["photo_url"]

    # The review's steps: delete the person, then the account. What it found left behind:
    assert admin.delete(f"{API}/people/{person_id}").status_code == 204
    assert admin.delete(f"{API}/customers/ACC-0044").status_code == 204
    listed = viewer.get(f"{API}/sightings", params={"person": person_id}).json()
    assert [s["id"] for s in listed] == [sighting_id]
    assert viewer.get(f"{API}/photos/{snapshot}").status_code == 200
    replayed = json.dumps(site.replay("teller"))
    assert "98765.43" in replayed
    assert "1600 Pennsylvania" in replayed

    # One call removes the rest.
    erased = admin.post(f"{API}/people/{person_id}/erase")
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["sightings"] == 1
    assert report["snapshots"] == 1
    assert report["events"] >= 2  # the card and the plain sighting event
    assert report["already_erased"] is False

    assert viewer.get(f"{API}/sightings", params={"person": person_id}).json() == []
    assert viewer.get(f"{API}/sightings/{sighting_id}").status_code == 404
    assert viewer.get(f"{API}/photos/{snapshot}").status_code == 404
    assert admin.get(template_url).status_code == 404
    for role in ("teller", "viewer"):
        frames = site.replay(role)
        text = json.dumps(frames)
        assert person_id not in text
        assert sighting_id not in text
        assert not [s for s in SECRETS if s in text], f"{role} replay: {text[:500]}"
    # Others' data stays: the stranger's sighting is still there.
    assert viewer.get(f"{API}/sightings/{stranger['id']}").status_code == 200

    # One audit row, ids and counts only; earlier rows about them lose the name.
    with site.app.services.db.session() as session:
        about = session.scalars(
            select(AuditEntry).where(AuditEntry.subject == person_id).order_by(AuditEntry.id)
        ).all()
    erasures = [row for row in about if row.action == "person.erase"]
    assert len(erasures) == 1
    assert erasures[0].actor == "key:admin-p"
    assert not [s for s in SECRETS if s in json.dumps([r.detail for r in about])]

    # Idempotent; unknown ids are 404; admins only.
    again = admin.post(f"{API}/people/{person_id}/erase")
    assert again.status_code == 200
    assert again.json()["already_erased"] is True
    assert len(site.app.services.auth.audit_entries(action="person.erase")) == 1
    assert admin.post(f"{API}/people/{'0' * 32}/erase").status_code == 404
    assert site.clients["teller"].post(f"{API}/people/{person_id}/erase").status_code == 403


def test_erasing_a_living_customer_deletes_their_account_and_gallery_entries(
    site: Site, face_photos: Path
) -> None:
    person_id, _, _ = seen_customer(site, face_photos)
    assert person_id in site.app.services.gallery.persons()
    report = site.clients["admin"].post(f"{API}/people/{person_id}/erase").json()
    assert report["person"] is True
    assert report["templates"] == 1
    assert report["account"] == "deleted"
    assert person_id not in site.app.services.gallery.persons()
    assert site.clients["teller"].get(f"{API}/customers/ACC-0044").status_code == 404
    assert site.clients["admin"].get(f"{API}/people/{person_id}").status_code == 404


def test_erasing_a_case_person_removes_the_case(site: Site, face_photos: Path) -> None:
    alerts = site.app.services.alerts
    photo = (face_photos / "obama.jpg").read_bytes()
    case = alerts.create_case(
        "Barack Obama", "Last seen at the station", "+15550100", [(photo, "obama.jpg")],
        actor="key:admin-p",
    )  # fmt: skip
    assert case.person_id is not None
    report = site.clients["admin"].post(f"{API}/people/{case.person_id}/erase").json()
    assert report["cases"] == 1
    with site.app.services.db.session() as session:
        assert session.get(AlertCase, case.id) is None
    assert not [s for s in SECRETS if s in json.dumps(site.replay("viewer"))]


def test_export_holds_everything_about_the_person_for_admins_only(
    site: Site, face_photos: Path
) -> None:
    person_id, sighting_id, snapshot = seen_customer(site, face_photos)
    admin = site.clients["admin"]
    answer = admin.get(f"{API}/people/{person_id}/export")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["person"]["name"] == "Barack Obama"
    assert document["person"]["watchlists"] == ["customers"]
    assert len(document["templates"]) == 1
    assert "embedding" not in document["templates"][0]
    assert document["account"]["address"] == ACCOUNT["address"]
    assert document["account"]["balance"] == ACCOUNT["balance"]
    assert [s["id"] for s in document["sightings"]] == [sighting_id]
    assert {e["type"] for e in document["dashboard_events"]} >= {"customer.arrived", "sighting"}
    actions = {a["action"] for a in document["audit"]}
    assert {"person.create", "template.enrol", "account.create"} <= actions
    assert admin.get(f"{API}/photos/{snapshot}").status_code == 200
    again = admin.get(f"{API}/people/{person_id}/export").json()
    assert [a["subject"] for a in again["audit"] if a["action"] == "photo.view"] == [snapshot]

    zipped = admin.get(f"{API}/people/{person_id}/export", params={"photos": "true"})
    assert zipped.status_code == 200
    assert zipped.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        names = set(archive.namelist())
        inside = json.loads(archive.read("person.json"))
    template_key = document["templates"][0]["photo_key"]
    assert {"person.json", f"photos/{template_key}", f"photos/{snapshot}"} <= names
    assert inside["person_id"] == person_id
    assert inside["missing_photos"] == []

    exports = site.app.services.auth.audit_entries(action="person.export")
    assert [(e.subject, e.detail["photos"]) for e in exports] == [
        (person_id, True),
        (person_id, False),
        (person_id, False),
    ]
    for role in ("viewer", "teller"):
        assert site.clients[role].get(f"{API}/people/{person_id}/export").status_code == 403
    assert admin.get(f"{API}/people/{'f' * 32}/export").status_code == 404
    with site.app.services.db.session() as session:
        assert session.get(Sighting, sighting_id) is not None, "an export changes nothing"
