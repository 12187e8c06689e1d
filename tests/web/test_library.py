"""The face library: the customers page searched and paged, one customer's page (edit, erase,
faces as thumbnails), template thumbnails, and the unknown faces grouped by person, on a real
server (SQLite), with the role checks and the audit rows."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from oneeye.app import OneEyeApp
from oneeye.services.library import FaceLibrary, group_faces
from oneeye.store.photos import PhotoNotFoundError, snapshot_kind
from oneeye.store.repos import sightings
from oneeye.store.repos.sightings import NewSighting
from oneeye.web.pages.customers import CUSTOMERS_PAGE_SIZE
from tests.web.conftest import PASSWORD, ClientFor

PageClient = Callable[[str], TestClient]


@pytest.fixture
def page_client(server: OneEyeApp) -> Iterator[PageClient]:
    """``page_client("admin")``: a browser-like client with a session of a new user."""
    clients: list[TestClient] = []

    def make(role: str) -> TestClient:
        name = f"lib-{role}-{len(clients)}"
        server.services.auth.create_user(name, PASSWORD, role)
        session = server.services.auth.login(name, PASSWORD)
        client = TestClient(server.web, follow_redirects=False)
        client.cookies.set("oneeye_session", session.token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def add_accounts(server: OneEyeApp, count: int) -> None:
    for i in range(count):
        server.services.directory.save(f"ACC-{i:03d}", name=f"Customer {i:03d}", balance="1.00")


def shown(html: str) -> list[str]:
    return re.findall(r'data-testid="customer-row" data-account-id="([^"]+)"', html)


def enrolled_customer(server: OneEyeApp, face_photos: Path, account_id: str = "ACC-1") -> str:
    """An account held by a person with obama.jpg enrolled; the person's id."""
    s = server.services
    s.directory.save(account_id, name="Barack Obama", account_type="Checking", balance="10")
    person = s.enrolment.create_person(
        "Barack Obama", ["customers"], actor="test", account_id=account_id
    )
    s.enrolment.enrol_photo(person.id, (face_photos / "obama.jpg").read_bytes(), actor="test")
    return person.id


# the customers page ----------------------------------------------------------------------------


def test_customers_page_is_paged_in_name_order(server: OneEyeApp, page_client: PageClient) -> None:
    add_accounts(server, CUSTOMERS_PAGE_SIZE + 5)
    admin = page_client("admin")
    first = admin.get("/admin/customers").text
    assert shown(first) == [f"ACC-{i:03d}" for i in range(CUSTOMERS_PAGE_SIZE)]
    assert f"1–{CUSTOMERS_PAGE_SIZE} of 30 customers" in first
    assert 'href="/admin/customers?page=2"' in first
    second = admin.get("/admin/customers?page=2").text
    assert shown(second) == [f"ACC-{i:03d}" for i in range(CUSTOMERS_PAGE_SIZE, 30)]
    assert 'data-testid="customers-next"' not in second
    assert admin.get("/admin/customers?page=0").status_code == 422
    [audit] = server.services.auth.audit_entries(action="account.view", limit=1)
    assert audit.detail["accounts"] == shown(second)


def test_customers_page_searches_names_and_account_ids(
    server: OneEyeApp, page_client: PageClient
) -> None:
    add_accounts(server, 12)
    server.services.directory.save("ACC_X", name="Ada Lovelace")
    admin = page_client("admin")
    assert shown(admin.get("/admin/customers?q=lovelace").text) == ["ACC_X"]
    assert shown(admin.get("/admin/customers?q=acc-011").text) == ["ACC-011"]
    # "_" is a letter here, not LIKE's any-character: ACC-001 does not match "acc_".
    assert shown(admin.get("/admin/customers?q=acc_").text) == ["ACC_X"]
    html = admin.get("/admin/customers?q=nobody").text
    assert "No customer matches" in html
    # The audit row names the accounts shown, never the search text (it may be a name).
    [audit] = server.services.auth.audit_entries(action="account.view", limit=1)
    assert "Lovelace" not in str(audit.detail)
    assert "lovelace" not in str(audit.detail)


