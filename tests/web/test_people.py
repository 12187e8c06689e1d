"""``/api/v1/people``: people, enrolment by upload (on both databases), bad uploads that store
nothing, templates, roles, and a restart that rebuilds the gallery from the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from oneeye.app import OneEyeApp
from oneeye.services.enrolment import encode_jpeg
from oneeye.store.models import AuditEntry
from oneeye.vision.engine import FaceEngine
from tests.conftest import PhotoLoader, side_by_side
from tests.web.conftest import ClientFor
from tests.web.helpers import PEOPLE, enrol, key_client, stored, upload

IDENTIFY = "/api/v1/identify"


@pytest.mark.slow
def test_enrol_identify_and_restart_on_both_databases(
    server_any_db: OneEyeApp, face_photos: Path, face_engine: FaceEngine
) -> None:
    admin = key_client(server_any_db, "admin")
    viewer = key_client(server_any_db, "viewer")
    created = admin.post(
        PEOPLE, json={"name": "Barack Obama", "account_id": "ACC-1", "watchlists": ["customers"]}
    )
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["watchlists"] == ["customers"]
    assert person["templates"] == 0

    template = enrol(admin, person["id"], face_photos, "obama.jpg")
    assert template["person_id"] == person["id"]
    assert template["photo_url"].startswith("/api/v1/photos/templates/")
    box = template["box"]
    assert box["bottom"] - box["top"] > 100
    assert box["right"] - box["left"] > 100
    assert 0.0 < template["quality"] <= 1.0
    listed = viewer.get(f"{PEOPLE}/{person['id']}/templates")
    assert [t["id"] for t in listed.json()] == [template["id"]]
    assert viewer.get(f"{PEOPLE}/{person['id']}").json()["templates"] == 1

    probe = (face_photos / "obama2.jpg").read_bytes()
    found = key_client(server_any_db, "teller").post(IDENTIFY, files=upload("obama2.jpg", probe))
    assert found.status_code == 200, found.text
    [face] = found.json()["faces"]
    assert face["person_id"] == person["id"]
    assert face["name"] == "Barack Obama"
    assert face["matches"][0]["matched"] is True

    # A restart (a second server on the same data folder and database) rebuilds the gallery.
    server_any_db.stop()
    again = OneEyeApp(server_any_db.settings, engine=face_engine)
    again.start()
    try:
        assert len(again.services.gallery) == 1
        found = key_client(again, "teller").post(IDENTIFY, files=upload("obama2.jpg", probe))
        assert found.json()["faces"][0]["person_id"] == person["id"]
    finally:
        again.stop()


@pytest.mark.slow
def test_bad_uploads_are_refused_with_the_reason_and_store_nothing(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path, load_photo: PhotoLoader
) -> None:
    admin = client_for("admin")  # a browser session: the multipart post carries the CSRF header
    person = admin.post(PEOPLE, json={"name": "Someone"}).json()
    two = encode_jpeg(side_by_side(load_photo("obama.jpg"), load_photo("biden.jpg")))
    blank = encode_jpeg(np.full((300, 300, 3), 200, dtype=np.uint8))
    cases = [
        ("notes.txt", b"just some text", 400, "notes.txt: not an image"),
        ("cut.jpg", (face_photos / "obama2.jpg").read_bytes()[:4000], 400, "truncated"),
        ("big.jpg", (face_photos / "obama.jpg").read_bytes(), 413, "the limit is 250,000 bytes"),
        ("blank.jpg", blank, 422, "no face found"),
        ("two.jpg", two, 422, "found 2 faces; an enrolment photo must show exactly one person"),
    ]
    before = stored(server)
    limit = server.services.enrolment.max_upload_bytes
    for name, data, status, message in cases:
        server.services.enrolment.max_upload_bytes = 250_000 if name == "big.jpg" else limit
        response = admin.post(f"{PEOPLE}/{person['id']}/photos", files=upload(name, data))
        assert response.status_code == status, (name, response.text)
        assert message in response.json()["error"]["message"]
        assert stored(server) == before, name
    missing = admin.post(f"{PEOPLE}/{'0' * 32}/photos", files=upload("x.jpg", blank))
    assert missing.status_code == 404
    assert "no person with id" in missing.json()["error"]["message"]
    assert stored(server) == before


@pytest.mark.slow
def test_deleting_a_template_and_a_person_removes_their_photos(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    admin = client_for("admin")
    person = admin.post(PEOPLE, json={"name": "Barack Obama"}).json()
    first = enrol(admin, person["id"], face_photos, "obama.jpg")
    enrol(admin, person["id"], face_photos, "obama2.jpg")
    assert stored(server) == (2, 2)
    assert len(server.services.gallery) == 2

    gone = admin.delete(f"{PEOPLE}/{person['id']}/templates/{first['id']}")
    assert gone.status_code == 204
    assert stored(server) == (1, 1)
    again = admin.delete(f"{PEOPLE}/{person['id']}/templates/{first['id']}")
    assert again.status_code == 404

    assert admin.delete(f"{PEOPLE}/{person['id']}").status_code == 204
    assert stored(server) == (0, 0)
    assert len(server.services.gallery) == 0
    assert admin.get(f"{PEOPLE}/{person['id']}").status_code == 404
    with server.services.db.session() as session:
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert [a for a in actions if a.startswith(("person.", "template."))] == [
        "person.create", "template.enrol", "template.enrol", "template.delete", "person.delete",
    ]  # fmt: skip


def test_people_are_created_listed_changed_and_deleted(client_for: ClientFor) -> None:
    admin = client_for("admin")
    viewer = client_for("viewer")
    alice = admin.post(PEOPLE, json={"name": "Alice", "account_id": "A-1"}).json()
    bob = admin.post(PEOPLE, json={"name": "Bob", "watchlists": ["amber-alert"]}).json()
    assert alice["watchlists"] == ["customers"]

    assert [p["name"] for p in viewer.get(PEOPLE).json()] == ["Alice", "Bob"]
    assert [p["name"] for p in viewer.get(PEOPLE, params={"watchlist": "amber-alert"}).json()] == [
        "Bob"
    ]
    assert [p["name"] for p in viewer.get(PEOPLE, params={"q": "ali"}).json()] == ["Alice"]
    assert [p["name"] for p in viewer.get(PEOPLE, params={"limit": 1, "offset": 1}).json()] == [
        "Bob"
    ]

    changed = admin.patch(
        f"{PEOPLE}/{alice['id']}",
        json={"name": "Alice B", "account_id": None, "watchlists": ["customers", "amber-alert"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Alice B"
    assert changed.json()["account_id"] is None
    assert changed.json()["watchlists"] == ["amber-alert", "customers"]
    untouched = admin.patch(f"{PEOPLE}/{alice['id']}", json={"notes": "VIP"}).json()
    assert untouched["name"] == "Alice B"
    assert untouched["notes"] == "VIP"

    assert admin.delete(f"{PEOPLE}/{bob['id']}").status_code == 204
    assert [p["name"] for p in viewer.get(PEOPLE).json()] == ["Alice B"]


@pytest.mark.parametrize(
    ("method", "body", "status", "message"),
    [
        ("post", {"name": "X", "watchlists": ["vip"]}, 400, "no watchlist named 'vip'"),
        ("post", {"name": "X", "account_id": "has space"}, 400, "an account id is"),
        ("post", {"name": ""}, 422, "name"),
        ("patch", {"name": None}, 400, "name cannot be null"),
        ("patch", {"watchlists": ["nope"]}, 400, "no watchlist named 'nope'"),
    ],
)
def test_bad_people_are_refused_with_the_reason(
    client_for: ClientFor, method: str, body: dict[str, Any], status: int, message: str
) -> None:
    admin = client_for("admin")
    person = admin.post(PEOPLE, json={"name": "Existing"}).json()
    url = PEOPLE if method == "post" else f"{PEOPLE}/{person['id']}"
    response = admin.request(method.upper(), url, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert [p["name"] for p in admin.get(PEOPLE).json()] == ["Existing"]


def test_unknown_people_are_404(client_for: ClientFor) -> None:
    admin = client_for("admin")
    for method, url in [
        ("GET", f"{PEOPLE}/nope"),
        ("PATCH", f"{PEOPLE}/nope"),
        ("DELETE", f"{PEOPLE}/nope"),
        ("GET", f"{PEOPLE}/nope/templates"),
        ("DELETE", f"{PEOPLE}/nope/templates/x"),
    ]:
        response = admin.request(method, url, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, url, response.text)
        assert "nope" in response.json()["error"]["message"]


@pytest.mark.parametrize("role", ["viewer", "reporter", "teller"])
def test_only_admins_change_people(client_for: ClientFor, role: str) -> None:
    admin = client_for("admin")
    person = admin.post(PEOPLE, json={"name": "Alice"}).json()
    other = client_for(role)
    assert other.get(PEOPLE).status_code == 200
    assert other.get(f"{PEOPLE}/{person['id']}/templates").status_code == 200
    attempts: list[tuple[str, str, Any]] = [
        ("POST", PEOPLE, {"json": {"name": "X"}}),
        ("PATCH", f"{PEOPLE}/{person['id']}", {"json": {"name": "X"}}),
        ("DELETE", f"{PEOPLE}/{person['id']}", {}),
        ("POST", f"{PEOPLE}/{person['id']}/photos", {"files": upload("x.jpg", b"x")}),
        ("DELETE", f"{PEOPLE}/{person['id']}/templates/x", {}),
    ]
    for method, url, kwargs in attempts:
        response = other.request(method, url, **kwargs)
        assert response.status_code == 403, (method, url)
        assert "admin role" in response.json()["error"]["message"]
    assert [p["name"] for p in admin.get(PEOPLE).json()] == ["Alice"]


def test_people_need_a_login(anonymous: TestClient) -> None:
    assert anonymous.get(PEOPLE).status_code == 401
    assert anonymous.post(PEOPLE, json={"name": "X"}).status_code == 401