@pytest.mark.parametrize("path", ["/admin/customers", "/admin/customers/ACC-1", "/admin/unknowns"])
def test_library_pages_are_for_admins(page_client: PageClient, path: str) -> None:
    assert page_client("teller").get(path).status_code == 403


# one customer ----------------------------------------------------------------------------------


def test_customer_page_shows_faces_as_thumbnails_with_quality(
    server: OneEyeApp, page_client: PageClient, face_photos: Path
) -> None:
    person_id = enrolled_customer(server, face_photos)
    [template] = server.services.enrolment.templates(person_id)
    html = page_client("admin").get("/admin/customers/ACC-1").text
    assert f'src="/api/v1/people/{person_id}/templates/{template.id}/thumbnail"' in html
    assert re.search(r'data-testid="template-quality">quality \d\.\d\d · sharpness', html)
    assert 'data-testid="template-delete"' in html
    assert f'href="/history?person={person_id}"' in html
    assert 'data-testid="customer-edit-form"' in html
    [audit] = server.services.auth.audit_entries(action="account.view", limit=1)
    assert audit.subject == "ACC-1"
    assert page_client("admin").get("/admin/customers/ACC-404").status_code == 404


def test_thumbnail_is_the_face_small_for_tellers_and_audited(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    person_id = enrolled_customer(server, face_photos)
    [template] = server.services.enrolment.templates(person_id)
    url = f"/api/v1/people/{person_id}/templates/{template.id}/thumbnail"
    assert client_for("viewer").get(url).status_code == 403
    response = client_for("teller").get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"].startswith("private")
    image = Image.open(io.BytesIO(response.content))
    assert max(image.size) <= 160
    box = template.box
    # The face with a margin, not the whole photo (obama.jpg's face is a fraction of it).
    assert image.size[0] < (box.right - box.left) * 1.8
    [audit] = server.services.auth.audit_entries(action="template.view", limit=1)
    assert audit.subject == person_id
    assert audit.detail["template"] == template.id
    other = client_for("teller").get(f"/api/v1/people/nobody/templates/{template.id}/thumbnail")
    assert other.status_code == 404


def test_erasing_a_customer_leaves_nothing_behind(
    server: OneEyeApp, client_for: ClientFor, face_photos: Path
) -> None:
    s = server.services
    person_id = enrolled_customer(server, face_photos)
    [template] = s.enrolment.templates(person_id)
    assert client_for("teller").post("/api/v1/customers/ACC-1/erase").status_code == 403
    response = client_for("admin").post("/api/v1/customers/ACC-1/erase")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account_deleted"] is True
    assert [p["person_id"] for p in body["people"]] == [person_id]
    assert s.directory.lookup("ACC-1") is None
    assert s.enrolment.people(q="Obama") == []
    with pytest.raises(PhotoNotFoundError):
        s.photos.get(template.photo_key)
    assert person_id not in s.gallery.persons()
    [audit] = s.auth.audit_entries(action="account.erase", limit=1)
    assert audit.subject == "ACC-1"
    assert audit.detail["people"] == [person_id]
    assert client_for("admin").post("/api/v1/customers/ACC-1/erase").status_code == 404


def test_an_account_nobody_holds_is_erased_too(server: OneEyeApp, client_for: ClientFor) -> None:
    server.services.directory.save("ACC-2", name="Grace Hopper")
    response = client_for("admin").post("/api/v1/customers/ACC-2/erase")
    assert response.status_code == 200
    assert response.json()["people"] == []
    assert server.services.directory.lookup("ACC-2") is None


# unknown faces ---------------------------------------------------------------------------------


def unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=128)
    return v / np.linalg.norm(v)


def add_unknown(
    server: OneEyeApp,
    ident: str,
    embedding: np.ndarray,
    *,
    hours_ago: float = 1.0,
    quality: float = 0.5,
    snapshot: bytes | None = None,
) -> None:
    key = None
    if snapshot is not None:
        key = server.services.photos.add(snapshot_kind("lobby"), snapshot, "jpg")
    seen = datetime.now(UTC) - timedelta(hours=hours_ago)
    with server.services.db.session() as session:
        sightings.add(
            session,
            NewSighting(
                id=ident,
                camera_id="lobby",
                track=1,
                person_id=None,
                watchlist=None,
                distance=None,
                quality=quality,
                frame=1,
                t=0.0,
                box=(10, 60, 60, 10),
                seen_at=seen,
                snapshot_key=key,
                embedding=embedding.tolist(),
            ),
        )


def near(base: np.ndarray, rng: np.random.Generator, spread: float = 0.01) -> np.ndarray:
    v = base + rng.normal(scale=spread, size=128)
    return v / np.linalg.norm(v)


def test_group_faces_is_greedy_around_the_best_face() -> None:
    rng = np.random.default_rng(1)
    a, b = unit(rng), unit(rng)
    faces = np.stack([a, near(a, rng), b, near(a, rng), near(b, rng)]).astype(np.float32)
    assert group_faces(faces, 0.3) == [[0, 1, 3], [2, 4]]
    assert group_faces(np.zeros((0, 128), np.float32), 0.3) == []


def test_unknown_faces_of_the_last_day_are_grouped_by_person(
    server: OneEyeApp, client_for: ClientFor
) -> None:
    rng = np.random.default_rng(7)
    stranger, other = unit(rng), unit(rng)
    for i in range(3):
        add_unknown(server, f"s-{i}", near(stranger, rng), quality=0.4 + i / 10)
    add_unknown(server, "o-0", near(other, rng))
    add_unknown(server, "old", near(other, rng), hours_ago=30)  # past the window
    assert client_for("viewer").get("/api/v1/unknowns").status_code == 403
    response = client_for("teller").get("/api/v1/unknowns")
    assert response.status_code == 200
    body = response.json()
    assert body["faces"] == 4
    assert body["hours"] == 24
    assert [g["sightings"] for g in body["groups"]] == [3, 1]
    assert body["groups"][0]["best_sighting_id"] == "s-2"  # the best quality leads
    assert sorted(body["groups"][0]["sighting_ids"]) == ["s-0", "s-1", "s-2"]
    [audit] = server.services.auth.audit_entries(action="unknown.list", limit=1)
    assert audit.detail["groups"] == ["s-2", "o-0"]


def test_no_unknown_face_is_grouped_when_retention_keeps_none(server: OneEyeApp) -> None:
    rng = np.random.default_rng(3)
    add_unknown(server, "s-0", unit(rng))
    s = server.services
    library = FaceLibrary(s.db, s.photos, s.gallery, s.enrolment, s.directory, 0.0)
    found = library.unknown_groups()
    assert found.hours == 0
    assert found.groups == ()
    assert found.faces == 0


def test_naming_an_unknown_face_enrols_it_into_a_new_customer(
    server: OneEyeApp, client_for: ClientFor, page_client: PageClient, face_photos: Path
) -> None:
    s = server.services
    add_unknown(
        server,
        "s-1",
        unit(np.random.default_rng(5)),
        snapshot=(face_photos / "obama.jpg").read_bytes(),
    )
    html = page_client("admin").get("/admin/unknowns").text
    assert 'data-testid="unknown-group" data-sighting-id="s-1"' in html
    body = {"account_id": "ACC-9", "name": "Barack Obama"}
    assert client_for("teller").post("/api/v1/unknowns/s-1/name", json=body).status_code == 403
    response = client_for("admin").post("/api/v1/unknowns/s-1/name", json=body)
    assert response.status_code == 201, response.text
    named = response.json()
    assert s.directory.lookup("ACC-9") is not None
    [person] = s.enrolment.people(q="ACC-9")
    assert person.id == named["person_id"]
    assert person.templates == 1
    [audit] = s.auth.audit_entries(action="unknown.name", limit=1)
    assert audit.detail["sighting"] == "s-1"
    missing = client_for("admin").post("/api/v1/unknowns/nope/name", json=body)
    assert missing.status_code == 404
